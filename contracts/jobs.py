"""The job record `runs/<job_id>/job.json` and every state transition of a job.

The states and the changes allowed between them are contracts/job_states.py's table; the record's shape is
contracts/job_record.py's `Job`. The record is the only source of a job's state and progress: the API lists and
shows jobs from it alone. The API and any number of workers read and change the same record, so every change is
a read-modify-write under a file lock, and every write replaces the file atomically: a reader never sees half a
record, and a process killed mid-write leaves the previous record intact. Every change of `state` goes through
`_move`, which checks it against the table.
"""

import errno
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from filelock import FileLock
from pydantic import ValidationError

from contracts.job_files import JobFiles
from contracts.job_record import Attempt, Job, JobEvent, LeaseInfo, Phase, Progress, utc_now
from contracts.job_states import (
    FINAL_STATES,
    RESUMABLE_STATES,
    TRANSITIONS,
    WORKING_STATES,
    JobState,
    WrongState,
    check_transition,
)
from contracts.train_config import TrainConfig
from storage.atomic import write_atomically
from storage.shared import DELETE, SharedMode, shared_mode

__all__ = [
    "FINAL_STATES",
    "RESUMABLE_STATES",
    "TRANSITIONS",
    "WORKING_STATES",
    "Job",
    "JobFinished",
    "JobState",
    "WrongState",
    "utc_now",
]

# Job ids are Celery task ids, made by us as UUID4 strings; anything else is not a job (and never a path).
JOB_ID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
EVENTS_KEPT = 50
RESERVE_BYTES = 256 * 1024
WORKER_LOST = "worker lost"
WORKER_LOST_GAVE_UP = "worker lost, gave up"
MAX_WORKERS_LOST = 3  # default of S2C_MAX_WORKER_LOSSES: lost workers in a row, then the job fails

Result = TypeVar("Result")
EtaOf = Callable[[Job], float | None]  # a record's expected seconds left (contracts/job_timing.py)


class JobFinished(Exception):
    """The job already reached a final state; the message says which."""


# ---- identity and storage -------------------------------------------------------------------------------
def new_job_id() -> str:
    return str(uuid.uuid4())


def is_job_id(text: str) -> bool:
    return bool(JOB_ID_PATTERN.fullmatch(text))


