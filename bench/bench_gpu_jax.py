"""Training images/s of the full-width pix2pix on a GPU, with the same Keras networks on Keras 3's JAX backend.

For machines where TensorFlow with CUDA is not installed (a JAX-only image): model/networks.py is pure Keras 3, so
the very same generator and discriminator are built on the JAX backend and trained with a jitted (XLA) step of
the same objective as model/train.py: generator = sigmoid cross-entropy GAN loss + 100 x L1, discriminator = half
the sum of its real and fake cross-entropies, Adam 2e-4 with beta1 0.5 for both, on random 256x256 data resident
on the device (so the figure is the step alone, no input pipeline).

Rows: the baseline (the TensorFlow tutorial's setup: batch normalization, batch 1, float32) next to ours
(instance normalization, the mixed_bfloat16 policy, batch sizes scaled up). Prints a table and, with --out,
writes it as JSON and Markdown there.

    KERAS_BACKEND=jax python bench/bench_gpu_jax.py [--ngf 64] [--batch-sizes 1 8 32 64 128] [--out DIR]
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

try:
    from model.networks import build_discriminator, build_generator
except ImportError:  # run from a copy next to a networks.py, outside the repository
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from model.networks import build_discriminator, build_generator

REFERENCE_IMAGES_PER_SECOND = 26.0  # the original write-up, one GTX 1060


def bce_with_logits(logits, label: float):
    """Mean sigmoid cross-entropy, computed as tf.nn.sigmoid_cross_entropy_with_logits does."""
    logits = logits.astype(jnp.float32)
    return jnp.mean(jnp.maximum(logits, 0) - logits * label + jnp.log1p(jnp.exp(-jnp.abs(logits))))


class Setup:
    """Networks, optimizers and one jitted training step for one (norm, precision) pair."""

    def __init__(self, ngf: int, ndf: int, norm: str, precision: str, lambda_l1: float = 100.0):
        keras.mixed_precision.set_global_policy(precision)
        try:
            keras.utils.set_random_seed(0)
            self.generator = build_generator(ngf, norm)
            self.discriminator = build_discriminator(ndf, norm)
            self.generator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
            self.discriminator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
            self.generator_optimizer.build(self.generator.trainable_variables)
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        generator, discriminator = self.generator, self.discriminator

        def objectives(g_trainable, d_trainable, g_other, d_other, sketch, target):
            fake, g_other = generator.stateless_call(g_trainable, g_other, sketch, training=True)
            real_logits, d_other = discriminator.stateless_call(
                d_trainable, d_other, [sketch, target], training=True
            )
            fake_logits, d_other = discriminator.stateless_call(
                d_trainable, d_other, [sketch, fake], training=True
            )
            gan = bce_with_logits(fake_logits, 1.0)
            l1 = jnp.mean(jnp.abs(target - fake.astype(jnp.float32)))
            disc = 0.5 * (bce_with_logits(real_logits, 1.0) + bce_with_logits(fake_logits, 0.0))
            return (gan + lambda_l1 * l1, disc), (gan, l1, g_other, d_other)

        def step(state, sketch, target):
            g_trainable, g_other, g_opt, d_trainable, d_other, d_opt = state
            # One forward pass, two backward passes (the two tapes of the TensorFlow step): the generator's
            # gradient of its objective, the discriminator's of its own.
            (_, disc), backward, (gan, l1, g_other, d_other) = jax.vjp(
                lambda g, d: objectives(g, d, g_other, d_other, sketch, target),
                g_trainable,
                d_trainable,
                has_aux=True,
            )
            g_grads = backward((jnp.float32(1.0), jnp.float32(0.0)))[0]
            d_grads = backward((jnp.float32(0.0), jnp.float32(1.0)))[1]
            g_trainable, g_opt = self.generator_optimizer.stateless_apply(g_opt, g_grads, g_trainable)
            d_trainable, d_opt = self.discriminator_optimizer.stateless_apply(d_opt, d_grads, d_trainable)
            state = (g_trainable, g_other, g_opt, d_trainable, d_other, d_opt)
            return state, {"gen_gan": gan, "gen_l1": l1, "disc": disc}

        self.step = jax.jit(step, donate_argnums=0)

    def initial_state(self):
        """Copies of the initial values: the step donates (and so deletes) the state it is given."""
        groups = (
            self.generator.trainable_variables,
            self.generator.non_trainable_variables,
            self.generator_optimizer.variables,
            self.discriminator.trainable_variables,
            self.discriminator.non_trainable_variables,
            self.discriminator_optimizer.variables,
        )
        return tuple([jnp.array(variable.value, copy=True) for variable in group] for group in groups)


def images_per_second(setup: Setup, batch_size: int, seconds: float) -> tuple[float, float, int]:
    """(images/s, compile+first-step seconds, timed steps): warm-up, then steps for about `seconds`."""
    rng = np.random.default_rng(0)
    sketch = jnp.asarray(rng.uniform(-1, 1, (batch_size, 256, 256, 3)).astype(np.float32))
    target = jnp.asarray(rng.uniform(-1, 1, (batch_size, 256, 256, 3)).astype(np.float32))
    state = setup.initial_state()
    started = time.perf_counter()
    state, losses = setup.step(state, sketch, target)
    jax.block_until_ready(losses)
    compile_seconds = time.perf_counter() - started
    for _ in range(2):
        state, losses = setup.step(state, sketch, target)
    jax.block_until_ready(losses)
    # Calibrate: time a few steps, then run enough for `seconds`.
    started = time.perf_counter()
    for _ in range(3):
        state, losses = setup.step(state, sketch, target)
    jax.block_until_ready(losses)
    per_step = (time.perf_counter() - started) / 3
    steps = max(5, int(seconds / per_step))
    started = time.perf_counter()
    for _ in range(steps):
        state, losses = setup.step(state, sketch, target)
    jax.block_until_ready(losses)
    elapsed = time.perf_counter() - started
    if not all(np.isfinite(float(value)) for value in losses.values()):
        raise RuntimeError(f"non-finite losses {losses}")
    return steps * batch_size / elapsed, compile_seconds, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ngf", type=int, default=64, help="generator and discriminator width (64 = full)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64, 128])
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per row")
    parser.add_argument("--budget", type=float, default=480.0, help="skip rows started after this many s")
    parser.add_argument("--out", type=Path, help="write results.json and results.md here")
    args = parser.parse_args()

    device = jax.devices()[0]
    print(f"JAX {jax.__version__}, Keras {keras.__version__} ({keras.backend.backend()}), device: "
          f"{getattr(device, 'device_kind', device.platform)}", flush=True)  # fmt: skip
    began = time.perf_counter()
    rows = [("baseline: batch norm, float32", "batch", "float32", 1)]
    rows += [("ours: instance norm, float32", "instance", "float32", 1)]
    rows += [
        ("ours: instance norm, mixed_bfloat16", "instance", "mixed_bfloat16", b) for b in args.batch_sizes
    ]
    rows += [("ours: instance norm, float32", "instance", "float32", max(args.batch_sizes))]
    results, setups = [], {}
    for label, norm, precision, batch_size in rows:
        if time.perf_counter() - began > args.budget:
            print(f"skipped (time budget): {label} batch {batch_size}", flush=True)
            continue
        if (norm, precision) not in setups:
            setups[(norm, precision)] = Setup(args.ngf, args.ngf, norm, precision)
        try:
            speed, compile_seconds, steps = images_per_second(
                setups[(norm, precision)], batch_size, args.seconds
            )
        except Exception as error:  # out of memory at a large batch: report it and go on
            print(f"{label} batch {batch_size}: failed: {str(error)[:300]}", flush=True)
            results.append({"row": label, "norm": norm, "precision": precision, "batch": batch_size,
                            "error": str(error)[:300]})  # fmt: skip
            continue
        results.append({"row": label, "norm": norm, "precision": precision, "batch": batch_size,
                        "images_per_second": speed, "compile_seconds": compile_seconds, "steps": steps})  # fmt: skip
        print(f"{label:40s} batch {batch_size:>4}: {speed:9.1f} images/s "
              f"(compile {compile_seconds:.0f} s, {steps} steps)", flush=True)  # fmt: skip

    measured = [row for row in results if "images_per_second" in row]
    baseline = measured[0]["images_per_second"] if measured and measured[0]["norm"] == "batch" else None
    best = max(measured, key=lambda row: row["images_per_second"]) if measured else None
    lines = [
        f"Device: {getattr(device, 'device_kind', device.platform)}; JAX {jax.__version__}, Keras "
        f"{keras.__version__} on the JAX backend; ngf=ndf={args.ngf}, 256x256, random data on the device.",
        "",
        "| setup | batch | images/s | x baseline | x 26 images/s (GTX 1060 write-up) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in results:
        if "images_per_second" not in row:
            lines.append(f"| {row['row']} | {row['batch']} | failed | | |")
            continue
        ratio = f"{row['images_per_second'] / baseline:.2f}" if baseline else ""
        lines.append(f"| {row['row']} | {row['batch']} | {row['images_per_second']:.1f} | {ratio} | "
                     f"{row['images_per_second'] / REFERENCE_IMAGES_PER_SECOND:.1f} |")  # fmt: skip
    if best:
        lines += ["", f"Best: {best['images_per_second']:.1f} images/s ({best['row']}, batch {best['batch']}); "
                      f"goal 1040 images/s: {'met' if best['images_per_second'] >= 1040 else 'not met'}."]  # fmt: skip
    table = "\n".join(lines)
    print(table, flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps({"device": str(device), "rows": results}, indent=2))
        (args.out / "results.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
