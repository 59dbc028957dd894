"""A server that starts with no generator: 503 first, then hot-loaded versions, no restart, no failure."""

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from storage.versions import numbered_versions
from tests.app.conftest import (
    POLL_SECONDS,
    DirectModels,
    Server,
    draw_sketch,
    encode,
    png_pixels,
    run_server,
    wait_until,
)
from tests.conftest import publish_tiny_generator

SKETCH = encode(draw_sketch(240, 320, seed=21))


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("empty-server") / "data") as running:
        yield running


def _colorize(client: httpx.Client) -> httpx.Response:
    return client.post("/colorize?fill=soft", files={"file": ("sketch.png", SKETCH, "image/png")})


def test_503_before_any_version_then_200_without_a_restart(empty_server: Server) -> None:
    with empty_server.client() as client:
        response = _colorize(client)
        assert response.status_code == 503, response.text
        assert "sketch2color train" in response.json()["detail"], (
            "the 503 should say how to train a generator"
        )
        assert int(response.headers["Retry-After"]) >= 1
        assert client.get("/readyz").status_code == 503
        assert client.get("/models").json()["versions"] == []

        # A job on its way: the 503 says so, and when its first version is due (from the job record).
        from contracts import jobs
        from contracts.job_record import Progress
        from contracts.job_states import JobState
        from contracts.train_config import TrainConfig

        job_id = jobs.new_job_id()
        run_dir = empty_server.data_dir / "runs" / job_id
        params = TrainConfig(steps=400, batch_size=4, export_every=100)
        jobs.create_record(run_dir, jobs.new_record(job_id, "demo", params, total_steps=400))
        assert "is queued and will publish one" in _colorize(client).json()["detail"]
        progress = Progress(total_steps=400, step=40, images_per_second=8.0)

        def start_running(record: jobs.Job) -> None:
            record.state, record.progress = JobState.RUNNING, progress

        jobs.update_record(run_dir, start_running)
        detail = _colorize(client).json()["detail"]
        assert "training (step 40 of 400)" in detail and "at step 100, in about 30 s" in detail, detail
        jobs.update_record(run_dir, lambda record: setattr(record, "state", JobState.FAILED))

        assert publish_tiny_generator(empty_server.models_dir, seed=1) == 1
        response = wait_until(
            lambda: (r := _colorize(client)).status_code == 200 and r, 60, "the first version to be served"
        )
    assert response.headers["X-Model-Version"] == "1"
    png_pixels(response)
    assert empty_server.process.alive(), "the server must not have restarted"


class LoopingClient(threading.Thread):
    """POSTs the same sketch over and over, recording every outcome, until stopped."""

    def __init__(self, base_url: str):
        super().__init__(daemon=True)
        self.base_url = base_url
        self.outcomes: list[tuple[int | str, str | None, bytes]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60) as client:
            while not self.halt.is_set():
                try:
                    response = _colorize(client)
                    self.outcomes.append((response.status_code, response.headers.get("X-Model-Version"),
                                          response.content))  # fmt: skip
                except httpx.HTTPError as error:
                    self.outcomes.append((repr(error), None, b""))

    def versions(self) -> list[str | None]:
        return [version for _, version, _ in list(self.outcomes)]


def _write_half_written_version(generator_dir: Path, number: int, complete_version: Path) -> None:
    """A numbered folder caught mid-copy: the SavedModel is there, the manifest (written last) is not. Made in a
    hidden folder and renamed in without its manifest: a poll between a copy in place and the manifest's removal
    would see a complete version."""
    staging = generator_dir / f".staging-{number}"
    shutil.copytree(complete_version, staging)
    (staging / "manifest.json").unlink()
    staging.rename(generator_dir / str(number))


def _write_corrupt_version(generator_dir: Path, number: int) -> None:
    """A folder that looks complete but whose SavedModel is garbage."""
    corrupt = generator_dir / str(number)
    corrupt.mkdir()
    (corrupt / "saved_model.pb").write_bytes(b"this is not a protocol buffer" * 10)
    (corrupt / "manifest.json").write_text(
        json.dumps({"version": number, "created": "2026-01-01T00:00:00+00:00"})
    )


