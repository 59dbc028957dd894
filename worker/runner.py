"""One delivery of a training job: take the lease, run (or resume) the trainer, record how it ended.

Every delivery is treated as possibly repeated: a job that is finished, cancelled, or held by another live
worker is left alone, so redeliveries and recovery re-enqueues are harmless. The trainer resumes from the run
folder's newest checkpoint by itself, so a second attempt continues where the first one's checkpoint left off.
"""

import dataclasses
import logging
import os
import threading
import uuid
from typing import Any

from celery import Task
from celery.exceptions import Ignore

from app.core.config import Settings
from worker.celery_app import enqueue_job
from worker.leases import Heartbeat, Lease, LeaseLost
from worker.records import (
    FINAL_STATES,
    add_event,
    cancel_requested,
    read_record,
    run_dir_for,
    update_record,
    utc_now,
)

logger = logging.getLogger("sketch2color.worker")


def train_config_arguments(params: dict[str, Any], config_class: type) -> dict[str, Any]:
    """The job's parameters as TrainConfig arguments; one it does not know fails the job instead of vanishing."""
    names = {config_field.name for config_field in dataclasses.fields(config_class)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise ValueError(f"job parameters unknown to the trainer: {', '.join(map(repr, unknown))}")
    return dict(params)


def _our_attempt(record: dict[str, Any], owner: str) -> dict[str, Any]:
    for attempt in reversed(record["attempts"]):
        if attempt.get("owner") == owner:
            return attempt
    raise LookupError(f"no attempt of {owner} in job {record['id']}")


class JobRun:
    """Runs one delivery of job `job_id` inside a Celery task."""

    def __init__(self, task: Task, job_id: str, settings: Settings, shutdown_requested: threading.Event):
        self.task = task
        self.job_id = job_id
        self.settings = settings
        self.shutdown_requested = shutdown_requested
        self.run_dir = run_dir_for(settings.runs_dir, job_id)
        self.hostname = task.request.hostname or "unknown"
        self.owner = f"{self.hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = Lease(self.run_dir, self.owner, settings.job_lease_seconds)
        self.heartbeat: Heartbeat | None = None
        self._backend_warned = False

    # ---- start -------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        record = read_record(self.run_dir)
        if record is None:
            logger.warning(
                "job %s has no record under %s; dropping its message", self.job_id, self.settings.runs_dir
            )
            raise Ignore()
        if record["state"] in FINAL_STATES:
            logger.info("job %s is already %s; ignoring a repeated delivery", self.job_id, record["state"])
            raise Ignore()
        taken, previous_lease = self.lease.acquire()
        if not taken:
            holder = previous_lease.get("owner") if previous_lease else None
            logger.info("job %s is running on %s; ignoring a repeated delivery", self.job_id, holder)
            update_record(
                self.run_dir,
                lambda job: add_event(job, "repeated delivery ignored", worker=self.hostname, holder=holder),
            )
            raise Ignore()
        try:
            outcome = update_record(self.run_dir, lambda job: self._begin(job, previous_lease))
        except BaseException:
            self.lease.release()
            raise
        if outcome != "run":
            self.lease.release()
            logger.info("job %s is %s; not training", self.job_id, outcome)
            raise Ignore()
        self.heartbeat = Heartbeat(self.lease)
        self.heartbeat.start()
        try:
            return self._train(record)
        finally:
            self.heartbeat.stop()

    def _begin(self, record: dict[str, Any], previous_lease: dict[str, Any] | None) -> str:
        if record["state"] in FINAL_STATES:
            return record["state"]
        if cancel_requested(self.run_dir):
            record.update(state="cancelled", finished_at=utc_now())
            add_event(record, "cancelled before this delivery could start it", worker=self.hostname)
            return "cancelled"
        now = utc_now()
        record.update(state="running", started_at=record["started_at"] or now, error=None)
        record["attempts"].append(
            {
                "worker": self.hostname,
                "pid": os.getpid(),
                "owner": self.owner,
                "started_at": now,
                "resumed_from_step": None,
                "previous_lease": previous_lease,
                "ended_at": None,
                "outcome": None,
                "last_step": None,
            }
        )
        return "run"

    # ---- training ----------------------------------------------------------------------------------------
    def _train(self, record: dict[str, Any]) -> dict[str, Any]:
        try:
            from model.train import Pix2PixTrainer, TrainConfig

            config = TrainConfig(**train_config_arguments(record["params"], TrainConfig))
            trainer = Pix2PixTrainer(
                self.settings.datasets_dir / record["dataset"],
                self.run_dir,
                config,
                models_dir=self.settings.models_dir,
                job_id=self.job_id,
            )
            self._change_attempt(resumed_from_step=trainer.resumed_from_step)
            logger.info(
                "job %s: training on %s from step %d",
                self.job_id,
                record["dataset"],
                trainer.resumed_from_step,
            )
            result = trainer.fit(
                on_progress=self._report_progress,
                should_stop=self._should_stop,
                before_write=self._check_lease,
            )
        except LeaseLost as error:
            # Another worker may own the job now: touch nothing but our own attempt, and do not checkpoint.
            logger.error("job %s: %s; this worker stops without checkpointing", self.job_id, error)
            self._change_attempt(ended_at=utc_now(), outcome="lease lost")
            raise Ignore() from error
        except Exception as error:
            logger.exception("job %s failed", self.job_id)
            self._finish("failed", error=f"{type(error).__name__}: {error}")
            raise
        if result.status == "finished":
            self._finish("succeeded", step=result.step)
            logger.info(
                "job %s succeeded at step %d; published versions %s",
                self.job_id,
                result.step,
                result.versions,
            )
            return {
                "job_id": self.job_id,
                "state": "succeeded",
                "step": result.step,
                "versions": result.versions,
            }
        if cancel_requested(self.run_dir):
            self._finish("cancelled", step=result.step)
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
        return self.shutdown_requested.is_set() or cancel_requested(self.run_dir)

    def _check_lease(self) -> None:
        """Raise LeaseLost unless this worker still owns the job (before every step, checkpoint and publish)."""
        if self.heartbeat is not None and self.heartbeat.lost.is_set():
            raise LeaseLost(f"the lease of job {self.job_id} was taken over")
        self.lease.check()

    def _report_progress(self, progress: dict[str, Any]) -> None:
        """Durably in job.json, and live through Celery's task state (PROGRESS)."""
        if self.heartbeat is not None and self.heartbeat.lost.is_set():
            raise LeaseLost(f"the lease of job {self.job_id} was taken over")

        def change(record: dict[str, Any]) -> dict[str, Any]:
            merged = dict(progress)
            if merged.get("version") is None:  # the trainer counts this attempt's versions only
                merged["version"] = (record.get("progress") or {}).get("version")
            record["progress"] = merged
            _our_attempt(record, self.owner)["last_step"] = merged["step"]
            return merged

        merged = update_record(self.run_dir, change)
        try:
            self.task.update_state(state="PROGRESS", meta={"job_id": self.job_id, "progress": merged})
        except Exception as error:  # the durable record has it; a result-store hiccup must not fail the job
            if not self._backend_warned:
                logger.warning(
                    "job %s: could not store progress in the result backend: %s", self.job_id, error
                )
                self._backend_warned = True

    # ---- endings -----------------------------------------------------------------------------------------
    def _change_attempt(self, **changes: Any) -> None:
        update_record(self.run_dir, lambda record: _our_attempt(record, self.owner).update(changes))

    def _finish(self, state: str, step: int | None = None, error: str | None = None) -> None:
        def change(record: dict[str, Any]) -> None:
            now = utc_now()
            record.update(state=state, finished_at=now, error=error)
            if state == "succeeded":
                record["progress"]["eta_seconds"] = 0.0
            attempt = _our_attempt(record, self.owner)
            attempt.update(ended_at=now, outcome=state)
            if step is not None:
                attempt["last_step"] = step

        update_record(self.run_dir, change)
        self._release_lease()

    def _release_lease(self) -> None:
        """Heartbeat first: a beat after the release would find no lease and report a false takeover."""
        if self.heartbeat is not None:
            self.heartbeat.stop()
        self.lease.release()

    def _hand_back(self, step: int) -> None:
        """Worker shutdown: the trainer has checkpointed; put the job back in the queue for another worker."""

        def change(record: dict[str, Any]) -> None:
            now = utc_now()
            record["state"] = "queued"
            _our_attempt(record, self.owner).update(ended_at=now, outcome="handed back", last_step=step)
            add_event(
                record,
                "worker shutting down: checkpointed and handed back to the queue",
                worker=self.hostname,
                step=step,
            )

        update_record(self.run_dir, change)
        self._release_lease()
        try:
            enqueue_job(self.task.app, self.job_id)
            logger.warning(
                "job %s: worker shutting down; checkpointed at step %d and re-queued", self.job_id, step
            )
        except Exception as error:
            # No message in the queue: show it as running without a lease, which a janitor re-enqueues later.
            update_record(self.run_dir, lambda record: record.update(state="running"))
            logger.error("job %s: could not re-queue (%s); a janitor will re-queue it", self.job_id, error)
