"""`sketch2color up`: the whole system on one machine, in one command.

It runs `sketch2color serve` (the API) and `sketch2color worker` (the training worker) as child processes with
the same settings, waits until the API answers, prints its address and, when no generator has been published
yet, makes a small synthetic dataset and launches a short demo training job through the API, so that
`/colorize` answers with a real (demo-quality) model a few minutes later. With `S2C_BROKER_URL` unset both
children use the embedded broker under the data folder, so nothing else needs to run; with it set, they use
that broker (Redis). Ctrl-C or SIGTERM stops both children (terminate, wait, then kill). A second start
reuses what the first one made: the dataset, the published models and any demo job still queued or running.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.config import Settings
from model.layout import pair_files
from model.versions import latest_version
from worker.celery_app import redact

DEMO_DATASET = "demo"
ACTIVE_STATES = ("queued", "running")
POLL_SECONDS = 0.5
FOLLOW_SECONDS = 5.0
PROGRESS_SECONDS = 30.0


@dataclass(frozen=True)
class DemoConfig:
    """The demo job launched when no generator exists: small enough to train on a laptop CPU in minutes."""

    enabled: bool = True
    steps: int = 400
    width: int = 16
    batch_size: int = 4
    train_pairs: int = 400
    val_pairs: int = 16

    def __post_init__(self) -> None:
        for name in ("steps", "width", "batch_size", "train_pairs", "val_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"demo {name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}"
                )

    def job_request(self) -> dict[str, Any]:
        """The POST /jobs body: publish every 100 steps (and at the end), so a first model arrives early."""
        return {
            "dataset": DEMO_DATASET,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "ngf": self.width,
            "ndf": self.width,
            "checkpoint_every": min(50, self.steps),
            "export_every": min(100, self.steps),
            "log_every": min(10, self.steps),  # progress and loss curves on the page every 10 steps
        }


class LaunchError(RuntimeError):
    """The system could not be started; the message says why and what to do."""


class Stopped(Exception):
    """Ctrl-C or SIGTERM arrived while starting up."""


class Launcher:
    def __init__(
        self,
        settings: Settings,
        host: str = "127.0.0.1",
        port: int = 8000,
        demo: DemoConfig | None = None,
        startup_timeout: float = 180.0,
        stop_timeout: float = 600.0,
        echo: Callable[[str], None] = print,
    ):
        self.settings = settings
        self.host = host
        self.port = port
        self.demo = demo or DemoConfig()
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.echo = echo
        self.children: dict[str, subprocess.Popen] = {}
        self.signals_received = 0
        self.demo_job_id: str | None = None
        self.waiting_for_model = False  # a demo version was published; say when the API has loaded it
        self.model_announced = False
        self._last_report: tuple = (None, None, None)  # state, version, step of the last progress line
        self._last_report_at = 0.0

    # ---- addresses ---------------------------------------------------------------------------------------
    @property
    def local_url(self) -> str:
        """Where this machine reaches the API (a wildcard bind address is reached through loopback)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else "[::1]" if self.host == "::" else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # ---- the whole run -----------------------------------------------------------------------------------
    def run(self) -> int:
        """Start everything, wait for Ctrl-C/SIGTERM or a child's death, stop everything; the exit status."""
        previous_handlers = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            try:
                self._check_port_free()
                self._start_children()
                self._wait_until_healthy()
                self.echo(
                    f"sketch2color is up: {self.local_url}/  (API docs: {self.local_url}/docs; Ctrl-C stops)"
                )
                try:
                    self._ensure_demo()
                except OSError as error:  # the API stopped answering: the supervisor reports a dead child
                    self.echo(f"warning: could not set up the demo job: {error}")
            except Stopped:
                return 0
            except LaunchError as error:
                self.echo(f"error: {error}")
                return 2
            return self._supervise()
        finally:
            self._stop_children()
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Only flags here (printing from a signal handler can collide with a print in progress); the main loop
        # notices and stops the children. A second signal does not wait for them.
        self.signals_received += 1
        if self.signals_received > 1:
            for child in self.children.values():
                _kill_group(child)

    @property
    def stopping(self) -> bool:
        return self.signals_received > 0

    # ---- children ----------------------------------------------------------------------------------------
    def child_environment(self) -> dict[str, str]:
        environment = dict(os.environ)
        # The same data folder for both children, whatever their working directory.
        environment["S2C_DATA_DIR"] = str(self.settings.data_dir.resolve())
        environment.setdefault("PYTHONUNBUFFERED", "1")
        environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        return environment

    def child_commands(self) -> dict[str, list[str]]:
        cli = [sys.executable, "-m", "app.cli"]
        return {
            "api": [*cli, "serve", "--host", self.host, "--port", str(self.port)],
            "worker": [*cli, "worker"],
        }

    def _check_port_free(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, self.port))
            except OSError as error:
                raise LaunchError(
                    f"cannot listen on {self.host}:{self.port} ({error.strerror}); "
                    "is sketch2color already running? Otherwise pass another --port."
                ) from error

    def _start_children(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        broker = (
            redact(self.settings.broker_url) if self.settings.broker_url else "embedded (no Redis needed)"
        )
        self.echo(f"data folder: {self.settings.data_dir.resolve()}; broker: {broker}")
        environment = self.child_environment()
        for name, command in self.child_commands().items():
            self.children[name] = subprocess.Popen(
                command,
                env=environment,
                # Own process groups: the terminal's Ctrl-C reaches only this launcher, which then stops
                # the children in order; if the launcher itself dies, the kernel stops them.
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
            self.echo(f"started {name} (pid {self.children[name].pid}): sketch2color {' '.join(command[3:])}")

    def _dead_child(self) -> tuple[str, int] | None:
        for name, child in self.children.items():
            code = child.poll()
            if code is not None:
                return name, code
        return None

    def _stop_children(self) -> None:
        running = {name: child for name, child in self.children.items() if child.poll() is None}
        if running:
            reason = "Ctrl-C/SIGTERM" if self.stopping else "shutting down"
            self.echo(f"{reason}: stopping {' and '.join(running)} (Ctrl-C again to kill at once)...")
        for child in running.values():
            try:
                child.terminate()
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.stop_timeout
        for name, child in running.items():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.echo(f"{name} did not stop within {self.stop_timeout:.0f}s; killing it")
        for child in self.children.values():
            _kill_group(child)  # whatever is left of each child's process group, the child included
            child.wait()
        if running:
            self.echo("stopped")

    # ---- start-up ----------------------------------------------------------------------------------------
    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.stopping:
                raise Stopped
            dead = self._dead_child()
            if dead:
                raise LaunchError(
                    f"the {dead[0]} exited with status {dead[1]} while starting (its output is above)"
                )
            try:
                status, _ = self._request("GET", "/healthz", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(POLL_SECONDS)
        raise LaunchError(
            f"the API did not answer {self.local_url}/healthz within {self.startup_timeout:.0f}s"
        )

    def _ensure_demo(self) -> None:
        """Launch the demo job unless a generator exists, the demo is off, or a demo job is on its way."""
        if not self.demo.enabled:
            return
        version = published_version(self.settings.models_dir)
        if version is not None:
            self.echo(f"generator version {version} is published; no demo job needed")
            return
        status, jobs = self._request("GET", "/jobs")
        if status != 200:
            self.echo(f"warning: GET /jobs answered {status} ({_detail(jobs)}); not launching the demo job")
            return
        for job in _job_list(jobs):
            if job.get("dataset") == DEMO_DATASET and job.get("state") in ACTIVE_STATES:
                self.demo_job_id = str(job.get("id"))
                self.echo(
                    f"demo job {self.demo_job_id} is {job['state']}; /colorize answers once it publishes"
                )
                return
        dataset_dir = self.settings.datasets_dir / DEMO_DATASET
        if not _has_pairs(dataset_dir):
            from model.synthetic import make_synthetic_dataset

            counts = make_synthetic_dataset(
                dataset_dir, train=self.demo.train_pairs, val=self.demo.val_pairs, seed=0
            )
            self.echo(
                f"made the synthetic demo dataset in {dataset_dir}: "
                f"{counts['train']} train and {counts['val']} val pairs"
            )
        status, job = self._request("POST", "/jobs", body=self.demo.job_request())
        if status not in (200, 201, 202) or not isinstance(job, dict):
            self.echo(
                f"warning: could not launch the demo job: POST /jobs answered {status} ({_detail(job)})"
            )
            return
        self.demo_job_id = str(job.get("id"))
        self.echo(
            f"no generator published yet: launched demo job {self.demo_job_id} "
            f"({self.demo.steps} steps on the synthetic '{DEMO_DATASET}' dataset); "
            f"/colorize answers once its first version is published (follow it at {self.local_url}/)"
        )

    # ---- after start-up ----------------------------------------------------------------------------------
    def _supervise(self) -> int:
        """Watch the children; follow the demo job (if any) until a generator is loaded and the job is done.

        The API is asked every FOLLOW_SECONDS and only while there is something to follow, so the access log
        stays quiet otherwise.
        """
        last_follow = time.monotonic()
        while not self.stopping:
            dead = self._dead_child()
            if dead:
                self.echo(f"error: the {dead[0]} exited with status {dead[1]}; stopping")
                return 1
            if self.demo_job_id or self.waiting_for_model:
                if time.monotonic() - last_follow >= FOLLOW_SECONDS:
                    last_follow = time.monotonic()
                    self._follow_demo()
            time.sleep(POLL_SECONDS)
        return 0

    def _follow_demo(self) -> None:
        """Print the demo job's state when it changes (its step every PROGRESS_SECONDS while it runs), and
        say so once the API has loaded a generator."""
        if self.demo_job_id:
            try:
                status, job = self._request("GET", f"/jobs/{self.demo_job_id}", timeout=5)
            except OSError:
                return
            if status != 200 or not isinstance(job, dict):
                return
            state, progress = job.get("state"), job.get("progress") or {}
            step, total = progress.get("step"), progress.get("total_steps")
            changed = (state, progress.get("version")) != self._last_report[:2]
            moved = (
                step != self._last_report[2] and time.monotonic() - self._last_report_at >= PROGRESS_SECONDS
            )
            if changed or moved:
                self._last_report = (state, progress.get("version"), step)
                self._last_report_at = time.monotonic()
                steps = f" step {step}/{total}" if step is not None and total else ""
                version = f", published version {progress['version']}" if progress.get("version") else ""
                error = f": {job['error']}" if job.get("error") else ""
                self.echo(f"demo job {state}{steps}{version}{error}")
            if (progress.get("version") or state == "succeeded") and not self.model_announced:
                self.waiting_for_model = True
            if state not in ACTIVE_STATES:
                self.demo_job_id = None
        if self.waiting_for_model:
            try:
                ready = self._request("GET", "/readyz", timeout=5)[0] == 200
            except OSError:
                ready = False
            if ready:
                self.waiting_for_model, self.model_announced = False, True
                self.echo(f"a generator is loaded: {self.local_url}/ colorizes sketches now")

    def _request(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
        """One HTTP call to the local API, with the token when one is set; (status, decoded JSON or text)."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.settings.api_token:
            headers["Authorization"] = f"Bearer {self.settings.api_token}"
        request = urllib.request.Request(self.local_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _decode(error.read())


def published_version(models_dir: Path) -> int | None:
    """The newest complete generator version, or None (a file-system read: no TensorFlow in the launcher)."""
    latest = latest_version(models_dir)
    return latest.version if latest else None


def _has_pairs(dataset_dir: Path) -> bool:
    return all(pair_files(dataset_dir / split) for split in ("train", "val"))


def _job_list(payload: Any) -> list[dict]:
    """GET /jobs answers a plain list of job records."""
    return [job for job in payload if isinstance(job, dict)] if isinstance(payload, list) else []


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _detail(payload: Any) -> str:
    if isinstance(payload, dict) and "detail" in payload:
        return str(payload["detail"])
    return str(payload)[:300]


def _kill_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when the launcher dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, in the parent, not after the fork
    pr_set_pdeathsig = 1

    def set_parent_death_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the launcher died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return set_parent_death_signal
