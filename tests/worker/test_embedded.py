"""The same launch-and-finish on the embedded broker: no S2C_BROKER_URL, no Redis, only the data folder."""

from collections.abc import Iterator

import httpx
import pytest

from tests.support import JobSystem, sample_sketch_png, wait_until


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> Iterator[JobSystem]:
    embedded = JobSystem(tmp_path_factory.mktemp("embedded"), broker_url=None)
    try:
        embedded.start_api()
        embedded.start_worker("solo")
        yield embedded
    finally:
        embedded.close()


def test_job_runs_to_success_on_the_embedded_broker(system: JobSystem):
    assert "embedded single-machine broker" in system.workers["solo"].log(), system.workers["solo"].tail()
    assert "embedded single-machine broker" in system.api.log(), system.api.tail()

    launched = system.launch(steps=30, checkpoint_every=10, export_every=30)
    assert launched["state"] == "queued"
    seen_running = system.wait_for_job(
        launched["id"], lambda job: job["state"] != "queued", "leave the queue"
    )
    final = system.wait_for_job(
        launched["id"], lambda job: job["state"] in ("succeeded", "failed"), "finished"
    )
    assert seen_running["state"] in ("running", "succeeded")
    assert final["state"] == "succeeded" and final["progress"]["step"] == 30, system.diagnostics(final)
    version = final["progress"]["version"]

    assert (system.data_dir / "broker" / "queue").is_dir() and (
        system.data_dir / "broker" / "results"
    ).is_dir()
    with httpx.Client(base_url=system.base_url, timeout=30) as public:
        wait_until(
            lambda: public.get("/models").json()["active_version"] == version, 60, "version never active"
        )
        colorized = public.post(
            "/colorize", files={"file": ("s.png", sample_sketch_png(system), "image/png")}
        )
    assert colorized.status_code == 200 and colorized.headers["x-model-version"] == str(version), (
        colorized.text
    )
    with system.client() as client:
        assert [job["id"] for job in client.get("/jobs").json()] == [launched["id"]]
