"""Datasets under `<data_dir>/datasets/<name>/{train,val}/`: what a name may be, and what a folder holds.

Pair counts follow the trainer's own rule (storage/layout.py), so a count here is what a job will train on.
Uploaded datasets are imported by a worker (worker/imports.py) into a hidden staging folder, renamed into place
when complete; their import record says `importing`, `ready` or `failed` (with the file and the reason).
"""

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from storage.atomic import write_atomically
from storage.layout import pair_files
from storage.shared import SharedMode, shared_mode
from storage.shared_runs import dataset_counts, remove_dataset

# A dataset is named by one plain folder name: no separators, no "..", nothing hidden, never a path.
NAMES_LOCK = ".names.lock"  # held while a name is checked and reserved: two uploads never both get one
DATASET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


class BadDatasetName(ValueError):
    """Not a name of a folder under the datasets folder."""


class DatasetExists(Exception):
    """The name is taken by a dataset or an import in progress."""


def is_dataset_name(name: str) -> bool:
    return bool(DATASET_NAME.fullmatch(name)) and ".." not in name


def check_dataset_name(name: str) -> None:
    if not is_dataset_name(name):
        raise BadDatasetName(
            f"dataset: {name!r} is not a dataset name; give the name of a folder under the datasets folder "
            "(letters, digits, '.', '_' and '-'; no paths, no '..')"
        )


def count_pairs(folder: Path) -> int:
    return len(pair_files(folder))


def summarize(dataset_dir: Path) -> dict[str, Any]:
    return {
        "name": dataset_dir.name,
        "train": count_pairs(dataset_dir / "train"),
        "val": count_pairs(dataset_dir / "val"),
    }


def list_datasets(datasets_dir: Path) -> list[dict[str, Any]]:
    """Every dataset folder with its pair counts, by name."""
    if not datasets_dir.is_dir():
        return []
    folders = (entry for entry in datasets_dir.iterdir() if entry.is_dir() and is_dataset_name(entry.name))
    return [summarize(folder) for folder in sorted(folders, key=lambda folder: folder.name)]


# ---- imports: `datasets/.imports/<name>.json`, and a hidden staging folder until the dataset is complete ----
IMPORT_STATES = ("importing", "ready", "failed")
IMPORT_HEARTBEAT_SECONDS = 5.0  # a running import's importer writes `heartbeat_at` this often
IMPORT_ABANDONED_SECONDS = 60.0  # no heartbeat for this long: its importer is gone (killed, out of memory)


def imports_dir(datasets_dir: Path) -> Path:
    return Path(datasets_dir) / ".imports"


def import_record_path(datasets_dir: Path, name: str) -> Path:
    return imports_dir(datasets_dir) / f"{name}.json"


def archive_path(datasets_dir: Path, name: str) -> Path:
    return imports_dir(datasets_dir) / f"{name}.zip"


def staging_dir(datasets_dir: Path, name: str) -> Path:
    """Hidden, so never listed and never trainable while the import runs."""
    return Path(datasets_dir) / f".importing-{name}"


