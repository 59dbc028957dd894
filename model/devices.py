"""Where and in what precision a run trains: the distribution strategy and the mixed-precision policy.

Chosen from this machine's devices (model/train.py asks once per run); measurements in bench/RESULTS.md.
"""

from pathlib import Path

import tensorflow as tf

__all__ = ["choose_precision", "choose_strategy", "cpu_has_bf16"]


def choose_strategy() -> tf.distribute.Strategy:
    """All GPUs of this machine when it has several, else the default (single device) strategy."""
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


# bfloat16 matrix units: on such CPUs mixed_bfloat16 trains faster from width 32 up, with the same loss curves,
# and slower at tiny widths (bench/RESULTS.md: 1.30x float32's images/s at width 32, 1.45-1.63x at 64).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
BF16_MIN_WIDTH = 32


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def choose_precision(requested: str, width: int = 64) -> str:
    """`auto`: mixed_float16 on GPUs, mixed_bfloat16 on CPUs with bfloat16 units at width >= 32, else float32."""
    if requested != "auto":
        return requested
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if width >= BF16_MIN_WIDTH and cpu_has_bf16() else "float32"
