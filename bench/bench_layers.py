"""What each `format` of POST /colorize costs after the model: time and file size at 1024x1024 and 4096x4096.

The model's part is the same for every format (one 256x256 run), so it is left out: the colors are a smooth
field such as a trained model paints (a blurred color field), on a drawing of 40 overlapping outlined ellipses
with three hint dots, `size=original`, `fill=regions`, lines kept. For each format: building the picture (png:
`full_size_result`) or its layers (`full_size_layers`), then writing the file (`png_bytes` or `layered_file`);
median (min-max) ms over the runs, and the file's size.

    .venv/bin/python bench/bench_layers.py [--repeats 5] [--sides 1024 4096]
"""

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from model.fullsize import full_size_result, png_bytes
from model.layer_files import FORMATS, layered_file
from model.layers import full_size_layers


def drawing(side: int) -> tuple[Image.Image, np.ndarray]:
    """Outlined ellipses on white, and an RGBA hint layer with three dots."""
    sketch = Image.new("RGB", (side, side), "white")
    pen = ImageDraw.Draw(sketch)
    rng = np.random.default_rng(side)
    for _ in range(40):
        (left, right), (top, bottom) = sorted(rng.integers(0, side, 2)), sorted(rng.integers(0, side, 2))
        pen.ellipse((left, top, right, bottom), outline="black", width=max(2, side // 300))
    hints = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    dots = ImageDraw.Draw(hints)
    for index, color in enumerate([(230, 40, 40), (40, 90, 230), (250, 200, 40)]):
        x, y = side * (index + 1) // 4, side // 2
        dots.ellipse((x - side // 100, y - side // 100, x + side // 100, y + side // 100), fill=(*color, 255))
    return sketch, np.asarray(hints)


def smooth_colors(seed: int = 0) -> np.ndarray:
    noise = (np.random.default_rng(seed).random((256, 256, 3)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(6)))


def timed(function: Callable[[], object], repeats: int) -> tuple[list[float], object]:
    result, times = None, []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def spread(times: list[float]) -> str:
    return f"{statistics.median(times):.0f} ({min(times):.0f}-{max(times):.0f})"


def measure(
    colors: np.ndarray, sketch: Image.Image, hints: np.ndarray, file_format: str, repeats: int
) -> str:
    """One row: building the picture or its layers, writing the file, both, and the file's size."""
    if file_format == "png":
        built_times, built = timed(
            lambda: full_size_result(colors, sketch, "keep", "regions", hints), repeats
        )
        written_times, data = timed(lambda: png_bytes(built), repeats)
    else:
        built_times, built = timed(
            lambda: full_size_layers(colors, sketch, "keep", "regions", hints), repeats
        )
        written_times, data = timed(lambda: layered_file(built, file_format), repeats)
    totals = [a + b for a, b in zip(built_times, written_times, strict=True)]
    width, height = sketch.size
    return (f"{f'{width}x{height}':>10} {file_format:>6} {spread(built_times):>18} {spread(written_times):>18} "
            f"{spread(totals):>18} {len(data) / 1e6:7.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sides", type=int, nargs="+", default=[1024, 4096])
    arguments = parser.parse_args()
    colors = smooth_colors()
    print(
        f"median (min-max) ms over {arguments.repeats} runs; size=original, fill=regions, lines kept, hints"
    )
    print(f"{'picture':>10} {'format':>6} {'picture or layers':>18} {'file':>18} {'total':>18} {'MB':>7}")
    for side in arguments.sides:
        sketch, hints = drawing(side)
        for file_format in FORMATS:
            print(measure(colors, sketch, hints, file_format, arguments.repeats), flush=True)


if __name__ == "__main__":
    main()
