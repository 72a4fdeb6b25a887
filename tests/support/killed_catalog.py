"""Run the catalog CLI and kill it at one fault point: `os._exit(137)`, the status of a
SIGKILL, the moment the operation reaches that point (see catalog.faults).

    python killed_catalog.py POINT [ARGUMENT...]

runs `catalog ARGUMENT...` and dies at POINT (e.g. `squash:layer-stored`); with POINT
`term:NAME`, it sends itself SIGTERM there instead. A script, so that a test runs it as
a subprocess: a kill leaves no process to clean up after.
"""

from __future__ import annotations

import os
import signal
import sys

from catalog.cli.main import main
from catalog.faults import set_fault_hook

KILLED = 137


def run() -> None:
    point = sys.argv.pop(1)
    # `term:POINT`: SIGTERM (what `kill` and service managers send) instead of a kill.
    terminate = point.startswith("term:")
    point = point.removeprefix("term:")

    def kill(name: str) -> None:
        if name == point:
            if terminate:
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                os._exit(KILLED)

    set_fault_hook(kill)
    sys.argv[0] = "catalog"
    main()


if __name__ == "__main__":
    run()
