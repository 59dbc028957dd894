"""`sketch2color remote ...` against a real API server with a token, as a user with a remote GPU box runs it."""

import io
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import Result
from PIL import Image
from typer.testing import CliRunner

from tests.app.conftest import (
    Server,
    draw_sketch,
    encode,
    publish_tiny_hint_generator,
    run_server,
    wait_for_version,
)
from tests.cli.shapes import draw_shape_and_hint, hint_filled, inside_box
from tests.support import Process, child_environment, wait_until

SKETCH2COLOR = str(Path(sys.executable).with_name("sketch2color"))
TOKEN = "remote-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("remote") / "data"
    publish_tiny_hint_generator(data_dir / "models", seed=1)  # takes hints, and colorizes without them too
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
    assert "(300x150, png)" in done.stdout and "model version 1" in done.stdout, done.stdout
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


def test_colorize_with_hints_and_fill_draws_what_a_direct_post_does(server: Server, tmp_path: Path) -> None:
    sketch, hints = draw_shape_and_hint(tmp_path)
    for size, fill, lines in (
        ("original", "regions", "keep"),
        ("256", "regions", "none"),
        ("original", "soft", "keep"),
    ):
        output = tmp_path / f"{size}-{fill}.png"
        done = remote(server, "colorize", sketch, output, "--hints", hints, "--size", size, "--fill", fill,
                      "--lines", lines)  # fmt: skip
        assert done.returncode == 0, done.stderr
        files = {
            "file": ("sketch.png", sketch.read_bytes(), "image/png"),
            "hints": ("hints.png", hints.read_bytes(), "image/png"),
        }
        query = {"size": size, "fill": fill, "lines": lines}
        direct = httpx.post(f"{server.base_url}/colorize", params=query, files=files, timeout=60)
        assert direct.status_code == 200, direct.text
        with Image.open(output) as got, Image.open(io.BytesIO(direct.content)) as expected:
            assert got.size == expected.size == ((256, 256) if size == "256" else (320, 200))
            assert np.array_equal(np.asarray(got), np.asarray(expected)), (
                f"{size} {fill} {lines}: not the same picture"
            )
        share = hint_filled(inside_box(output))
        assert (share == 1.0) if fill == "regions" else (share < 0.9), (
            f"{size} {fill}: {share:.0%} in the hint color"
        )


def test_colorize_format_psd_writes_the_servers_layered_file(server: Server, tmp_path: Path) -> None:
    from psd_tools import PSDImage

    sketch, hints = draw_shape_and_hint(tmp_path)
    output = tmp_path / "layers.psd"
    done = remote(
        server, "colorize", sketch, output, "--hints", hints, "--size", "original", "--format", "psd"
    )
    assert done.returncode == 0 and "(320x200, psd)" in done.stdout, done.stdout + done.stderr
    document = PSDImage.open(output)
    assert [layer.name for layer in reversed(list(document))] == ["hints", "lines", "shading", "flats"]
    by_extension = tmp_path / "layers.zip"
    assert remote(server, "colorize", sketch, by_extension, "--size", "original").returncode == 0
    assert zipfile.is_zipfile(by_extension) and "layers.json" in zipfile.ZipFile(by_extension).namelist()


def test_server_refusals_and_bad_choices_are_one_clear_line(server: Server, tmp_path: Path) -> None:
    sketch, _ = draw_shape_and_hint(tmp_path)
    opaque = tmp_path / "opaque.png"
    opaque.write_bytes(encode(Image.new("RGB", (320, 200), "red")))
    refused = remote(server, "colorize", sketch, tmp_path / "out.png", "--hints", opaque)
    assert refused.returncode == 2 and "422" in refused.stderr and "no alpha channel" in refused.stderr, (
        refused.stderr
    )
    assert not (tmp_path / "out.png").exists()
    missing = remote(server, "colorize", sketch, tmp_path / "out.png", "--hints", tmp_path / "nothing.png")
    assert missing.returncode == 2 and "no file" in missing.stderr, missing.stderr
    bad_fill = remote(server, "colorize", sketch, tmp_path / "out.png", "--fill", "flat")
    assert bad_fill.returncode == 2 and "--fill" in bad_fill.stderr and "regions" in bad_fill.stderr
    bad_size = remote(server, "colorize", sketch, tmp_path / "out.png", "--size", "512")
    assert bad_size.returncode == 2 and "--size" in bad_size.stderr and "original" in bad_size.stderr


def invoke(server: Server, *arguments: str | Path) -> Result:
    """`sketch2color remote ...` in this process (Typer's runner): no interpreter start per call."""
    from cli.main import cli

    command = ["remote", *map(str, arguments), "--url", server.base_url]
    return CliRunner().invoke(cli, command, env={"S2C_API_TOKEN": TOKEN, "S2C_URL": None})


