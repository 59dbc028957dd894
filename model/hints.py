"""Color hints: a few user strokes that tell the generator which color goes where.

The generator of a hint model reads 7 channels: the sketch (3) and a hint map (4), the hint colors in [-1, 1]
multiplied by the mask, then the mask itself (1 where there is a hint), so a black hint differs from "no hint".
Training simulates hints from the true colors, as Zhang et al. 2017 did: about half the images get none (the
model must still work without any, as AlacGAN trains it), the rest a geometric number of small square patches
(mean 8, p = 1/8), 1-9 px wide, placed around the centre with a spread of a quarter of the side, each the mean
true color under it plus a little noise. Validation uses fixed seeds, so its scores are comparable over steps.

Users send hints as RGBA, alpha > 0 marking a hint (model/imageio.py maps them onto the 256x256 square); the
published signature turns that into the hint map with `rgba_to_hint_map`, the same function training's
validation uses for its fixed hints.
"""

import tensorflow as tf

from model.networks import HINT_CHANNELS

NO_HINTS_SHARE = 0.5
GEOMETRIC_P = 1 / 8
MAX_HINTS = 64
MAX_PATCH_SIDE = 9
COLOR_NOISE = 0.02  # standard deviation, in [-1, 1] units (about 2.5 levels of 255)
VALIDATION_HINTS = 10


def random_hint_count(seed: tf.Tensor) -> tf.Tensor:
    """0 for about half the images, else 1 + a geometric number of failures (p = 1/8), capped at 64."""
    no_hints_draw, count_draw = tf.unstack(tf.random.stateless_uniform([2], seed, minval=1e-7, maxval=1.0))
    geometric = tf.floor(tf.math.log(count_draw) / tf.math.log(1.0 - GEOMETRIC_P))
    count = tf.minimum(tf.cast(geometric, tf.int32) + 1, MAX_HINTS)
    return tf.where(no_hints_draw < NO_HINTS_SHARE, 0, count)


def simulated_hint_map(target: tf.Tensor, count: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """`count` hint patches taken from `target` (float [-1, 1], [H, W, 3]): the hint map, [H, W, 4].

    Where patches overlap, the later one wins, as a later brush stroke covers an earlier one.
    """
    height, width = tf.shape(target)[0], tf.shape(target)[1]
    seeds = tf.random.split(tf.convert_to_tensor(seed, tf.int64), 4)
    centers = tf.random.stateless_normal([MAX_HINTS, 2], seeds[0], mean=0.5, stddev=0.25)
    sides = tf.random.stateless_uniform(
        [MAX_HINTS], seeds[1], minval=1, maxval=MAX_PATCH_SIDE + 1, dtype=tf.int32
    )
    noise = tf.random.stateless_normal([MAX_HINTS, 3], seeds[2], stddev=COLOR_NOISE)

    # Only the first `count` patches are drawn (the same ones for the same seed, whatever the count), after a
    # blank patch 0 that stands for "no hint" where no patch lies.
    count = tf.minimum(tf.cast(count, tf.int32), MAX_HINTS)
    size = tf.cast(tf.stack([height, width]), tf.float32)
    center_px = tf.cast(tf.round(tf.clip_by_value(centers[:count], 0.0, 1.0) * (size - 1.0)), tf.int32)
    sides = sides[:count]
    top_left = center_px - (sides // 2)[:, None]
    rows, cols = tf.range(height), tf.range(width)
    in_rows = (rows[None, :] >= top_left[:, :1]) & (rows[None, :] < top_left[:, :1] + sides[:, None])
    in_cols = (cols[None, :] >= top_left[:, 1:]) & (cols[None, :] < top_left[:, 1:] + sides[:, None])
    patches = tf.cast(in_rows[:, :, None] & in_cols[:, None, :], tf.float32)

    areas = tf.maximum(tf.reduce_sum(patches, axis=[1, 2]), 1.0)
    means = tf.einsum("khw,hwc->kc", patches, tf.cast(target, tf.float32)) / areas[:, None]
    colors = tf.concat([tf.zeros([1, 3]), tf.clip_by_value(means + noise[:count], -1.0, 1.0)], axis=0)
    # The last patch covering a pixel gives its color: weight patch k by k and take the largest.
    order = tf.concat([tf.zeros([1, height, width]), patches], axis=0)
    order *= tf.range(count + 1, dtype=tf.float32)[:, None, None]
    winner = tf.argmax(order, axis=0)
    mask = tf.cast(winner > 0, tf.float32)[:, :, None]
    return tf.concat([tf.gather(colors, winner) * mask, mask], axis=-1)


def training_hint_map(target: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """The hint map of one training image: a random number of patches (often none)."""
    count_seed, patch_seed = tf.unstack(tf.random.split(tf.convert_to_tensor(seed, tf.int64), 2))
    return simulated_hint_map(target, random_hint_count(count_seed), patch_seed)


def empty_hint_maps(images: tf.Tensor) -> tf.Tensor:
    """No hints for a batch of images [N, H, W, C]: an all-zero map, mask included."""
    shape = tf.shape(images)
    return tf.zeros(tf.concat([shape[:3], [HINT_CHANNELS]], axis=0), tf.float32)


def validation_hint_maps(targets: tf.Tensor, count: int = VALIDATION_HINTS) -> tf.Tensor:
    """`count` hints for each image of a fixed validation batch, the same at every evaluation."""
    maps = [simulated_hint_map(targets[index], count, [index, 1]) for index in range(int(targets.shape[0]))]
    return tf.stack(maps)


def rgba_to_hint_map(rgba: tf.Tensor) -> tf.Tensor:
    """uint8 RGBA hints [..., 4] (alpha > 0 marks a hint) -> the generator's float hint map [..., 4]."""
    mask = tf.cast(rgba[..., 3:] > 0, tf.float32)
    colors = tf.cast(rgba[..., :3], tf.float32) / 127.5 - 1.0
    return tf.concat([colors * mask, mask], axis=-1)
