"""`sketch2color up` process handling, with stand-in children (no TensorFlow): start, stop, deaths, restarts."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cli.demo import DemoConfig, _job_list
from cli.supervisor import Launcher, RestartPolicy, exit_text
from contracts.queue import redact
from contracts.settings import Settings
from tests.support import REPO_ROOT as REPO
from tests.support import (
    descendants,
    free_port,
    http_status,
    interrupt_and_wait,
    tail,
    wait_for_text,
    wait_until,
    wait_until_gone,
)

FAKE_API = """
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path in ("/healthz", "/readyz") else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

DRIVER = """
import json, sys
from pathlib import Path
from contracts.settings import Settings
from cli.demo import DemoConfig
from cli.supervisor import Launcher, RestartPolicy

FAKE_API, WORKER = sys.argv[4], sys.argv[5]

class StandIns(Launcher):
    def child_commands(self):
        return {
            "api": [sys.executable, "-c", FAKE_API, str(self.port)],
            "worker": [sys.executable, "-c", WORKER],
        }

settings = Settings(data_dir=Path(sys.argv[1]))
launcher = StandIns(settings, port=int(sys.argv[2]), demo=DemoConfig(enabled=False), startup_timeout=60,
                    stop_timeout=float(sys.argv[3]), restart=RestartPolicy(**json.loads(sys.argv[6])))
sys.exit(launcher.run())
"""

POLITE_WORKER = "import time\nwhile True: time.sleep(1)"
STUBBORN_WORKER = (
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: time.sleep(1)"
)
# The first one runs until killed; every restart exits at once, as a worker with a broken setting would.
CRASH_LOOP_WORKER = """
import os, sys, time
marker = os.path.join(os.environ["S2C_DATA_DIR"], "worker-ran")
if os.path.exists(marker):
    sys.exit(3)
open(marker, "w").close()
while True: time.sleep(1)
"""


def _start(tmp_path: Path, worker: str, stop_timeout: float = 3.0, port: int | None = None, **restart: float):
    log = tmp_path / "launcher.log"
    arguments = [
        str(tmp_path / "data"),
        str(port or free_port()),
        str(stop_timeout),
        textwrap.dedent(FAKE_API),
    ]
    command = [sys.executable, "-c", DRIVER, *arguments, worker, json.dumps(restart)]
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO)
    return process, log


def _child_pids(log: Path) -> dict[str, int]:
    return {name: int(pid) for name, pid in re.findall(r"started (\w+) \(pid (\d+)\)", log.read_text())}


def test_ctrl_c_stops_both_children_and_kills_one_that_ignores_sigterm(tmp_path):
    process, log = _start(tmp_path, STUBBORN_WORKER, stop_timeout=2.0)
    wait_for_text(log, "sketch2color is up: http://127.0.0.1:", process, timeout=60)
    children = descendants(process.pid)
    assert set(_child_pids(log).values()) <= set(children), (children, log.read_text())
    assert len(children) == 2, f"expected the api and the worker, found {children}"
    started = time.monotonic()
    assert interrupt_and_wait(process, timeout=30, signal_number=signal.SIGINT) == 0, tail(log)
    assert time.monotonic() - started < 15, "stopping should take about stop_timeout, not longer"
    assert not wait_until_gone(children, timeout=5), f"children left running: {children}"
    output = log.read_text()
    assert "worker did not stop within 2s; killing it" in output, output
    assert "api did not stop" not in output, output


def test_sigterm_stops_everything_cleanly(tmp_path):
    process, log = _start(tmp_path, POLITE_WORKER)
    wait_for_text(log, "sketch2color is up", process, timeout=60)
    children = descendants(process.pid)
    assert interrupt_and_wait(process, timeout=30, signal_number=signal.SIGTERM) == 0, tail(log)
    assert not wait_until_gone(children, timeout=5)
    assert "did not stop" not in log.read_text()


def _new_pid(process, log: Path, name: str, old: int, health_url: str | None, timeout: float = 30) -> int:
    """Wait for `name` to be started again; with `health_url`, it must answer 200 at every poll meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"up exited with {process.returncode}:\n{tail(log)}"
        if health_url:
            assert http_status(health_url, timeout=2) == 200, f"the API stopped answering:\n{tail(log)}"
        pid = _child_pids(log).get(name)
        if pid != old and pid in descendants(os.getpid()):
            return pid
        time.sleep(0.1)
    raise AssertionError(f"the {name} was not started again within {timeout:.0f}s:\n{tail(log)}")


def _exit_status(process, log: Path, timeout: float) -> int:
    """The launcher's exit status; one still running after `timeout` is killed (its children follow it)."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"up still running after {timeout:.0f}s:\n{tail(log)}") from None


def test_a_killed_worker_is_restarted_alone_while_the_api_keeps_answering(tmp_path):
    port = free_port()
    process, log = _start(tmp_path, POLITE_WORKER, port=port)
    wait_for_text(log, "sketch2color is up", process, timeout=60)
    before = _child_pids(log)
    os.kill(before["worker"], signal.SIGKILL)
    worker = _new_pid(process, log, "worker", before["worker"], health_url=f"http://127.0.0.1:{port}/healthz")
    output = log.read_text()
    assert "the worker exited with status -9 (killed); restarting it in 1 s (restart 1)" in output, output
    assert _child_pids(log)["api"] == before["api"], "the API was restarted too"
    assert process.poll() is None, output
    children = descendants(process.pid)
    assert set(children) == {before["api"], worker}, (children, output)
    assert interrupt_and_wait(process, timeout=30, signal_number=signal.SIGTERM) == 0, tail(log)
    assert not wait_until_gone(children, timeout=5)


