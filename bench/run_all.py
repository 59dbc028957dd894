"""Run every benchmark on this machine and write bench/RESULTS.md.

One command, one report: the machine (CPU model, cores, the vector flags that matter to TensorFlow, versions),
then each figure as the median (min-max) over several runs or timed windows, and the ratios the targets name:

- training: our trainer against the TensorFlow tutorial's step (bench_train_baseline.py), speed and loss curves;
- the tf.data pipeline's images/s (bench_model.py's measurement, repeated);
- HTTP: POST /colorize latency and throughput against the bare generator (bench_http.py);
- cold start: process start of `uvicorn app.main:create_app` to the first colorized image (full width);
- peak RSS (VmHWM) of the API with one version loaded, and while a second version is published and swapped in
  under load; and of a training process;
- size=original (bench_fullsize.py);
- each format of POST /colorize after the model, PNG, PSD, ORA and zip (bench_layers.py);
- ONNX Runtime against TensorFlow for a batch of one (bench_onnx.py);
- fill=regions against fill=soft: hint colors, flatness, photo-like sketches, added time (bench_regions.py);
- the publishing process's memory with and without the ONNX copy (bench_onnx_memory.py);
- one janitor sweep over many queued jobs, embedded broker and Redis (bench_janitor.py);
- the API's and the importer's memory against hostile requests and imports (bench_request_memory.py);
- shared mode: publish, hot-load and a chapter through the object store against the folder (bench_shared_storage.py);
- GPU training figures measured elsewhere (bench_gpu_jax.py), copied in from bench/gpu/ if present.

    .venv/bin/python bench/run_all.py            # the full run (about 25 minutes on 2 cores)
    .venv/bin/python bench/run_all.py --quick    # small widths, few steps: checks that everything runs
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import bench_http  # noqa: E402  (bench/ is this script's folder, so first on the path)
import httpx  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def spread(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def machine() -> dict:
    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "cpu": platform.processor(),
            "load_average_start": os.getloadavg()[0]}  # fmt: skip
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
        flags = set(next(line for line in lines if line.startswith("flags")).split(":", 1)[1].split())
        info["flags"] = [flag for flag in CPU_FLAGS if flag in flags]
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory_gib"] = round(int(memory) / 2**20, 1)
    except (OSError, StopIteration):
        info["flags"] = []
    versions = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf, keras; print(tf.__version__, keras.__version__)"],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout.split()  # fmt: skip
    info["tensorflow"], info["keras"] = (versions + ["?", "?"])[:2]
    return info


def run_script(name: str, arguments: list[str], log_dir: Path) -> str:
    """Run bench/<name> with its output shown as it comes; return its stdout."""
    print(f"\n== {name} {' '.join(arguments)}", flush=True)
    log = log_dir / f"{name}.stderr"
    with open(log, "wb") as errors:
        process = subprocess.Popen(
            [sys.executable, str(BENCH / name), *arguments],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=errors, text=True,
        )  # fmt: skip
        assert process.stdout is not None
        output = []
        for line in process.stdout:
            print(line, end="", flush=True)
            output.append(line)
    if process.wait() != 0:
        raise SystemExit(f"{name} failed:\n{log.read_text()[-3000:]}")
    return "".join(output)


def status_kib(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def first_image(base_url: str, image: bytes) -> int:
    with httpx.Client(base_url=base_url, timeout=300) as client:
        response = client.post("/colorize", files={"file": ("sketch.png", image, "image/png")})
        response.raise_for_status()
        return int(response.headers.get("X-Model-Version", 0))


def cold_starts(data_dir: Path, runs: int, log_dir: Path) -> dict:
    """Seconds from starting the server process to the first colorized image, and to /readyz alone."""
    image = bench_http.sketch_png()
    to_image, to_ready = [], []
    for index in range(runs):
        started = time.perf_counter()
        process, base_url = bench_http.start_server(data_dir, log_dir / f"cold{index}.log")
        to_ready.append(time.perf_counter() - started)
        try:
            first_image(base_url, image)
            to_image.append(time.perf_counter() - started)
        finally:
            process.terminate()
            process.wait(timeout=30)
        print(
            f"cold start {index + 1}: ready {to_ready[-1]:.1f} s, first image {to_image[-1]:.1f} s",
            flush=True,
        )
    return {"first_image_s": to_image, "ready_s": to_ready}


def api_memory(data_dir: Path, ngf: int, seconds: float, log_dir: Path) -> dict:
    """Peak RSS of the API serving one version under load, then across a hot swap to a second version."""
    image = bench_http.sketch_png()
    process, base_url = bench_http.start_server(data_dir, log_dir / "memory.log")
    stop = threading.Event()
    seen_versions: set[int] = set()

    def load() -> None:
        with httpx.Client(base_url=base_url, timeout=300) as client:
            while not stop.is_set():
                response = client.post("/colorize", files={"file": ("sketch.png", image, "image/png")})
                response.raise_for_status()
                seen_versions.add(int(response.headers.get("X-Model-Version", 0)))

    clients = [threading.Thread(target=load) for _ in range(4)]
    try:
        for client in clients:
            client.start()
        time.sleep(seconds)
        one_version = {"VmHWM": status_kib(process.pid, "VmHWM"), "VmRSS": status_kib(process.pid, "VmRSS")}
        first = max(seen_versions)
        bench_http.publish_random_generator(data_dir / "models", ngf)  # the next version, while serving
        deadline = time.monotonic() + 180
        while max(seen_versions) == first and time.monotonic() < deadline:
            time.sleep(0.2)
        swapped = max(seen_versions) > first
        time.sleep(seconds)  # serve the new version a while
        after_swap = {"VmHWM": status_kib(process.pid, "VmHWM"), "VmRSS": status_kib(process.pid, "VmRSS")}
    finally:
        stop.set()
        for client in clients:
            client.join()
        process.terminate()
        process.wait(timeout=30)
    print(f"API peak RSS: one version {one_version['VmHWM'] / 1024:.0f} MiB; across a hot swap "
          f"{after_swap['VmHWM'] / 1024:.0f} MiB (swapped: {swapped})", flush=True)  # fmt: skip
    return {"one_version": one_version, "hot_swap": after_swap, "swapped": swapped}


TRAIN_PROCESS = """
import sys
from pathlib import Path
from model.synthetic import make_synthetic_dataset
from model.train import TrainConfig, train_pix2pix
scratch, steps, batch, precision, ngf = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
make_synthetic_dataset(scratch / "pairs", train=32, val=8, seed=0)
config = TrainConfig(steps=steps, batch_size=batch, precision=precision, ngf=ngf, ndf=ngf)
train_pix2pix(scratch / "pairs", scratch / "run", config, models_dir=scratch / "models")
print([line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1])
"""


def training_memory(scratch: Path, steps: int, batch: int, precision: str, ngf: int) -> int:
    """Peak RSS (KiB) of a whole training process: steps, checkpoint, evaluation, sample grid, publish."""
    folder = scratch / f"train-{batch}-{precision}"
    folder.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_PROCESS, str(folder), str(steps), str(batch), precision, str(ngf)],
        cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the training process failed:\n{done.stderr[-3000:]}")
    peak = int(done.stdout.split()[-1])
    print(
        f"training process (ngf {ngf}, batch {batch}, {precision}, {steps} steps): peak RSS {peak / 1024:.0f} MiB"
    )
    return peak


def pipeline_speeds(scratch: Path, images: int, runs: int) -> list[float]:
    from bench_model import pipeline_images_per_second

    from model.synthetic import make_synthetic_dataset

    reference_like = scratch / "reference_like"
    make_synthetic_dataset(reference_like, train=64, val=4, seed=0, size=512)  # 1024x512 PNG pairs
    return [pipeline_images_per_second(reference_like, images) for _ in range(runs)]


def write_report(path: Path, results: dict, quick: bool) -> None:
    m = results["machine"]
    lines = ["# Benchmark results", ""]
    if quick:
        lines += ["**Quick run** (`--quick`: small widths, few steps): these figures only show that everything "
                  "runs; they are not the project's figures.", ""]  # fmt: skip
    lines += [
        f"Written by `bench/run_all.py{' --quick' if quick else ''}` on {time.strftime('%Y-%m-%d %H:%M')} in "
        f"{results['seconds'] / 60:.0f} min. Figures are the median (min-max) over the runs or timed windows named.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cpus']} cores visible, {m.get('memory_gib', '?')} GiB memory, no GPU",
        f"- flags: {', '.join(m['flags']) or 'none of ' + ', '.join(CPU_FLAGS)}",
        f"- TensorFlow {m['tensorflow']}, Keras {m['keras']}, Python {m['python']}",
        f"- 1-minute load average at the start {m['load_average_start']:.1f}, at the end "
        f"{m.get('load_average_end', float('nan')):.1f} (above {m['cpus']}: other processes shared the cores, "
        "and the figures are slower and noisier than on an idle machine)",
        "",
    ]
    train = results["train"]
    if "speed" in train:
        speed = train["speed"]
        base = speed["baseline"]
        lines += [
            "## Training: our trainer against the TensorFlow tutorial's step",
            "",
            f"`bench/bench_train_baseline.py`, ngf = ndf = {results['options']['ngf']}, synthetic 256x256 pairs "
            "through `model.data.make_dataset`, both in one process; images/s over timed windows of steps.",
            "",
            "| setup | images/s | x baseline |",
            "|---|---:|---:|",
            f"| baseline: tutorial step, batch norm, batch 1, float32, plain tf.function | "
            f"{base['median']:.3f} ({base['min']:.3f}-{base['max']:.3f}) | 1.00 |",
        ]
        for row in speed["ours"]:
            label = f"ours: instance norm, batch {row['batch_size']}, {row['precision']}"
            label += ", XLA" if row["xla"] else ""
            lines.append(f"| {label} | {row['median']:.3f} ({row['min']:.3f}-{row['max']:.3f}) | "
                         f"{row['median'] / base['median']:.2f} |")  # fmt: skip
        best = speed["best"]
        lines += ["", f"Best: batch {best['batch_size']}, {best['precision']}: **{speed['ratio']:.2f}x** the "
                      f"baseline's batch-1 images/s (target >= 2.5x: {'met' if speed['ratio'] >= 2.5 else 'not met'}).",
                  ""]  # fmt: skip
    if "curves" in train:
        curves = train["curves"]
        every, steps = curves["every"], curves["steps"]
        lines += [f"### Loss curves: ngf = ndf = {curves['ngf']}, batch 1, seed 0, same data, {steps} steps, "
                  f"mean per {every} steps", ""]  # fmt: skip
        for loss in ("gen_l1", "gen_gan"):
            header = " | ".join(str((index + 1) * every) for index in range(steps // every))
            lines += [f"{loss}:", "", f"| run | {header} |", "|---|" + "---:|" * (steps // every)]
            for name, curve in curves["curves"].items():
                lines.append(f"| {name} | " + " | ".join(f"{value:.3f}" for value in curve[loss]) + " |")
            lines.append("")
        lines += ["Seconds for the whole curve (batch 1, this width): " + ", ".join(
            f"{name} {curve['seconds']:.0f}" for name, curve in curves["curves"].items()), ""]  # fmt: skip
    lines += [f"tf.data pipeline (1024x512 PNG pairs, decode + jitter, batch 1): "
              f"{spread(results['pipeline'], 1)} images/s over {len(results['pipeline'])} runs.", ""]  # fmt: skip

    http = results["http"]
    lat = http["latency"]
    bare = http["bare_images_per_second"]
    best_bare = bare[str(http["bare_best_batch"])]
    lines += [
        "## Inference API (POST /colorize over HTTP)",
        "",
        f"`bench/bench_http.py`: `uvicorn app.main:create_app` with a fresh generator of width {http['ngf']}, a "
        "640x480 PNG sketch, keep-alive clients on this machine (they share its cores with the server).",
        "",
        f"One client, {http['requests']} requests, alternating with the bare in-process call of the same SavedModel:",
        "",
        "| | p50 ms | p99 ms |",
        "|---|---:|---:|",
        f"| bare generator call, batch 1 | {lat['bare_p50_ms']:.1f} | {lat['bare_p99_ms']:.1f} |",
        f"| POST /colorize | {lat['http_p50_ms']:.1f} | {lat['http_p99_ms']:.1f} |",
        f"| ratio | {lat['http_p50_ms'] / lat['bare_p50_ms']:.2f} | {lat['http_p99_ms'] / lat['bare_p99_ms']:.2f} |",
        "",
        f"Target p50 <= 1.10x bare: {'met' if lat['http_p50_ms'] <= 1.10 * lat['bare_p50_ms'] else 'not met'}.",
        "",
        "Bare generator images/s by batch size: "
        + ", ".join(f"{size}: {value:.2f}" for size, value in bare.items())
        + f" (best: batch {http['bare_best_batch']}).",
        "",
        "| clients | images/s | x bare best | p50 ms | p99 ms | mean micro-batch |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for level in http["throughput"]:
        lines.append(f"| {level['clients']} | {spread(level['windows'])} | "
                     f"{level['images_per_second'] / best_bare:.2f} | {level['p50_ms']:.0f} | {level['p99_ms']:.0f} | "
                     f"{level['mean_batch']:.1f} |")  # fmt: skip
    sixteen = next((level for level in http["throughput"] if level["clients"] == 16), None)
    if sixteen:
        ratio = sixteen["images_per_second"] / best_bare
        lines += [
            "",
            f"Target 16 clients >= 0.9x the bare best: {ratio:.2f}x, {'met' if ratio >= 0.9 else 'not met'}.",
        ]
    memory = results["memory"]
    cold = results["cold_start"]
    lines += [
        "",
        "## Cold start and memory",
        "",
        f"- cold start, process start to the first colorized image (width {http['ngf']}): "
        f"{spread(cold['first_image_s'], 1)} s over {len(cold['first_image_s'])} starts (to /readyz: "
        f"{spread(cold['ready_s'], 1)} s)",
        f"- API peak RSS (VmHWM), one version loaded, under load of 4 clients: "
        f"{memory['api']['one_version']['VmHWM'] / 1024:.0f} MiB",
        f"- API peak RSS across a hot swap (a second version published and swapped in while serving 4 clients): "
        f"{memory['api']['hot_swap']['VmHWM'] / 1024:.0f} MiB (RSS after it "
        f"{memory['api']['hot_swap']['VmRSS'] / 1024:.0f} MiB; swapped: {memory['api']['swapped']})",
    ]
    for row in memory["training"]:
        lines.append(f"- training process peak RSS (ngf {row['ngf']}, batch {row['batch']}, {row['precision']}, "
                     f"{row['steps']} steps with checkpoint, evaluation and publish): {row['kib'] / 1024:.0f} MiB")  # fmt: skip
    lines += [
        "",
        "## size=original (bench/bench_fullsize.py)",
        "",
        "```",
        results["fullsize"].rstrip(),
        "```",
        "",
        "## Layered files (bench/bench_layers.py)",
        "",
        "```",
        results["layers"].rstrip(),
        "```",
        "",
        "## ONNX Runtime for lone requests (bench/bench_onnx.py)",
        "",
        "```",
        results["onnx"].rstrip(),
        "```",
        "",
        "## fill=regions against fill=soft (bench/bench_regions.py)",
        "",
        *results["regions"]["report"],
        "",
        "## Memory of publishing with an ONNX copy (bench/bench_onnx_memory.py)",
        "",
        results["onnx_memory"].rstrip(),
        "",
        "## Janitor sweep with many queued jobs (bench/bench_janitor.py)",
        "",
        "```",
        results["janitor"].rstrip(),
        "```",
        "",
        "## Memory against hostile requests and imports (bench/bench_request_memory.py)",
        "",
        results["request_memory"].rstrip(),
        "",
        "## Shared mode: the object store against the shared folder (bench/bench_shared_storage.py)",
        "",
        "```",
        results["shared_storage"].rstrip(),
        "```",
        "",
    ]
    gpu = BENCH / "gpu" / "h100_results.md"
    if gpu.is_file():
        lines += [
            "## GPU training (one NVIDIA H100, measured separately)",
            "",
            "Measured with `bench/bench_gpu_jax.py` on a machine that has JAX with CUDA but no TensorFlow "
            "(TensorFlow with CUDA cannot be installed there). So these are **the same Keras networks "
            "(model/networks.py) on Keras 3's JAX backend**, trained with a jitted (XLA) step of the same "
            "objective and optimizer, not the TensorFlow trainer; random data resident on the GPU (the step alone). "
            "`run_all.py` copies them in from `bench/gpu/`; it does not measure them.",
            "",
            gpu.read_text().rstrip(),
            "",
        ]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small widths and few steps: a check, not figures"
    )
    parser.add_argument("--train-batch-sizes", default="1,4,8", help="our trainer's batch sizes")
    parser.add_argument(
        "--out", type=Path, help="default: bench/RESULTS.md (with --quick: a temporary folder's)"
    )
    args = parser.parse_args()
    if args.out is None:
        quick_out = Path(tempfile.gettempdir()) / "sketch2color-bench-quick" / "RESULTS.md"
        args.out = quick_out if args.quick else BENCH / "RESULTS.md"
        args.out.parent.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    ngf = 8 if quick else 64
    options = {"ngf": ngf}
    began = time.perf_counter()
    results: dict = {"machine": machine(), "options": options}
    print(json.dumps(results["machine"]), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-all-") as scratch:
        scratch = Path(scratch)
        train_json, http_json = scratch / "train.json", scratch / "http.json"
        train_args = ["--ngf", str(ngf), "--precisions", "float32", "mixed_bfloat16", "--xla", "off"]
        train_args += ["--batch-sizes", *args.train_batch_sizes.split(",")]
        if quick:
            train_args += ["--steps", "2", "--windows", "2", "--curve-ngf", "8", "--curve-steps", "20",
                           "--curve-every", "10", "--batch-sizes", "1", "2"]  # fmt: skip
        else:
            train_args += ["--steps", "3", "--windows", "3", "--curve-ngf", "16", "--curve-steps", "200"]
        run_script("bench_train_baseline.py", [*train_args, "--json", str(train_json)], scratch)
        results["train"] = json.loads(train_json.read_text())

        http_args = ["--ngf", str(ngf), "--json", str(http_json)]
        http_args += ["--requests", "10", "--seconds", "3", "--warmup", "2"] if quick else ["--seconds", "15"]
        run_script("bench_http.py", http_args, scratch)
        results["http"] = json.loads(http_json.read_text())

        results["fullsize"] = run_script(
            "bench_fullsize.py", ["--ngf", str(ngf), "--repeats", "2" if quick else "5"], scratch
        )
        results["layers"] = run_script("bench_layers.py", ["--repeats", "2" if quick else "5"], scratch)
        results["onnx"] = run_script(
            "bench_onnx.py", ["--ngf", str(ngf), "--rounds", "2" if quick else "5", "--calls", "3"], scratch
        )
        regions_json = scratch / "regions.json"
        regions_args = ["--timing-ngf", str(ngf), "--json", str(regions_json)]
        if quick:
            regions_args += ["--pictures", "2", "--photos", "3", "--steps", "5", "--width", "8",
                             "--train-pairs", "20", "--repeats", "2"]  # fmt: skip
        run_script("bench_regions.py", regions_args, scratch)
        results["regions"] = json.loads(regions_json.read_text())

        results["onnx_memory"] = run_script("bench_onnx_memory.py", ["--ngf", str(ngf)], scratch)
        janitor_args = ["--jobs", "40" if quick else "400"]
        results["janitor"] = run_script("bench_janitor.py", janitor_args, scratch)
        if shutil.which("redis-server"):
            results["janitor"] += run_script(
                "bench_janitor.py", [*janitor_args, "--broker", "redis"], scratch
            )
        results["request_memory"] = run_script("bench_request_memory.py", [], scratch)
        shared_args = ["--ngf", str(ngf), "--pages", "16" if quick else "48"]
        results["shared_storage"] = run_script("bench_shared_storage.py", shared_args, scratch)

        print("\n== tf.data pipeline", flush=True)
        results["pipeline"] = pipeline_speeds(scratch, 30 if quick else 200, 2 if quick else 3)
        print(f"tf.data pipeline: {spread(results['pipeline'], 1)} images/s", flush=True)

        print("\n== cold start and memory", flush=True)
        data_dir = scratch / "api-data"
        bench_http.publish_random_generator(data_dir / "models", ngf)
        results["cold_start"] = cold_starts(data_dir, 2 if quick else 3, scratch)
        results["memory"] = {"api": api_memory(data_dir, ngf, 3 if quick else 8, scratch), "training": []}
        best = results["train"].get("speed", {}).get("best", {})
        training_runs = [(1, "float32")]
        if best and (best["batch_size"], best["precision"]) != (1, "float32"):
            training_runs.append((best["batch_size"], best["precision"]))
        for batch, precision in training_runs:
            steps = 2 if quick else 3
            kib = training_memory(scratch, steps, batch, precision, ngf)
            results["memory"]["training"].append(
                {"batch": batch, "precision": precision, "ngf": ngf, "steps": steps, "kib": kib}
            )
    results["seconds"] = time.perf_counter() - began
    results["machine"]["load_average_end"] = os.getloadavg()[0]
    write_report(args.out, results, quick)
    (args.out.with_suffix(".json")).write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out} ({results['seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
