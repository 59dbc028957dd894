"""The ONNX conversion runs in a child process (reliability row 6): the publishing process (a worker) is no
bigger after it than before (tf2onnx's peak, about 10 GiB for a width-64 generator, used to stay in the worker),
and a conversion that fails, here stopped by its memory cap, fails alone: the version is published without
its ONNX copy, the manifest says why, and TensorFlow serves it."""

import resource
from pathlib import Path

import numpy as np

from model.export import load_serving_function, publish_generator
from model.networks import build_generator
from model.onnx_engine import ONNX_FILE, choose_batch1_engine
from tests.conftest import TINY_WIDTH

# The in-process conversion of a width-8 generator grew the publishing process by about 270 MiB.
GROWTH_ALLOWED_MIB = 64


def rss_mib() -> int:
    line = next(
        line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmRSS:")
    )
    return int(line.split()[1]) // 1024


def test_the_conversion_leaves_the_publishing_process_as_big_as_before(models_dir: Path):
    generator = build_generator(TINY_WIDTH)
    publish_generator(generator, models_dir, {})  # the SavedModel's own first-time costs (tracing, saving)
    before = rss_mib()
    published = publish_generator(generator, models_dir, {}, onnx=True)
    growth = rss_mib() - before
    record = published.manifest["onnx"]
    assert (published.path / ONNX_FILE).is_file() and record["file"] == ONNX_FILE, record
    assert growth < GROWTH_ALLOWED_MIB, f"publishing with an ONNX copy grew this process by {growth} MiB"
    children_peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    assert 0 < record["converter_peak_mib"] <= children_peak_mib, (
        f"the conversion should run in a child: {record}, children's peak {children_peak_mib} MiB"
    )


def test_a_converter_past_its_memory_cap_fails_alone_and_tensorflow_serves(models_dir: Path):
    published = publish_generator(
        build_generator(TINY_WIDTH), models_dir, {}, onnx=True, onnx_memory_limit_bytes=48 * 2**20
    )
    assert published.manifest["onnx"] == {
        "error": "the converter used more than 48 MiB of memory and was stopped"
    }, published.manifest
    assert published.version == 1 and published.path.is_dir() and not (published.path / ONNX_FILE).exists()
    colorize = load_serving_function(published.path)
    assert colorize(np.full((1, 256, 256, 3), 255, np.uint8)).numpy().shape == (1, 256, 256, 3)
    choice, onnx_call = choose_batch1_engine(published.path, lambda s, h=None: colorize(s, h).numpy(), False)
    assert (choice.engine, onnx_call) == ("tensorflow", None) and "no ONNX copy" in choice.reason, choice
