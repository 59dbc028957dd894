"""One page's result file from the model's colors: the PNG or the layered file, at 256 or the page's own size;
and pages read and colorized together, as chapters are (the batch workers and `sketch2color batch`).

The one code path of POST /colorize (app/api/routes/colorize.py) and of the batch workers (worker/batches.py),
so a page of a chapter is the same file as the same page sent alone.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from model.fullsize import full_size_result, png_bytes, square_result
from model.imageio import load_hint_layers, load_sketch_and_original
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


@dataclass
class DecodedPage:
    """A page read as POST /colorize reads a sketch and its hint layer (model/imageio.py)."""

    sketch: np.ndarray
    original: Image.Image
    hints: np.ndarray | None = None
    full_hints: np.ndarray | None = None


def decode_page(
    sketch_file: bytes | Path,
    hints_file: bytes | Path | None,
    size: str,
    fill: str,
    file_format: str,
    accepts_hints: bool,
    max_pixels: int,
) -> DecodedPage:
    """Read a page (and its hint layer); raises BadImage or ValueError saying what is wrong with it."""
    sketch, original = load_sketch_and_original(sketch_file, max_pixels)
    page = DecodedPage(sketch, original)
    if hints_file is not None:
        if not accepts_hints:
            raise ValueError("this version was trained without color hints")
        # At the page's size where the full-size fill reads which regions they touch, or a layer shows them.
        wanted = fill == "regions" or file_format != "png"
        full_size = original.size if size == "original" and wanted else None
        page.hints, page.full_hints = load_hint_layers(hints_file, full_size, max_pixels)
    return page


def colorize_pages(
    pages: Sequence[DecodedPage], predict: Callable[[np.ndarray, np.ndarray | None], np.ndarray]
) -> list[np.ndarray]:
    """The model's colors for every page, in order: one generator call for the pages without hints and one
    for those with them (a batch is one kind)."""
    colors: list[np.ndarray | None] = [None] * len(pages)
    for with_hints in (False, True):
        chosen = [index for index, page in enumerate(pages) if (page.hints is not None) == with_hints]
        if not chosen:
            continue
        sketches = np.stack([pages[index].sketch for index in chosen])
        hints = np.stack([pages[index].hints for index in chosen]) if with_hints else None  # type: ignore[misc]
        for index, colorized in zip(chosen, predict(sketches, hints), strict=True):
            colors[index] = colorized
    return [colorized for colorized in colors if colorized is not None]
