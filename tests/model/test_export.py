import json
import threading

import numpy as np
import pytest
import tensorflow as tf

from model.export import colorize_in_memory, publish_generator
from model.networks import build_generator
from model.versions import latest_version, list_versions, resolve_model_path

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


def test_exported_signature_is_deterministic_and_batch_independent(generator, models_dir):
    signature = tf.saved_model.load(str(publish_generator(generator, models_dir, MANIFEST).path)).signatures[
        "serving_default"
    ]
    sketches = _sketches(5, seed=1)
    batched = signature(sketch=tf.constant(sketches))["image"].numpy()
    for index in range(5):
        alone = signature(sketch=tf.constant(sketches[index : index + 1]))["image"].numpy()[0]
        np.testing.assert_array_equal(alone, batched[index], err_msg=f"image {index} changed inside a batch")
    np.testing.assert_array_equal(batched, signature(sketch=tf.constant(sketches))["image"].numpy())


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
