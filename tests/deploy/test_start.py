"""The quick start's path, end to end: `sketch2color up` on a fresh data folder, no broker, no manual step.

It must start the API and a worker on the embedded broker, make the synthetic demo dataset, launch a (here
tiny) demo job, and come up ready: the page, /readyz and /colorize all answer with the demo model. Ctrl-C
stops every process it started, and a second start reuses the model instead of training again.
"""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from tests.deploy.conftest import REPO
from tests.support import (
    descendants,
    free_port,
    interrupt_and_wait,
    tail,
    wait_for_status,
    wait_for_text,
    wait_until_gone,
)

READY_TIMEOUT = 240
# What a default `up` must not print: TensorFlow's C++ start-up lines and CUDA probing, Celery's banner, root
# warning and task lines, kombu's missing host, the library lines of publishing a version, the access log.
NOISE = ("I0000", "W0000", "E0000", "cuInit", "[queues]", "[tasks]", "-------------- ", "SecurityWarning",
         "superuser", "No hostname was supplied", "Assets written to", "tf2onnx", "Using opset",
         "ONNX model", "Task sketch2color", '"GET /', '"POST /')  # fmt: skip
TOKEN = "start-path-token"


def _up_command(port: int) -> list[str]:
    script = Path(sys.executable).parent / "sketch2color"
    base = [str(script)] if script.is_file() else [sys.executable, "-m", "cli"]
    tiny_demo = [
        "--demo-steps",
        "4",
        "--demo-width",
        "8",
        "--demo-batch-size",
        "2",
        "--demo-train",
        "8",
        "--demo-val",
        "2",
    ]
    return [*base, "up", "--port", str(port), *tiny_demo]


def _environment(data_dir: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("S2C_")}
    environment.update(S2C_DATA_DIR=str(data_dir), S2C_API_TOKEN=TOKEN, S2C_MODEL_POLL_SECONDS="1")
    environment.setdefault("CUDA_VISIBLE_DEVICES", "")  # the quick start's laptop has no GPU
    return environment


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    with log.open("w") as output:
        return subprocess.Popen(
            _up_command(port), stdout=output, stderr=subprocess.STDOUT, cwd=REPO, env=_environment(data_dir)
        )


def _sketch_png() -> bytes:
    image = Image.new("RGB", (120, 90), "white")
    ImageDraw.Draw(image).ellipse((20, 10, 90, 80), outline="black", width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _stop(process: subprocess.Popen, log: Path) -> None:
    children = descendants(process.pid)
    assert children, f"`sketch2color up` has no child processes:\n{tail(log)}"
    code = interrupt_and_wait(process, timeout=120, signal_number=signal.SIGINT)
    assert code == 0, f"Ctrl-C should stop cleanly, got exit status {code}:\n{tail(log)}"
    left = wait_until_gone(children, timeout=10)
    assert not left, f"processes left running after Ctrl-C: {left}\n{tail(log)}"


@pytest.mark.timeout(900)
def test_up_starts_everything_on_a_fresh_data_folder_and_restarts_reusing_it(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "first.log"
    process = _start(data_dir, port, log)
    try:
        wait_for_text(log, f"sketch2color is up: {base}/", process, timeout=180)
        seconds = wait_for_status(f"{base}/readyz", 200, process, log, timeout=READY_TIMEOUT)
        print(f"/readyz answered 200 {seconds:.0f}s after the API was up")

        output = log.read_text()
        assert "launched demo job" in output, output
        wait_for_text(log, "serving generator version", process, timeout=60)
        wait_for_text(log, "published version", process, timeout=60)
        wait_for_text(log, "a generator is loaded", process, timeout=60)
        # Default logs say what matters (started, the address, job progress, published, served, errors);
        # library chatter, Celery's banners and the page's polling only with --verbose.
        output = log.read_text()
        noisy = [line for line in output.splitlines() if any(mark in line for mark in NOISE)]
        assert not noisy, "noise in the default log:\n" + "\n".join(noisy[:10])
        assert len(output.splitlines()) <= 30, (
            f"{len(output.splitlines())} lines up to the first version:\n{output}"
        )
        assert any((data_dir / "datasets" / "demo" / "train").glob("*.png")), "no synthetic demo dataset"
        runs = sorted(path.name for path in (data_dir / "runs").iterdir() if not path.name.startswith("."))
        assert len(runs) == 1, f"expected exactly the demo job's run folder, got {runs}"

        with httpx.Client(base_url=base, timeout=60) as client:
            page = client.get("/")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), (
                page.text[:300]
            )
            response = client.post("/colorize", files={"file": ("sketch.png", _sketch_png(), "image/png")})
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "image/png"
            assert response.headers.get("x-model-version", "").isdigit(), response.headers
            colored = Image.open(io.BytesIO(response.content))
            assert (colored.format, colored.size, colored.mode) == ("PNG", (256, 256), "RGB")
            jobs = client.get("/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
            assert jobs.status_code == 200 and [job["dataset"] for job in jobs.json()] == ["demo"], jobs.text
    finally:
        if process.poll() is None:
            _stop(process, log)

    # A second start finds the published model: ready at once, no new dataset, no new job.
    log = tmp_path / "second.log"
    started = time.monotonic()
    process = _start(data_dir, port, log)
    try:
        wait_for_status(f"{base}/readyz", 200, process, log, timeout=READY_TIMEOUT)
        print(f"second start: /readyz answered 200 after {time.monotonic() - started:.0f}s")
        wait_for_text(log, "no demo job needed", process, timeout=60)
        assert "launched demo job" not in log.read_text() and "made the synthetic" not in log.read_text()
        assert (
            sorted(path.name for path in (data_dir / "runs").iterdir() if not path.name.startswith("."))
            == runs
        ), "a second start trained again"
    finally:
        if process.poll() is None:
            _stop(process, log)
