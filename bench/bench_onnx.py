"""Would ONNX Runtime serve lone requests faster than the SavedModel? Measured side by side in one run.

Converts the published signature's graph (the same tf.function the SavedModel holds) with tf2onnx (opset 17),
then alternates batch-1 calls of ONNX Runtime (CPU) and of TensorFlow on the same images, in rounds, so both see
the same machine load. Prints the conversion time, median (min-max) ms of each per round, their ratio, and how
many output values agree within 1 level of 255 (the adoption rule: faster at batch 1 AND within 1 level on
99.9% of pixels). Needs the optional extra: pip install -e ".[onnx]".

    .venv/bin/python bench/bench_onnx.py [--ngf 64] [--rounds 5] [--calls 5]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

from model.export import ServingGenerator  # noqa: E402
from model.imageio import prepare_sketch  # noqa: E402
from model.networks import build_generator  # noqa: E402
from model.synthetic import draw_pair, pair_rng  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5, help="batch-1 calls per engine per round")
    args = parser.parse_args()

    module = ServingGenerator(build_generator(args.ngf))
    spec = [tf.TensorSpec([None, 256, 256, 3], tf.uint8, name="sketch")]
    path = Path(tempfile.mkdtemp(prefix="bench-onnx-")) / "model.onnx"
    started = time.perf_counter()
    tf2onnx.convert.from_function(module.serve, input_signature=spec, opset=17, output_path=str(path))
    convert_seconds = time.perf_counter() - started
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    sketches = np.stack([prepare_sketch(draw_pair(pair_rng(0, "val", index))[1]) for index in range(8)])
    differences = np.concatenate([
        np.abs(session.run(None, {"sketch": sketch[None]})[0].astype(int)
               - module.serve(tf.constant(sketch[None]))["image"].numpy()).ravel()
        for sketch in sketches
    ])  # fmt: skip
    within_one = float((differences <= 1).mean())

    def per_call_ms(call) -> float:
        started = time.perf_counter()
        for index in range(args.calls):
            call(sketches[index % len(sketches)][None])
        return (time.perf_counter() - started) / args.calls * 1000

    def onnx_call(sketch):
        return session.run(None, {"sketch": sketch})[0]

    def tf_call(sketch):
        return module.serve(tf.constant(sketch))["image"].numpy()

    onnx_call(sketches[:1]), tf_call(sketches[:1])  # warm-up
    onnx_ms, tf_ms = [], []
    for _ in range(args.rounds):
        onnx_ms.append(per_call_ms(onnx_call))
        tf_ms.append(per_call_ms(tf_call))
    ratio = statistics.median(onnx_ms) / statistics.median(tf_ms)
    print(f"ngf={args.ngf}: tf2onnx {tf2onnx.__version__} (opset 17) conversion {convert_seconds:.1f} s; "
          f"ONNX Runtime {onnxruntime.__version__}")  # fmt: skip
    for name, values in (("ONNX Runtime", onnx_ms), ("TensorFlow (SavedModel graph)", tf_ms)):
        print(
            f"  {name:30} batch 1: {statistics.median(values):7.1f} ms ({min(values):.1f}-{max(values):.1f})"
        )
    print(f"  ONNX / TensorFlow: {ratio:.2f}x; values within 1 level: {within_one * 100:.3f}% "
          f"(max difference {differences.max()})")  # fmt: skip
    adopt = ratio < 1.0 and within_one >= 0.999
    print(f"  adopt by default (faster at batch 1 and within 1 level on 99.9%): {'yes' if adopt else 'no'}")


if __name__ == "__main__":
    main()
