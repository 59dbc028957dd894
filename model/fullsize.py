"""The result at the sketch's own size and shape: the model's 256x256 colors, cut free of the white padding,
upsampled to the sketch's width and height, with the artist's own lines laid back over them.

The model runs once at 256x256; everything here is resizing and compositing in Pillow's C code on uint8
buffers of the output's size (no float copies), so a large sketch costs little more than a small one.
Lines are kept the way style2paints does it, as a multiply layer: out = color x sketch / 255. Where the
sketch is white the colors show unchanged; where it has a dark line the output is at least as dark as the line.
"""

import io
import zlib
from typing import Literal

import numpy as np
from PIL import Image, ImageChops

from model.imageio import content_box

Lines = Literal["keep", "none"]


def full_size_result(colorized: np.ndarray, sketch: Image.Image, lines: Lines = "keep") -> Image.Image:
    """`colorized` (uint8 [256, 256, 3], the model's output for `sketch`) at the size of `sketch` (RGB)."""
    if lines not in ("keep", "none"):
        raise ValueError(f"lines must be 'keep' or 'none', got {lines!r}")
    size = colorized.shape[0]
    box = content_box(*sketch.size, size=size)
    colors = Image.fromarray(colorized, "RGB").resize(sketch.size, Image.Resampling.BICUBIC, box=box)
    if lines == "none":
        return colors
    return ImageChops.multiply(colors, sketch)


def png_bytes(image: Image.Image) -> bytes:
    """A fast PNG: zlib level 1 with run-length matching, which suits flat colors with crisp lines."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    return buffer.getvalue()
