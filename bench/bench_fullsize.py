"""What `size=original` costs beyond the 256x256 path, measured side by side in one run.

The 256 path: decode the upload, scale it onto the 256x256 square, run the published full-width generator
(batch 1), encode the 256x256 PNG. The original path: the same, then cut away the padding, upsample the colors
to the sketch's size, multiply the sketch's lines back in, and encode the full-size PNG. Prints the median
(min-max) ms of each part for a 1024x1024 and a 4096x4096 sketch, and the added share at 1024x1024
(target: under 25%).

    .venv/bin/python bench/bench_fullsize.py [--repeats 7] [--ngf 64]
"""

import argparse
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from model.export import load_serving_function, publish_generator  # noqa: E402
from model.fullsize import full_size_result  # noqa: E402
from model.imageio import load_sketch_and_original  # noqa: E402
from model.networks import build_generator  # noqa: E402


def sketch_png(side: int) -> bytes:
    image = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(side)
    for _ in range(40):
        x0, y0, x1, y1 = sorted(rng.integers(0, side, 2)) + sorted(rng.integers(0, side, 2))
        draw.ellipse((x0, y0, x1, y1), outline="black", width=max(1, side // 300))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # what the API uses
    return buffer.getvalue()


def timed(function: Callable[[], object], repeats: int) -> tuple[float, float, float, object]:
    results, times = None, []
    for _ in range(repeats):
        start = time.perf_counter()
        results = function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times), max(times), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ngf", type=int, default=64, help="generator width (64 = full width)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        keras.utils.set_random_seed(0)
        version = publish_generator(build_generator(arguments.ngf), Path(scratch), {"job_id": None})
        serve = load_serving_function(version.path)
        serve(np.zeros((1, 256, 256, 3), np.uint8))  # warm-up
        print(f"generator width {arguments.ngf}; median (min-max) ms over {arguments.repeats} runs")
        for side in (1024, 4096):
            data = sketch_png(side)
            decode = timed(lambda data=data: load_sketch_and_original(data, 40_000_000), arguments.repeats)
            sketch, original = decode[3]
            infer = timed(lambda sketch=sketch: serve(sketch[np.newaxis]).numpy()[0], arguments.repeats)
            colorized = infer[3]
            small = timed(lambda colorized=colorized: png(Image.fromarray(colorized)), arguments.repeats)
            compose = timed(
                lambda colorized=colorized, original=original: full_size_result(colorized, original),
                arguments.repeats,
            )
            large = timed(lambda result=compose[3]: png(result), arguments.repeats)
            path_256 = decode[0] + infer[0] + small[0]
            added = compose[0] + large[0] - small[0]
            for name, figure in (("decode + fit", decode), ("generator", infer), ("PNG 256", small),
                                 ("compose full size", compose), ("PNG full size", large)):  # fmt: skip
                print(f"  {side}x{side} {name:18s} {figure[0]:8.1f} ({figure[1]:.1f}-{figure[2]:.1f})")
            print(
                f"  {side}x{side} 256 path {path_256:.1f} ms; size=original adds {added:.1f} ms "
                f"({added / path_256:.0%} of the 256 path)"
            )


if __name__ == "__main__":
    main()
