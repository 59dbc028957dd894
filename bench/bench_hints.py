"""Do color hints work? Train on shapes whose colors only hints can tell, and score with and without them.

The random-color synthetic set (`make-synthetic --colors random`) fills each shape with a random color, so a
sketch alone cannot say which. Two runs train on it side by side in one process, same seed, same steps:
a hint model (`hints: true`) and a plain model (`hints: false`). Every `--eval-every` steps both are scored on
the validation pairs: L1 without hints, and for the hint model L1 with one 7x7 hint dot at the centre of each
shape (its color the mean true color under the dot, as a user would dab it). Targets (the issue's): the hint
model's L1 with dots <= 0.6x its L1 without, and its L1 without hints no worse than the plain model's.

Prints a table over steps and writes it as Markdown to `--out` (default bench/hints_cpu.md; bench/HINTS.md
sums up the measured runs).

    .venv/bin/python bench/bench_hints.py [--steps 10000] [--width 8] [--batch-size 4] [--learning-rate 1e-3]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model.data import make_dataset  # noqa: E402
from model.hints import rgba_to_hint_map  # noqa: E402
from model.synthetic import draw_pair_with_shapes, make_synthetic_dataset, pair_rng  # noqa: E402
from model.train import Pix2PixTrainer, TrainConfig  # noqa: E402

DOT_SIDE = 7
SEED = 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=8, help="ngf and ndf of both runs")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="of both runs (a tiny model learns faster at 1e-3)"
    )
    parser.add_argument("--train-pairs", type=int, default=2000)
    parser.add_argument("--val-pairs", type=int, default=32)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("hints_cpu.md"))
    return parser.parse_args()


def dot_hints(val_pairs: int, size: int = 256) -> np.ndarray:
    """One 7x7 dot at each shape's centre of every validation pair: uint8 RGBA [N, size, size, 4]."""
    hints = np.zeros((val_pairs, size, size, 4), np.uint8)
    for index in range(val_pairs):
        color, _, shapes = draw_pair_with_shapes(pair_rng(SEED, "val", index), size, "random")
        truth = np.asarray(color)
        for shape in shapes:
            x, y = shape.center
            top, left = y - DOT_SIDE // 2, x - DOT_SIDE // 2
            patch = truth[top : top + DOT_SIDE, left : left + DOT_SIDE].reshape(-1, 3)
            hints[index, top : top + DOT_SIDE, left : left + DOT_SIDE, :3] = patch.mean(axis=0).round()
            hints[index, top : top + DOT_SIDE, left : left + DOT_SIDE, 3] = 255
    return hints


def l1(trainer: Pix2PixTrainer, sketches: tf.Tensor, targets: tf.Tensor, hint_maps=None) -> float:
    outputs = trainer.generator(trainer.generator_input(sketches, hint_maps), training=False)
    return float(tf.reduce_mean(tf.abs(tf.cast(outputs, tf.float32) - targets)))


def main() -> None:
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-hints-"))
    dataset = scratch / "random-colors"
    started = time.perf_counter()
    make_synthetic_dataset(dataset, args.train_pairs, args.val_pairs, seed=SEED, colors="random")
    print(f"dataset: {args.train_pairs} + {args.val_pairs} pairs in {time.perf_counter() - started:.0f} s")
    sketches, targets = next(iter(make_dataset(dataset, "val", args.val_pairs, training=False)))
    dot_maps = rgba_to_hint_map(tf.constant(dot_hints(args.val_pairs)))

    trainers, batches = {}, {}
    for name, hints in (("hints", True), ("plain", False)):
        config = TrainConfig(
            steps=args.steps, batch_size=args.batch_size, ngf=args.width, ndf=args.width, hints=hints,
            learning_rate=args.learning_rate, seed=SEED, checkpoint_every=10**8,
        )  # fmt: skip
        trainers[name] = Pix2PixTrainer(dataset, scratch / f"run-{name}", config)
        batches[name] = trainers[name]._training_batches()

    rows = []
    seconds = dict.fromkeys(trainers, 0.0)
    header = "| step | hint model L1, no hints | hint model L1, 1 dot per shape | ratio | plain model L1 |"
    print(header)
    for step in range(1, args.steps + 1):
        for name, trainer in trainers.items():
            tick = time.perf_counter()
            trainer.train_step(next(batches[name]))
            seconds[name] += time.perf_counter() - tick
        if step % args.eval_every and step != args.steps:
            continue
        without = l1(trainers["hints"], sketches, targets)
        with_dots = l1(trainers["hints"], sketches, targets, dot_maps)
        plain = l1(trainers["plain"], sketches, targets)
        rows.append({"step": step, "hints_none": without, "hints_dots": with_dots, "plain": plain})
        print(
            f"| {step} | {without:.4f} | {with_dots:.4f} | {with_dots / without:.2f} | {plain:.4f} |",
            flush=True,
        )

    final = rows[-1]
    ratio = final["hints_dots"] / final["hints_none"]
    summary = [
        f"Final (step {final['step']}): L1 with one dot per shape / L1 without hints = **{ratio:.2f}** "
        f"(target <= 0.6: {'met' if ratio <= 0.6 else 'not met'}); L1 without hints, hint model "
        f"{final['hints_none']:.4f} vs plain model {final['plain']:.4f} "
        f"({'no worse' if final['hints_none'] <= final['plain'] * 1.02 else 'worse'}, 2% tolerance).",
        f"Training time: hint model {seconds['hints']:.0f} s, plain model {seconds['plain']:.0f} s.",
    ]
    lines = [
        "# Color hints: measured",
        "",
        f"`python bench/bench_hints.py --steps {args.steps} --width {args.width} --batch-size "
        f"{args.batch_size} --learning-rate {args.learning_rate} --train-pairs {args.train_pairs}`: random-color synthetic set, full pix2pix "
        "(GAN + 100 x L1), both runs side by side in one process, same seed. L1 in [-1, 1] units on "
        f"{args.val_pairs} validation pairs.",
        "",
        header,
        "|---|---|---|---|---|",
        *(
            f"| {row['step']} | {row['hints_none']:.4f} | {row['hints_dots']:.4f} | "
            f"{row['hints_dots'] / row['hints_none']:.2f} | {row['plain']:.4f} |"
            for row in rows
        ),
        "",
        *summary,
        "",
    ]
    args.out.write_text("\n".join(lines))
    (scratch / "rows.json").write_text(json.dumps(rows))
    print("\n".join(summary))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
