"""Crash safety on Redis: a killed worker's job resumes on the next worker; SIGTERM hands the job back."""

import signal
import time
from datetime import datetime

import pytest

from contracts.queue import create_celery_app, enqueue_job
from contracts.settings import Settings
from tests.support import LEASE_SECONDS, JobSystem

REDIS_DB = 14


def seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


@pytest.fixture(scope="module")
def system(redis_job_system: JobSystem) -> JobSystem:
    return redis_job_system


def test_killed_worker_job_resumes_from_its_newest_checkpoint_on_another_worker(system: JobSystem):
    first, second = system.start_worker("kill-a", wait=False), system.start_worker("kill-b", wait=False)
    system.wait_ready(first)
    system.wait_ready(second)
    job_id = system.launch(steps=80, checkpoint_every=10, export_every=80)["id"]

    running = system.wait_for_job(
        job_id,
        lambda job: job["state"] == "running" and job["progress"]["step"] >= 14,
        "running past step 14",
    )
    victim_name = running["attempts"][0]["worker"].split("@")[0]
    victim = system.workers[victim_name]
    survivor_name = next(name for name in ("kill-a", "kill-b") if name != victim_name)

    # A second delivery of the running job (as after Redis' visibility timeout) must not start it twice.
    duplicate_sender = create_celery_app(Settings(data_dir=system.data_dir, broker_url=system.broker_url))
    enqueue_job(duplicate_sender, job_id)
    system.wait_for_job(
        job_id,
        lambda job: any(event["event"] == "repeated delivery ignored" for event in job["events"]),
        "the duplicate delivery ignored",
        timeout=30,
    )

    victim.stop(signal.SIGKILL)
    killed_at = time.time()
    steps_done = max(point["step"] for point in system.metrics(job_id) if "event" not in point)
    checkpoint = system.checkpoint_step(job_id)
    assert checkpoint >= 10, f"no checkpoint before the kill\n{system.diagnostics()}"

    resumed = system.wait_for_job(
        job_id, lambda job: len(job["attempts"]) == 2, "a second attempt", timeout=120
    )
    system.wait_for_job(
        job_id, lambda job: job["attempts"][1]["last_step"] is not None, "progress after the resume"
    )
    progressed_at = time.time()
    final = system.wait_for_job(job_id, lambda job: job["state"] in ("succeeded", "failed"), "finished")
    context = system.diagnostics(final)
    assert final["state"] == "succeeded" and final["progress"]["step"] == 80, context

    lost, again = final["attempts"]
    assert lost["worker"].startswith(victim_name) and lost["outcome"] == "worker lost", context
    assert again["worker"].startswith(survivor_name) and again["outcome"] == "succeeded", context
    # Resumed from the newest checkpoint: the step counter continued, it did not start from 0.
    assert again["resumed_from_step"] == checkpoint > 0, context
    logged_steps = [point["step"] for point in system.metrics(job_id) if "event" not in point]
    resumed_steps = list(range(checkpoint + 2, 81, 2))
    assert logged_steps[-len(resumed_steps) :] == resumed_steps, logged_steps
    # Never on two workers at once: the second attempt took the lease only after the first one's had expired.
    assert again["previous_lease"]["owner"] == lost["owner"], context
    assert seconds(again["started_at"]) >= again["previous_lease"]["expires_at"] > killed_at, context
    lost_events = [event for event in resumed["events"] if event["event"].startswith("worker lost")]
    assert [event["noticed_by"].split("@")[0] for event in lost_events] == [survivor_name], context

    print(
        f"\nkill -9 at step ~{steps_done}: newest checkpoint {checkpoint}, "
        f"steps lost ~{steps_done - checkpoint}; "
        f"resumed on {survivor_name} {seconds(again['started_at']) - killed_at:.1f} s after the kill "
        f"(lease {LEASE_SECONDS:.0f} s), training again {progressed_at - killed_at:.1f} s after it"
    )


def test_sigterm_checkpoints_and_hands_the_job_back(system: JobSystem):
    for earlier_worker in system.workers.values():  # this test's job must go to this test's worker
        earlier_worker.stop(signal.SIGTERM)
    worker = system.start_worker("term-a")
    job_id = system.launch(steps=30, checkpoint_every=25, export_every=30)["id"]
    system.wait_for_job(
        job_id,
        lambda job: job["state"] == "running" and job["attempts"][-1]["worker"].startswith("term-a")
        and job["progress"]["step"] >= 4,
        "running on term-a",
    )  # fmt: skip
    started = time.monotonic()
    exit_code = worker.stop(signal.SIGTERM, timeout=60)
    stop_seconds = time.monotonic() - started
    assert exit_code == 0, f"worker exit code {exit_code}\n{worker.tail()}"

    handed_back = system.job(job_id)
    attempt = handed_back["attempts"][-1]
    assert handed_back["state"] == "queued" and attempt["outcome"] == "handed back", system.diagnostics(
        handed_back
    )
    # Checkpointed where it stopped (not at a checkpoint_every multiple): nothing is lost.
    assert system.checkpoint_step(job_id) == attempt["last_step"] > 0, system.diagnostics(handed_back)

    system.start_worker("term-b")
    final = system.wait_for_job(job_id, lambda job: job["state"] in ("succeeded", "failed"), "finished")
    assert final["state"] == "succeeded", system.diagnostics(final)
    assert final["attempts"][-1]["worker"].startswith("term-b")
    assert final["attempts"][-1]["resumed_from_step"] == attempt["last_step"], system.diagnostics(final)
    print(f"\nSIGTERM: worker checkpointed at step {attempt['last_step']} and exited in {stop_seconds:.1f} s")


def test_a_queued_job_whose_message_was_lost_is_queued_again(tmp_path):
    """The message vanishes (a broker restarted without persistence): the janitor notices and re-queues."""
    system = JobSystem(tmp_path, broker_url=None)
    try:
        system.start_api()
        job = system.launch(steps=4, checkpoint_every=4)
        queue = system.data_dir / "broker" / "queue"
        messages = [path for path in queue.iterdir() if job["id"] in path.read_text(errors="replace")]
        assert messages, f"the job's message should wait in {queue}"
        for message in messages:
            message.unlink()
        system.start_worker("rescuer")
        finished = system.wait_for_job(job["id"], lambda record: record["state"] == "succeeded", "success")
        assert any("message lost" in event["event"] for event in finished["events"]), finished["events"]
        assert len(finished["attempts"]) == 1, "queued again once, run once"
    finally:
        system.close()
