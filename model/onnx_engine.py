"""An ONNX copy of a published version, and ONNX Runtime as the engine for lone requests where it wins.

Lone requests are the common case for a drawing page, and ONNX Runtime runs a batch of one faster than
TensorFlow on some CPUs (bench/bench_onnx.py). So, when the optional extra is installed (`.[onnx]`), publishing
also writes `model.onnx` beside the SavedModel (which stays the source of truth and keeps TF Serving's layout),
converted from the very graph of the published signature (`colorize_with_hints` for a hint model, so one ONNX
graph serves both kinds of request). Loading a version then builds a session, checks its output against the
SavedModel's (within 1 level of 255 on 99.9% of values) and times a batch of one on both; the faster serves
batches of one. Anything wrong with the ONNX copy only means TensorFlow serves everything.
"""

import importlib.util
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from storage.versions import MANIFEST

ONNX_FILE = "model.onnx"
OPSET = 17
AGREEMENT = 0.999


def onnx_export_available() -> bool:
    return importlib.util.find_spec("tf2onnx") is not None


def onnx_runtime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def write_onnx(module: Any, folder: str | os.PathLike) -> dict[str, Any]:
    """Convert a `model.export.ServingGenerator`'s signature graph into `folder/model.onnx`; return what the
    manifest records about it."""
    import tf2onnx

    started = time.perf_counter()
    function = module.serve_with_hints if module.hints else module.serve
    tf2onnx.convert.from_function(
        function,
        input_signature=function.input_signature,
        opset=OPSET,
        output_path=str(Path(folder) / ONNX_FILE),
    )
    return {"file": ONNX_FILE, "opset": OPSET, "tf2onnx": tf2onnx.__version__,
            "convert_seconds": round(time.perf_counter() - started, 1)}  # fmt: skip


class OnnxColorizer:
    """A version's ONNX copy on ONNX Runtime's CPU engine: `(sketches, hints=None) -> uint8 images`, as the
    SavedModel's signatures answer (a hint model without hints gets an empty hint layer)."""

    def __init__(self, onnx_path: Path, accepts_hints: bool):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        self.accepts_hints = accepts_hints

    def __call__(self, sketches: np.ndarray, hint_layers: np.ndarray | None = None) -> np.ndarray:
        feeds = {"sketch": sketches}
        if self.accepts_hints:
            feeds["hints"] = (
                hint_layers if hint_layers is not None else np.zeros((*sketches.shape[:3], 4), np.uint8)
            )
        elif hint_layers is not None:
            raise ValueError("this version was trained without hints")
        return self.session.run(None, feeds)[0]


def load_onnx_colorizer(version_path: Path) -> OnnxColorizer | None:
    """The version's ONNX copy, ready to run without TensorFlow (a one-off colorize starts in a second instead
    of TensorFlow's many); None when it has none, onnxruntime is missing or the copy does not load."""
    onnx_path = version_path / ONNX_FILE
    if not onnx_path.is_file() or not onnx_runtime_available():
        return None
    try:
        manifest = json.loads((version_path / MANIFEST).read_text())
        return OnnxColorizer(onnx_path, bool(manifest.get("hints")))
    except Exception:  # an unreadable manifest or a broken copy: TensorFlow colorizes instead
        return None


@dataclass(frozen=True)
class OnnxChoice:
    """Whether ONNX Runtime serves batches of one, and why."""

    engine: str  # "onnxruntime" or "tensorflow"
    reason: str
    onnx_ms: float | None = None
    tensorflow_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"batch_1": self.engine, "reason": self.reason, "onnx_ms": self.onnx_ms,
                "tensorflow_ms": self.tensorflow_ms}  # fmt: skip


def choose_batch1_engine(
    version_path: Path, tensorflow_call: Callable[..., np.ndarray], hints: bool, timing_calls: int = 3
) -> tuple[OnnxChoice, Callable[..., np.ndarray] | None]:
    """(the choice, the ONNX call `(sketches, hints=None) -> uint8 images` if it serves batches of one)."""
    onnx_path = version_path / ONNX_FILE
    if not onnx_path.is_file():
        return OnnxChoice("tensorflow", "no ONNX copy in the version folder"), None
    if not onnx_runtime_available():
        return OnnxChoice("tensorflow", "onnxruntime is not installed"), None
    try:
        onnx_call = OnnxColorizer(onnx_path, hints)
        probe = _probe_sketch()
        agreement = float((np.abs(onnx_call(probe).astype(int) - tensorflow_call(probe)) <= 1).mean())
    except Exception as error:  # a broken or foreign ONNX file: TensorFlow serves
        return OnnxChoice(
            "tensorflow", f"the ONNX copy does not run: {type(error).__name__}: {error}"[:300]
        ), None
    if agreement < AGREEMENT:
        return OnnxChoice("tensorflow", f"the ONNX copy agrees within 1 level on only {agreement:.2%}"), None
    onnx_times, tensorflow_times = [], []
    for _ in range(timing_calls):  # taking turns, so both see the same load
        onnx_times.append(_seconds(onnx_call, probe))
        tensorflow_times.append(_seconds(tensorflow_call, probe))
    onnx_ms, tensorflow_ms = (
        round(statistics.median(times) * 1000, 1) for times in (onnx_times, tensorflow_times)
    )
    if onnx_ms < tensorflow_ms:
        return OnnxChoice("onnxruntime", "faster at batch 1", onnx_ms, tensorflow_ms), onnx_call
    return OnnxChoice("tensorflow", "not faster at batch 1", onnx_ms, tensorflow_ms), None


def _probe_sketch() -> np.ndarray:
    """A white page with a few dark strokes: a sketch-like input for the agreement check and the timing."""
    sketch = np.full((1, 256, 256, 3), 255, np.uint8)
    sketch[0, 60:64, 40:220] = 0
    sketch[0, 40:220, 120:123] = 0
    sketch[0, 150:200, 60:200:7] = 30
    return sketch


def _seconds(call: Callable[[np.ndarray], Any], sketch: np.ndarray) -> float:
    started = time.perf_counter()
    call(sketch)
    return time.perf_counter() - started
