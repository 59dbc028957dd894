"""The janitor: a thread in every worker that gives jobs of dead workers to the next worker.

A job whose record says `running` but whose lease has stopped being renewed lost its worker (SIGKILL, OOM,
machine loss); expiry is judged on the janitor's own clock, so workers' clocks need not agree.
The janitor marks it queued and enqueues it again under the same id; whichever worker takes it resumes from
the newest checkpoint. The check and the state change happen under the record's lock, so when several workers'
janitors notice the same job, one of them re-enqueues it (and a stray duplicate finds the lease taken).
"""

import logging
import shutil
import threading
import time
from pathlib import Path

from celery import Celery

from contracts import datasets, jobs
from contracts.queue import enqueue_job, task_ids_in_broker
from contracts.settings import Settings
from worker.leases import LeaseWatch, lease_is_live, read_lease, revoke

logger = logging.getLogger("sketch2color.worker")
PROCESSED_MESSAGES_KEPT_SECONDS = 24 * 3600
PRUNE_EVERY_SECONDS = 3600
LEFTOVER_AGE_SECONDS = 3600


def recover_lost_job(
    celery_app: Celery, run_dir: Path, hostname: str, lease: dict | None, max_worker_losses: int
) -> bool:
    """Revoke the expired `lease` (as observed), then re-enqueue the job. True if it was re-enqueued.

    Revoking first fences the old holder off whatever its clock says: it cannot renew a revoked lease, and the
    next worker may take it at once.
    """
    if not revoke(run_dir, lease):
        return False  # it was renewed meanwhile: alive after all
    if not jobs.requeue_lost(
        run_dir, lambda: lease_is_live(read_lease(run_dir)), hostname, lease, max_worker_losses
    ):
        return False
    try:
        enqueue_job(celery_app, run_dir.name)
    except Exception:
        jobs.mark_unsent(run_dir)  # queued without a message: the next sweep sends it
        raise
    logger.warning("job %s lost its worker; re-queued to resume from its newest checkpoint", run_dir.name)
    return True


