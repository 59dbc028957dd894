"""./start.sh and ./test.sh: the quick start's two commands."""

import os
import subprocess

import pytest

from tests.deploy.conftest import REPO, check_cli_command


def _run_test_script(tmp_path, test_source: str) -> subprocess.CompletedProcess:
    test_file = tmp_path / "test_sample.py"
    test_file.write_text(test_source)
    environment = {**os.environ, "SKIP_INSTALL": "1"}  # the suite running this already has .venv installed
    return subprocess.run(
        [str(REPO / "test.sh"), str(test_file), "-p", "no:cacheprovider"],
        capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["start.sh", "test.sh"])
def test_scripts_are_executable_bash(name):
    script = REPO / name
    assert os.access(script, os.X_OK), f"{name} is not executable (chmod +x {name})"
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_start_script_installs_then_runs_up():
    text = (REPO / "start.sh").read_text()
    assert "-m venv .venv" in text and "pip install" in text and "pyproject.toml" in text
    last = [line for line in text.splitlines() if line.strip()][-1]
    assert last.startswith("exec .venv/bin/sketch2color up"), last
    check_cli_command(["sketch2color", "up", "--port", "8000", "--demo-steps", "4", "--demo-width", "8"])


def test_test_script_passes_when_tests_pass(tmp_path):
    result = _run_test_script(tmp_path, "def test_ok():\n    assert True\n")
    assert result.returncode == 0, result.stdout + result.stderr


def test_test_script_fails_when_a_test_fails(tmp_path):
    result = _run_test_script(
        tmp_path, "def test_ok():\n    assert True\n\ndef test_bad():\n    assert False\n"
    )
    assert result.returncode == 1, result.stdout + result.stderr


def test_test_script_fails_when_no_test_ran(tmp_path):
    nothing = _run_test_script(tmp_path, "VALUE = 1\n")
    assert nothing.returncode != 0, nothing.stdout + nothing.stderr
    skipped = _run_test_script(
        tmp_path, "import pytest\n\n@pytest.mark.skip('x')\ndef test_skipped():\n    pass\n"
    )
    assert skipped.returncode != 0, skipped.stdout + skipped.stderr
    assert "no test ran" in skipped.stderr


def test_test_script_installs_what_the_tests_need_and_ci_only_calls_it():
    """The README's test command passes on a fresh machine by itself; CI adds nothing but a fresh .venv."""
    text = (REPO / "test.sh").read_text()
    for package in ("chromium", "docker-compose", "redis-server"):
        assert f"command -v {package} >/dev/null || need+=({package})" in text, package
    for command, package in (("node", "nodejs"), ("npm", "npm")):  # the JS client's type checks
        assert f"command -v {command} >/dev/null || need+=({package})" in text, package
    assert "(cd clients/js && npm ci " in text, "the JS client's pinned tools come from its package-lock.json"
    assert "apt-get install" in text and "./start.sh --install-only" in text
    assert "sudo apt-get install" in text, "without root or sudo, say which command installs the packages"
    commands = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert "./test.sh" in commands, commands
    assert not any("apt-get" in line or "redis-server" in line or "pytest" in line for line in commands), (
        f".ci/run should only call ./test.sh, found: {commands}"
    )