def test_newer_version_is_swapped_in_under_load_with_zero_failures(
    empty_server: Server, direct_models: DirectModels
) -> None:
    server = empty_server
    generator_dir = server.models_dir / "generator"
    if not (generator_dir / "1").is_dir():  # this test run alone
        publish_tiny_generator(server.models_dir, seed=1)
    wait_until(lambda: httpx.get(f"{server.base_url}/readyz").status_code == 200, 60, "version 1 to load")

    looping = LoopingClient(server.base_url)
    looping.start()
    try:
        wait_until(lambda: len(looping.outcomes) >= 3, 60, "the looping client to get answers")
        _write_half_written_version(generator_dir, 2, generator_dir / "1")
        _write_corrupt_version(generator_dir, 3)

        def corrupt_version_refused() -> bool:
            versions = httpx.get(f"{server.base_url}/models").json()["versions"]
            return any(entry["version"] == 3 and entry["error"] for entry in versions)

        wait_until(corrupt_version_refused, 60, "the corrupt version 3 to be tried and refused")
        time.sleep(6 * POLL_SECONDS)  # several more polls: the refused version must not be tried again

        assert publish_tiny_generator(server.models_dir, seed=2) == 4, (
            "numbering continues after the existing folders"
        )
        published_at = time.monotonic()
        wait_until(lambda: "4" in looping.versions(), 60, f"X-Model-Version 4; log:\n{server.log()}")
        switch_seconds = time.monotonic() - published_at
        count_at_switch = len(looping.outcomes)
        wait_until(lambda: len(looping.outcomes) >= count_at_switch + 3, 60, "more answers after the switch")
    finally:
        looping.halt.set()
        looping.join(timeout=60)

    failures = [(status, version) for status, version, _ in looping.outcomes if status != 200]
    assert not failures, (
        f"{len(failures)} of {len(looping.outcomes)} requests failed during the reload: {failures[:5]}"
    )
    versions = looping.versions()
    assert set(versions) == {"1", "4"}, (
        f"only versions 1 and 4 should ever answer, saw {sorted(set(map(str, versions)))}"
    )
    first_new = versions.index("4")
    assert all(version == "4" for version in versions[first_new:]), f"went back to an old version: {versions}"
    print(
        f"switched to version 4 {switch_seconds:.1f} s after publishing ({len(versions)} requests, 0 failed)"
    )

    new_pixels = png_pixels(
        httpx.Response(200, content=looping.outcomes[-1][2], headers={"content-type": "image/png"})
    )
    old_pixels = png_pixels(
        httpx.Response(200, content=looping.outcomes[0][2], headers={"content-type": "image/png"})
    )
    assert np.array_equal(new_pixels, direct_models.colorize(generator_dir / "4", SKETCH))
    assert np.array_equal(old_pixels, direct_models.colorize(generator_dir / "1", SKETCH))

    models = httpx.get(f"{server.base_url}/models").json()
    listed = {entry["version"]: entry for entry in models["versions"]}
    assert models["active_version"] == 4 and listed[4]["active"]
    assert 2 not in listed, "a version folder without its manifest is not published yet"
    assert listed[3]["error"], "the corrupt version should be listed with its load error"
    refusals = server.log(1_000_000).count("failed to load generator version 3")
    assert refusals == 1, (
        f"the corrupt version was tried {refusals} times; it should be remembered and skipped"
    )


def test_a_pinned_version_that_fails_to_load_is_a_503_with_retry_after(empty_server: Server) -> None:
    generator_dir = empty_server.models_dir / "generator"
    generator_dir.mkdir(parents=True, exist_ok=True)
    broken = max(numbered_versions(generator_dir), default=0) + 1
    _write_corrupt_version(generator_dir, broken)
    with empty_server.client() as client:
        for _ in range(2):  # the first request tries to load it, the second finds it remembered as broken
            response = client.post(
                f"/colorize?version={broken}", files={"file": ("sketch.png", SKETCH, "image/png")}
            )
            assert response.status_code == 503, response.text
            assert int(response.headers["Retry-After"]) >= 1
            detail = response.json()["detail"]
            assert f"version {broken} cannot be loaded" in detail and "GET /models" in detail, detail
