"""A synthetic pair dataset for tests and demos, in the anime pair layout (color left, sketch right).

Each picture holds a few outlined shapes. The sketch is black outlines on white; the color image fills each shape
with the color of its kind (circles red, squares blue, triangles green) on a pale background, so a generator can
learn the mapping from the sketch alone. The shapes are small (a radius of 12-30 px at 256) and apart from each
other: a narrow U-Net tells their kinds apart within a few hundred steps (the demo, cli/demo.py), whereas large,
overlapping shapes took it thousands. Same seed, same pictures.

With `colors="random"` each shape's fill is a random color instead, which the sketch does not imply: only
color hints can tell a model which color goes where (the dataset that shows hints work, model/hints.py). Its
1-4 shapes are larger and may overlap, so that hints have regions worth filling.
"""

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw

PAIR_HEIGHT = 256
BACKGROUND = (236, 242, 255)
OUTLINE_WIDTH = 3
FILL_COLORS = {"circle": (250, 90, 80), "square": (80, 130, 250), "triangle": (90, 210, 90)}
# Shapes of the learnable set: how many, their radius range at 256 px, and the gap kept between them.
LEARNABLE_COUNT = (3, 6)
LEARNABLE_RADIUS = (12, 30)
LEARNABLE_GAP = 4
PLACEMENT_TRIES = 50
Colors = Literal["learnable", "random"]
COLOR_MODES: tuple[str, ...] = ("learnable", "random")


@dataclass(frozen=True)
class Shape:
    kind: str
    center: tuple[int, int]  # x, y
    radius: int
    fill: tuple[int, int, int]


def _shape_points(kind: str, center_x: int, center_y: int, radius: int) -> list[tuple[int, int]]:
    if kind == "square":
        return [
            (center_x - radius, center_y - radius),
            (center_x + radius, center_y - radius),
            (center_x + radius, center_y + radius),
            (center_x - radius, center_y + radius),
        ]
    return [
        (center_x, center_y - radius),
        (center_x + radius, center_y + radius),
        (center_x - radius, center_y + radius),
    ]


def draw_pair(
    rng: random.Random, size: int = PAIR_HEIGHT, colors: Colors = "learnable"
) -> tuple[Image.Image, Image.Image]:
    """One (color, sketch) pair of `size` x `size` images."""
    color, sketch, _ = draw_pair_with_shapes(rng, size, colors)
    return color, sketch


def draw_pair_with_shapes(
    rng: random.Random, size: int = PAIR_HEIGHT, colors: Colors = "learnable"
) -> tuple[Image.Image, Image.Image, list[Shape]]:
    """One (color, sketch) pair and the shapes drawn, later ones over earlier ones."""
    if colors not in COLOR_MODES:
        raise ValueError(f"colors must be one of {', '.join(COLOR_MODES)}, got {colors!r}")
    color = Image.new("RGB", (size, size), BACKGROUND)
    sketch = Image.new("RGB", (size, size), (255, 255, 255))
    color_pen, sketch_pen = ImageDraw.Draw(color), ImageDraw.Draw(sketch)
    shapes = _random_shapes(rng, size) if colors == "random" else _learnable_shapes(rng, size)
    for shape in shapes:
        draw_shape(color_pen, shape, shape.fill, outline=(0, 0, 0))
        draw_shape(sketch_pen, shape, (255, 255, 255), outline=(0, 0, 0))
    return color, sketch, shapes


def draw_shape(pen: ImageDraw.ImageDraw, shape: Shape, fill, outline=None) -> None:
    """Draw one shape as the pairs draw it; with no outline, only where its fill shows (a mask, say)."""
    (center_x, center_y), radius = shape.center, shape.radius
    width = OUTLINE_WIDTH if outline is not None else 0
    if shape.kind == "circle":
        box = (center_x - radius, center_y - radius, center_x + radius, center_y + radius)
        pen.ellipse(box, fill=fill, outline=outline, width=width)
    else:
        points = _shape_points(shape.kind, center_x, center_y, radius)
        pen.polygon(points, fill=fill, outline=outline, width=width)


def _learnable_shapes(rng: random.Random, size: int) -> list[Shape]:
    """A few small shapes apart from each other, each filled with its kind's color; a shape that finds no free
    place is left out."""
    low, high = (max(2, round(value * size / PAIR_HEIGHT)) for value in LEARNABLE_RADIUS)
    gap = LEARNABLE_GAP * size / PAIR_HEIGHT
    shapes: list[Shape] = []
    for _ in range(rng.randint(*LEARNABLE_COUNT)):
        kind = rng.choice(sorted(FILL_COLORS))
        for _ in range(PLACEMENT_TRIES):
            radius = rng.randint(low, high)
            x, y = rng.randint(radius, size - radius), rng.randint(radius, size - radius)
            if all(
                abs(x - other.center[0]) > radius + other.radius + gap
                or abs(y - other.center[1]) > radius + other.radius + gap
                for other in shapes
            ):
                shapes.append(Shape(kind, (x, y), radius, FILL_COLORS[kind]))
                break
    return shapes


def _random_shapes(rng: random.Random, size: int) -> list[Shape]:
    """1-4 larger shapes of random colors; later ones may cover earlier ones."""
    shapes = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(sorted(FILL_COLORS))
        radius = rng.randint(size // 16, size // 4)
        center = rng.randint(radius, size - radius), rng.randint(radius, size - radius)
        fill = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        shapes.append(Shape(kind, center, radius, fill))
    return shapes


def make_pair_image(color: Image.Image, sketch: Image.Image) -> Image.Image:
    """Side by side: color on the left, sketch on the right (the anime pair layout)."""
    pair = Image.new("RGB", (color.width * 2, color.height))
    pair.paste(color, (0, 0))
    pair.paste(sketch, (color.width, 0))
    return pair


def pair_rng(seed: int, split: str, index: int) -> random.Random:
    """The random source of one pair: redraw it with `draw_pair_with_shapes` to know its shapes."""
    split_seed = seed if split == "train" else seed + 1_000_003
    return random.Random(f"{split_seed}-{index}")


def make_synthetic_dataset(
    out: str | os.PathLike,
    train: int = 400,
    val: int = 40,
    seed: int = 0,
    size: int = PAIR_HEIGHT,
    colors: Colors = "learnable",
) -> dict[str, int]:
    """Write `out/train/*.png` and `out/val/*.png`; return the counts."""
    if train < 1 or val < 1:
        raise ValueError(f"need at least one train and one val pair, got train={train}, val={val}")
    out = Path(out)
    counts = {}
    for split, count in (("train", train), ("val", val)):
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            make_pair_image(*draw_pair(pair_rng(seed, split, index), size, colors)).save(
                folder / f"{index:05d}.png", optimize=False
            )
        counts[split] = count
    return counts
