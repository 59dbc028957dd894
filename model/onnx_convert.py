"""The ONNX conversion as a process of its own: `python -m model.onnx_convert SAVED_MODEL FUNCTION OUTPUT`.

tf2onnx holds several copies of the frozen graph's weights while it converts (a width-64 generator: about 10 GiB
in all), and a process does not give that memory back after, so the publisher (model/onnx_engine.py) runs the
conversion here, in a child that exits when done. It reads the version's SavedModel (already written) and
converts its traced method FUNCTION (`serve`, or `serve_with_hints` for a hint model: the graph of the
published signature) into OUTPUT. It offers itself to the kernel's out-of-memory killer first, so that when
memory runs out the conversion dies, not the worker that trains.
"""

import os
import signal
import sys
from pathlib import Path

OPSET = 17
PR_SET_PDEATHSIG = 1
PARENT_VARIABLE = "SKETCH2COLOR_CONVERTER_PARENT"  # set by the publisher: the pid the converter must outlive
# Pure-Python protobuf costs about 9 s more CPU per conversion (upb is faster), worth it only where the copies
# of the weights it saves are large: a width-64 generator's weights are 208 MiB, a width-8 one's 3 MiB.
PURE_PYTHON_PROTOBUF_ABOVE_BYTES = 32 * 2**20


def offer_to_oom_killer() -> None:
    """Be the out-of-memory killer's first choice (an unprivileged process may raise its own score)."""
    try:
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:  # not Linux, or a read-only /proc: the parent's memory watch still applies
        pass


def die_with_parent(parent: int) -> None:
    """A converter whose worker was killed stops too (Linux), instead of converting for nobody for minutes."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def convert(saved_model: str, function_name: str, output: str) -> None:
    if _weights_bytes(saved_model) > PURE_PYTHON_PROTOBUF_ABOVE_BYTES:
        # tf2onnx rewrites every node's proto after each of its optimizers, and protobuf's default (upb)
        # backend keeps each discarded copy of the weights in its arena until the model is done (about 24
        # copies of them); pure-Python messages free them. Set before anything imports protobuf.
        os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    # No deep copy of the whole graph before each optimizer (tf2onnx's rollback on error). An optimizer that
    # fails then fails the conversion, and TensorFlow serves the version alone.
    os.environ["TF2ONNX_CATCH_ERRORS"] = "FALSE"
    import tensorflow as tf
    import tf2onnx

    loaded = tf.saved_model.load(saved_model)
    function = getattr(loaded, function_name)
    specs, _ = function.concrete_functions[0].structured_input_signature  # the traced uint8 inputs, named
    tf2onnx.convert.from_function(function, input_signature=list(specs), opset=OPSET, output_path=output)


def _weights_bytes(saved_model: str) -> int:
    return sum(path.stat().st_size for path in (Path(saved_model) / "variables").glob("variables.data-*"))


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m model.onnx_convert SAVED_MODEL FUNCTION OUTPUT", file=sys.stderr)
        return 2
    die_with_parent(int(os.environ.get(PARENT_VARIABLE, os.getppid())))
    offer_to_oom_killer()
    convert(*argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
