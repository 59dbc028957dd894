"""What GET /jobs and GET /jobs/{id} say about waiting, in process (`jobs_app`: nothing consumes its queue): a
running job's phase and whole time left (its export under way and the ones to come), queued jobs' places in line
and expected waits, all from the timings measured on the data folder."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from contracts import jobs
from contracts.job_record import Job, Phase
from contracts.job_states import JobState
from contracts.job_timing import JobTimings, Speed
from contracts.train_config import TrainConfig
from tests.app.conftest import InProcessApp

LAUNCH = {"dataset": "demo", "steps": 100, "batch_size": 2, "ngf": 16, "ndf": 16, "export_every": 50}
# 35 s start-up, 40 s per version, 20 images/s at width 16: a whole LAUNCH job is 35 + 10 + 2 * 40 = 125 s.
START, PUBLISH, SPEED = 35.0, 40.0, 20.0
WHOLE_JOB = START + 100 * 2 / SPEED + 2 * PUBLISH


@pytest.fixture
def publishing_job(jobs_app: InProcessApp) -> Iterator[str]:
    """A running job exporting its step-50 version for 10 s already, on learned timings; removed afterwards with
    every job the test launched, and the timings."""
    runs_dir = jobs_app.data_dir / "runs"
    timings = JobTimings(runs_dir)
    timings.add(start_seconds=START, publish_seconds=PUBLISH, speed=Speed(ngf=16, images_per_second=SPEED))
    job_id = jobs.new_job_id()
    params = TrainConfig.model_validate({key: value for key, value in LAUNCH.items() if key != "dataset"})
    jobs.create_record(runs_dir / job_id, jobs.new_record(job_id, "demo", params, 100))

    def publishing(record: Job) -> None:  # as a worker leaves it (worker/runner.py), without a worker
        record.state = JobState.RUNNING
        record.progress.step, record.progress.images_per_second = 50, SPEED
        record.progress.phase = Phase.PUBLISHING
        record.progress.phase_started_at = (datetime.now(UTC) - timedelta(seconds=10)).isoformat()

    jobs.update_record(runs_dir / job_id, publishing)
    before = {path.name for path in runs_dir.iterdir()}
    yield job_id
    with jobs_app.client() as client:
        for record in client.get("/jobs").json():
            if record["id"] == job_id or record["id"] not in before:
                if record["state"] == "queued":
                    client.post(f"/jobs/{record['id']}/cancel")
                jobs.update_record(
                    runs_dir / record["id"], lambda record: setattr(record, "state", JobState.FAILED)
                )
                assert client.delete(f"/jobs/{record['id']}").status_code == 200
    timings.path.unlink()


def test_phase_time_left_and_queue_places(jobs_app: InProcessApp, publishing_job: str) -> None:
    running_left = (PUBLISH - 10) + 50 * 2 / SPEED + PUBLISH  # this export, 50 steps, the last export
    with jobs_app.client() as client:
        first = client.post("/jobs", json=LAUNCH)
        second = client.post("/jobs", json=LAUNCH)
        assert first.status_code == second.status_code == 202, (first.text, second.text)
        assert first.json()["queue"]["position"] == 1 and second.json()["queue"]["position"] == 2, (
            "POST /jobs says where the new job stands",
            first.json()["queue"],
            second.json()["queue"],
        )
        listed = {record["id"]: record for record in client.get("/jobs").json()}
        one = client.get(f"/jobs/{second.json()['id']}").json()

    running = listed[publishing_job]
    # The export has run for 10 s plus however long this test took so far (a busy machine: seconds).
    exporting_for = (
        datetime.now(UTC) - datetime.fromisoformat(running["progress"]["phase_started_at"])
    ).total_seconds()
    late = exporting_for - 10

    def close(seconds: float, expected: float) -> bool:
        return expected - late - 1 <= seconds <= expected + 1

    assert running["progress"]["phase"] == "publishing" and running["queue"] is None, running
    assert close(running["seconds_left"], running_left), (
        f"time left {running['seconds_left']} s, expected {running_left} s: the export under way, the steps "
        "left and the last export"
    )
    first_place, second_place = listed[first.json()["id"]]["queue"], listed[second.json()["id"]]["queue"]
    assert (first_place["position"], first_place["jobs_ahead"]) == (1, 1), first_place
    assert (second_place["position"], second_place["jobs_ahead"]) == (2, 2), second_place
    assert close(first_place["wait_seconds"], running_left), first_place
    assert close(second_place["wait_seconds"], running_left + WHOLE_JOB), (
        f"{second_place}: the running job's time left, then the first queued job's whole run ({WHOLE_JOB} s)"
    )
    assert listed[first.json()["id"]]["seconds_left"] == WHOLE_JOB, (
        "a queued job's own time: start-up included"
    )
    assert one["progress"]["phase"] is None and (one["queue"]["position"], one["queue"]["jobs_ahead"]) == (
        2,
        2,
    ), one
    assert close(one["queue"]["wait_seconds"], running_left + WHOLE_JOB), one["queue"]
