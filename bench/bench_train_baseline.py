"""Our trainer against an in-repo plain baseline: the TensorFlow pix2pix tutorial's training step.

The baseline is the tutorial's step as published: batch-normalized generator and discriminator (our networks
built with norm="batch"), batch 1, a plain `tf.function` (no XLA, float32), Adam 2e-4 with beta1 0.5 for both
networks, generator loss = sigmoid cross-entropy GAN loss + 100 x L1, discriminator loss = the sum of its real and
fake cross-entropies. Ours is `model.train.Pix2PixTrainer` at the settings given (batch size, precision, XLA).
Both run in this process, their timed windows taking turns, on the same synthetic pairs through the same tf.data pipeline
(`model.data.make_dataset`), and both are timed the same way: a warm-up, then several timed windows of steps;
each figure is the median (min-max) over the windows.

1. speed: images/s of the baseline at batch 1 and of ours at every setting tried, and the ratio of our best to
   the baseline (target: >= 2.5x at full width, ngf = ndf = 64);
2. loss curves (--curve-steps > 0): at a small width, the baseline and ours at the same seed and data for the
   same number of steps, the generator's L1 and GAN losses averaged per `--curve-every` steps.

    .venv/bin/python bench/bench_train_baseline.py [--ngf 64] [--batch-sizes 1 4 8] [--json FILE]
"""

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model.data import make_dataset  # noqa: E402
from model.networks import build_discriminator, build_generator  # noqa: E402
from model.synthetic import make_synthetic_dataset  # noqa: E402
from model.train import Pix2PixTrainer, TrainConfig  # noqa: E402

Step = Callable[[tuple[tf.Tensor, tf.Tensor]], dict[str, tf.Tensor]]


def tutorial_step(ngf: int, ndf: int, seed: int = 0, lambda_l1: float = 100.0) -> Step:
    """The TensorFlow pix2pix tutorial's `train_step`, on our networks with batch normalization."""
    keras.utils.set_random_seed(seed)  # as the trainer does, so both start from the same weights
    generator = build_generator(ngf, norm="batch")
    discriminator = build_discriminator(ndf, norm="batch")
    generator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    discriminator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    loss_object = keras.losses.BinaryCrossentropy(from_logits=True)

    @tf.function
    def train_step(batch):
        input_image, target = batch
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            gen_output = generator(input_image, training=True)
            disc_real_output = discriminator([input_image, target], training=True)
            disc_generated_output = discriminator([input_image, gen_output], training=True)
            gan_loss = loss_object(tf.ones_like(disc_generated_output), disc_generated_output)
            l1_loss = tf.reduce_mean(tf.abs(target - gen_output))
            total_gen_loss = gan_loss + lambda_l1 * l1_loss
            real_loss = loss_object(tf.ones_like(disc_real_output), disc_real_output)
            generated_loss = loss_object(tf.zeros_like(disc_generated_output), disc_generated_output)
            disc_loss = real_loss + generated_loss
        generator_gradients = gen_tape.gradient(total_gen_loss, generator.trainable_variables)
        discriminator_gradients = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(
            zip(generator_gradients, generator.trainable_variables, strict=True)
        )
        discriminator_optimizer.apply_gradients(
            zip(discriminator_gradients, discriminator.trainable_variables, strict=True)
        )
        # The tutorial's D loss is the sum; ours (and the paper's) is half of it: report it on our scale.
        return {"gen_gan": gan_loss, "gen_l1": l1_loss, "disc": 0.5 * disc_loss}

    return train_step


def our_step(dataset: Path, run_dir: Path, config: TrainConfig) -> Step:
    return Pix2PixTrainer(dataset, run_dir, config).train_step


def timed_windows(
    step: Step, batches, batch_size: int, windows: int, steps: int, warm_up: bool = True
) -> list[float]:
    """Images/s of `windows` windows of `steps` steps each, after two untimed steps (tracing, compiling)."""
    for _ in range(2 if warm_up else 0):
        step(next(batches))["disc"].numpy()
    speeds = []
    for _ in range(windows):
        started = time.perf_counter()
        for _ in range(steps):
            losses = step(next(batches))
        losses["disc"].numpy()
        speeds.append(steps * batch_size / (time.perf_counter() - started))
    return speeds


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def batches_of(dataset: Path, batch_size: int, seed: int = 0):
    return iter(make_dataset(dataset, "train", batch_size, training=True, seed=seed))


