"""The choices `colorize` and `remote colorize` share, spelled as the API spells them (POST /colorize)."""

from enum import StrEnum


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