def test_datasets_upload_list_and_delete_through_an_importer_that_loads_no_tensorflow(
    server: Server, tmp_path: Path
) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for seed in range(5):
        Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(
            pictures / f"{seed}.jpg"
        )
    environment = child_environment(server.data_dir)
    command = [sys.executable, "-m", "cli", "worker", "--queues", "datasets", "--hostname", "importer@%h",
               "--quiet"]  # fmt: skip
    importer = Process("importer", command, environment, tmp_path / "importer.log")
    try:
        wait_until(lambda: "ready on queue datasets" in importer.log() or not importer.alive(), 60,
                   lambda: f"the importer to start\n{importer.tail()}")  # fmt: skip
        forgot = invoke(server, "datasets", "upload", pictures, "holiday")
        assert forgot.exit_code == 2 and "add --from-pictures" in forgot.stderr, forgot.output
        assert len(forgot.stderr.splitlines()) == 1 and "kind=" not in forgot.stderr, forgot.stderr
        assert "holiday" not in invoke(server, "datasets", "list").stdout, "the failed import was left behind"

        done = invoke(
            server, "datasets", "upload", pictures, "holiday", "--from-pictures", "--val-fraction", "0.2"
        )
        assert done.exit_code == 0 and "dataset holiday: 4 train and 1 val pairs" in done.stdout, done.output
        assert re.search(r"holiday\s+4 train\s+1 val", invoke(server, "datasets", "list").stdout)
        maps = Path(f"/proc/{importer.pid}/maps").read_text()
        assert "tensorflow" not in maps, "the importer loaded TensorFlow to import pictures"
        deleted = invoke(server, "datasets", "delete", "holiday")
        assert deleted.exit_code == 0 and "holiday" not in invoke(server, "datasets", "list").stdout
        assert importer.alive(), importer.tail()
    finally:
        importer.stop()


def test_resume_metrics_labels_and_readable_models_over_http(server: Server, tmp_path: Path) -> None:
    from contracts.job_record import MetricsPoint
    from model.synthetic import make_synthetic_dataset
    from storage.run_folder import RunFolder
    from storage.serving_policy import GateDecision
    from tests.conftest import publish_tiny_generator

    make_synthetic_dataset(server.data_dir / "datasets" / "tiny", train=2, val=2, seed=0)
    launched = invoke(server, "launch", "tiny", "--steps", "4")
    assert launched.exit_code == 0, launched.output
    job_id = re.search(r"launched job (\S+)", launched.stdout)[1]
    assert invoke(server, "cancel", job_id).exit_code == 0  # queued, no worker: cancelled at once
    resumed = invoke(server, "resume", job_id)
    assert resumed.exit_code == 0 and f"job {job_id} is queued" in resumed.stdout, resumed.output
    again = invoke(server, "resume", job_id)
    assert again.exit_code == 2 and "409" in again.stderr, again.output

    point = MetricsPoint(step=2, epoch=1, gen_gan=0.712345, gen_l1=0.1234567, disc=1.3333333, imgs_per_s=7.777,
                         val_l1=0.0987654, val_psnr=21.98765, val_ssim=0.6543219, version=1)  # fmt: skip
    metrics_file = RunFolder(server.data_dir / "runs" / job_id).metrics
    written = metrics_file.read_text() if metrics_file.exists() else ""
    metrics_file.write_text(written + point.model_dump_json() + "\n")
    shown = invoke(server, "metrics", job_id).stdout
    assert re.search(r"\b2\s+0\.712\s+0\.1235\s+1\.333\s+7\.8\s+0\.0988\s+21\.99\s+0\.654  published version 1",
                     shown), shown  # fmt: skip
    assert invoke(server, "cancel", job_id).exit_code == 0

    held_back = GateDecision(passed=False, reason="worse than version 1")
    version = publish_tiny_generator(server.models_dir, seed=2, gate=held_back,
                                     val={"l1": 0.123456789, "psnr": 20.123456, "ssim": 0.5})  # fmt: skip
    wait_until(lambda: f"{version:>5}" in invoke(server, "models").stdout, 30, "the new version to be listed")
    assert invoke(server, "label", "stable", str(version)).exit_code == 0
    listed = invoke(server, "models").stdout
    line = next(line for line in listed.splitlines() if line.startswith(f"{version:>5}"))
    assert "val_l1 0.1235" in line and "psnr 20.12" in line and "held back" in line, listed
    assert "label stable" in line and "0.123456789" not in listed, listed
    assert invoke(server, "label", "stable", "--delete").exit_code == 0
    assert "label stable" not in invoke(server, "models").stdout
