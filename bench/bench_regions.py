"""What `fill=regions` buys and costs against `fill=soft`, measured side by side in one run.

A small hint model (trained here for a few hundred steps on the random-color synthetic set at 256, as
bench_hints.py does, or a published version given with --model) colorizes synthetic pictures drawn at
1024x1024 (`draw_pair_with_shapes(..., colors="random")`); each result is composed at the sketch's size with
`fill=soft` and with `fill=regions`, everything else alike. Figures, in levels of 255, averaged over RGB:

- **hinted**: one hint dot (a disc of the shape's true color) in every visible piece of every shape (a later
  shape can cover part of an earlier one, or cut it in two: pieces come from an image of shape ids), placed at
  the point farthest from the piece's outline. Error = mean |result - the hint's color| over the piece's
  interior, `MARGIN` px clear of the outline. Target: every hinted piece within 12 levels.
- **unhinted**: the same pictures without hints; spread = mean |result - the piece's median color| over each
  interior. Target: every piece flat within 10 levels.
- **photo-like**: smooth color pictures (textured color fields, shapes without outlines under a gradient,
  the synthetic color pictures under a gradient) turned into sketches by `model.sketchify.sketchify` (XDoG),
  colorized without hints; L1 of the colors against the true picture. Target: regions no worse than soft.
- **time**: `full_size_result` with soft and with regions (hints given) at 1024x1024 and 4096x4096 (the same
  drawing scaled up 4x: drawn at 4096, its 3 px lines are too sparse to count as lines), median of
  `--repeats`, and the model call (a full-width hint generator, untrained: its time does not depend on its
  weights). Target: the regions path (model call + compose) at most 2x the soft path at 1024x1024.

The shape scores use `lines="keep"` (what the API returns); inside the interiors the sketch is white, so
that equals the colors before the lines are multiplied in. The photo-like L1 uses `lines="none"`: XDoG draws
lines inside the picture, and the true picture has none.

    .venv/bin/python bench/bench_regions.py [--pictures 20] [--steps 400] [--model VERSION_DIR] [--json PATH]
        [--save-pictures DIR]
"""

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402
from scipy import ndimage  # noqa: E402

from model.export import load_serving_function, publish_generator  # noqa: E402
from model.fullsize import full_size_result  # noqa: E402
from model.imageio import prepare_hints, prepare_sketch  # noqa: E402
from model.networks import build_generator  # noqa: E402
from model.regions import DEFAULT_GAP, find_regions  # noqa: E402
from model.sketchify import sketchify  # noqa: E402
from model.synthetic import (  # noqa: E402
    BACKGROUND,
    OUTLINE_WIDTH,
    draw_pair_with_shapes,
    draw_shape,
    make_synthetic_dataset,
)
from model.train import Pix2PixTrainer, TrainConfig  # noqa: E402

SEED = 0
SIDE = 1024
DOT_RADIUS = 10  # px per 1024: a disc about 5 px across on the model's 256 square
MARGIN = 4  # interiors stay this many px clear of the outline (the outline itself is OUTLINE_WIDTH px)
MIN_PIECE = 2000  # interior pixels per 1024x1024: smaller pieces are slivers no one would dab
HINT_TARGET, FLAT_TARGET, TIME_TARGET = 12.0, 10.0, 2.0
SAVED_PICTURE = 1  # the one --save-pictures shows: four overlapping shapes


