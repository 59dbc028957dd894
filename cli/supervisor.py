"""`sketch2color up`: the whole system on one machine, in one command.

It runs `sketch2color serve` (the API), `sketch2color worker` (the training worker) and the workers of queues
`datasets` (imports) and `batches` (chapters' pages) as child processes with the same settings, waits until the API answers, prints its address and, when no generator has been published
yet, has the demo bootstrap (cli/demo.py) launch a short demo training job through the API, so that
`/colorize` answers with a real (demo-quality) model a few minutes later. With `S2C_BROKER_URL` unset both
children use the embedded broker under the data folder, so nothing else needs to run; with it set, they use
that broker (Redis). Once up, a child that dies (a worker killed for memory, say) is restarted on its own
after a growing pause, so the API keeps serving; only a child that keeps dying soon after each start makes
`up` give up and stop the rest. Ctrl-C or SIGTERM stops all children (terminate, wait, then kill). A second
start reuses what the first one made: the dataset, the published models and any demo job still queued or
running.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cli.api_client import ApiClient
from cli.demo import DemoBootstrap, DemoConfig
from cli.library_noise import is_library_noise
from contracts.queue import redact
from contracts.settings import Settings

POLL_SECONDS = 0.5
FOLLOW_SECONDS = 5.0


@dataclass(frozen=True)
class RestartPolicy:
    """When a dead child is started again: after first_delay, doubling up to max_delay, so a crash loop does
    not spin; a child that ran healthy_seconds counts as recovered; more than max_restarts quick deaths in a
    row mean something is wrong that restarting will not fix."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    healthy_seconds: float = 60.0
    max_restarts: int = 5

    def delay(self, restart: int) -> float:
        return min(self.first_delay * 2 ** (restart - 1), self.max_delay)


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
        verbose: bool = False,
        restart: RestartPolicy | None = None,
    ):
        self.settings = settings
        self.verbose = verbose
        self.host = host
        self.port = port
        self.demo = demo or DemoConfig()
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.echo = echo
        self.restart = restart or RestartPolicy()
        self.children: dict[str, subprocess.Popen] = {}
        self.started_at: dict[str, float] = {}
        self.quick_restarts: dict[str, int] = {}  # restarts in a row, each after a death soon after starting
        self.restart_due: dict[str, float] = {}  # dead children waiting for their restart time
        self.signals_received = 0
        self.api = ApiClient(self.local_url, settings.api_token)
        self.bootstrap = DemoBootstrap(self.demo, settings, self.api, echo)

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
        """Start everything, keep it running until Ctrl-C/SIGTERM (or a child that keeps dying), stop
        everything; the exit status."""
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
                    self.bootstrap.ensure()
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
        """The children's commands: by default only what a user acts on (the API's own lines, job progress,
        published versions, warnings, errors); with --verbose also the servers' and libraries' lines."""
        cli = [sys.executable, "-m", "cli"]
        worker_output = ["--loglevel", "debug"] if self.verbose else ["--quiet"]
        return {
            "api": [*cli, "serve", "--host", self.host, "--port", str(self.port)]
            + ["--log-level", "debug" if self.verbose else "warning"],
            "worker": [*cli, "worker", "--hostname", "training@%h", *worker_output],
            "importer": [*cli, "worker", "--queues", "datasets", "--hostname", "importer@%h", *worker_output],
            # Chapters' pages (POST /batches) on a worker of their own: they never wait behind a training job.
            "batcher": [*cli, "worker", "--queues", "batches", "--hostname", "batcher@%h", *worker_output],
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
        if running_as_root() and not in_container():
            self.echo("note: running as root; the workers run as root too (better: an ordinary user)")
        for name in self.child_commands():
            self._start_child(name)

    def _start_child(self, name: str) -> None:
        command = self.child_commands()[name]
        self.children[name] = subprocess.Popen(
            command,
            env=self.child_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own process groups: the terminal's Ctrl-C reaches only this launcher, which then stops
            # the children in order; if the launcher itself dies, the kernel stops them.
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
        self.started_at[name] = time.monotonic()
        threading.Thread(
            target=self._relay, args=(self.children[name],), name=f"relay-{name}", daemon=True
        ).start()
        self.echo(f"started {name} (pid {self.children[name].pid}): {self._command_text(name)}")

    def _command_text(self, name: str) -> str:
        return f"sketch2color {' '.join(self.child_commands()[name][3:])}"

    def _relay(self, child: subprocess.Popen) -> None:
        """Pass a child's output on, without the libraries' start-up chatter (all of it with --verbose)."""
        assert child.stdout is not None
        for raw in child.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if self.verbose or not is_library_noise(line):
                sys.stdout.write(line + "\n")
                sys.stdout.flush()

    def _dead_children(self) -> list[tuple[str, int]]:
        """(name, exit status) of the children that died and have no restart planned yet."""
        dead = []
        for name, child in self.children.items():
            code = child.poll()
            if code is not None and name not in self.restart_due:
                dead.append((name, code))
        return dead

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
            dead = self._dead_children()
            if dead:
                name, code = dead[0]
                raise LaunchError(f"the {name} {exit_text(code)} while starting (its output is above)")
            try:
                status, _ = self.api.request("GET", "/healthz", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(POLL_SECONDS)
        raise LaunchError(
            f"the API did not answer {self.local_url}/healthz within {self.startup_timeout:.0f}s"
        )

    # ---- after start-up ----------------------------------------------------------------------------------
    def _supervise(self) -> int:
        """Watch the children; follow the demo job (if any) until a generator is loaded and the job is done.

        The API is asked every FOLLOW_SECONDS and only while there is something to follow, so the access log
        stays quiet otherwise.
        """
        last_follow = time.monotonic()
        while not self.stopping:
            for name, code in self._dead_children():
                if not self._plan_restart(name, code):
                    return 1
            self._restart_due_children()
            if self.bootstrap.following:
                if time.monotonic() - last_follow >= FOLLOW_SECONDS:
                    last_follow = time.monotonic()
                    self.bootstrap.follow()
            time.sleep(POLL_SECONDS)
        return 0

    def _plan_restart(self, name: str, code: int) -> bool:
        """Say that a child died and when it starts again; False when it keeps dying and `up` gives up."""
        if time.monotonic() - self.started_at[name] >= self.restart.healthy_seconds:
            self.quick_restarts[name] = 0  # it had recovered: this is a new failure, not a crash loop
        restart = self.quick_restarts.get(name, 0) + 1
        if restart > self.restart.max_restarts:
            memory = "; status -9 is often the system running out of memory (see dmesg)" if code == -9 else ""
            self.echo(
                f"error: the {name} {exit_text(code)}; it died {restart} times in a row, each restart within "
                f"{self.restart.healthy_seconds:g} s, so restarting will not help: giving up and stopping the "
                f"rest. Its output is above, or run `{self._command_text(name)}` on its own to see why{memory}"
            )
            return False
        self.quick_restarts[name] = restart
        _kill_group(self.children[name])  # whatever it left behind in its process group
        delay = self.restart.delay(restart)
        self.echo(f"the {name} {exit_text(code)}; restarting it in {delay:g} s (restart {restart})")
        self.restart_due[name] = time.monotonic() + delay
        return True

    def _restart_due_children(self) -> None:
        now = time.monotonic()
        for name, due in list(self.restart_due.items()):
            if now >= due:
                del self.restart_due[name]
                self._start_child(name)


def exit_text(code: int) -> str:
    """'exited with status -9 (killed)': a negative status is the signal that ended the process."""
    if code >= 0:
        return f"exited with status {code}"
    return f"exited with status {code} ({(signal.strsignal(-code) or f'signal {-code}').lower()})"


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def in_container() -> bool:
    """In a container root is the usual user, and nothing to warn about."""
    return os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv")


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