def read_import(datasets_dir: Path, name: str) -> dict[str, Any] | None:
    try:
        shared = shared_mode()
        if shared is not None:  # shared mode: the Redis key s2c:dataset:<name>
            stored = shared.get(_import_key(name))
            record = None if stored is None else json.loads(stored)
        else:
            record = json.loads(import_record_path(datasets_dir, name).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_import(datasets_dir: Path, record: dict[str, Any]) -> None:
    imports_dir(datasets_dir).mkdir(parents=True, exist_ok=True)  # where the archive waits on this host
    shared = shared_mode()
    if shared is not None:
        shared.redis.set(_import_key(record["name"]), json.dumps(record))
        return
    write_atomically(
        import_record_path(datasets_dir, record["name"]), json.dumps(record, indent=2), durable=True
    )


def _import_key(name: str) -> str:
    return SharedMode.key("dataset", name)


@contextmanager
def _names_lock(datasets_dir: Path) -> Iterator[None]:
    """Held while a name is checked and reserved (in shared mode a Redis lock: every host's uploads)."""
    shared = shared_mode()
    if shared is not None:
        with shared.redis.lock(shared.key("lock", "datasets"), timeout=60, blocking_timeout=30):
            yield
        return
    Path(datasets_dir).mkdir(parents=True, exist_ok=True)
    with FileLock(str(Path(datasets_dir) / NAMES_LOCK), timeout=30):
        yield


def dataset_is_there(datasets_dir: Path, name: str) -> bool:
    """Imported and complete: a folder here, or in shared mode in the bucket."""
    shared = shared_mode()
    if shared is not None:
        return dataset_counts(shared, Path(datasets_dir) / name) is not None
    return (Path(datasets_dir) / name).exists()


def keep_archive(datasets_dir: Path, name: str) -> None:
    """Shared mode: the uploaded archive moves into the bucket, where any host's importer finds it (no copy
    stays here: a later upload of the name, imported on this host, must never meet it)."""
    shared = shared_mode()
    if shared is not None:
        path = archive_path(datasets_dir, name)
        shared.store.upload_file(path, shared.relative(path))
        path.unlink()


def fetch_archive(datasets_dir: Path, name: str) -> None:
    """Shared mode: the archive from the bucket, unless it is here: only `sketch2color datasets import` keeps
    it here, the API moves an upload's archive into the bucket (keep_archive)."""
    shared = shared_mode()
    path = archive_path(datasets_dir, name)
    if shared is not None and not path.is_file():
        shared.store.download_file(shared.relative(path), path)


def remove_archive(datasets_dir: Path, name: str) -> None:
    path = archive_path(datasets_dir, name)
    path.unlink(missing_ok=True)
    shared = shared_mode()
    if shared is not None:
        shared.store.delete([shared.relative(path)])


def new_import(datasets_dir: Path, name: str, options: dict[str, Any], archive_bytes: int) -> dict[str, Any]:
    """An import as it is queued (state `importing`); refuses a name that is taken or being imported. The
    check and the reservation happen under one lock: of several uploads of one name exactly one gets it, and
    the others' cleanup can never touch its record or archive."""
    check_dataset_name(name)
    with _names_lock(datasets_dir):
        existing = _fail_if_abandoned(datasets_dir, name)
        if dataset_is_there(datasets_dir, name) or (existing and existing["state"] == "importing"):
            raise DatasetExists(
                f"dataset {name!r} exists already (or is being imported); delete it or pick another name"
            )
        return _reserve(datasets_dir, name, options, archive_bytes)


def _reserve(datasets_dir: Path, name: str, options: dict[str, Any], archive_bytes: int) -> dict[str, Any]:
    record = {
        "name": name,
        "state": "importing",
        "options": options,
        "archive_bytes": archive_bytes,
        "progress": {"done": 0, "total": None},
        "counts": None,
        "skipped": [],
        "error": None,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "finished_at": None,
    }
    write_import(datasets_dir, record)
    return record


def heartbeat_clock() -> datetime:
    """What an import's heartbeat is dated and judged by: this machine's clock, or in shared mode Redis' own,
    so that hosts whose clocks disagree never judge a running import abandoned."""
    shared = shared_mode()
    if shared is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(shared.now(), UTC)


def abandoned_for(record: dict[str, Any]) -> float | None:
    """Seconds since a started import's importer last wrote its heartbeat, when that is too long; else None.
    An import still waiting in the queue has no heartbeat yet and is never abandoned."""
    beat = record.get("heartbeat_at")
    if record.get("state") != "importing" or not beat:
        return None
    silent = (heartbeat_clock() - datetime.fromisoformat(beat)).total_seconds()
    return silent if silent > IMPORT_ABANDONED_SECONDS else None


def fail_if_abandoned(datasets_dir: Path, name: str) -> dict[str, Any] | None:
    """The import record; one whose importer stopped mid-import (killed, out of memory, a crash) is failed
    first, saying so, with its staging folder and archive removed, so the name can be deleted or reused."""
    with _names_lock(datasets_dir):
        return _fail_if_abandoned(datasets_dir, name)


def _fail_if_abandoned(datasets_dir: Path, name: str) -> dict[str, Any] | None:
    record = read_import(datasets_dir, name)
    silent = abandoned_for(record) if record is not None else None
    if silent is None:
        return record
    shutil.rmtree(staging_dir(datasets_dir, name), ignore_errors=True)
    remove_archive(datasets_dir, name)
    error = (
        f"the importer stopped while importing (killed, or out of memory?): no sign of it for {silent:.0f} s; "
        "delete this record and upload the archive again"
    )
    return update_import(datasets_dir, name, state="failed", error=error)


def update_import(datasets_dir: Path, name: str, **changes: Any) -> dict[str, Any]:
    record = read_import(datasets_dir, name)
    if record is None:
        raise FileNotFoundError(f"no import of dataset {name!r}")
    record.update(changes)
    if changes.get("state") in ("ready", "failed"):
        record["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_import(datasets_dir, record)
    return record


def publish_dataset(datasets_dir: Path, name: str) -> None:
    """The staging folder becomes `datasets/<name>` in one rename: a dataset is there whole or not at all."""
    target = Path(datasets_dir) / name
    if shared_mode() is not None and target.exists():  # a stale cached copy of an earlier dataset of the name
        doomed = Path(datasets_dir) / f".deleting-{name}-{uuid.uuid4().hex[:8]}"
        os.rename(target, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    os.rename(staging_dir(datasets_dir, name), target)


def delete_dataset(datasets_dir: Path, name: str) -> None:
    """Renamed away first (never half there), then removed, with its import record and archive."""
    check_dataset_name(name)
    folder = Path(datasets_dir) / name
    if folder.exists():
        doomed = Path(datasets_dir) / f".deleting-{name}-{uuid.uuid4().hex[:8]}"
        os.rename(folder, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    shutil.rmtree(staging_dir(datasets_dir, name), ignore_errors=True)
    import_record_path(datasets_dir, name).unlink(missing_ok=True)
    remove_archive(datasets_dir, name)
    shared = shared_mode()
    if shared is not None:  # the bucket's copy, then the record: the name is free once both are gone
        remove_dataset(shared, folder)
        shared.redis.delete(_import_key(name))


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
