"""Benchmark chapters: pages per second through POST /batches with 1 and 2 worker processes, against calling
POST /colorize page by page from one client; and a batch worker's peak memory.

Starts a private redis-server and `uvicorn app.main:create_app` on free ports over a fresh random generator of
width `--ngf`, makes `--pages` line drawings of `--side` x `--side`, then, in one run:

1. page by page: one client posts every page to POST /colorize (same options) and waits for each answer;
2. for each worker count: that many `sketch2color worker --queues batches` processes, a warm-up batch (each
   worker loads the version once), then the chapter as one zip: seconds from the upload to `done`, the
   download of result.zip included; and each worker's peak resident memory (VmHWM).

All runs use `size=original` (each page at its own size) and the default `fill=regions`, so the per-page
work around the generator (regions at 1024x1024, lines, PNG) is the same on both paths.

Usage: python bench/bench_batches.py [--pages 100] [--side 1024] [--ngf 64] [--workers 1,2] [--json FILE]
"""

import argparse
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
OPTIONS = {"size": "original"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=100, help="Pages in the chapter.")
    parser.add_argument("--side", type=int, default=1024, help="Width and height of each page.")
    parser.add_argument(
        "--ngf", type=int, default=64, help="Width of the fresh random generator (64: the paper)."
    )
    parser.add_argument("--workers", default="1,2", help="Comma-separated worker process counts.")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    return parser.parse_args()


def page_png(side: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, x1 = sorted(rng.integers(0, side, 2))
        y0, y1 = sorted(rng.integers(0, side, 2))
        draw.ellipse((x0, y0, x1, y1), outline="black", width=max(2, side // 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def chapter(pages: list[bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index, data in enumerate(pages):
            archive.writestr(f"p{index:03d}.png", data)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(
    condition, timeout: float, what: str, process: subprocess.Popen | None = None, log: Path | None = None
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"{what}: the process exited\n{log.read_text()[-3000:] if log else ''}")
        try:
            if result := condition():
                return result
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}\n{log.read_text()[-3000:] if log else ''}")


class System:
    """A private Redis, the API and any number of batch workers on one temporary data folder."""

    def __init__(self, root: Path, ngf: int):
        from model.export import publish_generator
        from model.networks import build_generator

        self.root = root
        data_dir = root / "data"
        import keras

        keras.utils.set_random_seed(0)
        manifest = {"job_id": None, "step": 0, "epoch": 0, "model": {"ngf": ngf}}
        publish_generator(build_generator(ngf=ngf), data_dir / "models", manifest, onnx=False)
        redis_port = free_port()
        self.processes: list[subprocess.Popen] = []
        self.redis = self.start("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                          "--save", "", "--appendonly", "no", "--dir", str(root)])  # fmt: skip
        self.environment = {
            **{name: value for name, value in os.environ.items() if not name.startswith("S2C_")},
            "S2C_DATA_DIR": str(data_dir),
            "S2C_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "S2C_MODEL_POLL_SECONDS": "1",
            "S2C_BATCH_DISK_BUDGET_BYTES": str(64 * 1024**3),
        }
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        api = self.start("api", [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host",
                                 "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"])  # fmt: skip
        wait_for(lambda: httpx.get(f"{self.base_url}/readyz", timeout=5).status_code == 200, 180, "the API", api,
                 root / "api.log")  # fmt: skip

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "wb")
        environment = getattr(self, "environment", dict(os.environ))
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def start_workers(self, count: int, run: int) -> list[subprocess.Popen]:
        workers = []
        for index in range(count):
            name = f"worker-{run}-{index}"
            workers.append(self.start(name, [sys.executable, "-m", "cli", "worker", "--queues", "batches",
                                             "--hostname", f"{name}@%h"]))  # fmt: skip
        for index, worker in enumerate(workers):
            log = self.root / f"worker-{run}-{index}.log"
            wait_for(
                lambda log=log: " ready." in log.read_text(errors="replace"), 180, "a worker", worker, log
            )
        return workers

    def stop(self, processes: list[subprocess.Popen]) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        self.stop(list(reversed(self.processes)))


def peak_memory_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def page_by_page(base_url: str, pages: list[bytes]) -> float:
    with httpx.Client(base_url=base_url, timeout=300) as client:
        post = lambda data: client.post("/colorize", params=OPTIONS, files={"file": ("p.png", data)})  # noqa: E731
        assert post(pages[0]).status_code == 200  # warm-up
        started = time.perf_counter()
        for data in pages:
            response = post(data)
            if response.status_code != 200:
                raise SystemExit(f"POST /colorize answered {response.status_code}: {response.text[:300]}")
        return time.perf_counter() - started


def run_batch(base_url: str, archive: bytes, pages: int) -> float:
    with httpx.Client(base_url=base_url, timeout=600) as client:
        started = time.perf_counter()
        response = client.post("/batches", params=OPTIONS, files={"files": ("chapter.zip", archive)})
        if response.status_code != 202:
            raise SystemExit(f"POST /batches answered {response.status_code}: {response.text[:300]}")
        batch_id = response.json()["id"]

        def finished() -> dict | None:
            record = client.get(f"/batches/{batch_id}").json()
            return record if record["state"] in ("done", "failed", "cancelled") else None

        record = wait_for(finished, 3600, f"batch {batch_id}")
        result = client.get(f"/batches/{batch_id}/result.zip")
        seconds = time.perf_counter() - started
        if record["state"] != "done" or record["pages_done"] != pages:
            raise SystemExit(
                f"the batch ended {record['state']} with {record['pages_done']}/{pages}: {record}"
            )
        assert len(zipfile.ZipFile(io.BytesIO(result.content)).namelist()) == pages
        client.delete(f"/batches/{batch_id}")
        return seconds


def main() -> None:
    args = parse_args()
    pages = [page_png(args.side, seed) for seed in range(args.pages)]
    archive = chapter(pages)
    root = Path(tempfile.mkdtemp(prefix="bench-batches-"))
    figures: dict = {"pages": args.pages, "side": args.side, "ngf": args.ngf, "cpus": os.cpu_count()}
    system = System(root, args.ngf)
    try:
        seconds = page_by_page(system.base_url, pages)
        figures["colorize_page_by_page"] = {
            "seconds": round(seconds, 2),
            "pages_per_s": round(args.pages / seconds, 2),
        }
        print(
            f"POST /colorize page by page, one client: {args.pages / seconds:.2f} pages/s ({seconds:.1f} s)"
        )
        for run, count in enumerate(int(text) for text in args.workers.split(",")):
            workers = system.start_workers(count, run)
            run_batch(
                system.base_url, chapter(pages[: 8 * count]), 8 * count
            )  # each worker loads the version
            seconds = run_batch(system.base_url, archive, args.pages)
            memory = [peak_memory_mib(worker.pid) for worker in workers]
            figures[f"batches_{count}_workers"] = {
                "seconds": round(seconds, 2),
                "pages_per_s": round(args.pages / seconds, 2),
                "worker_peak_mib": [round(value) for value in memory if value],
            }
            print(f"POST /batches, {count} worker(s): {args.pages / seconds:.2f} pages/s ({seconds:.1f} s, upload to "
                  f"download); worker peak memory {', '.join(f'{value:.0f} MiB' for value in memory if value)}")  # fmt: skip
            system.stop(workers)
    finally:
        system.close()
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
