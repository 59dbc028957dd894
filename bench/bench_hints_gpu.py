"""Do color hints work, at length? bench_hints.py's experiment on a GPU, on Keras 3's JAX backend.

For a GPU machine without TensorFlow (a JAX-only image): the same networks (model/networks.py is pure Keras 3,
hint shortcut included), the same objective as model/train.py (GAN sigmoid cross-entropy + 100 x L1, Adam, beta1
0.5), the hint simulation of model/hints.py written again in jax.numpy (about half the images without hints, the
rest 1 + geometric(1/8) square patches 1-9 px around the centre, mean true color + noise), on the random-color
synthetic set (model/synthetic.py), in one jitted (XLA) step. Two runs side by side: a hint model and a plain
model. Jitter is the mirror only (the resize-and-crop of tf.data is left out here).

Every `--eval-every` steps, on the validation pairs: L1 without hints, L1 with one 7x7 dot per shape (the mean
true color under it), and the plain model's L1. Targets (the issue's): dots <= 0.6x no hints, and no-hints L1
no worse than the plain model's. Writes JSON and Markdown to --out.

    KERAS_BACKEND=jax python bench/bench_hints_gpu.py [--steps 10000] [--width 32] [--batch-size 16]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_gpu_jax import bce_with_logits  # noqa: E402  (bench/ is this script's folder)

from model.networks import build_discriminator, build_generator  # noqa: E402
from model.synthetic import draw_pair_with_shapes, pair_rng  # noqa: E402

MAX_HINTS, MAX_SIDE, NOISE, DOT = 64, 9, 0.02, 7


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--train-pairs", type=int, default=4000)
    parser.add_argument("--val-pairs", type=int, default=64)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("."))
    return parser.parse_args()


def pairs(split: str, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sketches, colors) in [-1, 1] and, for each pair, an RGBA layer of one 7x7 dot per shape."""
    sketches = np.empty((count, 256, 256, 3), np.uint8)
    colors = np.empty_like(sketches)
    dots = np.zeros((count, 256, 256, 4), np.uint8)
    for index in range(count):
        color, sketch, shapes = draw_pair_with_shapes(pair_rng(0, split, index), 256, "random")
        sketches[index], colors[index] = np.asarray(sketch), np.asarray(color)
        for shape in shapes:
            x, y = shape.center
            top, left = y - DOT // 2, x - DOT // 2
            patch = colors[index, top : top + DOT, left : left + DOT].reshape(-1, 3).mean(axis=0).round()
            dots[index, top : top + DOT, left : left + DOT] = (*patch, 255)
    return sketches / 127.5 - 1.0, colors / 127.5 - 1.0, dots


def rgba_to_hint_map(rgba):
    mask = (rgba[..., 3:] > 0).astype(jnp.float32)
    return jnp.concatenate([(rgba[..., :3] / 127.5 - 1.0) * mask, mask], axis=-1)


