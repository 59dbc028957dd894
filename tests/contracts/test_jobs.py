"""The job record's state machine (contracts/jobs.py, contracts/job_states.py): every transition, on real
files, no broker needed."""

import itertools
import json
from pathlib import Path

import pytest

from contracts import jobs
from contracts.job_record import Job, Progress
from contracts.job_states import TRANSITIONS, JobState, WrongState, check_transition
from contracts.train_config import TrainConfig


@pytest.fixture
def run_dir(tmp_path):
    job_id = jobs.new_job_id()
    path = tmp_path / "runs" / job_id
    jobs.create_record(path, jobs.new_record(job_id, "demo", TrainConfig(steps=10), total_steps=10))
    return path


def state(run_dir) -> str:
    return json.loads((run_dir / "job.json").read_text())["state"]


def read(run_dir) -> Job:
    record = jobs.read_record(run_dir)
    assert record is not None, f"no readable record in {run_dir}"
    return record


def test_a_new_job_is_queued_and_cannot_be_created_twice(run_dir):
    record = read(run_dir)
    assert (record.state, record.progress.total_steps, record.attempts) == (JobState.QUEUED, 10, [])
    assert state(run_dir) == "queued", "the file keeps the plain state name"
    with pytest.raises(FileExistsError):
        jobs.create_record(run_dir, record)


def test_the_table_is_the_only_way_between_states():
    for current, wanted in itertools.product(JobState, JobState):
        if wanted in TRANSITIONS[current]:
            check_transition("j", current, wanted)
        else:
            with pytest.raises(WrongState, match=f"is {current.value}; it cannot become {wanted.value}"):
                check_transition("j", current, wanted)
    assert set(TRANSITIONS) == set(JobState), "every state has its row"
    assert not TRANSITIONS[JobState.SUCCEEDED], "nothing leaves succeeded"


def test_a_stored_record_keeps_keys_it_does_not_know(run_dir):
    raw = json.loads((run_dir / "job.json").read_text())
    raw["from_a_newer_version"] = {"kept": True}
    (run_dir / "job.json").write_text(json.dumps(raw))
    jobs.note_event(run_dir, "touched")
    assert json.loads((run_dir / "job.json").read_text())["from_a_newer_version"] == {"kept": True}


def test_a_record_written_before_the_unsent_flag_existed_is_read(run_dir):
    raw = json.loads((run_dir / "job.json").read_text())
    del raw["message_sent"]
    (run_dir / "job.json").write_text(json.dumps(raw))
    assert read(run_dir).message_sent is True


def test_cancel_ends_a_queued_job_at_once_and_refuses_a_finished_one(run_dir):
    record = jobs.request_cancel(run_dir)
    assert (record.state, record.cancel_requested) == (JobState.CANCELLED, True)
    assert jobs.cancel_requested(run_dir) and record.finished_at
    with pytest.raises(jobs.JobFinished, match="already cancelled"):
        jobs.request_cancel(run_dir)


def test_a_delivery_runs_the_job_and_finishes_it(run_dir):
    assert jobs.begin_attempt(run_dir, "w1:1:a", "w1", previous_lease=None) == "run"
    assert state(run_dir) == "running"
    jobs.record_progress(run_dir, "w1:1:a", Progress(total_steps=10, step=4, version=3))
    jobs.record_progress(run_dir, "w1:1:a", Progress(total_steps=10, step=8, version=None))
    record = read(run_dir)
    assert record.progress.version == 3, "a log point without a new version keeps the last one"
    assert record.attempts[-1].last_step == 8
    jobs.finish(run_dir, "w1:1:a", JobState.SUCCEEDED, step=10)
    record = read(run_dir)
    assert (record.state, record.attempts[-1].outcome, record.progress.eta_seconds) == (
        JobState.SUCCEEDED, "succeeded", 0.0,
    )  # fmt: skip
    assert jobs.begin_attempt(run_dir, "w2:1:b", "w2", previous_lease=None) == "succeeded"
    with pytest.raises(ValueError, match="not a final state"):
        jobs.finish(run_dir, "w1:1:a", JobState.RUNNING)


def test_finish_refuses_a_job_that_is_not_running(run_dir):
    jobs.begin_attempt(run_dir, "w1:1:a", "w1", previous_lease=None)
    jobs.finish(run_dir, "w1:1:a", JobState.FAILED, error="boom")
    with pytest.raises(WrongState, match="is failed; it cannot become succeeded"):
        jobs.finish(run_dir, "w1:1:a", JobState.SUCCEEDED)
    assert (read(run_dir).state, read(run_dir).error) == (JobState.FAILED, "boom"), "the record is untouched"


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
    record = read(run_dir)
    assert (record.state, record.attempts[-1].outcome) == (JobState.QUEUED, "worker lost")
    assert "worker lost" in record.events[-1].event


