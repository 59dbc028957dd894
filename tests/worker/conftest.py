"""Real job systems for the worker tests: a data folder, a broker, a uvicorn API and `sketch2color worker`s.

Everything runs as real processes: Redis (each test module on its own database, flushed before and
after), Celery workers started through the `sketch2color worker` wrapper, and the API under uvicorn. The
test process never loads TensorFlow. Jobs are tiny (width 8, batch 2, a few dozen steps): seconds each.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support import free_port, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
LEASE_SECONDS = 4.0
STARTUP_TIMEOUT_SECONDS = 120.0
JOB_TIMEOUT_SECONDS = 180.0
TINY_JOB = {"dataset": "demo", "batch_size": 2, "ngf": 8, "ndf": 8, "log_every": 2}


class Process:
    """A child process with its output in a log file."""

    def __init__(self, name: str, command: list[str], environment: dict[str, str], log_path: Path):
        self.name = name
        self.log_path = log_path
        self._log_file = open(log_path, "wb")
        self.popen = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=environment,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        useful = [
            line for line in self.log().splitlines() if not line.startswith(("I0000", "W0000", "E0000"))
        ]
        return f"--- {self.name} (pid {self.pid}, exit {self.popen.poll()}) ---\n" + "\n".join(
            useful[-lines:]
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int | None:
        if self.alive():
            os.kill(self.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._log_file.close()
        return self.popen.returncode


def child_environment(data_dir: Path, **settings: Any) -> dict[str, str]:
    """The test process's environment without any S2C_* of its own, plus these settings."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("S2C_")}
    environment.update(
        TF_CPP_MIN_LOG_LEVEL="2",
        TF_NUM_INTRAOP_THREADS="2",
        TF_NUM_INTEROP_THREADS="1",
        CUDA_VISIBLE_DEVICES="",
        PYTHONUNBUFFERED="1",
        S2C_DATA_DIR=str(data_dir),
        S2C_JOB_LEASE_SECONDS=str(LEASE_SECONDS),
        S2C_MODEL_POLL_SECONDS="0.5",
    )
    environment.update(
        {f"S2C_{name.upper()}": str(value) for name, value in settings.items() if value is not None}
    )
    return environment


