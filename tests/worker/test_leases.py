"""The lease and the record, in-process: who may run a job, and the janitor's rule for lost jobs."""

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from contracts.job_states import JobState
from contracts.jobs import create_record, new_job_id, new_record, read_record, update_record
from contracts.settings import Settings
from contracts.train_config import TrainConfig
from worker.janitor import Janitor
from worker.leases import Heartbeat, Lease, LeaseLost, lease_is_live, read_lease


def test_a_live_lease_keeps_others_out_until_it_expires(tmp_path: Path):
    first, second = Lease(tmp_path, "first", seconds=0.6), Lease(tmp_path, "second", seconds=0.6)
    assert first.acquire() == (True, None)
    taken, holder = second.acquire()
    assert not taken and holder["owner"] == "first"
    assert first.renew() and lease_is_live(read_lease(tmp_path))

    time.sleep(0.7)  # the first owner died: nobody renewed
    assert not lease_is_live(read_lease(tmp_path))
    with pytest.raises(LeaseLost):
        first.check()
    taken, previous = second.acquire()
    assert taken and previous["owner"] == "first"
    assert not first.renew(), "a lease taken over must stay lost for its former owner"
    first.release()  # releasing someone else's lease does nothing
    assert read_lease(tmp_path)["owner"] == "second"
    second.release()
    assert read_lease(tmp_path) is None


def test_the_heartbeat_keeps_a_lease_alive_and_notices_a_takeover(tmp_path: Path):
    lease = Lease(tmp_path, "worker", seconds=0.3)
    lease.acquire()
    heartbeat = Heartbeat(lease)
    heartbeat.start()
    try:
        time.sleep(0.8)
        lease.check()  # renewed in time, so not lost
        assert lease_is_live(read_lease(tmp_path)) and not heartbeat.lost.is_set()
        (tmp_path / "lease.json").unlink()  # as if another worker had taken it over and let it go
        deadline = time.monotonic() + 2
        while not heartbeat.lost.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heartbeat.lost.is_set()
    finally:
        heartbeat.stop()


def test_record_updates_are_atomic_read_modify_writes(tmp_path: Path):
    job_id = new_job_id()
    run_dir = tmp_path / job_id
    create_record(run_dir, new_record(job_id, "demo", TrainConfig(steps=10), total_steps=10))
    with pytest.raises(FileExistsError):
        create_record(run_dir, new_record(job_id, "demo", TrainConfig(steps=1), total_steps=1))
    assert (
        update_record(run_dir, lambda record: setattr(record, "state", JobState.RUNNING) or "changed")
        == "changed"
    )

    def change_then_fail(record) -> None:
        record.state = JobState.FAILED
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        update_record(run_dir, change_then_fail)  # leaves the record as it was
    record = read_record(run_dir)
    assert record.state == JobState.RUNNING and record.progress.total_steps == 10
    assert sorted(path.name for path in run_dir.iterdir()) == [".job.lock", ".reserve", "job.json"]


def test_an_expired_lease_stays_expired_for_a_late_heartbeat(tmp_path: Path):
    """A beat after expiry must not revive the lease: the janitor may have re-queued the job already."""
    lease = Lease(tmp_path, "slow", seconds=0.3)
    lease.acquire()
    time.sleep(0.4)  # the heartbeat stalled (a frozen process, a slow disk) past the lease's end
    assert not lease.renew()
    assert not lease_is_live(read_lease(tmp_path))
    with pytest.raises(LeaseLost):
        lease.check()


def lost_job(settings: Settings, malformed: dict | None = None) -> str:
    """A job whose record says running while nobody holds its lease: its worker died."""
    job_id = new_job_id()
    run_dir = settings.runs_dir / job_id
    if malformed is not None:
        run_dir.mkdir(parents=True)
        (run_dir / "job.json").write_text(json.dumps(malformed))
        return job_id
    record = new_record(job_id, "demo", TrainConfig(steps=10), total_steps=10)
    record.state = JobState.RUNNING
    create_record(run_dir, record)
    return job_id


def test_one_bad_job_does_not_keep_the_janitor_from_the_others(tmp_path: Path):
    settings = Settings(data_dir=tmp_path)
    first, second = lost_job(settings), lost_job(settings)
    lost_job(settings, {"state": "running"})  # a malformed record: no attempts, no events
    enqueued = []

    def send_task(name: str, args: list, task_id: str, queue: str) -> None:
        if not enqueued:
            enqueued.append(None)
            raise ConnectionError("the broker hiccuped")
        enqueued.append(task_id)

    celery_app = SimpleNamespace(send_task=send_task, broker_choice=SimpleNamespace(embedded=False))
    janitor = Janitor(celery_app, settings, "janitor@test")
    janitor.sweep()
    records = [read_record(settings.runs_dir / job_id) for job_id in (first, second)]
    assert [record.state for record in records] == ["queued", "queued"], records
    assert sorted(record.message_sent for record in records) == [False, True], "one sent, one flagged unsent"
    janitor.sweep()
    assert sorted(enqueued[1:]) == sorted([first, second])
    assert all(read_record(settings.runs_dir / job_id).state == "queued" for job_id in (first, second))