def run_dir_for(runs_dir: Path, job_id: str) -> Path:
    if not is_job_id(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return Path(runs_dir) / job_id


def new_record(job_id: str, dataset: str, params: TrainConfig, total_steps: int | None) -> Job:
    """A job as it enters the queue."""
    return Job(
        id=job_id,
        state=JobState.QUEUED,
        dataset=dataset,
        params=params,
        queued_at=utc_now(),
        progress=Progress(total_steps=total_steps),
    )


def _lock(run_dir: Path) -> FileLock:
    return FileLock(str(JobFiles(run_dir).record_lock), timeout=30)


def _write_record(run_dir: Path, record: Job) -> None:
    write_atomically(JobFiles(run_dir).record, record.to_json(), durable=True)


def create_record(run_dir: Path, record: Job) -> None:
    """Write a new job's record (and its disk reserve); refuses to overwrite an existing job."""
    shared = shared_mode()
    if shared is not None:
        if not shared.redis.set(_record_key(record.id), record.to_json(), nx=True):
            raise FileExistsError(f"job {record.id} exists already")
        shared.redis.zadd(shared.key("jobs"), {record.id: time.time()})
        return
    run_dir.mkdir(parents=True, exist_ok=False)
    try:
        with _lock(run_dir):
            _write_record(run_dir, record)
        set_aside_reserve(run_dir)
    except OSError:
        shutil.rmtree(run_dir, ignore_errors=True)  # a job that could not be written is no job
        raise


def forget_unqueued(run_dir: Path) -> None:
    """Remove a just-created record whose queue message could not be sent (the launch answers 503)."""
    shared = shared_mode()
    if shared is not None:
        shared.redis.delete(_record_key(run_dir.name))
        shared.redis.zrem(shared.key("jobs"), run_dir.name)
    shutil.rmtree(run_dir, ignore_errors=True)


def _record_key(job_id: str) -> str:
    return SharedMode.key("job", job_id)


def _cancel_key(job_id: str) -> str:
    return SharedMode.key("job", job_id, "cancel")


def set_aside_reserve(run_dir: Path) -> None:
    """Keep RESERVE_BYTES on disk for this job, so that a full disk cannot stop us recording its failure."""
    try:
        JobFiles(run_dir).reserve.write_bytes(b"\0" * RESERVE_BYTES)
    except OSError:
        JobFiles(run_dir).reserve.unlink(missing_ok=True)


def read_record(run_dir: Path) -> Job | None:
    """The record, or None if there is no such job (or its folder holds no readable, valid record)."""
    shared = shared_mode()
    try:
        if shared is not None:
            stored = shared.get(_record_key(run_dir.name))
            return None if stored is None else Job.model_validate_json(stored)
        return Job.model_validate_json(JobFiles(run_dir).record.read_bytes())
    except (OSError, ValidationError):
        return None


def update_record(run_dir: Path, change: Callable[[Job], Result]) -> Result:
    """Read, let `change` edit the record in place, write it back; all under the record's lock.

    `change` returns whatever the caller needs to know (e.g. whether it changed anything); raising inside it
    leaves the record untouched. In shared mode the write is a compare-and-set (WATCH/MULTI): `change` runs
    again on the newer record when another host changed it meanwhile.
    """
    shared = shared_mode()
    if shared is not None:
        return _update_shared_record(shared, run_dir, change)
    with _lock(run_dir):
        record = read_record(run_dir)
        if record is None:
            raise FileNotFoundError(f"no job record in {run_dir}")
        outcome = change(record)
        try:
            _write_record(run_dir, record)
        except OSError as error:
            reserve = JobFiles(run_dir).reserve
            if error.errno != errno.ENOSPC or not reserve.exists():
                raise
            reserve.unlink()  # the disk is full: spend the reserve on this write (a failure, usually)
            _write_record(run_dir, record)
        return outcome


def _update_shared_record(shared: SharedMode, run_dir: Path, change: Callable[[Job], Result]) -> Result:
    def change_stored(stored: bytes | None) -> tuple[Result, str]:
        if stored is None:
            raise FileNotFoundError(f"no job record for job {run_dir.name}")
        record = Job.model_validate_json(stored)
        outcome = change(record)
        return outcome, record.to_json()

    return shared.compare_and_set(_record_key(run_dir.name), change_stored)


def _move(record: Job, state: JobState, **changes: Any) -> None:
    """The one writer of `state`: checks the transition table, then applies the state and `changes`."""
    check_transition(record.id, record.state, state)
    record.state = state
    if state == JobState.QUEUED:
        record.queued_at = utc_now()
    if state not in WORKING_STATES:  # no worker does anything for it now
        record.progress.phase = record.progress.phase_started_at = None
    for name, value in changes.items():
        setattr(record, name, value)


def add_event(record: Job, message: str, **details: Any) -> None:
    """A short history of what happened to the job beyond its state (redeliveries, recoveries, requeues)."""
    record.events.append(JobEvent(event=message, **details))
    del record.events[:-EVENTS_KEPT]


def note_event(run_dir: Path, message: str, **details: Any) -> None:
    update_record(run_dir, lambda record: add_event(record, message, **details))


def list_records(runs_dir: Path) -> list[Job]:
    """Every job record under `runs_dir`, newest first."""
    records = []
    shared = shared_mode()
    if shared is not None:
        ids = shared.members(shared.key("jobs"))
        for stored in cast(
            list[bytes | None], shared.redis.mget([_record_key(job_id) for job_id in ids]) if ids else []
        ):
            try:
                if stored is not None:  # None: deleted since the listing
                    records.append(Job.model_validate_json(stored))
            except ValidationError:
                continue
    else:
        for run_dir in job_run_dirs(runs_dir):
            record = read_record(run_dir)
            if record is not None:
                records.append(record)
    records.sort(key=lambda record: record.created_at, reverse=True)
    return records


def job_run_dirs(runs_dir: Path) -> list[Path]:
    """The run folder of every job (in shared mode, of every job Redis knows, whether or not this host has
    its folder)."""
    shared = shared_mode()
    if shared is not None:
        return [Path(runs_dir) / job_id for job_id in shared.members(shared.key("jobs"))]
    if not Path(runs_dir).is_dir():
        return []
    return [entry for entry in Path(runs_dir).iterdir() if is_job_id(entry.name)]


def cancel_requested(run_dir: Path) -> bool:
    """The flag the running trainer looks at before every step (a file: works with any broker)."""
    shared = shared_mode()
    if shared is not None:
        return bool(shared.redis.exists(_cancel_key(run_dir.name)))
    return JobFiles(run_dir).cancel_flag.exists()


def _flag_cancel(run_dir: Path) -> bool:
    """Set the cancel flag; whether it was set before."""
    shared = shared_mode()
    if shared is not None:
        return not shared.redis.set(_cancel_key(run_dir.name), "1", nx=True)
    flag = JobFiles(run_dir).cancel_flag
    flagged_before = flag.exists()
    flag.touch()
    return flagged_before


def _clear_cancel(run_dir: Path) -> None:
    shared = shared_mode()
    if shared is not None:
        shared.redis.delete(_cancel_key(run_dir.name))
    else:
        JobFiles(run_dir).cancel_flag.unlink(missing_ok=True)


# ---- transitions: the API --------------------------------------------------------------------------------
def request_cancel(run_dir: Path) -> Job:
    """queued -> cancelled at once; running -> cancelling: flagged, the worker checkpoints and ends it.

    Raises JobFinished for a job already in a final state (also one that got there meanwhile: a finished job
    never gets `cancel_requested`). Returns the record after the change.
    """
    current = read_record(run_dir)
    if current is not None and current.state in FINAL_STATES:
        raise JobFinished(f"job {run_dir.name} is already {current.state.value}")
    flagged_before = _flag_cancel(run_dir)  # the flag first: a worker starting the job right now sees it

    def change(record: Job) -> Job:
        if record.state in FINAL_STATES:
            if not flagged_before:
                _clear_cancel(run_dir)
            raise JobFinished(f"job {record.id} is already {record.state.value}")
        record.cancel_requested = True
        if record.state == JobState.QUEUED:
            _move(record, JobState.CANCELLED, finished_at=utc_now())
            add_event(record, "cancelled while queued")
        elif record.state == JobState.RUNNING:
            _move(record, JobState.CANCELLING)
            add_event(record, "cancel requested")
        return record

    return update_record(run_dir, change)


def resume(run_dir: Path) -> Job:
    """cancelled | failed -> queued, to continue from its newest checkpoint; the caller enqueues it."""

    def change(record: Job) -> Job:
        if record.state not in RESUMABLE_STATES:
            raise WrongState(
                f"job {record.id} is {record.state.value}; only a cancelled or failed job can be resumed"
            )
        _clear_cancel(run_dir)
        set_aside_reserve(run_dir)  # spent if the job failed on a full disk
        add_event(record, f"resumed after it {record.state.value.replace('cancelled', 'was cancelled')}")
        _move(record, JobState.QUEUED, cancel_requested=False, finished_at=None, error=None)
        return record

    return update_record(run_dir, change)


def delete_run(run_dir: Path) -> None:
    """Remove a finished job's run folder (its published versions stay): renamed away first, so the job
    disappears at once and a reader never sees it half deleted. Raises WrongState for an unfinished job."""
    shared = shared_mode()
    if shared is not None:
        _delete_shared_run(shared, run_dir)
        return
    with _lock(run_dir):
        record = read_record(run_dir)
        if record is None:
            raise FileNotFoundError(f"no job record in {run_dir}")
        if record.state not in FINAL_STATES:
            raise WrongState(f"job {record.id} is {record.state.value}; cancel it first")
        doomed = run_dir.with_name(f".deleting-{run_dir.name}-{uuid.uuid4().hex[:8]}")
        os.rename(run_dir, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _delete_shared_run(shared: SharedMode, run_dir: Path) -> None:
    """The record goes first (the job disappears at once), then its files in the bucket and this host's cache."""

    def delete_finished(stored: bytes | None) -> tuple[None, object]:
        if stored is None:
            raise FileNotFoundError(f"no job record for job {run_dir.name}")
        record = Job.model_validate_json(stored)
        if record.state not in FINAL_STATES:
            raise WrongState(f"job {record.id} is {record.state.value}; cancel it first")
        return None, DELETE

    shared.compare_and_set(_record_key(run_dir.name), delete_finished)
    shared.redis.delete(_cancel_key(run_dir.name), SharedMode.key("job", run_dir.name, "checkpoints"))
    shared.redis.zrem(shared.key("jobs"), run_dir.name)
    shared.store.delete_folder(shared.relative(run_dir))
    shutil.rmtree(run_dir, ignore_errors=True)


def mark_unsent(run_dir: Path) -> None:
    """A queued job whose queue message could not be sent: it stays queued, flagged, and a janitor sends it
    once the broker answers again (worker/janitor.py)."""

    def change(record: Job) -> None:
        if record.state == JobState.QUEUED and record.message_sent:
            record.message_sent = False
            add_event(record, "queue message not sent (broker unreachable); a janitor will send it")

    update_record(run_dir, change)


def mark_sent(run_dir: Path) -> None:
    """The queue message of a flagged job went out after all."""
    update_record(run_dir, lambda record: setattr(record, "message_sent", True))


# ---- transitions: a worker's delivery --------------------------------------------------------------------
def _attempt_of(record: Job, owner: str) -> Attempt:
    for attempt in reversed(record.attempts):
        if attempt.owner == owner:
            return attempt
    raise LookupError(f"no attempt of {owner} in job {record.id}")


def begin_attempt(
    run_dir: Path,
    owner: str,
    worker: str,
    previous_lease: dict[str, Any] | None,
    max_worker_losses: int = MAX_WORKERS_LOST,
) -> str:
    """queued (or running, after a lost worker) -> running, with a new attempt; the lease is already ours.

    Returns "run", or the final state that means there is nothing to run (a cancel that came first).
    """

    def change(record: Job) -> str:
        if record.state in FINAL_STATES:
            return record.state.value
        if cancel_requested(run_dir):
            _move(record, JobState.CANCELLED, finished_at=utc_now())
            add_event(record, "cancelled before this delivery could start it", worker=worker)
            return JobState.CANCELLED.value
        if _note_lost_worker(record) >= max_worker_losses:  # a redelivery after yet another dead worker
            _give_up_after_lost_workers(record, worker, max_worker_losses)
            return JobState.FAILED.value
        now = utc_now()
        _move(record, JobState.RUNNING, started_at=record.started_at or now, error=None, message_sent=True)
        record.progress.phase, record.progress.phase_started_at = Phase.STARTING, now
        record.attempts.append(
            Attempt(
                worker=worker,
                pid=os.getpid(),
                owner=owner,
                started_at=now,
                previous_lease=LeaseInfo.model_validate(previous_lease) if previous_lease else None,
            )
        )
        return "run"

    return update_record(run_dir, change)


def change_attempt(run_dir: Path, owner: str, **changes: Any) -> None:
    def change(record: Job) -> None:
        attempt = _attempt_of(record, owner)
        for name, value in changes.items():
            setattr(attempt, name, value)

    update_record(run_dir, change)


def record_progress(run_dir: Path, owner: str, progress: Progress, eta: EtaOf | None = None) -> Progress:
    """The trainer's newest log point becomes the job's progress (the only copy of it), in the training phase;
    `eta` (given the changed record) sets its `eta_seconds`."""

    def change(record: Job) -> Progress:
        merged = progress.model_copy()
        if merged.version is None:  # the trainer counts this attempt's versions only
            merged.version, merged.gate = record.progress.version, record.progress.gate
        previous = record.progress
        merged.phase = Phase.TRAINING
        same_phase = previous.phase == Phase.TRAINING
        merged.phase_started_at = previous.phase_started_at if same_phase else utc_now()
        merged.updated_at = utc_now()
        record.progress = merged
        if eta is not None:
            merged.eta_seconds = eta(record)
        _attempt_of(record, owner).last_step = merged.step
        return merged

    return update_record(run_dir, change)


def enter_phase(
    run_dir: Path, owner: str, phase: Phase, step: int | None = None, eta: EtaOf | None = None
) -> None:
    """The worker starts `phase` (at `step`, when given): written at once, so that a reader knows why the step
    counter stands still (start-up, an export)."""

    def change(record: Job) -> None:
        _attempt_of(record, owner)  # only the attempt that holds the job writes
        progress = record.progress
        if step is not None:
            progress.step = step
        progress.phase, progress.phase_started_at = phase, utc_now()
        progress.updated_at = progress.phase_started_at
        if eta is not None:
            progress.eta_seconds = eta(record)

    update_record(run_dir, change)


def finish(
    run_dir: Path, owner: str, state: JobState, step: int | None = None, error: str | None = None
) -> None:
    """running | cancelling -> succeeded | failed | cancelled, closing this worker's attempt."""
    if state not in FINAL_STATES:
        raise ValueError(f"not a final state: {state!r}")
    update_record(run_dir, lambda record: _end(record, owner, state, step, error))


def finish_trained(run_dir: Path, owner: str, step: int, versions: list[int]) -> JobState:
    """The trainer ran its last step: running -> succeeded. Returns the state the job ended in.

    A job that is cancelling by then (the cancel came during the last step or its final publish, too late to
    stop them) ends cancelled, as asked, never succeeded with a cancel requested: an event says that its
    training is complete and which versions it published; they stay published (a resume ends it succeeded).
    """

    def change(record: Job) -> JobState:
        if record.state != JobState.CANCELLING:
            _end(record, owner, JobState.SUCCEEDED, step)
            return JobState.SUCCEEDED
        _end(record, owner, JobState.CANCELLED, step)
        published = f"version {', '.join(map(str, versions))} published" if versions else "nothing published"
        add_event(
            record,
            f"cancel came after the last step: training complete, {published} (kept); ended cancelled",
            step=step,
        )
        return JobState.CANCELLED

    return update_record(run_dir, change)


def _end(record: Job, owner: str, state: JobState, step: int | None, error: str | None = None) -> None:
    now = utc_now()
    _move(record, state, finished_at=now, error=error)
    if state == JobState.SUCCEEDED:
        record.progress.eta_seconds = 0.0
    attempt = _attempt_of(record, owner)
    attempt.ended_at, attempt.outcome = now, state.value
    if step is not None:
        attempt.last_step = step


def hand_back(run_dir: Path, owner: str, worker: str, step: int) -> None:
    """running -> queued: the worker shuts down after checkpointing; the caller enqueues the job again."""

    def change(record: Job) -> None:
        _move(record, JobState.QUEUED)
        attempt = _attempt_of(record, owner)
        attempt.ended_at, attempt.outcome, attempt.last_step = utc_now(), "handed back", step
        add_event(
            record,
            "worker shutting down: checkpointed and handed back to the queue",
            worker=worker,
            step=step,
        )

    update_record(run_dir, change)


def _note_lost_worker(record: Job) -> int:
    """Mark the newest attempt lost when it never ended (its worker died); how many attempts in a row ended
    that way."""
    if record.attempts and record.attempts[-1].outcome is None:
        record.attempts[-1].outcome = WORKER_LOST
        record.attempts[-1].lost_noticed_at = utc_now()
    lost = 0
    for attempt in reversed(record.attempts):
        if attempt.outcome != WORKER_LOST:
            break
        lost += 1
    return lost


def _give_up_after_lost_workers(record: Job, noticed_by: str, losses: int) -> None:
    """A job that kills its worker (out of memory, most often) would otherwise be re-queued forever. The last
    attempt says so, so a resumed job starts counting its lost workers afresh."""
    record.attempts[-1].outcome = WORKER_LOST_GAVE_UP
    _move(
        record,
        JobState.FAILED,
        finished_at=utc_now(),
        error=f"its worker died {losses} time{'s' if losses != 1 else ''} in a row while running it (killed, most often for "
        "running out of memory): not re-queued again. See the worker's log; resume it (POST "
        "/jobs/{id}/resume) once the worker has more memory, or launch it with a smaller batch or width",
    )
    add_event(record, f"worker lost {losses} times in a row; failed", noticed_by=noticed_by)


def requeue_lost(
    run_dir: Path,
    lease_is_live: Callable[[], bool],
    noticed_by: str,
    lease: dict[str, Any] | None,
    max_worker_losses: int = MAX_WORKERS_LOST,
) -> bool:
    """running without a live lease -> queued (its worker died); the caller enqueues it. True if it changed.

    A job that was cancelling when its worker died ends as cancelled (its newest checkpoint stays).
    """

    def change(record: Job) -> bool:
        if record.state not in WORKING_STATES or lease_is_live():
            return False
        if record.state == JobState.CANCELLING:
            _move(record, JobState.CANCELLED, finished_at=utc_now())
            add_event(
                record,
                "worker lost while cancelling; cancelled at its newest checkpoint",
                noticed_by=noticed_by,
            )
            return False
        if _note_lost_worker(record) >= max_worker_losses:
            _give_up_after_lost_workers(record, noticed_by, max_worker_losses)
            return False
        _move(record, JobState.QUEUED)
        add_event(
            record,
            "worker lost (lease expired); re-queued to resume from its newest checkpoint",
            noticed_by=noticed_by,
            lease=lease,
        )
        return True

    return update_record(run_dir, change)