@dataclass(frozen=True)
class Piece:
    """One visible piece of a shape: its interior (bool mask), where its dot goes (y, x), its true color."""

    shape: int
    interior: np.ndarray
    dot: tuple[int, int]
    color: tuple[int, int, int]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pictures", type=int, default=20, help="synthetic pictures at 1024x1024")
    parser.add_argument("--photos", type=int, default=9, help="photo-like pictures at 1024x1024")
    parser.add_argument("--model", type=Path, help="a published version folder (default: train one here)")
    parser.add_argument("--steps", type=int, default=400, help="training steps of the model trained here")
    parser.add_argument("--width", type=int, default=16, help="ngf and ndf of the model trained here")
    parser.add_argument("--train-pairs", type=int, default=400)
    parser.add_argument(
        "--timing-ngf", type=int, default=64, help="width of the generator the model call is timed on"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--save-pictures", type=Path, help="write before/after pictures here")
    return parser.parse_args()


# ---- the model -----------------------------------------------------------------------------------------------
def train_hint_model(scratch: Path, steps: int, width: int, train_pairs: int) -> Path:
    """A small hint generator trained on random-color shapes at 256, published: its version folder."""
    dataset = scratch / "random-colors"
    make_synthetic_dataset(dataset, train_pairs, 8, seed=SEED, colors="random")
    config = TrainConfig(
        steps=steps, batch_size=4, ngf=width, ndf=width, hints=True, learning_rate=1e-3, seed=SEED,
        checkpoint_every=10**8,
    )  # fmt: skip
    trainer = Pix2PixTrainer(dataset, scratch / "run", config)
    batches = trainer._training_batches()
    started = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(next(batches))
    print(f"trained a width-{width} hint model for {steps} steps in {time.perf_counter() - started:.0f} s")
    manifest = {"job_id": None, "step": steps, "model": {"ngf": width, "hints": True}}
    return publish_generator(trainer._generator_for_export(), scratch / "models", manifest).path


def untrained_hint_model(scratch: Path, width: int) -> Path:
    keras.utils.set_random_seed(SEED)
    manifest = {"job_id": None, "step": 0, "model": {"ngf": width, "hints": True}}
    return publish_generator(build_generator(width, hints=True), scratch / "timing", manifest).path


def colorize(serve, sketch: Image.Image, hints: np.ndarray | None) -> np.ndarray:
    """The model's 256x256 colors for a full-size sketch and full-size RGBA hints, as the API prepares them."""
    small_hints = None if hints is None else prepare_hints(Image.fromarray(hints, "RGBA"))[np.newaxis]
    return serve(prepare_sketch(sketch)[np.newaxis], small_hints).numpy()[0]


# ---- the pictures --------------------------------------------------------------------------------------------
def shape_ids(shapes, size: int) -> np.ndarray:
    """uint8 [size, size]: which shape (1, 2, ...) each pixel shows, 0 for the background; drawn as
    draw_pair_with_shapes draws them, later over earlier, outlines included."""
    image = Image.new("L", (size, size), 0)
    pen = ImageDraw.Draw(image)
    for index, shape in enumerate(shapes, start=1):
        draw_shape(pen, shape, index, outline=index)
    return np.asarray(image)


def visible_pieces(shapes, size: int) -> list[Piece]:
    """Every piece of every shape that is large enough to dab, with its interior and the dot's place."""
    scale = size / SIDE
    ids = shape_ids(shapes, size)
    clear = OUTLINE_WIDTH + MARGIN
    pieces = []
    for index, shape in enumerate(shapes, start=1):
        depth = ndimage.distance_transform_edt(ids == index)
        labels, count = ndimage.label(depth > clear)
        for label in range(1, count + 1):
            interior = labels == label
            if interior.sum() < MIN_PIECE * scale**2:
                continue
            inside = np.where(interior, depth, 0)
            y, x = np.unravel_index(int(np.argmax(inside)), inside.shape)
            if inside[y, x] < DOT_RADIUS * scale + clear:  # too thin for a dot clear of the outline
                continue
            pieces.append(Piece(index, interior, (int(y), int(x)), shape.fill))
    return pieces


def hint_layer(pieces: list[Piece], size: int) -> np.ndarray:
    """uint8 RGBA [size, size, 4]: a disc of each piece's true color at its dot, transparent elsewhere."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    radius = DOT_RADIUS * size / SIDE
    for piece in pieces:
        y, x = piece.dot
        pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(*piece.color, 255))
    return np.asarray(image)


def with_dots(sketch: Image.Image, hints: np.ndarray) -> Image.Image:
    shown = sketch.convert("RGBA")
    shown.alpha_composite(Image.fromarray(hints, "RGBA"))
    return shown.convert("RGB")


def gradient(rng: np.random.Generator, size: int, amplitude: float) -> np.ndarray:
    """float [size, size, 3]: a linear ramp in a random direction, a random color shift across it."""
    angle = rng.uniform(0, 2 * np.pi)
    axis = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    ramp = np.cos(angle) * axis[np.newaxis, :] + np.sin(angle) * axis[:, np.newaxis]
    return ramp[..., np.newaxis] * rng.uniform(-amplitude, amplitude, 3).astype(np.float32)


def noise_field(rng: np.random.Generator, cells: int, size: int, gray: bool = False) -> np.ndarray:
    """float [size, size, 3] in [-128, 128): random values on a cells x cells grid, smoothly upsampled."""
    coarse = rng.integers(0, 256, (cells, cells, 1 if gray else 3), dtype=np.uint8)
    coarse = np.repeat(coarse, 3, axis=2) if gray else coarse
    return (
        np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), np.float32) - 128
    )


def photo_like(index: int, size: int) -> Image.Image:
    """A smooth color picture, three kinds in turn: a color field with fine texture (XDoG draws specks),
    shapes with no outlines under a gradient (XDoG traces their edges where the contrast allows), and the
    synthetic color picture (black outlines) under a gradient; the last two blurred by 1 px."""
    rng = np.random.default_rng([SEED, index])
    kind = index % 3
    if kind == 0:
        base = noise_field(rng, 4, size) + 128
        for cells, amplitude in ((16, 0.5), (64, 0.35), (256, 0.25)):
            base += amplitude * noise_field(rng, cells, size, gray=True)
    else:
        color, _, shapes = draw_pair_with_shapes(
            random.Random(f"bench-regions-photo-{index}"), size, "random"
        )
        if kind == 1:
            table = np.array([BACKGROUND] + [shape.fill for shape in shapes], np.float32)
            base = table[shape_ids(shapes, size)]
        else:
            base = np.asarray(color, np.float32)
        base += gradient(rng, size, 120)
    picture = Image.fromarray(np.clip(base, 0, 255).round().astype(np.uint8))
    return picture.filter(ImageFilter.GaussianBlur(size / SIDE)) if kind else picture


# ---- the scores ----------------------------------------------------------------------------------------------
def color_error(result: np.ndarray, mask: np.ndarray, color: tuple[int, int, int]) -> float:
    return float(np.abs(result[mask].astype(np.int16) - np.array(color, np.int16)).mean())


def color_spread(result: np.ndarray, mask: np.ndarray) -> float:
    inside = result[mask].astype(np.int16)
    return float(np.abs(inside - np.median(inside, axis=0)).mean())


def summary(values: list[float], target: float) -> dict:
    return {"mean": statistics.fmean(values), "worst": max(values), "within": sum(v <= target for v in values),
            "count": len(values), "values": values}  # fmt: skip


def timed(function: Callable[[], object], repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def side_by_side(*images: Image.Image) -> Image.Image:
    width, height = images[0].size
    canvas = Image.new("RGB", (width * len(images), height), "white")
    for index, image in enumerate(images):
        canvas.paste(image, (index * width, 0))
    return canvas


def mark(label: str, ok: bool) -> str:
    return f"{label}: {'PASS' if ok else 'MISS'}"


# ---- the run -------------------------------------------------------------------------------------------------
def score_shapes(serve, count: int, gap: float, pictures_dir: Path | None) -> dict:
    scores: dict[str, dict[str, list[float]]] = {"hinted": {"soft": [], "regions": []},
                                                 "unhinted": {"soft": [], "regions": []}}  # fmt: skip
    worst: list[tuple[float, int, int, str]] = []
    for picture in range(count):
        _, sketch, shapes = draw_pair_with_shapes(random.Random(f"bench-regions-{picture}"), SIDE, "random")
        pieces = visible_pieces(shapes, SIDE)
        hints = hint_layer(pieces, SIDE)
        for case, case_hints in (("hinted", hints), ("unhinted", None)):
            colorized = colorize(serve, sketch, case_hints)
            results = {}
            for fill in ("soft", "regions"):
                result = full_size_result(colorized, sketch, "keep", fill, case_hints, gap)
                results[fill] = np.asarray(result)
                for piece in pieces:
                    if case == "hinted":
                        value = color_error(results[fill], piece.interior, piece.color)
                    else:
                        value = color_spread(results[fill], piece.interior)
                    scores[case][fill].append(value)
                    if fill == "regions":
                        limit = HINT_TARGET if case == "hinted" else FLAT_TARGET
                        if value > limit:
                            worst.append((value, picture, piece.shape, case))
            if pictures_dir is not None and picture == min(SAVED_PICTURE, count - 1):
                shown = with_dots(sketch, hints) if case == "hinted" else sketch
                panels = side_by_side(
                    shown, Image.fromarray(results["soft"]), Image.fromarray(results["regions"])
                )
                panels.save(pictures_dir / f"shapes-{case}-sketch-soft-regions.png")
    pieces_count = len(scores["hinted"]["soft"])
    print(
        f"{count} pictures at {SIDE}x{SIDE}, {pieces_count} visible shape pieces with a dot each", flush=True
    )
    return {
        case: {fill: summary(values, HINT_TARGET if case == "hinted" else FLAT_TARGET)
               for fill, values in fills.items()}
        for case, fills in scores.items()
    } | {"regions_misses": [{"value": v, "picture": p, "shape": s, "case": c} for v, p, s, c in worst]}  # fmt: skip


def score_photos(serve, count: int, gap: float, pictures_dir: Path | None) -> dict:
    l1: dict[str, list[float]] = {"soft": [], "regions": []}
    reliable = 0
    for index in range(count):
        picture = photo_like(index, SIDE)
        sketch = sketchify(picture)
        reliable += find_regions(np.asarray(sketch), gap).reliable
        colorized = colorize(serve, sketch, None)
        truth = np.asarray(picture, np.int16)
        results = {}
        for fill in l1:
            results[fill] = np.asarray(full_size_result(colorized, sketch, "none", fill, None, gap))
            l1[fill].append(float(np.abs(results[fill].astype(np.int16) - truth).mean()))
        if pictures_dir is not None and index < 3:
            panels = side_by_side(
                picture, sketch, *(Image.fromarray(results[fill]) for fill in ("soft", "regions"))
            )
            panels.save(pictures_dir / f"photo{index}-truth-sketch-soft-regions.png")
    print(
        f"{count} photo-like pictures: regions found structure (did not fall back) in {reliable}", flush=True
    )
    return {"soft": l1["soft"], "regions": l1["regions"], "reliable": reliable, "count": count}


def score_time(serve, timing, repeats: int, gap: float) -> dict:
    figures = {}
    _, drawn, shapes = draw_pair_with_shapes(random.Random("bench-regions-time"), SIDE, "random")
    drawn_hints = hint_layer(visible_pieces(shapes, SIDE), SIDE)
    for side in (SIDE, 4 * SIDE):  # 4096: the same drawing scaled up, lines 4x as wide as a larger drawing's
        sketch = drawn.resize((side, side), Image.Resampling.NEAREST)
        hints = np.asarray(
            Image.fromarray(drawn_hints, "RGBA").resize((side, side), Image.Resampling.NEAREST)
        )
        colorized = colorize(serve, sketch, hints)
        small_sketch = prepare_sketch(sketch)[np.newaxis]
        small_hints = prepare_hints(Image.fromarray(hints, "RGBA"))[np.newaxis]
        timing(small_sketch, small_hints)  # warm-up
        model, _ = timed(lambda inputs=(small_sketch, small_hints): timing(*inputs).numpy(), repeats)
        soft, regions = [], []
        for _ in range(repeats):  # taking turns, so the shared machine's load lands on both alike
            for fill, times in (("soft", soft), ("regions", regions)):
                compose = partial(full_size_result, colorized, sketch, "keep", fill, hints, gap)
                times += timed(compose, 1)[0]
        figures[side] = {"model_ms": model, "soft_ms": soft, "regions_ms": regions}
    return figures


def ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def report(args, model_name: str, shapes: dict, photos: dict, times: dict) -> list[str]:
    hinted, unhinted = shapes["hinted"], shapes["unhinted"]
    soft_l1, regions_l1 = statistics.fmean(photos["soft"]), statistics.fmean(photos["regions"])
    at = {
        side: {key: statistics.median(values) for key, values in figures.items()}
        for side, figures in times.items()
    }
    small = at[SIDE]
    soft_path = small["model_ms"] + small["soft_ms"]
    ratio = (small["model_ms"] + small["regions_ms"]) / soft_path
    lines = [
        f"model: {model_name}; {args.pictures} synthetic pictures, {args.photos} photo-like, {SIDE}x{SIDE}; "
        "levels of 255, mean over RGB",
        "",
        "| figure | soft | regions | target |",
        "|---|---:|---:|---|",
    ]
    for name, figures, target in (("hinted: error vs the hint", hinted, HINT_TARGET),
                                   ("unhinted: spread in a piece", unhinted, FLAT_TARGET)):  # fmt: skip
        soft, regions = figures["soft"], figures["regions"]
        lines.append(
            f"| {name}, mean (worst) | {soft['mean']:.1f} ({soft['worst']:.1f}) | {regions['mean']:.1f} "
            f"({regions['worst']:.1f}) | "
            + mark(f"<= {target:.0f} each, regions {regions['within']}/{regions['count']} "
                   f"(soft {soft['within']}/{soft['count']})", regions["within"] == regions["count"])
            + " |"
        )  # fmt: skip
    lines.append(
        f"| photo-like: L1 vs the true colors | {soft_l1:.2f} | {regions_l1:.2f} | "
        + mark(f"regions <= soft (regions fell back on {photos['count'] - photos['reliable']}/{photos['count']})",
               regions_l1 <= soft_l1)
        + " |"
    )  # fmt: skip
    for side, figures in times.items():
        lines.append(f"| {side}x{side} full_size_result, ms | {ms(figures['soft_ms'])} | {ms(figures['regions_ms'])} "
                     f"| regions adds {at[side]['regions_ms'] - at[side]['soft_ms']:.0f} ms |")  # fmt: skip
    lines += [
        f"| {SIDE}x{SIDE} model call (width {args.timing_ngf or args.width}) + full_size_result, ms | "
        f"{soft_path:.0f} | {small['model_ms'] + small['regions_ms']:.0f} | "
        + mark(f"regions <= {TIME_TARGET:.0f}x soft: {ratio:.2f}x", ratio <= TIME_TARGET)
        + " |",
    ]
    kinds = ("textured fields", "shapes without outlines", "outlined shapes")
    differences = [r - s for r, s in zip(photos["regions"], photos["soft"], strict=True)]
    lines += ["", "- photo-like, regions - soft L1 by kind: "
        + ", ".join(f"{kind} {statistics.fmean(differences[index::3]):+.2f}" for index, kind in enumerate(kinds)
                    if differences[index::3])]  # fmt: skip
    for miss in shapes["regions_misses"]:
        where = f"picture {miss['picture']} shape {miss['shape']}"
        lines.append(f"- regions miss, {miss['case']}: {where}: {miss['value']:.1f} levels")
    return lines


def main() -> None:
    args = parse_args()
    if args.save_pictures is not None:
        args.save_pictures.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-regions-") as scratch:
        scratch = Path(scratch)
        version = args.model or train_hint_model(scratch, args.steps, args.width, args.train_pairs)
        serve = load_serving_function(version)
        if not serve.accepts_hints:
            raise SystemExit(f"{version} was trained without hints")
        timing = (
            load_serving_function(untrained_hint_model(scratch, args.timing_ngf))
            if args.timing_ngf
            else serve
        )
        model_name = (
            str(args.model) if args.model else f"width {args.width}, {args.steps} steps, trained here"
        )
        gap = DEFAULT_GAP
        shapes = score_shapes(serve, args.pictures, gap, args.save_pictures)
        photos = score_photos(serve, args.photos, gap, args.save_pictures)
        times = score_time(serve, timing, args.repeats, gap)
    lines = report(args, model_name, shapes, photos, times)
    print("\n".join(lines))
    print(f"({time.perf_counter() - began:.0f} s in all)")
    if args.json is not None:
        figures = {"model": model_name, "pictures": args.pictures, "photos": args.photos, "side": SIDE,
                   "shapes": shapes, "photo_like": photos, "time_ms": {str(k): v for k, v in times.items()},
                   "report": lines}  # fmt: skip
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
