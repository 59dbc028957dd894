"""The result at the sketch's own size and shape: the model's 256x256 colors, cut free of the white padding,
upsampled to the sketch's width and height, with the artist's own lines laid back over them.

The model runs once at 256x256; everything here is resizing and compositing in Pillow's C code on uint8
buffers of the output's size (no float copies), so a large sketch costs little more than a small one.
Lines are kept the way style2paints does it, as a multiply layer: out = color x sketch / 255. Where the
sketch is white the colors show unchanged; where it has a dark line the output is at least as dark as the line.

`fill="regions"` makes the colors flat per region of the drawing, a hint filling the region it touches
(model/regions.py); `fill="soft"` keeps the model's colors as they come.
"""

import io
import zlib
from typing import Literal

import numpy as np
from PIL import Image, ImageChops

from model.imageio import content_box
from model.regions import DEFAULT_GAP, flat_colors

Lines = Literal["keep", "none"]
Fill = Literal["regions", "soft"]
FILLS: tuple[str, ...] = ("regions", "soft")


def full_size_result(
    colorized: np.ndarray,
    sketch: Image.Image,
    lines: Lines = "keep",
    fill: Fill = "soft",
    hints: np.ndarray | None = None,
    gap: float = DEFAULT_GAP,
) -> Image.Image:
    """`colorized` (uint8 [256, 256, 3], the model's output for `sketch`) at the size of `sketch` (RGB).

    With `fill="regions"`, `hints` (uint8 RGBA at the sketch's size, or None) fill the regions they touch.
    """
    check_choices(lines, fill)
    return _finish(upsampled_colors(colorized, sketch), sketch, lines, fill, hints, gap)


def upsampled_colors(colorized: np.ndarray, sketch: Image.Image) -> Image.Image:
    """The model's colors cut free of the padding and upsampled to the size of `sketch` (RGB)."""
    box = content_box(*sketch.size, size=colorized.shape[0])
    return Image.fromarray(colorized, "RGB").resize(sketch.size, Image.Resampling.BICUBIC, box=box)


def square_result(
    colorized: np.ndarray,
    sketch: np.ndarray,
    lines: Lines = "keep",
    fill: Fill = "soft",
    hints: np.ndarray | None = None,
    gap: float = DEFAULT_GAP,
) -> Image.Image:
    """The 256x256 result for the model's own input `sketch` (uint8 [256, 256, 3]). `soft` is the model's
    output as it is (it draws the lines itself); `regions` flattens it and lays the lines back (`lines`)."""
    check_choices(lines, fill)
    colors = Image.fromarray(colorized, "RGB")
    if fill == "soft":
        return colors
    return _finish(colors, Image.fromarray(sketch, "RGB"), lines, fill, hints, gap)


def check_choices(lines: str, fill: str) -> None:
    if lines not in ("keep", "none"):
        raise ValueError(f"lines must be 'keep' or 'none', got {lines!r}")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")


def _finish(
    colors: Image.Image, sketch: Image.Image, lines: str, fill: str, hints: np.ndarray | None, gap: float
) -> Image.Image:
    if fill == "regions":
        model_colors = np.asarray(colors)
        flats = flat_colors(np.asarray(sketch), model_colors, hints, gap)
        if flats is not model_colors:  # the drawing had regions to fill (else no copy is made)
            colors = Image.fromarray(flats, "RGB")
        del model_colors, flats
    return lay_lines(colors, sketch, lines)


def lay_lines(colors: Image.Image, sketch: Image.Image, lines: str) -> Image.Image:
    """The sketch's lines multiplied over the colors (`keep`), or the colors alone (`none`)."""
    return ImageChops.multiply(colors, sketch) if lines == "keep" else colors


def png_bytes(image: Image.Image) -> bytes:
    """A fast PNG: zlib level 1 with run-length matching, which suits flat colors with crisp lines."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    return buffer.getvalue()
