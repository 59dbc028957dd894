"""What publishing a version costs the publishing process in memory, with and without its ONNX copy
(reliability row 6).

Each case runs in a fresh process: build a generator of the given width (a job's default: width 64, hints),
run it once, then publish it (model/export.py's publish_generator) into a scratch models folder. Peak RSS during
the publish is Linux's VmHWM after resetting it just before (/proc/self/clear_refs); the RSS after is read once
the publish returned. The converter process's peak is the one its watcher sampled (the manifest's
`onnx.converter_peak_mib`). Linux only.

    .venv/bin/python bench/bench_onnx_memory.py [--ngf 64] [--no-hints]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def measure(ngf: int, hints: bool, onnx: bool) -> dict:
    """One case, in this process."""
    import resource

    import numpy as np

    from model.export import colorize_in_memory, publish_generator
    from model.networks import build_generator

    generator = build_generator(ngf, hints=hints)
    colorize_in_memory(generator, np.zeros((1, 256, 256, 3), np.uint8))
    before = status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS: the peak from here on
    started = time.perf_counter()
    published = publish_generator(generator, Path(tempfile.mkdtemp(prefix="bench-publish-")), {}, onnx=onnx)
    seconds = time.perf_counter() - started
    return {
        "ngf": ngf,
        "hints": hints,
        "onnx": onnx,
        "onnx_written": (published.path / "model.onnx").is_file(),
        "seconds": round(seconds, 1),
        "rss_before_mib": before // 1024,
        "peak_mib": status_kib("VmHWM") // 1024,
        "rss_after_mib": status_kib("VmRSS") // 1024,
        "children_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
        "converter_peak_mib": published.manifest.get("onnx", {}).get("converter_peak_mib"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--no-hints", action="store_true")
    parser.add_argument("--case", choices=["savedmodel", "onnx"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    hints = not args.no_hints
    if args.case:
        print(json.dumps(measure(args.ngf, hints, args.case == "onnx")))
        return
    rows = []
    for case in ("savedmodel", "onnx"):
        command = [sys.executable, __file__, "--ngf", str(args.ngf), "--case", case]
        command += ["--no-hints"] if not hints else []
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"case {case} failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"publishing a width-{args.ngf} generator{' with hints' if hints else ''}, MiB:")
    print("| publish | seconds | RSS before | peak | RSS after | converter process's peak | model.onnx |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for row in rows:
        label = "SavedModel + ONNX copy" if row["onnx"] else "SavedModel alone"
        print(f"| {label} | {row['seconds']} | {row['rss_before_mib']} | {row['peak_mib']} | "
              f"{row['rss_after_mib']} | {row['converter_peak_mib'] or '-'} | {row['onnx_written']} |")  # fmt: skip


if __name__ == "__main__":
    main()
