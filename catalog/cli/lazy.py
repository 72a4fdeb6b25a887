"""Commands imported when they are used: `catalog --version` and `--help` import no command
module (so neither SQLAlchemy nor Alembic, Rich, Starlette or Matplotlib), and a command
imports its own module and what that needs, nothing else.

A group lists its lazy commands with the summary a table gives (a test checks that it is
the command's own first paragraph); looking a command up imports its module, which
registers it as every command module does (`register(app, image_app)`), and builds it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from catalog.cli.helptext import PLAIN_HELP, use_plain_help


@dataclass(frozen=True)
class Lazy:
    """A command of a group: the module that registers it, and its help's first
    paragraph (what the group's --help lists)."""

    module: str
    summary: str


class LazyCommands(MutableMapping[str, Any]):
    """A group's commands by name, the lazy ones built when first looked up; in the
    table's order, then the others."""

    def __init__(
        self,
        eager: MutableMapping[str, Any],
        lazy: Mapping[str, Lazy],
        build: Callable[[str, Lazy], Any],
    ) -> None:
        self.eager = eager
        self.lazy = dict(lazy)
        self.build = build

    def __getitem__(self, name: str) -> Any:
        if name not in self.eager and name in self.lazy:
            self.eager[name] = self.build(name, self.lazy[name])
        return self.eager[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self.eager[name] = command

    def __delitem__(self, name: str) -> None:
        self.eager.pop(name, None)
        self.lazy.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self.lazy
        yield from (name for name in self.eager if name not in self.lazy)

    def __len__(self) -> int:
        return len(set(self.lazy) | set(self.eager))

    def loaded(self, name: str) -> bool:
        return name in self.eager


def build_command(name: str, lazy: Lazy, *, image_group: bool) -> Any:
    """Import `lazy.module` and build its command `name` as it registers it (on the main
    app, or on the image group's)."""
    module = importlib.import_module(lazy.module)
    main_app = typer.Typer(**PLAIN_HELP)
    image_app = typer.Typer(**PLAIN_HELP)
    module.register(main_app, image_app)
    app = image_app if image_group else main_app
    use_plain_help(app)
    group = typer.main.get_group(app)
    command = group.commands.get(name)
    if command is None:
        raise LookupError(f"{lazy.module} registers no command {name!r}")
    return command


class LazyGroup(TyperGroup):
    """A group whose `LAZY` commands are imported when used."""

    LAZY: ClassVar[Mapping[str, Lazy]] = {}
    IMAGE_GROUP: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        image_group = self.IMAGE_GROUP
        self.commands = LazyCommands(
            self.commands,
            self.LAZY,
            lambda name, lazy: build_command(name, lazy, image_group=image_group),
        )

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names: looking them up would import them

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """click's list of commands, with the table's summaries for those not imported."""
        commands = self.commands
        assert isinstance(commands, LazyCommands)
        rows: list[tuple[str, str]] = []
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        for name in names:
            if commands.loaded(name) or name not in commands.lazy:
                command = commands[name]
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                # Shortened as the command itself would shorten its help.
                placeholder = TyperCommand(name=name, help=commands.lazy[name].summary)
                rows.append((name, placeholder.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
