"""A drawing with one closed shape and a color hint dabbed inside it, for the `--fill` tests of both CLIs."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = (320, 200)
BOX = (100, 50, 220, 150)  # the closed outline: about a fifth of the picture, so a region, not background
HINT = (230, 30, 40)


def draw_shape_and_hint(folder: Path) -> tuple[Path, Path]:
    """sketch.png (a black outlined box and a loose stroke on white) and hints.png (a small RGBA dab inside
    the box, transparent elsewhere), both at SIZE."""
    sketch = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(sketch)
    draw.rectangle(BOX, outline="black", width=3)
    draw.line((20, 180, 80, 20), fill="black", width=3)
    hints = Image.new("RGBA", SIZE, (0, 0, 0, 0))
    ImageDraw.Draw(hints).ellipse((150, 90, 166, 106), fill=(*HINT, 255))
    sketch.save(folder / "sketch.png")
    hints.save(folder / "hints.png")
    return folder / "sketch.png", folder / "hints.png"


def inside_box(picture: Path, margin: int = 8) -> np.ndarray:
    """The pixels well inside the box (int [N, 3]), on a result at SIZE or on the 256x256 square."""
    with Image.open(picture) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    left, top, right, bottom = BOX
    if pixels.shape[:2] == (256, 256):  # scaled to fit and centred, as the model's input is
        scale = 256 / max(SIZE)
        offset = (256 - round(SIZE[1] * scale)) // 2
        left, right = round(left * scale), round(right * scale)
        top, bottom = round(top * scale) + offset, round(bottom * scale) + offset
    return pixels[top + margin : bottom - margin, left + margin : right - margin].reshape(-1, 3)


def hint_filled(pixels: np.ndarray, tolerance: int = 12) -> float:
    """The share of `pixels` within `tolerance` levels of the hint color in every channel."""
    return float((np.abs(pixels - HINT).max(axis=1) <= tolerance).mean())
