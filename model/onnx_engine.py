"""An ONNX copy of a published version, and ONNX Runtime as the engine for lone requests where it wins.

Lone requests are the common case for a drawing page, and ONNX Runtime runs a batch of one faster than
TensorFlow on some CPUs (bench/bench_onnx.py). So, when the optional extra is installed (`.[onnx]`), publishing
also writes `model.onnx` beside the SavedModel (which stays the source of truth and keeps TF Serving's layout),
converted from the very graph of the published signature (`colorize_with_hints` for a hint model, so one ONNX
graph serves both kinds of request), in a child process that exits when done (`write_onnx`). Loading a version then builds a session, checks its output against the
SavedModel's (within 1 level of 255 on 99.9% of values) and times a batch of one on both; the faster serves
batches of one. Anything wrong with the ONNX copy only means TensorFlow serves everything.
"""

import importlib.metadata
import importlib.util
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.onnx_convert import OPSET, PARENT_VARIABLE
from storage.versions import MANIFEST

ONNX_FILE = "model.onnx"
AGREEMENT = 0.999
CONVERT_TIMEOUT_SECONDS = 1800.0
WATCH_INTERVAL_SECONDS = 0.1
logger = logging.getLogger("sketch2color.export")


def onnx_export_available() -> bool:
    return importlib.util.find_spec("tf2onnx") is not None


def onnx_runtime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


class OnnxConversionFailed(Exception):
    """The converter process failed, ran out of its memory or time, or wrote nothing; the message says which
    (without server paths: it goes into the manifest)."""


def write_onnx(
    folder: str | os.PathLike,
    hints: bool,
    memory_limit_bytes: int | None = None,
    timeout_seconds: float = CONVERT_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """Convert the SavedModel in `folder` (the published signature's graph: `colorize_with_hints` for a hint
    model) into `folder/model.onnx`, in a child process (model/onnx_convert.py); return what the manifest
    records about it.

    A child, because tf2onnx's peak is many times the weights and a process keeps what it once took: the
    publishing worker's memory is the same after as before. The child is stopped when its RSS passes
    `memory_limit_bytes` (default: 90% of the memory available when it starts) or after `timeout_seconds`;
    then, as on any failure, OnnxConversionFailed is raised and nothing is left at `folder/model.onnx`.
    """
    output = Path(folder) / ONNX_FILE
    limit = memory_limit_bytes or _memory_available_bytes() * 9 // 10
    command = [sys.executable, "-m", "model.onnx_convert", str(folder),
               "serve_with_hints" if hints else "serve", str(output)]  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(command, env=_converter_environment(), stdout=errors, stderr=errors)
        peak, stopped_because = _watch(child, limit, timeout_seconds)
        errors.seek(0)
        error_tail = errors.read()[-3000:].decode(errors="replace")
    seconds = round(time.perf_counter() - started, 1)
    if stopped_because is None and child.returncode == 0 and output.is_file():
        return {"file": ONNX_FILE, "opset": OPSET, "tf2onnx": importlib.metadata.version("tf2onnx"), "convert_seconds": seconds,
                "converter_peak_mib": peak // 2**20}  # fmt: skip
    output.unlink(missing_ok=True)
    reason = stopped_because or f"the converter exited with code {child.returncode}"
    logger.error("ONNX conversion failed after %.1f s: %s; its output:\n%s", seconds, reason, error_tail)
    raise OnnxConversionFailed(reason)


def _watch(child: subprocess.Popen, limit: int, timeout_seconds: float) -> tuple[int, str | None]:
    """Wait for `child`, sampling its RSS; kill it past `limit` bytes or `timeout_seconds`. (peak RSS seen, why
    it was stopped or None)."""
    deadline = time.perf_counter() + timeout_seconds
    peak = 0
    while child.poll() is None:
        rss = _rss_bytes(child.pid)
        peak = max(peak, rss)
        reason = None
        if rss > limit:
            reason = f"the converter used more than {limit // 2**20} MiB of memory and was stopped"
        elif time.perf_counter() > deadline:
            reason = f"the converter took longer than {timeout_seconds:.0f} s and was stopped"
        if reason is not None:
            child.kill()
            child.wait()
            return peak, reason
        time.sleep(WATCH_INTERVAL_SECONDS)
    return peak, None


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:  # gone meanwhile, or no /proc (then only the timeout and the OOM killer's choice apply)
        pass
    return 0


def _memory_available_bytes() -> int:
    """What the machine (or the container's memory cgroup, when smaller) can still give."""
    available = 1 << 62
    try:
        meminfo = Path("/proc/meminfo").read_text()
        available = int(meminfo.split("MemAvailable:")[1].split()[0]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    try:
        cgroup_max = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if cgroup_max != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            available = min(available, int(cgroup_max) - used)
    except (OSError, ValueError):
        pass
    return max(available, 0)


def _converter_environment() -> dict[str, str]:
    """The converter finds this project's code, and runs on the CPU: a GPU stays the trainer's."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2",
            PARENT_VARIABLE: str(os.getpid())}  # fmt: skip


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
