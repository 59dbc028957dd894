"""Chapters for the batch tests: zips of small pages at their own sizes, a hint layer, a file that is no page."""

import io
import zipfile

from PIL import Image, ImageDraw

from tests.app.conftest import draw_sketch, encode

NOT_A_PAGE = "credits.txt"


def page_sizes(count: int) -> list[tuple[int, int]]:
    """Small pages of different sizes and shapes (64x64 .. 300x200), so each result's size says whose it is."""
    return [(64 + (index * 19) % 237, 64 + (index * 11) % 137) for index in range(count)]


def hint_layer(width: int, height: int) -> bytes:
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(layer).ellipse((width // 4, height // 4, width // 2, height // 2), fill=(220, 30, 30, 255))
    return encode(layer)


def chapter_zip(pages: int, hinted: int | None = None, not_a_page: bool = False, size=None) -> bytes:
    """`pages` page PNGs named p00.png..., page `hinted` with its hint layer beside it, and a text file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for index, (width, height) in enumerate([size] * pages if size else page_sizes(pages)):
            zipped.writestr(f"chapter/p{index:02d}.png", encode(draw_sketch(width, height, seed=index)))
            if index == hinted:
                zipped.writestr(f"chapter/p{index:02d}.hints.png", hint_layer(width, height))
        if not_a_page:
            zipped.writestr(f"chapter/{NOT_A_PAGE}", "drawn by someone")
    return buffer.getvalue()


def result_sizes(archive: bytes) -> dict[str, tuple[int, int]]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        return {name: Image.open(io.BytesIO(zipped.read(name))).size for name in zipped.namelist()}
