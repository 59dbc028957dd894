import json
import threading

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from model.export import colorize_in_memory, publish_generator
from model.networks import build_generator
from storage.versions import latest_version, list_versions, resolve_model_path

MANIFEST = {"job_id": "test", "step": 0, "epoch": 0, "model": {"ngf": 8}}


@pytest.fixture(scope="module")
def generator():
    return build_generator(ngf=8)


def _sketches(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 256, 256, 3), dtype=np.uint8)


def test_published_version_loads_with_plain_tensorflow_and_matches_memory(generator, models_dir):
    published = publish_generator(generator, models_dir, MANIFEST)
    assert published.version == 1 and published.path == models_dir / "generator" / "1"
    signature = tf.saved_model.load(str(published.path)).signatures["serving_default"]
    sketches = _sketches(3)
    exported = signature(sketch=tf.constant(sketches))["image"].numpy()
    assert exported.dtype == np.uint8 and exported.shape == (3, 256, 256, 3)
    np.testing.assert_array_equal(exported, colorize_in_memory(generator, sketches).numpy())

    manifest = json.loads((published.path / "manifest.json").read_text())
    assert (
        manifest["version"] == 1 and manifest["job_id"] == "test" and manifest["created"].endswith("+00:00")
    )
    assert manifest["signature"]["inputs"]["sketch"]["dtype"] == "uint8"


def _real_sketches(count: int) -> np.ndarray:
    """Sketch halves of synthetic pairs (lines on white), as users send them, not noise."""
    import tempfile
    from pathlib import Path

    from model.synthetic import make_synthetic_dataset

    with tempfile.TemporaryDirectory() as scratch:
        make_synthetic_dataset(Path(scratch), train=count, val=1, seed=7)
        files = sorted((Path(scratch) / "train").glob("*.png"))
        sketches = []
        for file in files:
            with Image.open(file) as pair:
                half = pair.crop((pair.width // 2, 0, pair.width, pair.height)).convert("RGB")
                sketches.append(np.asarray(half.resize((256, 256))))
    return np.stack(sketches)


def test_exported_signature_is_deterministic_and_an_image_is_the_same_alone_or_in_any_batch(models_dir):
    """The contract: one batched graph; alone vs. in a batch of 1, 2, 7 or 16, at most 1 level apart."""
    keras_generator = build_generator(ngf=16)
    signature = tf.saved_model.load(
        str(publish_generator(keras_generator, models_dir, MANIFEST).path)
    ).signatures["serving_default"]
    sketches = _real_sketches(16)
    alone = np.stack(
        [signature(sketch=tf.constant(sketches[i : i + 1]))["image"].numpy()[0] for i in range(16)]
    )
    for batch_size in (1, 2, 7, 16):
        batched = np.concatenate(
            [
                signature(sketch=tf.constant(sketches[start : start + batch_size]))["image"].numpy()
                for start in range(0, 16 - 16 % batch_size, batch_size)
            ]
        )
        difference = np.abs(batched.astype(int) - alone[: len(batched)].astype(int))
        assert difference.max() <= 1, (
            f"batch of {batch_size}: an image differs from its output alone by {difference.max()} levels "
            f"({np.count_nonzero(difference)} values differ)"
        )
    again = signature(sketch=tf.constant(sketches[:7]))["image"].numpy()
    np.testing.assert_array_equal(again, signature(sketch=tf.constant(sketches[:7]))["image"].numpy())


class PerImageServingGenerator(tf.Module):
    """How versions were exported before the batched graph: a tf.map_fn of single images."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    @tf.function(input_signature=[tf.TensorSpec([None, 256, 256, 3], tf.uint8, name="sketch")])
    def serve(self, sketch):
        def one(image):
            output = self.generator(tf.cast(image[tf.newaxis], tf.float32) / 127.5 - 1.0, training=False)
            return tf.cast(tf.clip_by_value(tf.round((output + 1.0) * 127.5), 0.0, 255.0), tf.uint8)[0]

        return {"image": tf.map_fn(one, sketch, fn_output_signature=tf.uint8)}


def test_versions_published_with_the_per_image_signature_keep_working(generator, models_dir):
    from model.export import load_serving_function

    old = models_dir / "generator" / "1"
    module = PerImageServingGenerator(generator)
    tf.saved_model.save(module, str(old), signatures={"serving_default": module.serve})
    (old / "manifest.json").write_text(json.dumps({"version": 1, **MANIFEST}))
    assert latest_version(models_dir).version == 1
    sketches = _real_sketches(3)
    served = load_serving_function(old)(sketches).numpy()
    current = colorize_in_memory(generator, sketches).numpy()
    assert served.shape == (3, 256, 256, 3)
    assert np.abs(served.astype(int) - current.astype(int)).max() <= 1


def test_half_written_and_hidden_folders_are_never_newest(generator, models_dir):
    publish_generator(generator, models_dir, MANIFEST)
    generator_dir = models_dir / "generator"
    (generator_dir / "7").mkdir()  # a copy in progress: no manifest, no saved_model.pb
    (generator_dir / "8").mkdir()
    (generator_dir / "8" / "saved_model.pb").write_bytes(
        b"partial"
    )  # manifest is written last, so still incomplete
    (generator_dir / ".tmp-abc").mkdir()
    assert [version.version for version in list_versions(models_dir)] == [1]
    assert latest_version(models_dir).version == 1
    assert resolve_model_path(generator_dir) == generator_dir / "1"
    assert resolve_model_path(models_dir) == generator_dir / "1"
    assert publish_generator(generator, models_dir, MANIFEST).version == 9, (
        "numbers must pass every folder seen"
    )


def test_version_numbers_are_never_reused_and_never_shared(generator, models_dir):
    first = publish_generator(generator, models_dir, MANIFEST)
    second = publish_generator(generator, models_dir, MANIFEST)
    for path in (first.path, second.path):
        for file in sorted(path.rglob("*"), reverse=True):
            file.rmdir() if file.is_dir() else file.unlink()
        path.rmdir()
    assert publish_generator(generator, models_dir, MANIFEST).version == 3, "a deleted number was reused"

    published = []
    threads = [
        threading.Thread(
            target=lambda: published.append(publish_generator(generator, models_dir, MANIFEST).version)
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(published) == [4, 5, 6], f"concurrent publishes must get distinct numbers, got {published}"
    assert not [path for path in (models_dir / "generator").iterdir() if path.name.startswith(".tmp-")]


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no published generator"):
        resolve_model_path(tmp_path)