def measure_speed(dataset: Path, scratch: Path, args) -> dict:
    """Every setting is built and warmed up first; then the timed windows take turns (baseline, ours at each
    setting, baseline, ...), so a change in the machine's load lands on all of them alike."""
    settings: dict[str, tuple[Step, object, int, int]] = {
        "baseline": (tutorial_step(args.ngf, args.ngf), batches_of(dataset, 1), 1, args.steps)
    }
    ours = list(itertools.product(args.precisions, args.xla, args.batch_sizes))
    for precision, xla, batch_size in ours:
        # hints off: the same task as the tutorial's (a hint model reads 4 more input channels).
        config = TrainConfig(steps=10**6, batch_size=batch_size, ngf=args.ngf, ndf=args.ngf,
                             precision=precision, xla=xla, hints=False)  # fmt: skip
        run_dir = scratch / f"speed-{precision}-{xla}-{batch_size}"
        # Fewer steps at larger batches: each window covers about the same number of images.
        steps = max(2, args.steps // batch_size) if batch_size > 1 else args.steps
        step = our_step(dataset, run_dir, config)
        settings[f"{precision}-{xla}-{batch_size}"] = (
            step,
            batches_of(dataset, batch_size),
            batch_size,
            steps,
        )
    speeds: dict[str, list[float]] = {name: [] for name in settings}
    for step, batches, _, _ in settings.values():
        for _ in range(2):  # tracing and compiling, untimed
            step(next(batches))["disc"].numpy()
    for _ in range(args.windows):
        for name, (step, batches, batch_size, steps) in settings.items():
            speeds[name] += timed_windows(step, batches, batch_size, 1, steps, warm_up=False)

    result = {"baseline": summary(speeds["baseline"]), "ours": []}
    print(f"speed, ngf=ndf={args.ngf}, median (min-max) images/s over {args.windows} interleaved windows:")
    print(f"  {'baseline (tutorial step, batch norm, batch 1, float32)':58}{_fmt(result['baseline'])}")
    for precision, xla, batch_size in ours:
        figure = summary(speeds[f"{precision}-{xla}-{batch_size}"])
        result["ours"].append({"precision": precision, "xla": xla, "batch_size": batch_size, **figure})
        label = f"ours: instance norm, batch {batch_size}, {precision}{', XLA' if xla else ''}"
        print(f"  {label:58}{_fmt(figure)}  {figure['median'] / result['baseline']['median']:.2f}x")
    best = max(result["ours"], key=lambda row: row["median"])
    result["best"] = best
    result["ratio"] = best["median"] / result["baseline"]["median"]
    print(f"best: batch {best['batch_size']}, {best['precision']}{', XLA' if best['xla'] else ''}: "
          f"{result['ratio']:.2f}x the baseline's batch-1 images/s (target >= 2.5x)", flush=True)  # fmt: skip
    return result


def loss_curve(step: Step, batches, steps: int, every: int) -> dict[str, list[float]]:
    recorded: dict[str, list[float]] = {"gen_l1": [], "gen_gan": [], "disc": []}
    pending: list[dict[str, tf.Tensor]] = []
    for index in range(1, steps + 1):
        pending.append(step(next(batches)))
        if index % every == 0:
            for name in recorded:
                recorded[name].append(float(np.mean([entry[name].numpy() for entry in pending])))
            pending.clear()
    return recorded


def measure_curves(dataset: Path, scratch: Path, args) -> dict:
    """Same seed, same data, same width: the tutorial's step and ours at several settings."""
    ngf, steps, every = args.curve_ngf, args.curve_steps, args.curve_every
    runs: dict[str, Step] = {}
    curves = {}
    runs["baseline (tutorial, batch norm, float32)"] = tutorial_step(ngf, ngf)
    settings = [("batch", "float32"), ("instance", "float32"), ("instance", "mixed_bfloat16")]
    print(f"loss curves, ngf=ndf={ngf}, batch 1, seed 0, {steps} steps, mean per {every} steps:", flush=True)
    for name in ["baseline (tutorial, batch norm, float32)"] + [f"ours ({n} norm, {p})" for n, p in settings]:
        if name not in runs:
            norm, precision = settings[[f"ours ({n} norm, {p})" for n, p in settings].index(name)]
            config = TrainConfig(steps=steps, ngf=ngf, ndf=ngf, norm=norm, precision=precision, seed=0,
                                 hints=False)  # fmt: skip
            runs[name] = our_step(dataset, scratch / f"curve-{norm}-{precision}", config)
        started = time.perf_counter()
        curves[name] = loss_curve(runs[name], batches_of(dataset, 1, seed=0), steps, every)
        curves[name]["seconds"] = time.perf_counter() - started
    header = "".join(f"{(index + 1) * every:>7}" for index in range(steps // every))
    for loss in ("gen_l1", "gen_gan"):
        print(f"  {loss:44}{header}")
        for name, curve in curves.items():
            print(f"  {name:44}" + "".join(f"{value:7.3f}" for value in curve[loss]))
    return {"ngf": ngf, "steps": steps, "every": every, "curves": curves}


def _fmt(figure: dict[str, float]) -> str:
    return f"{figure['median']:7.2f} ({figure['min']:.2f}-{figure['max']:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ngf", type=int, default=64, help="width of both networks for speed (64 = full)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--xla", type=lambda text: text == "on", nargs="+", default=[False, True],
                        metavar="{on,off}", help="our step with and without XLA")  # fmt: skip
    parser.add_argument("--steps", type=int, default=8, help="batch-1 steps per timed window")
    parser.add_argument("--windows", type=int, default=3, help="timed windows per setting")
    parser.add_argument("--curve-ngf", type=int, default=16)
    parser.add_argument("--curve-steps", type=int, default=200, help="0 = no loss curves")
    parser.add_argument("--curve-every", type=int, default=20)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    result = {"tf": tf.__version__, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        scratch = Path(scratch)
        dataset = scratch / "pairs"
        make_synthetic_dataset(dataset, train=64, val=8, seed=0)
        if not args.skip_speed:
            result["speed"] = measure_speed(dataset, scratch, args)
        if args.curve_steps:
            result["curves"] = measure_curves(dataset, scratch, args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
