"""Model benchmarks, measured side by side in one run on this machine.

Prints: training images/s of the full-width pix2pix at batch 1 and at the fastest batch size tried, the tf.data
pipeline's images/s on reference-sized pairs (1024x512 PNG) next to the training speed it must feed, and the
published generator's inference ms/image alone and in a batch.

    .venv/bin/python bench/bench_model.py [--batch-sizes 1 2 4 8] [--steps 5]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model.data import make_dataset  # noqa: E402
from model.export import load_serving_function, publish_generator  # noqa: E402
from model.synthetic import make_synthetic_dataset  # noqa: E402
from model.train import Pix2PixTrainer, TrainConfig  # noqa: E402


def train_images_per_second(dataset: Path, run_dir: Path, batch_size: int, steps: int, ngf: int) -> float:
    trainer = Pix2PixTrainer(
        dataset, run_dir, TrainConfig(steps=10**6, batch_size=batch_size, ngf=ngf, ndf=ngf)
    )
    batch = next(iter(make_dataset(dataset, "train", batch_size, training=True)))
    for _ in range(2):  # tracing and warm-up
        trainer.train_step(batch)["disc"].numpy()
    start = time.perf_counter()
    for _ in range(steps):
        losses = trainer.train_step(batch)
    losses["disc"].numpy()
    return steps * batch_size / (time.perf_counter() - start)


def pipeline_images_per_second(dataset: Path, images: int) -> float:
    batches = iter(make_dataset(dataset, "train", 1, training=True))
    next(batches)
    start = time.perf_counter()
    for _ in range(images):
        next(batches)
    return images / (time.perf_counter() - start)


def inference_ms_per_image(models_dir: Path, ngf: int, batch_size: int, repeats: int = 3) -> float:
    from model.networks import build_generator

    version = publish_generator(build_generator(ngf), models_dir, {"job_id": "bench"})
    colorize = load_serving_function(version.path)
    sketches = np.random.default_rng(0).integers(0, 256, (batch_size, 256, 256, 3), dtype=np.uint8)
    colorize(sketches).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        colorize(sketches).numpy()
    return (time.perf_counter() - start) / (repeats * batch_size) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per batch size")
    parser.add_argument("--ngf", type=int, default=64, help="network width (64 = full width)")
    parser.add_argument("--pipeline-images", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        reference_like = scratch / "reference_like"
        make_synthetic_dataset(reference_like, train=64, val=4, seed=0, size=512)  # 1024x512 PNG pairs
        print(
            f"machine: {os.cpu_count()} CPUs, GPUs: {len(tf.config.list_physical_devices('GPU'))}, TF {tf.__version__}"
        )

        speeds = {}
        for batch_size in args.batch_sizes:
            speeds[batch_size] = train_images_per_second(
                reference_like, scratch / f"run{batch_size}", batch_size, args.steps, args.ngf
            )
            print(f"train ngf={args.ngf} batch {batch_size:>2}: {speeds[batch_size]:7.2f} images/s")
        fastest = max(speeds, key=speeds.get)
        print(f"train: batch 1 {speeds[args.batch_sizes[0]]:.2f} images/s; fastest batch {fastest}: "
              f"{speeds[fastest]:.2f} images/s ({speeds[fastest] / speeds[args.batch_sizes[0]]:.2f}x)")  # fmt: skip

        pipeline = pipeline_images_per_second(reference_like, args.pipeline_images)
        print(f"tf.data pipeline (1024x512 PNG, decode + jitter): {pipeline:.1f} images/s "
              f"= {pipeline / speeds[fastest]:.1f}x the fastest training speed")  # fmt: skip

        alone = inference_ms_per_image(scratch / "models", args.ngf, 1)
        batched = inference_ms_per_image(scratch / "models", args.ngf, 8)
        print(f"inference ngf={args.ngf}: {alone:.1f} ms/image alone, {batched:.1f} ms/image in a batch of 8")
        print("reference: the original write-up trained at about 26 images/s on one GTX 1060")


if __name__ == "__main__":
    main()
