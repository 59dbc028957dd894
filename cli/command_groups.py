"""The CLI's command groups: plain help text, and usage lines as people write them (`colorize MODEL IN OUT`,
where Typer writes `{MODEL} {IN} {OUT}`)."""

import re
from typing import Any

import typer
from typer.core import TyperCommand

_BRACED = re.compile(r"^\{(?P<name>[^{}]+)\}(?P<more>(\.\.\.)?)$")


class PlainUsageCommand(TyperCommand):
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [_BRACED.sub(r"\g<name>\g<more>", piece) for piece in super().collect_usage_pieces(ctx)]


class CommandGroup(typer.Typer):
    """A Typer app whose commands print plain usage lines; plain help (readable at 80 columns and in logs: no
    boxes, no cut-off option names); help when called without a command."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("rich_markup_mode", None)
        kwargs.setdefault("no_args_is_help", True)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", PlainUsageCommand)
        return super().command(*args, **kwargs)
