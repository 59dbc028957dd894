"""One page's result file from the model's colors: the PNG or the layered file, at 256 or the page's own size.

The one code path of POST /colorize (app/api/routes/colorize.py) and of the batch workers (worker/batches.py),
so a page of a chapter is the same file as the same page sent alone.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from model.fullsize import full_size_result, png_bytes, square_result
from model.layer_files import layered_file
from model.layers import LayerStack, full_size_layers, square_layers


def result_file(
    size: str,
    file_format: str,
    colorized: np.ndarray,
    sketch: np.ndarray,
    original: Image.Image,
    lines: str,
    fill: str,
    hints: np.ndarray | None,
    full_hints: np.ndarray | None,
    gap: float,
) -> tuple[bytes, tuple[int, int]]:
    """The file and the picture's (width, height). `size="original"`: at `original`'s size with `full_hints`
    (the hint layer at that size); else the 256 square of `sketch` with `hints` (the model's hint layer)."""
    if size == "original":
        return _file(
            full_size_result, full_size_layers, file_format, colorized, original, lines, fill, full_hints, gap
        )
    return _file(square_result, square_layers, file_format, colorized, sketch, lines, fill, hints, gap)


def _file(
    result: Callable[..., Image.Image], layers: Callable[..., LayerStack], file_format: str, *arguments: Any
) -> tuple[bytes, tuple[int, int]]:
    """The PNG of `result(*arguments)`, or the layered file of `layers(*arguments)` (model/layers.py: the same
    picture as layers)."""
    if file_format == "png":
        picture = result(*arguments)
        return png_bytes(picture), picture.size
    stack = layers(*arguments)
    return layered_file(stack, file_format), stack.size