class Janitor(threading.Thread):
    def __init__(self, celery_app: Celery, settings: Settings, hostname: str):
        super().__init__(name="sketch2color-janitor", daemon=True)
        self.celery_app = celery_app
        self.settings = settings
        self.hostname = hostname
        self.interval = max(0.5, settings.job_lease_seconds / 3)
        self._stopped = threading.Event()
        self._last_prune = 0.0
        self._missing_messages: set[str] = set()
        self.watch = LeaseWatch()  # expiry judged on this process's own clock

    def run(self) -> None:
        logger.debug("janitor: looking for jobs of lost workers every %.1f s", self.interval)
        while True:
            try:
                self.sweep()
            except Exception:  # a broker outage or an unreadable folder: log it and try again next time
                logger.exception("janitor sweep failed")
            if self._stopped.wait(self.interval):
                return

    def stop(self) -> None:
        self._stopped.set()

    def sweep(self) -> None:
        runs_dir = self.settings.runs_dir
        awaiting_message: list[Path] = []
        for run_dir in jobs.job_run_dirs(runs_dir):
            # One job's malformed record, lock timeout or failed enqueue must not keep the others waiting.
            try:
                if self._recover_if_lost(run_dir):
                    awaiting_message.append(run_dir)
            except Exception:
                logger.exception("janitor: could not recover job %s; retrying next sweep", run_dir.name)
        self._requeue_lost_messages(awaiting_message)
        if time.time() - self._last_prune > PRUNE_EVERY_SECONDS:  # also on the first sweep: worker start
            self._prune_processed_messages()
            self.clean_leftovers()
            self._last_prune = time.time()

    def _recover_if_lost(self, run_dir: Path) -> bool:
        """Re-enqueue the job if its worker was lost or its message could not be sent. True: it is queued
        with its message sent, to be checked against the broker's queue (`_requeue_lost_messages`)."""
        record = jobs.read_record(run_dir)
        if record is not None and record.state == jobs.JobState.QUEUED:
            if record.message_sent:
                return True
            enqueue_job(self.celery_app, run_dir.name)
            jobs.mark_sent(run_dir)
            logger.warning("job %s: its queue message could not be sent before; sent it now", run_dir.name)
            return False
        if record is None or record.state not in jobs.WORKING_STATES:
            self.watch.forget(run_dir)
            return False
        lease = read_lease(run_dir)
        if self.watch.expired(run_dir, lease):
            recover_lost_job(self.celery_app, run_dir, self.hostname, lease, self.settings.max_worker_losses)
        return False

    def _requeue_lost_messages(self, queued: list[Path]) -> None:
        """A queued job with no message in the broker on two sweeps in a row is queued again (its message was
        lost). Two sweeps: the API writes the record just before it sends the message. The broker's queue is
        read once per sweep, after the records, whatever the number of queued jobs. A stray duplicate is
        harmless: the lease lets one delivery run it."""
        if not queued:
            self._missing_messages = set()
            return
        try:
            held = task_ids_in_broker(self.celery_app)
        except Exception as error:  # a broker outage: nothing is known to be missing; look again next sweep
            logger.warning(
                "janitor: could not read the broker's queue (%s); checking again next sweep", error
            )
            return
        if held is None:
            return  # a broker that cannot be looked into: never re-queue on a guess
        missing = {run_dir.name for run_dir in queued if run_dir.name not in held}
        for run_dir in queued:
            if run_dir.name in missing and run_dir.name in self._missing_messages:
                try:
                    self._requeue(run_dir)
                    missing.discard(run_dir.name)
                except Exception:  # still missing: tried again on the next sweep
                    logger.exception("janitor: could not re-queue job %s; retrying next sweep", run_dir.name)
        self._missing_messages = missing

    def _requeue(self, run_dir: Path) -> None:
        record = jobs.read_record(run_dir)
        if record is None or record.state != jobs.JobState.QUEUED:
            return  # taken (or cancelled) since the records were read
        enqueue_job(self.celery_app, run_dir.name)
        jobs.note_event(run_dir, "queue message lost; queued again", noticed_by=self.hostname)
        logger.warning("job %s was queued but its message was gone; queued it again", run_dir.name)

    def clean_leftovers(self) -> None:
        """What a process killed mid-write leaves behind, removed once nothing can be writing it: TensorFlow's
        `ckpt-N_temp` folders of jobs no worker holds, half-published `.tmp-*` versions, folders renamed away
        for deletion, staging folders of imports that are not running, old temporary record files."""
        settings = self.settings
        old = time.time() - LEFTOVER_AGE_SECONDS
        for run_dir in settings.runs_dir.iterdir() if settings.runs_dir.is_dir() else []:
            if run_dir.name.startswith(".deleting-"):
                _remove(run_dir)
                continue
            if not jobs.is_job_id(run_dir.name) or lease_is_live(read_lease(run_dir)):
                continue
            record = jobs.read_record(run_dir)
            if record is not None and record.state in jobs.WORKING_STATES:
                continue  # its worker may be starting: the lease comes first, then the writes
            for leftover in (run_dir / "checkpoints").glob("*_temp*"):
                _remove(leftover)
            for leftover in run_dir.glob(".*.tmp"):
                if _older_than(leftover, old):
                    _remove(leftover)
        versions = settings.models_dir / "generator"
        for leftover in (
            [*versions.glob(".tmp-*"), *versions.glob(".deleting-*")] if versions.is_dir() else []
        ):
            if _older_than(leftover, old):  # a publish in progress writes for minutes at most
                _remove(leftover)
        for leftover in settings.datasets_dir.glob(".importing-*") if settings.datasets_dir.is_dir() else []:
            imported = datasets.read_import(settings.datasets_dir, leftover.name.removeprefix(".importing-"))
            if (imported is None or imported["state"] != "importing") and _older_than(leftover, old):
                _remove(leftover)
        for leftover in settings.datasets_dir.glob(".deleting-*") if settings.datasets_dir.is_dir() else []:
            _remove(leftover)

    def _prune_processed_messages(self) -> None:
        """The embedded broker keeps consumed messages in `processed/`; keep a day of them for debugging."""
        choice = self.celery_app.broker_choice
        if not choice.embedded:
            return
        cutoff = time.time() - PROCESSED_MESSAGES_KEPT_SECONDS
        for message in Path(choice.broker_transport_options["processed_folder"]).glob("*.msg"):
            try:
                if message.stat().st_mtime < cutoff:
                    message.unlink()
            except OSError:
                pass


def _older_than(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except OSError:
        return False


def _remove(path: Path) -> None:
    logger.info("removing leftover %s", path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
