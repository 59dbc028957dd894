"""The job record `runs/<job_id>/job.json` and every state transition of a job.

```
queued --(a worker takes it)--> running --(trainer ends)--> succeeded | failed
queued --(cancel)--> cancelled          running --(cancel)--> cancelling --(checkpointed)--> cancelled
running --(worker shuts down, or its lease expires)--> queued          cancelled | failed --(resume)--> queued
```
The record is the only source of a job's state and progress: the API lists and shows jobs from it alone. The
API and any number of workers read and change the same record, so every change is a read-modify-write under a
file lock, and every write replaces the file atomically: a reader never sees half a record, and a process
killed mid-write leaves the previous record intact. The transitions below are the only writers of `state`.
"""

import errno
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock

from storage.atomic import write_atomically
from model.run_folder import RunFolder

FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
# States in which a worker holds (or should hold) the job's lease.
WORKING_STATES = frozenset({"running", "cancelling"})
RESUMABLE_STATES = frozenset({"cancelled", "failed"})
# Job ids are Celery task ids, made by us as UUID4 strings; anything else is not a job (and never a path).
JOB_ID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
EVENTS_KEPT = 50
RESERVE_BYTES = 256 * 1024

Result = TypeVar("Result")
Record = dict[str, Any]


class JobFinished(Exception):
    """The job already reached a final state; the message says which."""


class WrongState(Exception):
    """The job is not in a state that allows this; the message says which it is in."""


# ---- identity and storage -------------------------------------------------------------------------------
def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_job_id() -> str:
    return str(uuid.uuid4())


def is_job_id(text: str) -> bool:
    return bool(JOB_ID_PATTERN.fullmatch(text))


