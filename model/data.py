"""Pair datasets as tf.data pipelines.

Layout (docs/ARCHITECTURE.md, "The data folder"): `<dataset>/train/*.png` and `<dataset>/val/*.png` (JPEG too), each image twice as
wide as tall, the color target on the LEFT half and the sketch input on the RIGHT half (the anime pair layout).
`sketch_side="left"` reads aligned pairs with the sides swapped. Values are scaled to [-1, 1].
Training jitter (pix2pix): resize to 286, random crop 256, random mirror, the same for sketch and target.
With `hints`, training inputs get 4 more channels: color hints simulated from the jittered target
(model/hints.py), so a hint model learns to follow them.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from model.hints import training_hint_map
from model.networks import IMAGE_SIZE
from storage.layout import pair_files

JITTER_SIZE = 286
SketchSide = Literal["right", "left"]


class DatasetError(ValueError):
    """The dataset folder cannot be used; the message names the folder or file."""


@dataclass(frozen=True)
class Split:
    files: list[str]

    def __len__(self) -> int:
        return len(self.files)


def list_pairs(dataset_dir: str | os.PathLike, split: str) -> Split:
    """The split's image files, sorted, each checked from its header for readability and a 2:1 shape."""
    folder = Path(dataset_dir) / split
    if not folder.is_dir():
        raise DatasetError(f"missing folder {folder}: a dataset needs train/ and val/ folders of pair images")
    files = [str(path) for path in pair_files(folder)]
    if not files:
        raise DatasetError(f"no PNG or JPEG images in {folder}")
    for file in files:
        check_pair_file(file)
    return Split(files)


def check_pair_file(file: str) -> None:
    try:
        with Image.open(file) as image:  # reads the header only: fast on 14k-image datasets
            width, height = image.size
    except (OSError, UnidentifiedImageError, SyntaxError) as error:
        raise DatasetError(f"unreadable image {file}: {error}") from error
    if width != 2 * height:
        raise DatasetError(
            f"wrong aspect ratio in {file}: {width}x{height}; a pair image is twice as wide as tall "
            "(color left, sketch right)"
        )


def load_pair(file: tf.Tensor, sketch_side: SketchSide = "right") -> tuple[tf.Tensor, tf.Tensor]:
    """Decode one pair image into (sketch, target) float32 tensors in [-1, 1] at their stored size."""
    image = tf.io.decode_image(tf.io.read_file(file), channels=3, expand_animations=False)
    half = tf.shape(image)[1] // 2
    left, right = image[:, :half, :], image[:, half : 2 * half, :]
    sketch, target = (right, left) if sketch_side == "right" else (left, right)
    return _to_unit_range(sketch), _to_unit_range(target)


def _to_unit_range(image: tf.Tensor) -> tf.Tensor:
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def resize_pair(sketch: tf.Tensor, target: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    resized = tf.image.resize(tf.stack([sketch, target]), [size, size], method="bilinear", antialias=True)
    return resized[0], resized[1]


def jitter_pair(sketch: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Resize to 286, crop a random 256 window and maybe mirror: one draw for both images."""
    stacked = tf.stack(resize_pair(sketch, target, JITTER_SIZE))
    stacked = tf.image.random_crop(stacked, size=[2, IMAGE_SIZE, IMAGE_SIZE, 3])
    stacked = tf.cond(tf.random.uniform([]) > 0.5, lambda: tf.reverse(stacked, axis=[2]), lambda: stacked)
    return stacked[0], stacked[1]


def _with_training_hints(pair: tuple[tf.Tensor, tf.Tensor], seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    sketch, target = pair
    return tf.concat([sketch, training_hint_map(target, seed)], axis=-1), target


def make_dataset(
    dataset_dir: str | os.PathLike,
    split: str,
    batch_size: int,
    training: bool,
    shuffle_buffer: int = 400,
    sketch_side: SketchSide = "right",
    seed: int | None = None,
    limit: int | None = None,
    hints: bool = False,
) -> tf.data.Dataset:
    """Batches of (sketch, target). Training: shuffled, jittered, repeated forever. Eval: resized, in order.

    With `hints` (training only), the first element is the sketch with the simulated hint map appended.
    """
    if sketch_side not in ("right", "left"):
        raise ValueError(f"sketch_side must be 'right' or 'left', got {sketch_side!r}")
    files = list_pairs(dataset_dir, split).files[:limit]
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(
            min(len(files), max(shuffle_buffer, 1)), seed=seed, reshuffle_each_iteration=True
        )
        dataset = dataset.repeat()
    autotune = tf.data.AUTOTUNE
    dataset = dataset.map(
        lambda file: load_pair(file, sketch_side), num_parallel_calls=autotune, deterministic=not training
    )
    if training:
        dataset = dataset.map(jitter_pair, num_parallel_calls=autotune, deterministic=False)
        if hints:
            seeds = tf.data.Dataset.random(seed=seed).batch(2)
            dataset = tf.data.Dataset.zip(dataset, seeds).map(
                _with_training_hints, num_parallel_calls=autotune, deterministic=False
            )
    else:
        dataset = dataset.map(lambda s, t: resize_pair(s, t, IMAGE_SIZE), num_parallel_calls=autotune)
    return dataset.batch(batch_size, drop_remainder=training).prefetch(autotune)
