"""How long one janitor sweep takes with many queued jobs (reliability row 16).

Queues N jobs (records and real queue messages, nothing consuming them) on the embedded broker (the default of
`sketch2color up`) or on a private redis-server this script starts on a free port, then times the janitor's
sweeps (worker/janitor.py) over them: the first sweep (which also cleans leftovers) and the median (min-max) of
the next ones. A sweep runs every S2C_JOB_LEASE_SECONDS / 3 (10 s by default), so it must take far less.

    .venv/bin/python bench/bench_janitor.py [--jobs 400] [--broker embedded|redis] [--sweeps 3]
"""

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from contracts.jobs import create_record, new_job_id, new_record
from contracts.queue import create_celery_app, enqueue_job
from contracts.settings import Settings
from contracts.train_config import TrainConfig
from worker.janitor import Janitor


def start_redis(folder: Path) -> tuple[subprocess.Popen, int]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)], stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return server, port
        except redis.ConnectionError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("redis-server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--broker", choices=["embedded", "redis"], default="embedded")
    parser.add_argument("--sweeps", type=int, default=3, help="timed sweeps after the first")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-janitor-"))
    server = None
    broker_url = None
    if args.broker == "redis":
        server, port = start_redis(folder)
        broker_url = f"redis://127.0.0.1:{port}/0"
    try:
        settings = Settings(data_dir=folder / "data", broker_url=broker_url)
        app = create_celery_app(settings)
        for _ in range(args.jobs):
            job_id = new_job_id()
            create_record(settings.runs_dir / job_id, new_record(job_id, "demo", TrainConfig(steps=10), 10))
            enqueue_job(app, job_id)
        janitor = Janitor(app, settings, "bench@janitor")
        started = time.perf_counter()
        janitor.sweep()
        first = time.perf_counter() - started
        timings = []
        for _ in range(args.sweeps):
            started = time.perf_counter()
            janitor.sweep()
            timings.append(time.perf_counter() - started)
        print(f"janitor sweep, {args.jobs} queued jobs, {args.broker} broker: first {first:.2f} s, then "
              f"{statistics.median(timings):.2f} s ({min(timings):.2f}-{max(timings):.2f}) over {args.sweeps}")  # fmt: skip
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