def run_dir_for(runs_dir: Path, job_id: str) -> Path:
    if not is_job_id(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return Path(runs_dir) / job_id


def empty_progress(total_steps: int | None = None) -> dict[str, Any]:
    return {
        "epoch": 0,
        "step": 0,
        "total_steps": total_steps,
        "images_per_second": None,
        "eta_seconds": None,
        "losses": None,
        "val": None,
        "version": None,
    }


def new_record(job_id: str, dataset: str, params: dict[str, Any], total_steps: int | None) -> Record:
    """A job as it enters the queue."""
    return {
        "id": job_id,
        "state": "queued",
        "dataset": dataset,
        "params": params,
        "created_at": utc_now(),
        "started_at": None,
        "finished_at": None,
        "error": None,
        "progress": empty_progress(total_steps),
        "cancel_requested": False,
        "attempts": [],
        "events": [],
    }


def _lock(run_dir: Path) -> FileLock:
    return FileLock(str(RunFolder(run_dir).record_lock), timeout=30)


def _write_record(run_dir: Path, record: Record) -> None:
    write_atomically(RunFolder(run_dir).record, json.dumps(record, indent=2), durable=True)


def create_record(run_dir: Path, record: Record) -> None:
    """Write a new job's record (and its disk reserve); refuses to overwrite an existing job."""
    run_dir.mkdir(parents=True, exist_ok=False)
    try:
        with _lock(run_dir):
            _write_record(run_dir, record)
        set_aside_reserve(run_dir)
    except OSError:
        shutil.rmtree(run_dir, ignore_errors=True)  # a job that could not be written is no job
        raise


def set_aside_reserve(run_dir: Path) -> None:
    """Keep RESERVE_BYTES on disk for this job, so that a full disk cannot stop us recording its failure."""
    try:
        RunFolder(run_dir).reserve.write_bytes(b"\0" * RESERVE_BYTES)
    except OSError:
        RunFolder(run_dir).reserve.unlink(missing_ok=True)


def read_record(run_dir: Path) -> Record | None:
    """The record, or None if there is no such job (or its folder holds no readable record)."""
    try:
        return json.loads(RunFolder(run_dir).record.read_text())
    except (OSError, ValueError):
        return None


def update_record(run_dir: Path, change: Callable[[Record], Result]) -> Result:
    """Read, let `change` edit the record in place, write it back; all under the record's lock.

    `change` returns whatever the caller needs to know (e.g. whether it changed anything); raising inside it
    leaves the record untouched.
    """
    with _lock(run_dir):
        record = read_record(run_dir)
        if record is None:
            raise FileNotFoundError(f"no job record in {run_dir}")
        outcome = change(record)
        try:
            _write_record(run_dir, record)
        except OSError as error:
            reserve = RunFolder(run_dir).reserve
            if error.errno != errno.ENOSPC or not reserve.exists():
                raise
            reserve.unlink()  # the disk is full: spend the reserve on this write (a failure, usually)
            _write_record(run_dir, record)
        return outcome


def add_event(record: Record, message: str, **details: Any) -> None:
    """A short history of what happened to the job beyond its state (redeliveries, recoveries, requeues)."""
    record.setdefault("events", []).append({"at": utc_now(), "event": message, **details})
    del record["events"][:-EVENTS_KEPT]


def note_event(run_dir: Path, message: str, **details: Any) -> None:
    update_record(run_dir, lambda record: add_event(record, message, **details))


def list_records(runs_dir: Path) -> list[Record]:
    """Every job record under `runs_dir`, newest first."""
    if not Path(runs_dir).is_dir():
        return []
    records = []
    for entry in Path(runs_dir).iterdir():
        if is_job_id(entry.name):
            record = read_record(entry)
            if record is not None:
                records.append(record)
    records.sort(key=lambda record: record.get("created_at") or "", reverse=True)
    return records


def cancel_requested(run_dir: Path) -> bool:
    """The flag the running trainer looks at before every step (a file: works with any broker)."""
    return RunFolder(run_dir).cancel_flag.exists()


# ---- transitions: the API --------------------------------------------------------------------------------
def request_cancel(run_dir: Path) -> Record:
    """queued -> cancelled at once; running -> cancelling: flagged, the worker checkpoints and ends it.

    Raises JobFinished for a job already in a final state. Returns the record after the change.
    """
    state = (read_record(run_dir) or {}).get("state")
    if state in FINAL_STATES:
        raise JobFinished(f"job {run_dir.name} is already {state}")
    RunFolder(run_dir).cancel_flag.touch()  # the flag first: a worker starting the job right now sees it

    def change(record: Record) -> Record:
        record["cancel_requested"] = True
        if record["state"] == "queued":
            record.update(state="cancelled", finished_at=utc_now())
            add_event(record, "cancelled while queued")
        elif record["state"] == "running":
            record["state"] = "cancelling"
            add_event(record, "cancel requested")
        return record

    return update_record(run_dir, change)


def resume(run_dir: Path) -> Record:
    """cancelled | failed -> queued, to continue from its newest checkpoint; the caller enqueues it."""

    def change(record: Record) -> Record:
        if record["state"] not in RESUMABLE_STATES:
            raise WrongState(
                f"job {record['id']} is {record['state']}; only a cancelled or failed job can be resumed"
            )
        RunFolder(run_dir).cancel_flag.unlink(missing_ok=True)
        set_aside_reserve(run_dir)  # spent if the job failed on a full disk
        add_event(record, f"resumed after it {record['state'].replace('cancelled', 'was cancelled')}")
        record.update(state="queued", cancel_requested=False, finished_at=None, error=None)
        return record

    return update_record(run_dir, change)


def delete_run(run_dir: Path) -> None:
    """Remove a finished job's run folder (its published versions stay): renamed away first, so the job
    disappears at once and a reader never sees it half deleted. Raises WrongState for an unfinished job."""
    with _lock(run_dir):
        record = read_record(run_dir)
        if record is None:
            raise FileNotFoundError(f"no job record in {run_dir}")
        if record["state"] not in FINAL_STATES:
            raise WrongState(f"job {record['id']} is {record['state']}; cancel it first")
        doomed = run_dir.with_name(f".deleting-{run_dir.name}-{uuid.uuid4().hex[:8]}")
        os.rename(run_dir, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


# ---- transitions: a worker's delivery --------------------------------------------------------------------
def _attempt_of(record: Record, owner: str) -> dict[str, Any]:
    for attempt in reversed(record["attempts"]):
        if attempt.get("owner") == owner:
            return attempt
    raise LookupError(f"no attempt of {owner} in job {record['id']}")


def begin_attempt(run_dir: Path, owner: str, worker: str, previous_lease: dict[str, Any] | None) -> str:
    """queued (or running, after a lost worker) -> running, with a new attempt; the lease is already ours.

    Returns "run", or the final state that means there is nothing to run (a cancel that came first).
    """

    def change(record: Record) -> str:
        if record["state"] in FINAL_STATES:
            return record["state"]
        if cancel_requested(run_dir):
            record.update(state="cancelled", finished_at=utc_now())
            add_event(record, "cancelled before this delivery could start it", worker=worker)
            return "cancelled"
        now = utc_now()
        record.update(state="running", started_at=record["started_at"] or now, error=None)
        record["attempts"].append(
            {
                "worker": worker,
                "pid": os.getpid(),
                "owner": owner,
                "started_at": now,
                "resumed_from_step": None,
                "previous_lease": previous_lease,
                "ended_at": None,
                "outcome": None,
                "last_step": None,
            }
        )
        return "run"

    return update_record(run_dir, change)


def change_attempt(run_dir: Path, owner: str, **changes: Any) -> None:
    update_record(run_dir, lambda record: _attempt_of(record, owner).update(changes))


def record_progress(run_dir: Path, owner: str, progress: dict[str, Any]) -> dict[str, Any]:
    """The trainer's newest log point becomes the job's progress (the only copy of it)."""

    def change(record: Record) -> dict[str, Any]:
        merged = dict(progress)
        if merged.get("version") is None:  # the trainer counts this attempt's versions only
            previous = record.get("progress") or {}
            merged["version"], merged["gate"] = previous.get("version"), previous.get("gate")
        record["progress"] = merged
        _attempt_of(record, owner)["last_step"] = merged["step"]
        return merged

    return update_record(run_dir, change)


def finish(run_dir: Path, owner: str, state: str, step: int | None = None, error: str | None = None) -> None:
    """running -> succeeded | failed | cancelled, closing this worker's attempt."""
    if state not in FINAL_STATES:
        raise ValueError(f"not a final state: {state!r}")

    def change(record: Record) -> None:
        now = utc_now()
        record.update(state=state, finished_at=now, error=error)
        if state == "succeeded":
            record["progress"]["eta_seconds"] = 0.0
        attempt = _attempt_of(record, owner)
        attempt.update(ended_at=now, outcome=state)
        if step is not None:
            attempt["last_step"] = step

    update_record(run_dir, change)


def hand_back(run_dir: Path, owner: str, worker: str, step: int) -> None:
    """running -> queued: the worker shuts down after checkpointing; the caller enqueues the job again."""

    def change(record: Record) -> None:
        record["state"] = "queued"
        _attempt_of(record, owner).update(ended_at=utc_now(), outcome="handed back", last_step=step)
        add_event(
            record,
            "worker shutting down: checkpointed and handed back to the queue",
            worker=worker,
            step=step,
        )

    update_record(run_dir, change)


def requeue_lost(
    run_dir: Path, lease_is_live: Callable[[], bool], noticed_by: str, lease: dict[str, Any] | None
) -> bool:
    """running without a live lease -> queued (its worker died); the caller enqueues it. True if it changed.

    A job that was cancelling when its worker died ends as cancelled (its newest checkpoint stays).
    """

    def change(record: Record) -> bool:
        if record["state"] not in WORKING_STATES or lease_is_live():
            return False
        if record["state"] == "cancelling":
            record.update(state="cancelled", finished_at=utc_now())
            add_event(
                record,
                "worker lost while cancelling; cancelled at its newest checkpoint",
                noticed_by=noticed_by,
            )
            return False
        record["state"] = "queued"
        if record["attempts"] and record["attempts"][-1].get("outcome") is None:
            record["attempts"][-1].update(outcome="worker lost", lost_noticed_at=utc_now())
        add_event(
            record,
            "worker lost (lease expired); re-queued to resume from its newest checkpoint",
            noticed_by=noticed_by,
            lease=lease,
        )
        return True

    return update_record(run_dir, change)


def unqueue_unsent(run_dir: Path) -> None:
    """queued -> running without a lease: its message could not be sent, so a janitor re-queues it later."""
    update_record(
        run_dir, lambda record: record.update(state="running") if record["state"] == "queued" else None
    )
