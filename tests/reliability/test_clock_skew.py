"""Leases stay safe when the workers' clocks disagree: the janitor judges expiry by watching a lease stop
changing on its own clock, and revokes it (a fence) before another worker may take the job."""

import json
import time
from pathlib import Path
from types import SimpleNamespace

from contracts import jobs
from contracts.job_files import JobFiles
from contracts.settings import Settings
from contracts.train_config import TrainConfig
from worker.janitor import Janitor
from worker.leases import Lease, LeaseWatch, read_lease

LEASE_SECONDS = 0.6


def running_job(settings: Settings) -> Path:
    job_id = jobs.new_job_id()
    run_dir = settings.runs_dir / job_id
    jobs.create_record(run_dir, jobs.new_record(job_id, "demo", TrainConfig(steps=4), 4))
    jobs.begin_attempt(run_dir, "w:1:a", "w", previous_lease=None)
    return run_dir


def skewed_lease(run_dir: Path, clock_offset: float, renewed: float) -> None:
    """A lease written by a holder whose clock is `clock_offset` seconds off."""
    stamp = time.time() + clock_offset + renewed
    lease = {"owner": "w:1:a", "acquired_at": stamp, "renewed_at": stamp, "expires_at": stamp + LEASE_SECONDS}
    JobFiles(run_dir).lease.write_text(json.dumps(lease))


def janitor(settings: Settings, enqueued: list) -> Janitor:
    broker = SimpleNamespace(embedded=False, broker_url="memory://")
    app = SimpleNamespace(
        send_task=lambda name, args, task_id, queue: enqueued.append(task_id), broker_choice=broker
    )
    return Janitor(app, settings, "janitor@test")


def test_a_dead_holder_whose_clock_runs_an_hour_ahead_is_still_recovered(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, job_lease_seconds=LEASE_SECONDS)
    run_dir = running_job(settings)
    skewed_lease(run_dir, clock_offset=3600, renewed=0)  # by the wall clock it looks valid for an hour
    enqueued: list = []
    sweeper = janitor(settings, enqueued)
    sweeper.sweep()
    assert enqueued == [] and jobs.read_record(run_dir).state == "running", "first sight: not judged yet"
    time.sleep(LEASE_SECONDS * 1.5)
    sweeper.sweep()
    assert enqueued == [run_dir.name] and jobs.read_record(run_dir).state == "queued"
    assert read_lease(run_dir)["revoked"] is True, "revoked: the old holder is fenced off"
    successor = Lease(run_dir, "w:2:b", LEASE_SECONDS)
    assert successor.acquire()[0], "the next worker takes a revoked lease whatever the clocks say"


def test_a_live_holder_whose_clock_runs_an_hour_behind_is_left_alone(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, job_lease_seconds=LEASE_SECONDS)
    run_dir = running_job(settings)
    enqueued: list = []
    sweeper = janitor(settings, enqueued)
    for beat in range(6):  # renewed every LEASE_SECONDS / 3, but stamped an hour in the past
        skewed_lease(run_dir, clock_offset=-3600, renewed=beat * 0.001)
        sweeper.sweep()
        time.sleep(LEASE_SECONDS / 3)
    assert enqueued == [] and jobs.read_record(run_dir).state == "running", "a renewing holder is alive"


def test_a_revoked_lease_cannot_be_renewed_by_its_old_holder(tmp_path: Path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = Lease(run_dir, "w:1:a", 30)
    assert holder.acquire()[0]
    observed = read_lease(run_dir)
    watch = LeaseWatch()
    assert not watch.expired(run_dir, observed)
    from worker.leases import revoke

    assert revoke(run_dir, observed)
    assert not holder.renew(), "revoked: the holder must stop"