class JobSystem:
    """One data folder and broker, shared by an API server and any number of workers."""

    def __init__(self, root: Path, broker_url: str | None = None, api_token: str | None = None):
        from model.synthetic import make_synthetic_dataset

        self.root = root
        self.data_dir = root / "data"
        self.broker_url = broker_url
        self.api_token = api_token
        self.environment = child_environment(self.data_dir, broker_url=broker_url, api_token=api_token)
        make_synthetic_dataset(self.data_dir / "datasets" / "demo", train=16, val=4, seed=0)
        self.workers: dict[str, Process] = {}
        self.api: Process | None = None
        self.base_url = ""
        self._stack = ExitStack()

    # ---- processes ---------------------------------------------------------------------------------------
    def start_api(self) -> None:
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
                   "--port", str(port)]  # fmt: skip
        self.api = Process("api", command, self.environment, self.root / f"api-{port}.log")
        self._stack.callback(self.api.stop)
        self.base_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200,
                   STARTUP_TIMEOUT_SECONDS, lambda: "the API did not start\n" + self.api.tail())  # fmt: skip

    def start_worker(self, name: str, wait: bool = True) -> Process:
        command = [sys.executable, "-m", "app.cli", "worker", "--hostname", f"{name}@%h"]
        worker = Process(name, command, self.environment, self.root / f"worker-{name}.log")
        self._stack.callback(worker.stop)
        self.workers[name] = worker
        if wait:
            self.wait_ready(worker)
        return worker

    def wait_ready(self, worker: Process) -> None:
        wait_until(lambda: " ready." in worker.log() or not worker.alive(), STARTUP_TIMEOUT_SECONDS,
                   lambda: f"worker {worker.name} did not start\n{worker.tail()}")  # fmt: skip
        assert worker.alive(), f"worker {worker.name} exited at startup\n{worker.tail()}"

    def close(self) -> None:
        self._stack.close()

    # ---- HTTP --------------------------------------------------------------------------------------------
    def client(self, token: str | None = "default") -> httpx.Client:
        token = self.api_token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)

    def launch(self, **params: Any) -> dict[str, Any]:
        with self.client() as client:
            response = client.post("/jobs", json={**TINY_JOB, **params})
        assert response.status_code == 202, f"POST /jobs answered {response.status_code}: {response.text}"
        assert response.headers["location"] == f"/jobs/{response.json()['id']}"
        return response.json()

    def job(self, job_id: str) -> dict[str, Any]:
        with self.client() as client:
            response = client.get(f"/jobs/{job_id}")
        assert response.status_code == 200, (
            f"GET /jobs/{job_id} answered {response.status_code}: {response.text}"
        )
        return response.json()

    def wait_for_job(
        self, job_id: str, condition: Callable[[dict], bool], what: str, timeout: float = JOB_TIMEOUT_SECONDS
    ):
        """Poll GET /jobs/<id> until `condition(record)`; on timeout show the record and the logs."""
        latest: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            latest.update(self.job(job_id))
            return dict(latest) if condition(latest) else None

        return wait_until(
            check, timeout, lambda: f"job {job_id} never got {what}\n{self.diagnostics(latest)}"
        )

    # ---- files and diagnostics ---------------------------------------------------------------------------
    def run_dir(self, job_id: str) -> Path:
        return self.data_dir / "runs" / job_id

    def metrics(self, job_id: str) -> list[dict[str, Any]]:
        path = self.run_dir(job_id) / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def checkpoint_step(self, job_id: str) -> int:
        """The newest checkpoint's step, read from CheckpointManager's index file without TensorFlow (0 = none)."""
        index = self.run_dir(job_id) / "checkpoints" / "checkpoint"
        match = re.search(
            r'^model_checkpoint_path:\s*"[^"]*?(\d+)"', index.read_text() if index.exists() else "", re.M
        )
        return int(match.group(1)) if match else 0

    def diagnostics(self, record: dict[str, Any] | None = None) -> str:
        parts = [f"record: {json.dumps(record, indent=1)}"] if record else []
        parts += [process.tail() for process in [*self.workers.values(), *([self.api] if self.api else [])]]
        return "\n".join(parts)


def flush_redis_db(port: int, db: int) -> None:
    client = redis.Redis(host=REDIS_HOST, port=port, db=db, socket_connect_timeout=3)
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory) -> Iterator[int]:
    """The machine's Redis on 6379 when it runs, else a private redis-server for this session."""
    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1).ping()
        yield REDIS_PORT
        return
    except redis.RedisError:
        pass
    server, port = start_redis_server(tmp_path_factory.mktemp("redis"))
    try:
        yield port
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_job_system(request, tmp_path_factory, redis_port: int) -> Iterator[JobSystem]:
    """An API and a Redis broker on the module's own database (its constant REDIS_DB); no workers yet."""
    db = request.module.REDIS_DB
    api_token = getattr(request.module, "API_TOKEN", None)
    flush_redis_db(redis_port, db)
    system = JobSystem(
        tmp_path_factory.mktemp("jobs"),
        broker_url=f"redis://{REDIS_HOST}:{redis_port}/{db}",
        api_token=api_token,
    )
    try:
        system.start_api()
        yield system
    finally:
        system.close()
        flush_redis_db(redis_port, db)


def start_redis_server(root: Path, port: int | None = None) -> tuple[Process, int]:
    """A private redis-server (never the shared one): a test may stop its broker and start it again."""
    port = port or free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(root)]  # fmt: skip
    server = Process(f"redis-{port}", command, dict(os.environ), root / f"redis-{port}-{time.time_ns()}.log")
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    wait_until(client.ping, 20, lambda: f"redis-server on {port} did not start\n{server.tail()}")
    return server, port


def sample_sketch_png(system: JobSystem) -> bytes:
    return sorted((system.data_dir / "datasets" / "demo" / "val").glob("*.png"))[0].read_bytes()