def test_a_job_that_keeps_killing_its_worker_fails_instead_of_being_requeued_forever(run_dir):
    """Out of memory kills the worker at every try: after MAX_WORKERS_LOST lost workers in a row (noticed by
    the janitor, or by a redelivery that finds the job still running) it fails and says why; resuming it
    starts the count afresh."""
    assert jobs.MAX_WORKERS_LOST == 3
    jobs.begin_attempt(run_dir, "w1:1:a", "w1", previous_lease=None)
    assert jobs.requeue_lost(run_dir, lambda: False, "janitor", lease=None)  # lost 1: the janitor re-queues
    jobs.begin_attempt(run_dir, "w2:1:b", "w2", previous_lease=None)
    assert jobs.begin_attempt(run_dir, "w3:1:c", "w3", previous_lease=None) == "run"  # lost 2: a redelivery
    assert not jobs.requeue_lost(run_dir, lambda: False, "janitor", lease=None)  # lost 3: not re-queued
    record = read(run_dir)
    assert record.state == JobState.FAILED, record.state
    assert "died 3 times in a row" in (record.error or "") and "memory" in (record.error or "")
    assert [attempt.outcome for attempt in record.attempts] == [
        "worker lost", "worker lost", "worker lost, gave up",
    ]  # fmt: skip
    jobs.resume(run_dir)
    assert jobs.begin_attempt(run_dir, "w4:1:d", "w4", previous_lease=None) == "run", "a resume starts afresh"
    assert jobs.begin_attempt(run_dir, "w5:1:e", "w5", previous_lease=None) == "run"
    assert jobs.begin_attempt(run_dir, "w6:1:f", "w6", previous_lease=None) == "run"
    assert jobs.begin_attempt(run_dir, "w7:1:g", "w7", previous_lease=None) == "failed", "3 lost again"
    assert read(run_dir).state == JobState.FAILED


def test_a_job_whose_message_could_not_be_sent_stays_queued_and_flagged(run_dir):
    jobs.mark_unsent(run_dir)
    record = read(run_dir)
    assert (record.state, record.message_sent) == (JobState.QUEUED, False), (
        "queued, not running: nobody runs it"
    )
    assert "not sent" in record.events[-1].event
    jobs.mark_sent(run_dir)
    assert read(run_dir).message_sent
    jobs.begin_attempt(run_dir, "w1:1:a", "w1", previous_lease=None)
    jobs.mark_unsent(run_dir)
    assert (read(run_dir).state, read(run_dir).message_sent) == (JobState.RUNNING, True), "only a queued job"


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
    assert (record.state, record.cancel_requested, record.finished_at) == (JobState.QUEUED, False, None)
    assert not jobs.cancel_requested(run_dir), "the cancel flag is gone, or the next delivery would cancel it"
    with pytest.raises(jobs.WrongState, match="cancel it first"):
        jobs.delete_run(run_dir)
    jobs.begin_attempt(run_dir, "w1:1:a", "w1", previous_lease=None)
    jobs.finish(run_dir, "w1:1:a", JobState.FAILED, error="boom")
    jobs.delete_run(run_dir)
    assert not run_dir.exists() and not list(run_dir.parent.iterdir()), "renamed away, then removed"


def test_a_worker_lost_while_cancelling_ends_the_job_cancelled(run_dir):
    jobs.begin_attempt(run_dir, "w1:1:a", "w1", previous_lease=None)
    jobs.request_cancel(run_dir)
    assert not jobs.requeue_lost(run_dir, lambda: False, "janitor", lease=None), "nothing to queue"
    assert state(run_dir) == "cancelled"


def test_unknown_job_parameters_make_no_readable_record(run_dir):
    raw = json.loads((run_dir / "job.json").read_text())
    raw["params"]["stepz"] = 1
    (run_dir / "job.json").write_text(json.dumps(raw))
    assert jobs.read_record(run_dir) is None


def test_the_number_of_lost_workers_a_job_survives_is_a_setting(run_dir):
    from contracts.settings import Settings

    assert Settings().max_worker_losses == jobs.MAX_WORKERS_LOST == 3
    jobs.begin_attempt(run_dir, "w1:1:a", "w1", previous_lease=None)
    assert not jobs.requeue_lost(run_dir, lambda: False, "janitor", lease=None, max_worker_losses=1)
    record = read(run_dir)
    assert record.state == JobState.FAILED and "died 1 time in a row" in (record.error or ""), record.error
