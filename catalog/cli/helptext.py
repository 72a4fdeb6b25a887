"""`--help` as the docker CLI prints it: plain text, paragraphs re-flowed to the terminal's
width, flags without a metavar, arguments by name.

Typer's rich panels show a `<bool>` metavar for every flag and Python types for the rest
(`<str>`, `<list[str]>`), and print a docstring's later paragraphs with their hard line
breaks. Plain click formatting re-flows paragraphs and leaves flags bare; the command class
below also writes arguments as docker does (`IMAGE [IMAGE...]`, `[REPOSITORY[:TAG]]`)
instead of Typer's `{IMAGE}...` and `IMAGE <list[str]>`.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand

# Settings every catalog Typer app is made with. max_content_width only lifts click's
# 80-column cap: text still wraps at the terminal's width.
PLAIN_HELP: dict[str, Any] = {
    "rich_markup_mode": None,
    "context_settings": {"max_content_width": 1000},
}


def _argument_name(param: Any) -> str:
    name = str(param.metavar or param.name.upper())
    return f"{name} [{name}...]" if param.nargs != 1 else name


def _argument_usage(param: Any) -> str:
    name = _argument_name(param)
    return name if param.required else f"[{name}]"


class PlainCommand(TyperCommand):
    """A command whose usage line and argument list read as docker's."""

    # Typer's click classes are private (typer._click), hence Any for ctx and formatter.
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_argument_usage(param))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments: list[tuple[str, str]] = []
        options: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                help_text = getattr(param, "help", None)  # Typer's arguments carry help
                if help_text:
                    arguments.append((_argument_name(param), str(help_text)))
                continue
            record = param.get_help_record(ctx)
            if record is not None:
                options.append(record)
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)


def use_plain_help(app: typer.Typer) -> None:
    """Give every command of `app` and of its sub-apps the plain command class."""
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = PlainCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            use_plain_help(group.typer_instance)
