import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from model.data import DatasetError, jitter_pair, list_pairs, load_pair, make_dataset


def _write_pair(path, left, right):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([left, right], axis=1).astype(np.uint8)).save(path)


def _solid(color, size=64):
    return np.full((size, size, 3), color, np.uint8)


def test_left_half_is_target_and_right_half_is_sketch(tmp_path):
    _write_pair(tmp_path / "pair.png", _solid((255, 0, 0)), _solid((0, 0, 255)))
    sketch, target = load_pair(tf.constant(str(tmp_path / "pair.png")))
    np.testing.assert_allclose(
        sketch.numpy()[0, 0], [-1, -1, 1], err_msg="sketch must come from the RIGHT half"
    )
    np.testing.assert_allclose(
        target.numpy()[0, 0], [1, -1, -1], err_msg="target must come from the LEFT half"
    )
    swapped_sketch, swapped_target = load_pair(tf.constant(str(tmp_path / "pair.png")), sketch_side="left")
    np.testing.assert_allclose(swapped_sketch.numpy()[0, 0], [1, -1, -1])
    np.testing.assert_allclose(swapped_target.numpy()[0, 0], [-1, -1, 1])


def test_jitter_applies_the_same_crop_and_mirror_to_both_images():
    columns, rows = np.meshgrid(np.linspace(-1, 1, 256), np.linspace(-1, 0.5, 256))
    gradient = np.stack([columns, rows, np.zeros((256, 256))], -1)
    image = tf.constant(gradient, tf.float32)
    corners = set()
    for _ in range(12):
        sketch, target = jitter_pair(image, image)
        assert sketch.shape == (256, 256, 3)
        np.testing.assert_array_equal(
            sketch.numpy(), target.numpy(), err_msg="sketch and target were jittered differently"
        )
        corners.add(tuple(np.round(sketch.numpy()[0, 0, :2], 3)))
    assert len(corners) > 3, f"jitter should move the crop and mirror the image; saw corners {corners}"


def test_training_batches_have_the_promised_shape_and_range(tmp_path):
    for index in range(3):
        _write_pair(tmp_path / "train" / f"{index}.png", _solid(index * 80, 40), _solid(255, 40))
    _write_pair(tmp_path / "val" / "0.jpg", _solid(10, 30), _solid(200, 30))
    sketches, targets = next(iter(make_dataset(tmp_path, "train", batch_size=2, training=True)))
    assert sketches.shape == targets.shape == (2, 256, 256, 3)
    assert -1.0 <= float(tf.reduce_min(targets)) and float(tf.reduce_max(targets)) <= 1.0
    val_sketches, _ = next(iter(make_dataset(tmp_path, "val", batch_size=4, training=False)))
    assert val_sketches.shape == (1, 256, 256, 3), "JPEG pairs of any size load and resize to 256"


def test_missing_and_empty_folders_are_named(tmp_path):
    with pytest.raises(DatasetError, match=r"missing folder .*train"):
        list_pairs(tmp_path, "train")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetError, match=r"no PNG or JPEG images in .*train"):
        list_pairs(tmp_path, "train")


def test_unreadable_image_is_named(tmp_path):
    _write_pair(tmp_path / "train" / "good.png", _solid(0), _solid(255))
    (tmp_path / "train" / "broken.png").write_bytes(b"this is not a png")
    with pytest.raises(DatasetError, match=r"unreadable image .*broken\.png"):
        list_pairs(tmp_path, "train")


def test_wrong_aspect_ratio_is_named(tmp_path):
    Image.fromarray(_solid(0, 64)).save(tmp_path / "square.png")
    (tmp_path / "train").mkdir()
    (tmp_path / "square.png").rename(tmp_path / "train" / "square.png")
    with pytest.raises(DatasetError, match=r"wrong aspect ratio in .*square\.png: 64x64"):
        list_pairs(tmp_path, "train")


def test_sample_grids_are_ordered_by_epoch_number(tmp_path):
    from storage.layout import sample_grids

    for name in (
        "epoch_9999.png",
        "epoch_10000.png",
        "epoch_0002.png",
        ".epoch_0003.tmp.png",
        "progress.gif",
    ):
        (tmp_path / name).write_bytes(b"")
    assert [path.name for path in sample_grids(tmp_path)] == [
        "epoch_0002.png",
        "epoch_9999.png",
        "epoch_10000.png",
    ]
