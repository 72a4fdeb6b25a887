"""Platforms: `os/architecture[/variant]`, normalized as containerd's platforms package
does, and matched as an image store chooses among an index's manifests.

Pure: no SQLAlchemy, no Typer.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.domain.imageconfig import ImageConfig
from catalog.errors import InvalidArchive

__all__ = ["DEFAULT_PLATFORM", "Platform", "config_platform", "parse_platform"]

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "i386": "386",
    "armhf": "arm",
    "armel": "arm",
}


@dataclass(frozen=True)
class Platform:
    """`os/architecture[/variant]`, normalized as containerd's platforms package does."""

    os: str
    architecture: str
    variant: str | None = None

    def __post_init__(self) -> None:
        os_ = self.os.lower()
        arch = self.architecture.lower()
        variant = (self.variant or "").lower() or None
        if arch in ("armhf", "armel") and variant is None:
            variant = "v7" if arch == "armhf" else "v6"
        arch = _ARCH_ALIASES.get(arch, arch)
        if variant is not None and variant.isdigit():
            variant = "v" + variant
        if arch == "arm64" and variant == "v8":
            variant = None  # v8 is arm64's default
        if arch == "amd64" and variant == "v1":
            variant = None
        if arch == "arm" and variant is None:
            variant = "v7"  # arm's default
        object.__setattr__(self, "os", os_)
        object.__setattr__(self, "architecture", arch)
        object.__setattr__(self, "variant", variant)

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    def matches(self, other: Platform) -> bool:
        """True if an image of platform `other` satisfies a request for this one."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        return self.variant is None or self.variant == other.variant


DEFAULT_PLATFORM = Platform("linux", "amd64")


def parse_platform(text: str) -> Platform:
    """`os/arch[/variant]` as `docker load --platform` takes it."""
    parts = text.strip().split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise InvalidArchive(f'invalid platform "{text}": expected os/arch[/variant]')
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def config_platform(config: ImageConfig) -> Platform:
    return Platform(config.os or "linux", config.architecture or "unknown", config.variant)
