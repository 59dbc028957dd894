"""One delivery of a training job: take the lease, run (or resume) the trainer, record how it ended.

Every delivery is treated as possibly repeated: a job that is finished, cancelled, or held by another live
worker is left alone, so redeliveries and recovery re-enqueues are harmless. The trainer resumes from the run
folder's newest checkpoint by itself, so a second attempt continues where the first one's checkpoint left off.
State changes go through contracts/jobs.py; this module decides when. In shared mode (storage/shared.py) the
dataset and the run folder come from the bucket first, and every checkpoint goes back to it while this
worker's fencing token is still the newest.
"""

import errno
import logging
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import redis
from celery import Task
from celery.exceptions import Ignore
from filelock import Timeout

from contracts import jobs
from contracts.job_record import Job, Phase, Progress
from contracts.job_states import FINAL_STATES, JobState
from contracts.job_timing import JobTimings, Speed, seconds_left
from contracts.queue import enqueue_job
from contracts.settings import Settings
from storage.shared import shared_mode
from storage.shared_runs import pull_dataset, pull_run, push_run
from worker.leases import Heartbeat, Lease, LeaseLost

logger = logging.getLogger("sketch2color.worker")
PROGRESS_LOG_SECONDS = 30.0


def failure_reason(error: Exception, job_id: str) -> str:
    """What the job record says about a failure; a full disk says where and what to do."""
    text = f"{type(error).__name__}: {error}"
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "No space left on device" in text:
        where = getattr(error, "filename", None) or "the data folder"
        return (
            f"disk full while writing {where}: free space on the data folder's disk, then resume the job "
            f"(POST /jobs/{job_id}/resume); its older checkpoints and published versions are intact ({text})"
        )
    return text


