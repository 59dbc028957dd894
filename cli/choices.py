"""The choices `colorize` and `remote colorize` share, spelled as the API spells them (POST /colorize)."""

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class ResultSize(StrEnum):
    square = "256"
    original = "original"


class Lines(StrEnum):
    keep = "keep"
    none = "none"


class Fill(StrEnum):
    regions = "regions"
    soft = "soft"


SIZE_HELP = "256 (a 256x256 square) or original (the sketch's own size)."
LINES_HELP = (
    "Keep the sketch's own lines over the colors, or none (flats without lines); not with --size 256 "
    "--fill soft, which is the model's own picture."
)
FILL_HELP = (
    "regions: flat colors, one per region the sketch's lines enclose, a hint filling the region it touches; "
    "soft: the model's colors as they come."
)


class FileFormat(StrEnum):
    png = "png"
    psd = "psd"
    ora = "ora"
    zip = "zip"


FORMAT_HELP = (
    "png: the picture; psd, ora or zip: the picture as layers for painting apps (hints, lines, shading, "
    "flats). Default: from OUT's extension (.psd, .ora, .zip), else png."
)


SizeOption = Annotated[ResultSize, typer.Option(help=SIZE_HELP)]
LinesOption = Annotated[Lines, typer.Option(help=LINES_HELP)]
FillOption = Annotated[Fill, typer.Option(help=FILL_HELP)]
FormatOption = Annotated[FileFormat, typer.Option("--format", help=FORMAT_HELP)]
FormatFromExtension = Annotated[
    FileFormat | None, typer.Option("--format", help=FORMAT_HELP, show_default=False)
]
ResultPath = Annotated[
    Path, typer.Argument(metavar="OUT", help="Where to write the picture (PNG) or the layered file.")
]


def file_format(chosen: FileFormat | None, output: Path) -> FileFormat:
    """The format asked for, or the one OUT's extension names (png for any other)."""
    if chosen is not None:
        return chosen
    suffix = output.suffix.lower().lstrip(".")
    return FileFormat(suffix) if suffix in FileFormat.__members__ else FileFormat.png
