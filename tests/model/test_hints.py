"""Color hints in the model package: simulation, mapping a user's layer onto the square, the signatures."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw

from model.export import load_serving_function, publish_generator
from model.hints import (
    MAX_PATCH_SIDE,
    random_hint_count,
    rgba_to_hint_map,
    simulated_hint_map,
    training_hint_map,
    validation_hint_maps,
)
from model.imageio import NoHintAlpha, content_box, prepare_hints, prepare_sketch
from model.networks import build_generator
from tests.conftest import TINY_WIDTH


def test_hint_counts_follow_the_simulated_distribution():
    counts = np.array([int(random_hint_count(tf.constant([index, 7], tf.int64))) for index in range(3000)])
    none_share = (counts == 0).mean()
    assert 0.45 < none_share < 0.55, f"share of images without hints is {none_share:.3f}, expected about 0.5"
    mean = counts[counts > 0].mean()
    assert 7.0 < mean < 9.0, f"mean count of hinted images is {mean:.2f}, expected about 8 (geometric, p=1/8)"
    assert counts.max() <= 64


def test_patches_are_small_squares_of_the_true_color_around_the_centre():
    target = tf.random.uniform([256, 256, 3], -1.0, 1.0, seed=1)
    solid = tf.ones([256, 256, 3]) * tf.constant([0.5, -0.25, 0.0])
    sides, centers = [], []
    for index in range(200):
        hint_map = simulated_hint_map(target, 1, [index, 3]).numpy()
        rows, cols = np.nonzero(hint_map[..., 3])
        height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
        assert height == width or rows.min() == 0 or cols.min() == 0 or rows.max() == 255 or cols.max() == 255
        sides.append(max(height, width))
        centers.append((rows.mean(), cols.mean()))
        # Every pixel of the patch has one color: the mean true color under it (plus a little noise).
        colors = hint_map[rows, cols, :3]
        assert np.ptp(colors, axis=0).max() < 1e-6
        true_mean = target.numpy()[rows, cols].mean(axis=0)
        assert np.abs(colors[0] - true_mean).max() < 0.1
    assert min(sides) == 1 and max(sides) == MAX_PATCH_SIDE
    spread = np.std(np.array(centers), axis=0)
    assert np.all(np.abs(np.mean(centers, axis=0) - 127.5) < 15) and np.all((spread > 45) & (spread < 75))
    colored = simulated_hint_map(solid, 10, [0, 5]).numpy()
    mask = colored[..., 3] > 0
    np.testing.assert_allclose(
        colored[mask][:, :3], np.broadcast_to([0.5, -0.25, 0.0], (mask.sum(), 3)), atol=0.1
    )
    assert np.all(colored[~mask] == 0), "outside the hints the map must be all zero, mask included"


def test_validation_hints_are_fixed_and_training_hints_vary():
    targets = tf.random.uniform([3, 256, 256, 3], -1.0, 1.0, seed=2)
    first, again = validation_hint_maps(targets).numpy(), validation_hint_maps(targets).numpy()
    np.testing.assert_array_equal(first, again)
    assert all(0 < first[index, ..., 3].sum() for index in range(3))
    maps = [training_hint_map(targets[0], tf.constant([seed, 0], tf.int64)).numpy() for seed in range(6)]
    assert len({hint_map.tobytes() for hint_map in maps}) > 1


def test_a_black_hint_differs_from_no_hint():
    rgba = np.zeros((1, 4, 4, 4), np.uint8)
    rgba[0, 1, 1] = (0, 0, 0, 255)  # a black hint
    rgba[0, 2, 2] = (255, 0, 0, 0)  # color without alpha: no hint
    hint_map = rgba_to_hint_map(tf.constant(rgba)).numpy()[0]
    np.testing.assert_array_equal(hint_map[1, 1], [-1, -1, -1, 1])
    np.testing.assert_array_equal(hint_map[2, 2], [0, 0, 0, 0])


def test_a_hint_layer_lands_where_the_sketch_does_and_a_thin_stroke_survives():
    width, height = 1600, 800
    sketch = Image.new("RGB", (width, height), "white")
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    pen = ImageDraw.Draw(layer)
    pen.line([(400, 200), (1200, 200)], fill=(250, 20, 30, 255), width=1)  # 1 px at a 6x downscale
    pen.rectangle([100, 600, 160, 660], fill=(20, 40, 250, 128))  # half-transparent still counts
    mapped = prepare_hints(layer)
    assert mapped.shape == (256, 256, 4) and mapped.dtype == np.uint8
    left, top, right, bottom = content_box(width, height)
    scale = (right - left) / width
    row = top + int(200 * scale)
    stroke = mapped[row - 1 : row + 2, left + int(450 * scale) : left + int(1150 * scale)]
    assert (stroke[..., 3].max(axis=0) == 255).all(), "the 1-px stroke must survive the downscale everywhere"
    assert tuple(stroke[stroke[..., 3] > 0][0, :3]) == (250, 20, 30)
    assert mapped[top + int(630 * scale), left + int(130 * scale)].tolist() == [20, 40, 250, 255]
    assert mapped[:top, :, 3].max() == 0 and mapped[bottom:, :, 3].max() == 0, "nothing on the padding"
    # The same size and aspect as the sketch: the layer and the sketch share one mapping.
    assert prepare_sketch(sketch).shape[:2] == mapped.shape[:2]


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_a_layer_without_alpha_is_refused(mode):
    with pytest.raises(NoHintAlpha, match="no alpha channel"):
        prepare_hints(Image.new(mode, (32, 32)))


def test_a_palette_image_with_a_transparent_color_is_a_hint_layer():
    layer = Image.new("P", (64, 64), 0)
    layer.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    layer.info["transparency"] = 0
    ImageDraw.Draw(layer).rectangle([10, 10, 20, 20], fill=1)
    mapped = prepare_hints(layer)
    assert mapped[250, 250].tolist() == [0, 0, 0, 0]  # the transparent palette color: no hint
    assert mapped[15 * 4, 15 * 4].tolist() == [255, 0, 0, 255]  # 64 px scaled up to 256


def test_a_hint_model_publishes_both_signatures_and_a_plain_model_only_one(models_dir):
    hinted = publish_generator(build_generator(TINY_WIDTH, hints=True), models_dir, {"job_id": None})
    plain = publish_generator(build_generator(TINY_WIDTH), models_dir, {"job_id": None})
    assert hinted.manifest["hints"] is True and plain.manifest["hints"] is False
    assert hinted.manifest["hints_signature"]["inputs"]["hints"]["shape"] == [None, 256, 256, 4]
    assert "hints_signature" not in json.loads((plain.path / "manifest.json").read_text())
    loaded = tf.saved_model.load(str(hinted.path))
    assert set(loaded.signatures) == {"serving_default", "colorize_with_hints"}
    assert set(tf.saved_model.load(str(plain.path)).signatures) == {"serving_default"}

    colorize = load_serving_function(hinted.path)
    sketches = np.random.default_rng(0).integers(0, 256, (7, 256, 256, 3), dtype=np.uint8)
    empty = np.zeros((7, 256, 256, 4), np.uint8)
    # serving_default (what TF Serving sends) is the hint signature with an empty layer, exactly.
    np.testing.assert_array_equal(colorize(sketches).numpy(), colorize(sketches, empty).numpy())
    hints = empty.copy()
    hints[:, 100:120, 100:120] = (255, 0, 0, 255)
    batch = colorize(sketches, hints).numpy().astype(int)
    for index in (0, 3, 6):  # alone or inside the batch: within 1 level (the batching contract)
        alone = colorize(sketches[index : index + 1], hints[index : index + 1]).numpy()[0].astype(int)
        assert np.abs(alone - batch[index]).max() <= 1
    # The hint pixels take the hint's color at once (the shortcut starts as a paste).
    assert np.abs(batch[:, 100:120, 100:120] - [255, 0, 0]).max() <= 2
    with pytest.raises(ValueError, match="trained without hints"):
        load_serving_function(plain.path)(sketches, hints)