class JobRun:
    """Runs one delivery of job `job_id` inside a Celery task."""

    def __init__(self, task: Task, job_id: str, settings: Settings, shutdown_requested: threading.Event):
        self.task = task
        self.job_id = job_id
        self.settings = settings
        self.shutdown_requested = shutdown_requested
        self.run_dir = jobs.run_dir_for(settings.runs_dir, job_id)
        self.hostname = task.request.hostname or "unknown"
        self.owner = f"{self.hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = Lease(self.run_dir, self.owner, settings.job_lease_seconds)
        self.shared = shared_mode()
        self.heartbeat: Heartbeat | None = None
        self._logged_version: int | None = None
        self._logged_at = 0.0
        self.timings = JobTimings(settings.runs_dir)
        self._delivered_at = time.monotonic()
        self._publishing_since: float | None = None
        self._speed: float | None = None

    # ---- start -------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        record = jobs.read_record(self.run_dir)
        if record is None:
            logger.warning(
                "job %s has no record under %s; dropping its message", self.job_id, self.settings.runs_dir
            )
            raise Ignore()
        if record.state in FINAL_STATES:
            logger.info("job %s is already %s; ignoring a repeated delivery", self.job_id, record.state.value)
            raise Ignore()
        taken, previous_lease = self.lease.acquire()
        if not taken:
            holder = previous_lease.get("owner") if previous_lease else None
            logger.info("job %s is running on %s; ignoring a repeated delivery", self.job_id, holder)
            jobs.note_event(self.run_dir, "repeated delivery ignored", worker=self.hostname, holder=holder)
            raise Ignore()
        try:
            outcome = jobs.begin_attempt(
                self.run_dir, self.owner, self.hostname, previous_lease, self.settings.max_worker_losses
            )
        except BaseException:
            self.lease.release()
            raise
        if outcome != "run":
            self.lease.release()
            logger.info("job %s is %s; not training", self.job_id, outcome)
            raise Ignore()
        self.heartbeat = Heartbeat(self.lease)
        self.heartbeat.start()
        jobs.enter_phase(self.run_dir, self.owner, Phase.STARTING, eta=self._eta)
        try:
            return self._train(record)
        finally:
            self.heartbeat.stop()

    # ---- training ----------------------------------------------------------------------------------------
    def _train(self, record: Job) -> dict[str, Any]:
        try:
            from model.train import Pix2PixTrainer

            if self.shared is not None:
                fetched = pull_dataset(self.shared, self.settings.datasets_dir / record.dataset)
                fetched_run = pull_run(self.shared, self.run_dir)
                logger.info(
                    "job %s: %d dataset and %d run files from the bucket", self.job_id, fetched, fetched_run
                )
            trainer = Pix2PixTrainer(
                self.settings.datasets_dir / record.dataset,
                self.run_dir,
                record.params,
                models_dir=self.settings.models_dir,
                job_id=self.job_id,
            )
            jobs.change_attempt(self.run_dir, self.owner, resumed_from_step=trainer.resumed_from_step)
            logger.info(
                "job %s: training on %s from step %d",
                self.job_id,
                record.dataset,
                trainer.resumed_from_step,
            )
            result = trainer.fit(
                on_progress=self._report_progress,
                should_stop=self._should_stop,
                before_write=self._check_lease,
                on_phase=self._on_phase,
                after_checkpoint=self._push_run if self.shared is not None else None,
            )
        except LeaseLost as error:
            # Another worker may own the job now: touch nothing but our own attempt, and do not checkpoint.
            logger.error("job %s: %s; this worker stops without checkpointing", self.job_id, error)
            jobs.change_attempt(self.run_dir, self.owner, ended_at=jobs.utc_now(), outcome="lease lost")
            raise Ignore() from error
        except Exception as error:
            logger.exception("job %s failed", self.job_id)
            self._finish(JobState.FAILED, error=failure_reason(error, self.job_id))
            raise
        if self._speed:
            self._measured(speed=Speed(ngf=record.params.ngf, images_per_second=self._speed))
        if result.status == "finished":
            ended = jobs.finish_trained(self.run_dir, self.owner, result.step, result.versions)
            self._release_lease()
            logger.info(
                "job %s %s at step %d; published versions %s%s",
                self.job_id,
                ended.value,
                result.step,
                result.versions,
                " (the cancel came after its last step)" if ended == JobState.CANCELLED else "",
            )
            return {
                "job_id": self.job_id,
                "state": ended.value,
                "step": result.step,
                "versions": result.versions,
            }
        if jobs.cancel_requested(self.run_dir):
            self._finish(JobState.CANCELLED, step=result.step)
            logger.info("job %s cancelled; checkpoint at step %d", self.job_id, result.step)
            return {
                "job_id": self.job_id,
                "state": "cancelled",
                "step": result.step,
                "versions": result.versions,
            }
        self._hand_back(result.step)
        raise Ignore()

    def _should_stop(self) -> bool:
        """Called by the trainer before every step: cancel, worker shutdown, or a lost lease."""
        self._check_lease()
        try:
            return self.shutdown_requested.is_set() or jobs.cancel_requested(self.run_dir)
        except redis.RedisError as error:  # shared mode, Redis away a moment: the lease decides, not this
            logger.warning("job %s: could not look for a cancel (%s)", self.job_id, error)
            return False

    def _check_lease(self) -> None:
        """Raise LeaseLost unless this worker still owns the job (before every step, checkpoint and publish)."""
        if self.heartbeat is not None and self.heartbeat.lost.is_set():
            raise LeaseLost(f"the lease of job {self.job_id} was taken over")
        if self.heartbeat is not None and self.heartbeat.disk_full is not None:
            raise self.heartbeat.disk_full
        self.lease.check()
        try:
            fenced = self.lease.still_fenced()
        except redis.RedisError as error:  # the heartbeat cannot renew either: lease.check() stops us in time
            logger.warning("job %s: could not check its fencing token (%s)", self.job_id, error)
            return
        if not fenced:
            raise LeaseLost(f"job {self.job_id} was given to another worker (a newer fencing token)")

    def _push_run(self) -> None:
        """Shared mode: the new checkpoint (and metrics, samples) into the bucket, fenced."""
        self._check_lease()
        assert self.shared is not None
        try:
            push_run(self.shared, self.run_dir, fence=self.lease.fence or 0)
        except PermissionError as error:
            raise LeaseLost(str(error)) from error

    def _measured(self, **samples: Any) -> None:
        """Into the data folder's timings; they only feed estimates, so failing to write them fails no job."""
        try:
            self.timings.add(**samples)
        except (OSError, Timeout) as error:
            logger.warning("job %s: could not record its timings (%s)", self.job_id, error)

    def _eta(self, record: Job) -> float | None:
        return seconds_left(record, self.timings.estimates(), datetime.now(UTC))

    def _on_phase(self, phase: Phase, step: int) -> None:
        """Start-up's end and each export, measured into this data folder's timings and written to the record."""
        now = time.monotonic()
        if phase == Phase.PUBLISHING:
            self._publishing_since = now
        elif self._publishing_since is not None:
            self._measured(publish_seconds=now - self._publishing_since)
            self._publishing_since = None
        else:
            self._measured(start_seconds=now - self._delivered_at)
        jobs.enter_phase(self.run_dir, self.owner, phase, step=step, eta=self._eta)

    def _report_progress(self, progress: Progress) -> None:
        """Into the job record, the one place progress is kept; a log line per version and every half minute."""
        if self.heartbeat is not None and self.heartbeat.lost.is_set():
            raise LeaseLost(f"the lease of job {self.job_id} was taken over")
        self._speed = progress.images_per_second or self._speed
        jobs.record_progress(self.run_dir, self.owner, progress, eta=self._eta)
        version, gate = progress.version, progress.gate
        if version is not None and version != self._logged_version:
            self._logged_version = version
            held = "" if gate is None or gate.passed else f" but held back: {gate.reason}"
            logger.info("job %s published version %s at step %d%s", self.job_id, version, progress.step, held)
        if (
            time.monotonic() - self._logged_at >= PROGRESS_LOG_SECONDS
            or progress.step == progress.total_steps
        ):
            self._logged_at = time.monotonic()
            speed = progress.images_per_second or 0.0
            logger.info("job %s at step %d/%s (%.1f images/s)", self.job_id, progress.step,
                        progress.total_steps, speed)  # fmt: skip

    # ---- endings -----------------------------------------------------------------------------------------
    def _finish(self, state: JobState, step: int | None = None, error: str | None = None) -> None:
        jobs.finish(self.run_dir, self.owner, state, step=step, error=error)
        self._release_lease()

    def _release_lease(self) -> None:
        """Heartbeat first: a beat after the release would find no lease and report a false takeover."""
        if self.heartbeat is not None:
            self.heartbeat.stop()
        self.lease.release()

    def _hand_back(self, step: int) -> None:
        """Worker shutdown: the trainer has checkpointed; put the job back in the queue for another worker."""
        jobs.hand_back(self.run_dir, self.owner, self.hostname, step)
        self._release_lease()
        try:
            enqueue_job(self.task.app, self.job_id)
            logger.warning(
                "job %s: worker shutting down; checkpointed at step %d and re-queued", self.job_id, step
            )
        except Exception as error:
            # No message in the queue: the job stays queued, flagged unsent, and a janitor sends it later.
            jobs.mark_unsent(self.run_dir)
            logger.error("job %s: could not re-queue (%s); a janitor will re-queue it", self.job_id, error)
