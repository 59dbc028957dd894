"""One delivery of a job, in-process with a stand-in Celery task: leases at the endings, job parameters."""

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from contracts.job_states import JobState
from contracts.jobs import begin_attempt, create_record, new_job_id, new_record
from contracts.settings import Settings
from contracts.train_config import TrainConfig
from worker.leases import Heartbeat, LeaseLost, read_lease
from worker.runner import JobRun


def started_run(data_dir: Path, lease_seconds: float = 30.0) -> JobRun:
    """A delivery that has taken the lease, recorded its attempt and started its heartbeat."""
    settings = Settings(data_dir=data_dir, job_lease_seconds=lease_seconds)
    job_id = new_job_id()
    create_record(
        settings.runs_dir / job_id, new_record(job_id, "demo", TrainConfig(steps=10), total_steps=10)
    )
    broker = SimpleNamespace(send_task=lambda *args, **kwargs: None)
    task = SimpleNamespace(request=SimpleNamespace(hostname="test@host"), app=broker)
    run = JobRun(task, job_id, settings, threading.Event())
    assert run.lease.acquire()[0]
    assert begin_attempt(run.run_dir, run.owner, run.hostname, previous_lease=None) == "run"
    run.heartbeat = Heartbeat(run.lease)
    run.heartbeat.start()
    return run


@pytest.mark.parametrize("ending", ["finish", "hand back"])
def test_endings_stop_the_heartbeat_before_releasing_the_lease(tmp_path: Path, ending: str):
    """A beat between the release and the heartbeat's stop would log a false 'lease taken over'."""
    run = started_run(tmp_path)
    heartbeat_alive_at_release = []
    release = run.lease.release

    def watched_release() -> None:
        heartbeat_alive_at_release.append(run.heartbeat.is_alive())
        release()

    run.lease.release = watched_release
    if ending == "finish":
        run._finish(JobState.SUCCEEDED, step=10)
    else:
        run._hand_back(step=4)
    assert heartbeat_alive_at_release == [False]
    assert read_lease(run.run_dir) is None


def test_a_run_whose_lease_expired_stops_without_checkpointing(tmp_path: Path):
    """The trainer checkpoints when should_stop returns True; a lost lease must raise instead."""
    run = started_run(tmp_path, lease_seconds=0.3)
    run.heartbeat.stop()  # stalled past the end of the lease ...
    time.sleep(0.4)
    run.heartbeat = Heartbeat(run.lease)  # ... then beating again, too late
    run.heartbeat.start()
    try:
        run.heartbeat.join(timeout=2)
        assert run.heartbeat.lost.is_set()
        with pytest.raises(LeaseLost):
            run._should_stop()
    finally:
        run.heartbeat.stop()
