"""The job record's state machine (contracts/jobs.py): every transition, on real files, no broker needed."""

import json
from pathlib import Path

import pytest

from contracts import jobs


@pytest.fixture
def run_dir(tmp_path):
    job_id = jobs.new_job_id()
    path = tmp_path / "runs" / job_id
    jobs.create_record(path, jobs.new_record(job_id, "demo", {"steps": 10}, total_steps=10))
    return path


def state(run_dir) -> str:
    return json.loads((run_dir / "job.json").read_text())["state"]


def test_a_new_job_is_queued_and_cannot_be_created_twice(run_dir):
    record = jobs.read_record(run_dir)
    assert (record["state"], record["progress"]["total_steps"], record["attempts"]) == ("queued", 10, [])
    with pytest.raises(FileExistsError):
        jobs.create_record(run_dir, record)


def test_cancel_ends_a_queued_job_at_once_and_refuses_a_finished_one(run_dir):
    record = jobs.request_cancel(run_dir)
    assert (record["state"], record["cancel_requested"]) == ("cancelled", True)
    assert jobs.cancel_requested(run_dir) and record["finished_at"]
    with pytest.raises(jobs.JobFinished, match="already cancelled"):
        jobs.request_cancel(run_dir)


def test_a_delivery_runs_the_job_and_finishes_it(run_dir):
    assert jobs.begin_attempt(run_dir, "w1:1:a", "w1", previous_lease=None) == "run"
    assert state(run_dir) == "running"
    jobs.record_progress(run_dir, "w1:1:a", {**jobs.empty_progress(10), "step": 4, "version": 3})
    jobs.record_progress(run_dir, "w1:1:a", {**jobs.empty_progress(10), "step": 8, "version": None})
    record = jobs.read_record(run_dir)
    assert record["progress"]["version"] == 3, "a log point without a new version keeps the last one"
    assert record["attempts"][-1]["last_step"] == 8
    jobs.finish(run_dir, "w1:1:a", "succeeded", step=10)
    record = jobs.read_record(run_dir)
    assert (record["state"], record["attempts"][-1]["outcome"], record["progress"]["eta_seconds"]) == (
        "succeeded", "succeeded", 0.0,
    )  # fmt: skip
    assert jobs.begin_attempt(run_dir, "w2:1:b", "w2", previous_lease=None) == "succeeded"
    with pytest.raises(ValueError, match="not a final state"):
        jobs.finish(run_dir, "w1:1:a", "running")


def test_a_cancel_that_comes_first_wins_over_the_delivery(run_dir):
    jobs.begin_attempt(run_dir, "w1:1:a", "w1", previous_lease=None)
    jobs.request_cancel(run_dir)
    assert state(run_dir) == "cancelling", "a running job is flagged; its worker checkpoints and ends it"
    jobs.hand_back(run_dir, "w1:1:a", "w1", step=3)
    assert state(run_dir) == "queued"
    assert jobs.begin_attempt(run_dir, "w2:1:b", "w2", previous_lease=None) == "cancelled"
    assert state(run_dir) == "cancelled"


def test_a_lost_worker_s_job_is_requeued_only_without_a_live_lease(run_dir):
    jobs.begin_attempt(run_dir, "w1:1:a", "w1", previous_lease=None)
    assert not jobs.requeue_lost(run_dir, lambda: True, "janitor", lease={"owner": "w1:1:a"})
    assert state(run_dir) == "running"
    assert jobs.requeue_lost(run_dir, lambda: False, "janitor", lease=None)
    record = jobs.read_record(run_dir)
    assert (record["state"], record["attempts"][-1]["outcome"]) == ("queued", "worker lost")
    assert "worker lost" in record["events"][-1]["event"]
    jobs.unqueue_unsent(run_dir)
    assert state(run_dir) == "running", "a job whose message could not be sent waits for the next sweep"


def test_job_ids_are_exactly_uuids():
    job_id = jobs.new_job_id()
    assert jobs.is_job_id(job_id)
    for bad in (job_id + "\n", "../" + job_id, job_id.upper(), "demo"):
        assert not jobs.is_job_id(bad), repr(bad)
    with pytest.raises(ValueError):
        jobs.run_dir_for(Path("runs"), "../etc")


def test_resume_requeues_a_cancelled_or_failed_job_and_delete_removes_a_finished_one(run_dir):
    with pytest.raises(jobs.WrongState, match="only a cancelled or failed job"):
        jobs.resume(run_dir)
    jobs.request_cancel(run_dir)
    record = jobs.resume(run_dir)
    assert (record["state"], record["cancel_requested"], record["finished_at"]) == ("queued", False, None)
    assert not jobs.cancel_requested(run_dir), "the cancel flag is gone, or the next delivery would cancel it"
    with pytest.raises(jobs.WrongState, match="cancel it first"):
        jobs.delete_run(run_dir)
    jobs.begin_attempt(run_dir, "w1:1:a", "w1", previous_lease=None)
    jobs.finish(run_dir, "w1:1:a", "failed", error="boom")
    jobs.delete_run(run_dir)
    assert not run_dir.exists() and not list(run_dir.parent.iterdir()), "renamed away, then removed"


def test_a_worker_lost_while_cancelling_ends_the_job_cancelled(run_dir):
    jobs.begin_attempt(run_dir, "w1:1:a", "w1", previous_lease=None)
    jobs.request_cancel(run_dir)
    assert not jobs.requeue_lost(run_dir, lambda: False, "janitor", lease=None), "nothing to queue"
    assert state(run_dir) == "cancelled"
