"""Arguments and options that a local command and its `remote` twin both take, declared once so that their names,
defaults and help stay the same: `models label` / `remote label`, `datasets import` / `remote datasets upload`."""

from pathlib import Path
from typing import Annotated

import typer

LabelName = Annotated[str, typer.Argument(metavar="NAME", help="A label such as stable or canary.")]
LabelVersion = Annotated[
    int | None, typer.Argument(metavar="VERSION", help="The version it names; leave out with --delete.")
]
DeleteLabel = Annotated[bool, typer.Option("--delete", help="Remove the label instead.")]

DatasetSource = Annotated[
    Path, typer.Argument(metavar="ZIP_OR_FOLDER", help="A zip file, or a folder of images.")
]
FromPictures = Annotated[
    bool, typer.Option("--from-pictures", help="Plain color pictures: make the sketches (XDoG).")
]
SketchSide = Annotated[str, typer.Option(help="right (anime pairs) or left (swapped pairs).")]
ValFraction = Annotated[float, typer.Option(help="Validation share of a flat collection.")]
SplitSeed = Annotated[int, typer.Option(help="Seed of that split.")]
