"""`catalog image ...`: the group that holds every image command, as `docker image` does.

Command modules register themselves here and, where Docker has a top-level alias
(`docker load`, `docker rmi`, ...), on the main app too; see `catalog.cli.main`.
"""

from __future__ import annotations

import typer

from catalog.cli.helptext import PLAIN_HELP

app = typer.Typer(help="Manage images.", no_args_is_help=True, **PLAIN_HELP)