def test_a_killed_api_comes_back_every_time_it_had_run_healthily(tmp_path):
    port = free_port()
    # healthy_seconds=0: every run counts as healthy, so each death is restart 1 again and never gives up.
    process, log = _start(tmp_path, POLITE_WORKER, port=port, healthy_seconds=0, max_restarts=1)
    wait_for_text(log, "sketch2color is up", process, timeout=60)
    worker = _child_pids(log)["worker"]
    for _ in range(2):
        api = _child_pids(log)["api"]
        os.kill(api, signal.SIGKILL)
        _new_pid(process, log, "api", api, health_url=None)
        wait_until(lambda: http_status(f"http://127.0.0.1:{port}/healthz", timeout=2) == 200, 30,
                   lambda: f"the restarted API to answer:\n{tail(log)}")  # fmt: skip
    output = log.read_text()
    restarted = "the api exited with status -9 (killed); restarting it in 1 s (restart 1)"
    assert output.count(restarted) == 2, output
    assert _child_pids(log)["worker"] == worker, "the worker was restarted too"
    children = descendants(process.pid)
    assert interrupt_and_wait(process, timeout=30, signal_number=signal.SIGTERM) == 0, tail(log)
    assert not wait_until_gone(children, timeout=5)


def test_a_child_that_keeps_dying_makes_up_give_up_and_stop_the_rest(tmp_path):
    process, log = _start(tmp_path, CRASH_LOOP_WORKER, first_delay=0.1, max_restarts=2)
    wait_for_text(log, "sketch2color is up", process, timeout=60)
    children = descendants(process.pid)
    os.kill(_child_pids(log)["worker"], signal.SIGKILL)
    assert _exit_status(process, log, timeout=60) == 1, tail(log)
    output = log.read_text()
    assert "restarting it in 0.1 s (restart 1)" in output and "restarting it in 0.2 s (restart 2)" in output
    assert "error: the worker exited with status 3; it died 3 times in a row" in output, output
    assert "giving up and stopping the rest" in output and "to see why" in output, output
    assert "restart 3" not in output, output
    assert not wait_until_gone(children, timeout=5)


def test_children_die_with_a_killed_launcher(tmp_path):
    process, log = _start(tmp_path, POLITE_WORKER)
    wait_for_text(log, "sketch2color is up", process, timeout=60)
    children = descendants(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert not wait_until_gone(children, timeout=10), "children outlived their launcher (parent-death signal)"


def test_a_busy_port_is_reported_before_starting_anything(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        process, log = _start(tmp_path, POLITE_WORKER, port=busy.getsockname()[1])
        assert process.wait(timeout=60) == 2
    output = log.read_text()
    assert "cannot listen on 127.0.0.1:" in output and "--port" in output, output
    assert "started" not in output


def test_demo_job_request_matches_the_jobs_api():
    request = DemoConfig(steps=4, width=8, batch_size=2).job_request()
    assert request == {"dataset": "demo", "steps": 4, "batch_size": 2, "learning_rate": 1e-3, "ngf": 8,
                       "ndf": 8, "checkpoint_every": 4, "export_every": 4, "log_every": 4}  # fmt: skip
    # The default demo publishes once, when it has learned its shapes (tests/model/test_demo_learns.py);
    # a longer one goes on publishing at that pace.
    assert DemoConfig().job_request()["export_every"] == DemoConfig().steps == 600
    longer = DemoConfig(steps=1800).job_request()
    assert longer["export_every"] == 600 and longer["steps"] % longer["export_every"] == 0, longer
    with pytest.raises(ValueError, match="demo steps"):
        DemoConfig(steps=0)


def test_helpers():
    assert [RestartPolicy().delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert exit_text(-9) == "exited with status -9 (killed)" and exit_text(3) == "exited with status 3"
    assert _job_list([{"id": "a"}, "junk"]) == [{"id": "a"}]
    assert _job_list({"detail": "no"}) == []
    assert redact("redis://:secret@host:6379/0") == "redis://:***@host:6379/0"
    assert redact("redis://redis:6379/0") == "redis://redis:6379/0"
    settings = Settings(data_dir=Path("/tmp/x"))
    assert Launcher(settings, host="0.0.0.0", port=9000).local_url == "http://127.0.0.1:9000"
    assert Launcher(settings, host="::1", port=9000).local_url == "http://[::1]:9000"
    commands = Launcher(settings, host="0.0.0.0", port=9000).child_commands()
    assert commands["api"][-7:] == ["serve", "--host", "0.0.0.0", "--port", "9000", "--log-level", "warning"]
    # By default the children say only what matters (no Celery banner, no access log); --verbose: everything.
    assert commands["worker"][-4:] == ["worker", "--hostname", "training@%h", "--quiet"], commands
    assert commands["importer"][-1] == "--quiet", commands
    verbose = Launcher(settings, port=9000, verbose=True).child_commands()
    assert verbose["api"][-2:] == ["--log-level", "debug"] and verbose["worker"][-2:] == [
        "--loglevel",
        "debug",
    ]
    assert commands["batcher"][-5:-3] == ["--queues", "batches"], "chapters never wait behind a training job"
    environment = Launcher(Settings(data_dir=Path("rel/data")), port=9000).child_environment()
    assert environment["S2C_DATA_DIR"] == str(Path("rel/data").resolve())


@pytest.mark.parametrize("demo", [DemoConfig(), DemoConfig(steps=4, width=8, batch_size=2)])
def test_demo_job_request_is_valid_for_post_jobs(demo):
    from app.api.routes.jobs import JobLaunch

    launch = JobLaunch.model_validate(demo.job_request())
    assert (launch.dataset, launch.steps, launch.ngf) == ("demo", demo.steps, demo.width)
