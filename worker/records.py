"""The durable job record, `runs/<job_id>/job.json`: parameters, times, state, error, attempts, last progress.

The API and any number of workers read and change the same record, so every change is a read-modify-write
under a file lock, and every write replaces the file atomically: a reader never sees half a record, and a
worker killed mid-write leaves the previous record intact. Celery's result backend carries live progress too,
but it forgets (results expire) and cannot tell an unknown id from a queued one; this record does not.
"""

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock

from model.versions import write_atomically

RECORD_NAME = "job.json"
LOCK_NAME = ".job.lock"
CANCEL_FLAG_NAME = "cancel"
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
# Job ids are Celery task ids, made by us as UUID4 strings; anything else is not a job (and never a path).
JOB_ID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

Result = TypeVar("Result")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_job_id() -> str:
    return str(uuid.uuid4())


def is_job_id(text: str) -> bool:
    return bool(JOB_ID_PATTERN.match(text))


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


def new_record(job_id: str, dataset: str, params: dict[str, Any], total_steps: int | None) -> dict[str, Any]:
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
    return FileLock(str(run_dir / LOCK_NAME), timeout=30)


def _write_record(path: Path, record: dict[str, Any]) -> None:
    write_atomically(path, json.dumps(record, indent=2), durable=True)


def create_record(run_dir: Path, record: dict[str, Any]) -> None:
    """Write a new job's record; refuses to overwrite an existing job."""
    run_dir.mkdir(parents=True, exist_ok=False)
    with _lock(run_dir):
        _write_record(run_dir / RECORD_NAME, record)


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """The record, or None if there is no such job (or its folder holds no readable record)."""
    try:
        return json.loads((run_dir / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return None


def update_record(run_dir: Path, change: Callable[[dict[str, Any]], Result]) -> Result:
    """Read, let `change` edit the record in place, write it back; all under the record's lock.

    `change` returns whatever the caller needs to know (e.g. whether it changed anything); raising inside it
    leaves the record untouched.
    """
    with _lock(run_dir):
        record = read_record(run_dir)
        if record is None:
            raise FileNotFoundError(f"no job record in {run_dir}")
        outcome = change(record)
        _write_record(run_dir / RECORD_NAME, record)
        return outcome


def add_event(record: dict[str, Any], message: str, **details: Any) -> None:
    """A short history of what happened to the job beyond its state (redeliveries, recoveries, requeues)."""
    record.setdefault("events", []).append({"at": utc_now(), "event": message, **details})
    del record["events"][:-50]


def list_records(runs_dir: Path) -> list[dict[str, Any]]:
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


def request_cancel(run_dir: Path) -> None:
    """The flag the running trainer looks at before every step (a file: works with any broker)."""
    (run_dir / CANCEL_FLAG_NAME).touch()


def cancel_requested(run_dir: Path) -> bool:
    return (run_dir / CANCEL_FLAG_NAME).exists()
