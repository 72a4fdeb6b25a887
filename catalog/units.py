"""Sizes and times shown as the docker CLI shows them (go-units)."""

from __future__ import annotations

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision: decimal units and `%.<precision>g`.

    `docker images` uses precision 3; go-units' HumanSize (docker system df) uses 4.
    """
    value = float(size)
    unit = 0
    while value >= 1000 and unit < len(_DECIMAL_UNITS) - 1:
        value /= 1000
        unit += 1
    return f"{value:.{precision}g}{_DECIMAL_UNITS[unit]}"
