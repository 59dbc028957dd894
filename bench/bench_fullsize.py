"""What `size=original` costs beyond the 256x256 path, measured side by side in one run.

The 256 path: decode the upload, scale it onto the 256x256 square, run the published full-width generator
(batch 1), encode the 256x256 PNG. The original path: the same, then cut away the padding, upsample the colors
to the sketch's size, multiply the sketch's lines back in, and encode the full-size PNG. Prints the median
(min-max) ms of each part for a 1024x1024 and a 4096x4096 sketch, and the added share at 1024x1024
(target: under 25%).

PNG encoding time depends on the picture: an untrained generator draws high-frequency noise, which no trained
model does, so the full-size stages run twice: on the untrained generator's own output (a worst case) and on
smooth colors such as a trained model paints (a blurred color field).

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
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from model.export import load_serving_function, publish_generator  # noqa: E402
from model.fullsize import full_size_result, png_bytes  # noqa: E402
from model.imageio import load_sketch_and_original  # noqa: E402
from model.networks import build_generator  # noqa: E402


def sketch_png(side: int) -> bytes:
    image = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(side)
    for _ in range(40):
        (left, right), (top, bottom) = sorted(rng.integers(0, side, 2)), sorted(rng.integers(0, side, 2))
        draw.ellipse((left, top, right, bottom), outline="black", width=max(1, side // 300))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    return png_bytes(image)  # what the API uses


def smooth_colors(seed: int = 0) -> np.ndarray:
    noise = (np.random.default_rng(seed).random((256, 256, 3)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(6)))


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
            small = timed(lambda colorized=infer[3]: png(Image.fromarray(colorized)), arguments.repeats)
            path_256 = decode[0] + infer[0] + small[0]
            for name, figure in (("decode + fit", decode), ("generator", infer), ("PNG 256", small)):
                print(f"  {side}x{side} {name:34s} {figure[0]:8.1f} ({figure[1]:.1f}-{figure[2]:.1f})")
            for colors_name, colors in (("untrained output", infer[3]), ("smooth colors", smooth_colors())):
                compose = timed(
                    lambda colors=colors, original=original: full_size_result(colors, original),
                    arguments.repeats,
                )
                large = timed(lambda result=compose[3]: png(result), arguments.repeats)
                for name, figure in (("compose full size", compose), ("PNG full size", large)):
                    label = f"{name}, {colors_name}"
                    print(f"  {side}x{side} {label:34s} {figure[0]:8.1f} ({figure[1]:.1f}-{figure[2]:.1f})")
                added = compose[0] + large[0] - small[0]
                print(
                    f"  {side}x{side} 256 path {path_256:.1f} ms; size=original adds {added:.1f} ms "
                    f"({added / path_256:.0%}) with {colors_name}"
                )


if __name__ == "__main__":
    main()
