"""Benchmark POST /colorize over real HTTP against the bare in-process generator call.

Starts `uvicorn app.main:create_app` on a free port with a published generator (a fresh random one of width
`--ngf` unless `--models-dir` points at published versions), then, in one run:

1. latency with one client: p50/p99 of POST /colorize next to p50/p99 of calling the same SavedModel in this
   process on the same (padded, resized) image; the two are measured alternately so both see the same machine
   load. Their ratio is the API's overhead (decode, multipart, batching, PNG encode, HTTP).
2. the bare generator's best images/s: the same SavedModel called in this process at batch sizes 1 to the
   server's largest micro-batch (the ceiling micro-batching can reach);
3. throughput: images/s with 1, 4, 16 and 64 concurrent clients (each its own keep-alive connection), as the
   median (min-max) over `--windows` equal parts of each level's time, the p50/p99 latency of the requests
   meanwhile, the mean micro-batch size the server reports in /metrics, and the ratio to the bare best.

Targets: one client p50 <= 1.10x the bare batch-1 call; 16 clients >= 0.9x the bare generator's best images/s.

Usage: python bench/bench_http.py [--ngf 64] [--requests 60] [--seconds 10] [--models-dir DIR] [--json FILE]
"""

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models-dir", type=Path, help="Serve these published versions (default: a fresh one)."
    )
    parser.add_argument(
        "--ngf", type=int, default=64, help="Width of the fresh random generator (64 = the paper)."
    )
    parser.add_argument(
        "--requests", type=int, default=60, help="Timed requests (and bare calls) for latency."
    )
    parser.add_argument("--warmup", type=int, default=5, help="Untimed requests first.")
    parser.add_argument("--seconds", type=float, default=10.0, help="Seconds per concurrency level.")
    parser.add_argument("--concurrency", default="1,4,16,64", help="Comma-separated client counts.")
    parser.add_argument("--windows", type=int, default=3, help="Parts of each level's time, for min-max.")
    parser.add_argument(
        "--bare-batch-sizes", default="1,2,4,8,16", help="Batch sizes of the bare generator's best images/s."
    )
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    return parser.parse_args()


