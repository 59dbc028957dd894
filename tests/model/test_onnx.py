"""The ONNX copy of a published version (the onnx extra, installed by the test environment)."""

import numpy as np
import pytest

from model.export import load_serving_function, publish_generator
from model.imageio import prepare_sketch
from model.networks import build_generator
from model.onnx_engine import ONNX_FILE, choose_batch1_engine
from model.synthetic import draw_pair, pair_rng
from tests.conftest import TINY_WIDTH

SKETCHES = np.stack([prepare_sketch(draw_pair(pair_rng(0, "val", index))[1]) for index in range(3)])


def _tensorflow(version_path):
    colorize = load_serving_function(version_path)
    return lambda sketches, hints=None: colorize(sketches, hints).numpy()


@pytest.mark.parametrize("hints", [False, True])
def test_publishing_writes_an_onnx_copy_that_agrees_with_the_saved_model(models_dir, hints):
    published = publish_generator(build_generator(TINY_WIDTH, hints=hints), models_dir, {}, onnx=True)
    assert (published.path / ONNX_FILE).is_file() and (published.path / "saved_model.pb").is_file()
    assert published.manifest["onnx"]["file"] == ONNX_FILE and published.manifest["onnx"]["opset"] == 17
    tensorflow = _tensorflow(published.path)
    choice, onnx_call = choose_batch1_engine(published.path, tensorflow, hints)
    assert choice.onnx_ms and choice.tensorflow_ms, f"both engines should be timed: {choice}"
    assert (choice.engine == "onnxruntime") == (onnx_call is not None), choice
    # Whichever serves, the ONNX graph itself computes the signature within 1 level.
    import onnxruntime

    session = onnxruntime.InferenceSession(
        str(published.path / ONNX_FILE), providers=["CPUExecutionProvider"]
    )
    layers = np.zeros((3, 256, 256, 4), np.uint8)
    layers[:, 90:110, 90:110] = (200, 40, 40, 255)
    feeds = {"sketch": SKETCHES, **({"hints": layers} if hints else {})}
    expected = tensorflow(SKETCHES, layers if hints else None)
    difference = np.abs(session.run(None, feeds)[0].astype(int) - expected)
    assert (difference <= 1).mean() >= 0.999 and difference.max() <= 2, f"max difference {difference.max()}"


def test_without_the_flag_there_is_no_onnx_copy(models_dir):
    published = publish_generator(build_generator(TINY_WIDTH), models_dir, {})
    assert not (published.path / ONNX_FILE).exists() and "onnx" not in published.manifest
    choice, onnx_call = choose_batch1_engine(published.path, _tensorflow(published.path), False)
    assert (choice.engine, onnx_call) == ("tensorflow", None) and "no ONNX copy" in choice.reason


def test_a_broken_onnx_copy_leaves_tensorflow_serving(models_dir):
    published = publish_generator(
        build_generator(TINY_WIDTH), models_dir, {}
    )  # no conversion: it is replaced
    (published.path / ONNX_FILE).write_bytes(b"not an onnx graph")
    choice, onnx_call = choose_batch1_engine(published.path, _tensorflow(published.path), False)
    assert (choice.engine, onnx_call) == ("tensorflow", None) and "does not run" in choice.reason
