"""Helpers of the deployment checks: the repository's files, the settings' names, the CLI's commands."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml

from cli.main import cli
from contracts.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
SHARED_COMPOSE_FILE = REPO / "docker-compose.shared.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile.gpu"
DOCKERIGNORE = REPO / ".dockerignore"


def find_tool(name: str) -> str | None:
    """A command on PATH, or installed beside this interpreter (a virtual environment's bin/)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def settings_env_names() -> set[str]:
    prefix = Settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def cli_group():
    """The click group behind our Typer app (Typer vendors click, so no isinstance checks here)."""
    group = typer.main.get_command(cli)
    assert hasattr(group, "commands"), f"the CLI should be a group of commands, got {group!r}"
    return group


def check_cli_command(argv: list[str]) -> None:
    """Fail unless `argv` (e.g. ["sketch2color", "serve", "--port", "8000"]) parses with our CLI."""
    assert argv and argv[0] == "sketch2color", f"expected a `sketch2color ...` command, got {argv}"
    group = cli_group()
    assert len(argv) > 1 and argv[1] in group.commands, (
        f"`{' '.join(argv)}` runs command {argv[1:2]}, "
        f"but the CLI only has: {', '.join(sorted(group.commands))}"
    )
    command = group.commands[argv[1]]
    try:
        command.make_context(f"sketch2color {argv[1]}", list(argv[2:]))
    except Exception as error:  # click's UsageError and kin: an unknown option, a bad value, ...
        raise AssertionError(f"`{' '.join(argv)}` is not a valid invocation of our CLI: {error}") from error


def cli_option_default(command: str, option: str):
    for parameter in cli_group().commands[command].params:
        if f"--{option}" in getattr(parameter, "opts", []):
            return parameter.default
    raise AssertionError(f"`sketch2color {command}` has no --{option} option")


def parse_duration(text: str | int | float) -> float:
    """Compose durations ("10m", "1m30s", "90s", "2h") in seconds."""
    if isinstance(text, int | float):
        return float(text)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert parts and "".join(number + unit for number, unit in parts) == text, f"not a duration: {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def compose_command() -> list[str] | None:
    """Docker Compose v2 (`docker compose`) if it runs here, else the Python `docker-compose` (v1)."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = find_tool("docker-compose")
    return [legacy] if legacy else None


def run_compose_config(
    project_dir: Path, overrides: tuple[str, ...] = (), profiles: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    command = compose_command()
    assert command, (
        "no Docker Compose here to validate docker-compose.yml: install the Debian package `docker-compose` "
        "(or the Docker Compose v2 plugin)"
    )
    # A clean environment, so that variables of the machine running the tests do not leak into the config.
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project_dir)}
    files = [
        option for name in ("docker-compose.yml", *overrides) for option in ("-f", str(project_dir / name))
    ]
    chosen = [option for profile in profiles for option in ("--profile", profile)]
    return subprocess.run(
        [*command, "--project-directory", str(project_dir), *files, *chosen, "config"],
        capture_output=True, text=True, env=environment, cwd=project_dir, timeout=120,
    )  # fmt: skip


def copy_compose_project(destination: Path, token: str | None) -> Path:
    """docker-compose.yml beside an .env made from .env.example, with the API token filled in (or not)."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy(COMPOSE_FILE, destination / "docker-compose.yml")
    shutil.copy(SHARED_COMPOSE_FILE, destination / SHARED_COMPOSE_FILE.name)
    env_text = ENV_EXAMPLE.read_text()
    if token is not None:
        env_text = re.sub(r"(?m)^S2C_API_TOKEN=.*$", f"S2C_API_TOKEN={token}", env_text)
    (destination / ".env").write_text(env_text)
    return destination


@pytest.fixture(scope="session")
def compose_raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="session")
def compose_config(tmp_path_factory) -> dict:
    """The compose file as Docker Compose resolves it (anchors merged, .env interpolated), parsed."""
    project = copy_compose_project(tmp_path_factory.mktemp("compose"), token="test-token")
    result = run_compose_config(project)
    assert result.returncode == 0, f"docker-compose config rejected docker-compose.yml:\n{result.stderr}"
    return yaml.safe_load(result.stdout)