def sketch_png(width: int = 640, height: int = 480) -> bytes:
    """A non-square line drawing, so the server pads and resizes as it would for a real upload."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((80, 60, 380, 360), outline="black", width=6)
    draw.rectangle((300, 150, 580, 420), outline="black", width=6)
    draw.line((40, 440, 600, 40), fill="black", width=5)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def publish_random_generator(models_dir: Path, ngf: int) -> None:
    import keras

    from model.export import publish_generator
    from model.networks import build_generator

    keras.utils.set_random_seed(0)
    generator = build_generator(ngf=ngf)
    publish_generator(generator, models_dir, {"job_id": None, "step": 0, "epoch": 0, "model": {"ngf": ngf}})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    environment = {**os.environ, "S2C_DATA_DIR": str(data_dir), "S2C_MODEL_POLL_SECONDS": "1"}
    command = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--lifespan", "on", "--log-level", "warning",
               "--no-access-log"]  # fmt: skip
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=5).status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"the server did not become ready:\n{log_path.read_text()[-3000:]}")


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000.0, q))


def post(client: httpx.Client, image: bytes) -> None:
    response = client.post("/colorize", files={"file": ("sketch.png", image, "image/png")})
    if response.status_code != 200:
        raise RuntimeError(f"POST /colorize answered {response.status_code}: {response.text[:300]}")


def measure_latency(
    base_url: str, serving_function, sketch: np.ndarray, image: bytes, args
) -> dict[str, list]:
    """One client, keep-alive; the bare call and the HTTP call alternate so both see the same load."""
    batch = sketch[np.newaxis]
    timings: dict[str, list[float]] = {"http": [], "bare": []}
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for _ in range(args.warmup):
            post(client, image)
            serving_function(batch).numpy()
        for _ in range(args.requests):
            started = time.perf_counter()
            serving_function(batch).numpy()
            timings["bare"].append(time.perf_counter() - started)
            started = time.perf_counter()
            post(client, image)
            timings["http"].append(time.perf_counter() - started)
    return timings


def batch_counters(base_url: str) -> tuple[float, float]:
    from prometheus_client.parser import text_string_to_metric_families

    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(httpx.get(f"{base_url}/metrics").text)
        if family.name == "s2c_inference_batch_size"
        for sample in family.samples
    }
    return values["s2c_inference_batch_size_count"], values["s2c_inference_batch_size_sum"]


def bare_images_per_second(serving_function, sketch: np.ndarray, batch_size: int, seconds: float = 3.0):
    """Images/s of the in-process SavedModel at one batch size (after a warm-up call)."""
    batch = np.repeat(sketch[np.newaxis], batch_size, axis=0)
    serving_function(batch).numpy()
    calls, started = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - started < seconds:
        serving_function(batch).numpy()
        calls += 1
    return calls * batch_size / (time.perf_counter() - started)


def measure_throughput(base_url: str, image: bytes, clients: int, seconds: float, windows: int = 3) -> dict:
    """Images per second with `clients` closed-loop clients, the requests' latency and the mean micro-batch size.

    Counts the answers that arrive within `seconds` of the start (those still in flight then are not counted);
    images/s is given for each of `windows` equal parts of that time.
    """
    finished_at: list[float] = []
    latencies: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(clients + 1)
    stop = threading.Event()

    def client_loop() -> None:
        with httpx.Client(base_url=base_url, timeout=300) as client:
            post(client, image)  # connect and warm up before the clock starts
            start.wait()
            while not stop.is_set():
                try:
                    sent = time.perf_counter()
                    post(client, image)
                    finished_at.append(time.perf_counter())
                    latencies.append(finished_at[-1] - sent)
                except Exception as error:  # reported below; a benchmark does not hide failures
                    errors.append(repr(error))
                    return

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    calls_before, images_before = batch_counters(base_url)
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    calls_after, images_after = batch_counters(base_url)
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    part = seconds / windows
    speeds = [
        sum(1 for moment in finished_at if began + index * part < moment <= began + (index + 1) * part) / part
        for index in range(windows)
    ]
    timed = [
        latency for latency, moment in zip(latencies, finished_at, strict=True) if moment <= began + seconds
    ]
    return {
        "clients": clients,
        "images_per_second": sum(1 for moment in finished_at if moment <= began + seconds) / seconds,
        "windows": speeds,
        "p50_ms": percentile_ms(timed, 50),
        "p99_ms": percentile_ms(timed, 99),
        "mean_batch": (images_after - images_before) / max(calls_after - calls_before, 1),
    }


def main(args: argparse.Namespace) -> None:
    from model.export import load_serving_function
    from model.imageio import load_sketch
    from storage.versions import latest_version

    with tempfile.TemporaryDirectory(prefix="bench-http-") as temporary:
        data_dir = Path(temporary) / "data"
        models_dir = data_dir / "models"
        if args.models_dir:
            models_dir.parent.mkdir(parents=True)
            models_dir.symlink_to(args.models_dir.resolve())
        else:
            publish_random_generator(models_dir, args.ngf)
        version = latest_version(models_dir)
        if version is None:
            raise SystemExit(f"no published generator under {models_dir}")
        image = sketch_png()
        sketch = load_sketch(image)
        serving_function = load_serving_function(version.path)
        process, base_url = start_server(data_dir, Path(temporary) / "server.log")
        try:
            timings = measure_latency(base_url, serving_function, sketch, image, args)
            bare = {
                size: bare_images_per_second(serving_function, sketch, size)
                for size in (int(text) for text in args.bare_batch_sizes.split(","))
            }
            throughput = {
                clients: measure_throughput(base_url, image, clients, args.seconds, args.windows)
                for clients in (int(text) for text in args.concurrency.split(","))
            }
        finally:
            process.terminate()
            process.wait(timeout=30)

    width = version.manifest.get("model", {}).get("ngf", "?")
    print(f"generator version {version.version} (ngf={width}); {os.cpu_count()} CPUs; image 640x480 PNG")
    print(f"latency, one client, {args.requests} requests:")
    print(f"  {'':34}{'p50 ms':>10}{'p99 ms':>10}")
    bare50, bare99 = percentile_ms(timings["bare"], 50), percentile_ms(timings["bare"], 99)
    http50, http99 = percentile_ms(timings["http"], 50), percentile_ms(timings["http"], 99)
    print(f"  {'bare in-process generator call':34}{bare50:10.1f}{bare99:10.1f}")
    print(f"  {'POST /colorize over HTTP':34}{http50:10.1f}{http99:10.1f}")
    print(f"  {'ratio (API overhead)':34}{http50 / bare50:10.2f}{http99 / bare99:10.2f}")
    best_size = max(bare, key=bare.get)
    print("bare generator images/s by batch size: "
          + ", ".join(f"{size}: {speed:.2f}" for size, speed in bare.items())
          + f" (best: batch {best_size})")  # fmt: skip
    print(
        f"throughput, {args.seconds:.0f} s per level, images/s as median (min-max) of {args.windows} parts:"
    )
    print(
        f"  {'clients':>8}{'images/s':>24}{'x bare best':>12}{'p50 ms':>10}{'p99 ms':>10}{'mean batch':>12}"
    )
    for clients, level in throughput.items():
        parts = level["windows"]
        speed = f"{np.median(parts):.2f} ({min(parts):.2f}-{max(parts):.2f})"
        print(f"  {clients:>8}{speed:>24}{level['images_per_second'] / bare[best_size]:12.2f}"
              f"{level['p50_ms']:10.1f}{level['p99_ms']:10.1f}{level['mean_batch']:12.1f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({
            "version": version.version, "ngf": width, "cpus": os.cpu_count(), "requests": args.requests,
            "latency": {"bare_p50_ms": bare50, "bare_p99_ms": bare99, "http_p50_ms": http50, "http_p99_ms": http99},
            "bare_images_per_second": {str(size): speed for size, speed in bare.items()},
            "bare_best_batch": best_size, "throughput": list(throughput.values()),
        }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main(parse_args())