def simulated_hint_maps(key, targets):
    """model/hints.py's training hints for a batch, in jax.numpy: [B, H, W, 4]."""
    batch = targets.shape[0]
    keys = jax.random.split(key, 5)
    no_hints = jax.random.uniform(keys[0], (batch,)) < 0.5
    draws = jax.random.uniform(keys[1], (batch,), minval=1e-7, maxval=1.0)
    counts = jnp.minimum(jnp.floor(jnp.log(draws) / jnp.log(1 - 1 / 8)).astype(jnp.int32) + 1, MAX_HINTS)
    counts = jnp.where(no_hints, 0, counts)
    centers = jnp.round(jnp.clip(jax.random.normal(keys[2], (batch, MAX_HINTS, 2)) * 0.25 + 0.5, 0, 1) * 255)
    sides = jax.random.randint(keys[3], (batch, MAX_HINTS), 1, MAX_SIDE + 1)
    noise = jax.random.normal(keys[4], (batch, MAX_HINTS, 3)) * NOISE
    top_left = centers.astype(jnp.int32) - (sides // 2)[..., None]
    pixels = jnp.arange(256)
    in_rows = (pixels >= top_left[..., :1]) & (pixels < top_left[..., :1] + sides[..., None])
    in_cols = (pixels >= top_left[..., 1:]) & (pixels < top_left[..., 1:] + sides[..., None])
    active = jnp.arange(MAX_HINTS)[None] < counts[:, None]
    patches = (in_rows[..., :, None] & in_cols[..., None, :] & active[..., None, None]).astype(jnp.float32)
    areas = jnp.maximum(patches.sum(axis=(2, 3)), 1.0)
    colors = jnp.clip(jnp.einsum("bkhw,bhwc->bkc", patches, targets) / areas[..., None] + noise, -1, 1)
    winner = jnp.argmax(patches * jnp.arange(1, MAX_HINTS + 1)[None, :, None, None], axis=1)
    mask = patches.max(axis=1)[..., None]
    hint_rgb = jax.vmap(lambda table, index: table[index])(colors, winner)
    return jnp.concatenate([hint_rgb * mask, mask], axis=-1)


class Run:
    """One model (with or without hints), its optimizers and its jitted step."""

    def __init__(self, hints: bool, width: int, learning_rate: float):
        keras.utils.set_random_seed(0)
        self.hints = hints
        self.generator = build_generator(width, hints=hints)
        self.discriminator = build_discriminator(width)
        optimizers = [keras.optimizers.Adam(learning_rate, beta_1=0.5) for _ in range(2)]
        for optimizer, network in zip(optimizers, (self.generator, self.discriminator), strict=True):
            optimizer.build(network.trainable_variables)
        generator, discriminator = self.generator, self.discriminator

        def objectives(g_train, d_train, g_other, d_other, generator_input, target):
            sketch = generator_input[..., :3]
            fake, g_other = generator.stateless_call(g_train, g_other, generator_input, training=True)
            real_logits, d_other = discriminator.stateless_call(
                d_train, d_other, [sketch, target], training=True
            )
            fake_logits, d_other = discriminator.stateless_call(
                d_train, d_other, [sketch, fake], training=True
            )
            gan = bce_with_logits(fake_logits, 1.0)
            l1 = jnp.mean(jnp.abs(target - fake.astype(jnp.float32)))
            disc = 0.5 * (bce_with_logits(real_logits, 1.0) + bce_with_logits(fake_logits, 0.0))
            return (gan + 100.0 * l1, disc), (g_other, d_other)

        def step(state, key, sketches, targets):
            g_train, g_other, g_opt, d_train, d_other, d_opt = state
            flip = jax.random.uniform(key, (sketches.shape[0], 1, 1, 1)) < 0.5
            sketches = jnp.where(flip, sketches[:, :, ::-1], sketches)
            targets = jnp.where(flip, targets[:, :, ::-1], targets)
            generator_input = sketches
            if hints:
                generator_input = jnp.concatenate([sketches, simulated_hint_maps(key, targets)], axis=-1)
            _, backward, (g_other, d_other) = jax.vjp(
                lambda g, d: objectives(g, d, g_other, d_other, generator_input, targets),
                g_train, d_train, has_aux=True,
            )  # fmt: skip
            g_grads = backward((jnp.float32(1.0), jnp.float32(0.0)))[0]
            d_grads = backward((jnp.float32(0.0), jnp.float32(1.0)))[1]
            g_train, g_opt = optimizers[0].stateless_apply(g_opt, g_grads, g_train)
            d_train, d_opt = optimizers[1].stateless_apply(d_opt, d_grads, d_train)
            return g_train, g_other, g_opt, d_train, d_other, d_opt

        def infer(state, generator_input):
            output, _ = generator.stateless_call(state[0], state[1], generator_input, training=False)
            return output

        self.step = jax.jit(step, donate_argnums=0)
        self.infer = jax.jit(infer)
        groups = (generator.trainable_variables, generator.non_trainable_variables, optimizers[0].variables,
                  discriminator.trainable_variables, discriminator.non_trainable_variables, optimizers[1].variables)  # fmt: skip
        self.state = tuple([jnp.array(variable.value, copy=True) for variable in group] for group in groups)

    def l1(self, sketches, targets, hint_maps=None) -> float:
        generator_input = sketches
        if self.hints:
            if hint_maps is None:
                hint_maps = jnp.zeros((*sketches.shape[:3], 4))
            generator_input = jnp.concatenate([sketches, hint_maps], axis=-1)
        output = self.infer(self.state, generator_input)
        return float(jnp.mean(jnp.abs(output.astype(jnp.float32) - targets)))


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    train_sketches, train_colors, _ = pairs("train", args.train_pairs)
    val_sketches, val_colors, val_dots = pairs("val", args.val_pairs)
    print(
        f"data: {args.train_pairs} + {args.val_pairs} pairs in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    train_sketches = jnp.asarray(train_sketches, jnp.float32)
    train_colors = jnp.asarray(train_colors, jnp.float32)
    val_sketches, val_colors = jnp.asarray(val_sketches, jnp.float32), jnp.asarray(val_colors, jnp.float32)
    dot_maps = rgba_to_hint_map(jnp.asarray(val_dots, jnp.float32))
    runs = {
        "hints": Run(True, args.width, args.learning_rate),
        "plain": Run(False, args.width, args.learning_rate),
    }
    rng = np.random.default_rng(0)
    key = jax.random.PRNGKey(0)
    rows = []
    print(
        "| step | hint model L1, no hints | hint model L1, 1 dot per shape | ratio | plain model L1 |",
        flush=True,
    )
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        chosen = rng.integers(0, args.train_pairs, args.batch_size)
        key, step_key = jax.random.split(key)
        for run in runs.values():
            run.state = run.step(run.state, step_key, train_sketches[chosen], train_colors[chosen])
        if step % args.eval_every and step != args.steps:
            continue
        without = runs["hints"].l1(val_sketches, val_colors)
        with_dots = runs["hints"].l1(val_sketches, val_colors, dot_maps)
        plain = runs["plain"].l1(val_sketches, val_colors)
        rows.append({"step": step, "hints_none": without, "hints_dots": with_dots, "plain": plain,
                     "seconds": time.perf_counter() - started})  # fmt: skip
        print(
            f"| {step} | {without:.4f} | {with_dots:.4f} | {with_dots / without:.2f} | {plain:.4f} |",
            flush=True,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hints_gpu.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                         "device": str(jax.devices()[0]), "rows": rows}, indent=1))  # fmt: skip
    print(f"device {jax.devices()[0]}; {time.perf_counter() - started:.0f} s of training", flush=True)


if __name__ == "__main__":
    main()
