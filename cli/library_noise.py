"""Library start-up chatter kept off the terminal: TensorFlow's C++ lines and CUDA probing.

TensorFlow writes some lines to file descriptor 2 before its logging is set up (no setting turns them off), and
on a machine without a GPU an `E0000 ... failed call to cuInit` that reads like an error. `up` drops them from
its children's output; a command run alone (`serve`, `colorize`, `train`, `worker`) drops them from its own
stderr by passing that descriptor through a filter thread.
"""

import atexit
import logging
import os
import sys
import threading

# absl logging before it is initialised, CUDA probing on machines without a GPU, CPU-feature advice.
NOISE_PREFIXES = ("I0000 ", "W0000 ", "WARNING: All log messages before absl::InitializeLog()")
NOISE_FRAGMENTS = ("failed call to cuInit", "Could not find cuda drivers", "To enable the following instructions",
                   "rebuild TensorFlow with the appropriate compiler flags", "oneDNN custom operations")  # fmt: skip
DRAIN_SECONDS = 2.0

_installed = False


def is_library_noise(line: str) -> bool:
    return line.startswith(NOISE_PREFIXES) or any(fragment in line for fragment in NOISE_FRAGMENTS)


def drop_library_noise_from_stderr() -> None:
    """From now on, lines on file descriptor 2 (C++ libraries write there directly) that are library noise
    are dropped; every other line reaches the real stderr, also at exit."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.stderr.flush()
    real_stderr = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_pass_on, args=(read_end, real_stderr), name="stderr-filter", daemon=True)
    pump.start()
    atexit.register(_restore, real_stderr, pump)


def _pass_on(read_end: int, real_stderr: int) -> None:
    with os.fdopen(read_end, "rb") as lines:
        for line in lines:
            if not is_library_noise(line.decode(errors="replace")):
                _write_all(real_stderr, line)


def _write_all(descriptor: int, data: bytes) -> None:
    while data:
        data = data[os.write(descriptor, data) :]


def _restore(real_stderr: int, pump: threading.Thread) -> None:
    """Give fd 2 back: the pipe's last write end here closes, so the filter passes on what is left and ends."""
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(real_stderr, 2)
    pump.join(DRAIN_SECONDS)


# Python loggers whose INFO lines describe the libraries' own steps (TensorFlow's "Assets written to", tf2onnx's
# conversion and optimisation passes): shown only at debug.
LIBRARY_LOGGERS = ("tensorflow", "tf2onnx", "absl", "h5py")


def quiet_library_loggers(more: tuple[str, ...] = ()) -> None:
    for name in (*LIBRARY_LOGGERS, *more):
        logging.getLogger(name).setLevel(logging.WARNING)
