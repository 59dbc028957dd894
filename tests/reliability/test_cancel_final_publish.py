"""A cancel that comes while a job publishes its final version (reliability row 17) ends the job `cancelled`, its
record saying the training is complete and which version it published (kept), never `succeeded` with
`cancel_requested: true`; and a cancel that loses the race with a job's end is refused, leaving the record as
the job ended it."""

import threading
from pathlib import Path

from filelock import FileLock

from contracts import jobs
from contracts.job_files import JobFiles
from contracts.job_states import JobState
from contracts.train_config import TrainConfig
from storage.atomic import write_atomically
from storage.serving_policy import LOCK_NAME
from storage.versions import generator_dir
from tests.app.conftest import in_process_app
from tests.support import TINY_JOB, JobSystem, wait_until

STEPS = 4


def test_a_cancel_during_the_final_publish_ends_the_job_cancelled_with_its_version_kept(tmp_path: Path):
    system = JobSystem(tmp_path)
    try:
        system.start_worker("final-publish")
        versions = generator_dir(system.data_dir / "models")
        versions.mkdir(parents=True)
        publish_lock = FileLock(str(versions / LOCK_NAME))
        with in_process_app(system.data_dir) as app, app.client() as client:
            with publish_lock:  # the worker's final publish waits here, its SavedModel written
                launched = client.post("/jobs", json={**TINY_JOB, "steps": STEPS, "export_every": STEPS})
                assert launched.status_code == 202, launched.text
                job_id = launched.json()["id"]
                wait_until(
                    lambda: any((staging / "sample.png").exists() for staging in versions.glob(".tmp-*")),
                    120,
                    lambda: (
                        f"the final publish to start\n{system.diagnostics(client.get(f'/jobs/{job_id}').json())}"
                    ),
                )
                cancel = client.post(f"/jobs/{job_id}/cancel")
                assert cancel.status_code == 202 and cancel.json()["state"] == "cancelling", cancel.text
            ended = wait_until(
                lambda: (job := client.get(f"/jobs/{job_id}").json())["state"] in jobs.FINAL_STATES and job,
                60,
                lambda: f"job {job_id} to end\n{system.diagnostics(client.get(f'/jobs/{job_id}').json())}",
            )
            context = system.diagnostics(ended)
            assert ended["state"] == "cancelled" and ended["cancel_requested"] is True, context
            assert ended["progress"]["step"] == STEPS and ended["progress"]["version"] == 1, context
            assert ended["attempts"][-1]["outcome"] == "cancelled", context
            note = ended["events"][-1]["event"]
            assert "after the last step" in note and "version 1 published (kept)" in note, context
            assert (versions / "1" / "saved_model.pb").is_file(), "the version published stays"
            again = client.post(f"/jobs/{job_id}/cancel")
            assert again.status_code == 409 and "already cancelled" in again.json()["detail"], again.text
    finally:
        system.close()


def test_a_cancel_that_loses_the_race_with_the_end_is_refused_and_changes_nothing(tmp_path: Path):
    run_dir = tmp_path / "runs" / jobs.new_job_id()
    jobs.create_record(run_dir, jobs.new_record(run_dir.name, "demo", TrainConfig(steps=STEPS), STEPS))
    jobs.begin_attempt(run_dir, "w:1:a", "w", previous_lease=None)
    files = JobFiles(run_dir)
    outcome: list[BaseException | jobs.Job] = []

    def cancel() -> None:
        try:
            outcome.append(jobs.request_cancel(run_dir))
        except BaseException as error:
            outcome.append(error)

    with FileLock(str(files.record_lock)):  # the worker ends the job while the cancel waits for the record
        canceller = threading.Thread(target=cancel)
        canceller.start()
        wait_until(files.cancel_flag.exists, 10, "the cancel to get past its first look (it flags first)")
        record = jobs.read_record(run_dir)
        assert record is not None and record.state == JobState.RUNNING
        record.state, record.finished_at = JobState.SUCCEEDED, jobs.utc_now()
        write_atomically(files.record, record.to_json())
    canceller.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], jobs.JobFinished), outcome
    assert "already succeeded" in str(outcome[0])
    ended = jobs.read_record(run_dir)
    assert ended is not None and (ended.state, ended.cancel_requested) == (JobState.SUCCEEDED, False), ended
    assert not files.cancel_flag.exists(), "a refused cancel leaves no flag behind"
