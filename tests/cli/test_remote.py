"""`sketch2color remote ...` against a real API server with a token, as a user with a remote GPU box runs it."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.app.conftest import Server, draw_sketch, run_server, wait_for_version
from tests.conftest import publish_tiny_generator

SKETCH2COLOR = str(Path(sys.executable).with_name("sketch2color"))
TOKEN = "remote-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("remote") / "data"
    publish_tiny_generator(data_dir / "models", seed=1)
    with run_server(data_dir, api_token=TOKEN) as running:
        wait_for_version(running, 1)
        yield running


def remote(server: Server, *arguments, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("S2C_")}
    if token:
        environment["S2C_API_TOKEN"] = token
    return subprocess.run(
        [SKETCH2COLOR, "remote", arguments[0], *map(str, arguments[1:]), "--url", server.base_url],
        capture_output=True, text=True, env=environment, timeout=120,
    )  # fmt: skip


def test_colorize_models_serve_and_jobs_over_http(server: Server, tmp_path: Path) -> None:
    sketch, output = tmp_path / "wide.png", tmp_path / "out.png"
    draw_sketch(300, 150, seed=2).save(sketch)
    done = remote(server, "colorize", sketch, output, "--size", "original")
    assert done.returncode == 0, done.stderr
    assert "(300x150)" in done.stdout and "model version 1" in done.stdout, done.stdout
    assert Image.open(output).size == (300, 150)

    listed = remote(server, "models")
    assert listed.returncode == 0 and "served: 1" in listed.stdout, listed.stdout + listed.stderr
    pinned = remote(server, "serve", "1")
    assert pinned.returncode == 0 and "serves 1" in pinned.stdout, pinned.stderr
    assert remote(server, "serve", "latest").returncode == 0

    assert remote(server, "jobs").returncode == 0
    refused = remote(server, "launch", "no-such-dataset", "--steps", "5")
    assert refused.returncode == 2 and "404" in refused.stderr and "no-such-dataset" in refused.stderr
    bad = remote(server, "launch", "demo", "--steps", "5", "--ngf", "0")
    assert bad.returncode == 2 and "ngf" in bad.stderr, bad.stderr


def test_a_missing_token_says_what_to_do(server: Server) -> None:
    answer = remote(server, "jobs", token=None)
    assert answer.returncode == 2 and "401" in answer.stderr and "Authorization" in answer.stderr, (
        answer.stderr
    )
