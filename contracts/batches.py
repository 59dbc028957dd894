"""Chapters: many pages colorized in one batch, spread over the workers (docs/ARCHITECTURE.md, "Batches").

A batch lives in `batches/<id>/`: its record `batch.json` (the only source of its state and counts), the page
list `pages.json` (written once, when the upload is accepted), the uploaded pages under `pages/`, one result
file per finished page under `results/` and one heartbeat file per chunk being worked on under `chunks/`.

The API and any number of workers change the same record, so every change is a read-modify-write under a file
lock and every write is atomic (storage/atomic.py), as for jobs (contracts/jobs.py). The counts are recounted
from the result files and the named failures at each change, so a chunk done twice (its worker was killed
after writing a page but before counting it) never counts a page twice or loses one.

```
queued --(a worker takes a chunk)--> running --(every page done or failed)--> done
queued | running --(cancel)--> cancelled          queued | running --(the version cannot be loaded)--> failed
```

In shared mode (storage/shared.py) the record is the Redis key `s2c:batch:<id>` (compare-and-set; `s2c:batches`
lists the ids), the heartbeats a Redis hash `s2c:batch:<id>:beats` (chunk -> Redis' own time, so hosts' clocks
need not agree), and pages, `pages.json` and results live in the bucket under `batches/<id>/`, the local
folder being this host's copy: the record is written after the pages are in the bucket, and a result joins the
set `s2c:batch:<id>:results`, where the counts come from, only once its upload is complete.
"""

import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Literal, TypeVar, cast

from filelock import FileLock
from pydantic import BaseModel, Field, ValidationError

from contracts.job_record import Stored, utc_now
from contracts.job_states import WrongState
from storage.atomic import write_atomically, write_with
from storage.shared import DELETE, SharedMode, shared_mode

__all__ = [
    "CHUNK_PAGES",
    "Batch",
    "BatchOptions",
    "BatchState",
    "Page",
    "PageFailure",
    "PageStatus",
    "WrongState",
]

CHUNK_PAGES = 8  # pages per worker task: a killed worker's chunk is redone, its finished pages skipped
RECORD = "batch.json"
PAGES = "pages.json"
BATCH_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
Result = TypeVar("Result")


class BatchState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


TRANSITIONS: dict[BatchState, frozenset[BatchState]] = {
    BatchState.QUEUED: frozenset({BatchState.RUNNING, BatchState.FAILED, BatchState.CANCELLED}),
    BatchState.RUNNING: frozenset({BatchState.DONE, BatchState.FAILED, BatchState.CANCELLED}),
    BatchState.DONE: frozenset(),
    BatchState.FAILED: frozenset(),
    BatchState.CANCELLED: frozenset(),
}
FINAL_STATES = frozenset({BatchState.DONE, BatchState.FAILED, BatchState.CANCELLED})


class BatchOptions(BaseModel):
    """The options of POST /batches, those of POST /colorize, for every page of the batch."""

    size: Literal["256", "original"] = "256"
    fill: Literal["regions", "soft"] = "regions"
    lines: Literal["keep", "none"] = "keep"
    format: Literal["png", "psd", "ora", "zip"] = "png"
    version: str | None = Field(None, description="As asked: a version number, a label, or none (served).")


class Page(Stored):
    """One page: its name in the upload, its stored sketch and hint layer under `pages/` (None: refused)."""

    index: int
    name: str
    file: str | None = None
    hints: str | None = None


class PageFailure(Stored):
    name: str
    reason: str


class PageStatus(BaseModel):
    """Where one page stands, for the gallery: `done` (its result can be fetched), `failed` (with why) or
    `pending` (not finished yet, or never will be: the batch was cancelled or failed first)."""

    index: int
    name: str
    state: Literal["pending", "done", "failed"]
    reason: str | None = None


class Batch(Stored):
    id: str
    state: BatchState
    options: BatchOptions
    version: int = Field(
        description="The generator version every page is colorized with (resolved at start)."
    )
    created_at: str = Field(default_factory=utc_now)
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = Field(
        None, description="Why the whole batch failed (a page's failure is in `failures`)."
    )
    pages_total: int
    pages_done: int = 0
    pages_failed: int = 0
    failures: list[PageFailure] = Field(
        default_factory=list, description="Each failed page, named, with why."
    )
    chunks: int = Field(0, description="Worker tasks the pages were spread over.")
    cancel_requested: bool = False
    upload_bytes: int = 0

    def stored(self) -> dict[str, object]:
        return self.model_dump(mode="json")


# ---- identity and files ---------------------------------------------------------------------------------
def new_batch_id() -> str:
    return uuid.uuid4().hex


def is_batch_id(text: str) -> bool:
    return bool(BATCH_ID_PATTERN.fullmatch(text))


def batch_dir_for(batches_dir: Path, batch_id: str) -> Path:
    if not is_batch_id(batch_id):
        raise ValueError(f"not a batch id: {batch_id!r}")
    return Path(batches_dir) / batch_id


def pages_dir(batch_dir: Path) -> Path:
    return batch_dir / "pages"


def results_dir(batch_dir: Path) -> Path:
    return batch_dir / "results"


def result_path(batch_dir: Path, page: Page, file_format: str) -> Path:
    """Where page `page`'s result is kept: by its index, never by a name that came from a client."""
    return results_dir(batch_dir) / f"{page.index:05d}.{file_format}"


def result_name(page: Page, file_format: str) -> str:
    """The page's name in result.zip: its upload name with the result's suffix (`ch1/p01.png` -> `.psd`)."""
    return str(PurePosixPath(page.name).with_suffix(f".{file_format}"))


def is_page_done(batch_dir: Path, page: Page, file_format: str) -> bool:
    if shared_mode() is not None:
        return result_path(batch_dir, page, file_format).name in _result_names(batch_dir)
    return result_path(batch_dir, page, file_format).is_file()


def page_statuses(batch_dir: Path, record: "Batch") -> list[PageStatus]:
    """Every page in upload order with its state, from the result files and the record's named failures."""
    reasons = {failure.name: failure.reason for failure in record.failures}
    done = _result_names(batch_dir)
    statuses = []
    for page in read_pages(batch_dir):
        if result_path(batch_dir, page, record.options.format).name in done:
            statuses.append(PageStatus(index=page.index, name=page.name, state="done"))
        elif page.name in reasons:
            statuses.append(
                PageStatus(index=page.index, name=page.name, state="failed", reason=reasons[page.name])
            )
        else:
            statuses.append(PageStatus(index=page.index, name=page.name, state="pending"))
    return statuses


def keep_result(batch_dir: Path, page: Page, file_format: str, body: bytes) -> None:
    """Write a page's result atomically (in shared mode also into the bucket, where it counts)."""
    path = result_path(batch_dir, page, file_format)
    shared = shared_mode()
    if shared is not None:
        path.parent.mkdir(parents=True, exist_ok=True)  # the batch came from another host
    write_with(path, lambda file: file.write(body))
    if shared is not None:  # counted once uploaded whole
        shared.store.upload_file(path, shared.relative(path))
        shared.redis.sadd(_results_key(batch_dir.name), path.name)
        if read_batch(batch_dir) is None:  # deleted meanwhile: leave nothing of it behind
            shared.store.delete([shared.relative(path)])
            shared.redis.delete(_results_key(batch_dir.name))
            raise FileNotFoundError(f"batch {batch_dir.name} was deleted")


def fetch_pages(batch_dir: Path, pages: list[Page]) -> None:
    """Shared mode: the uploaded files of these pages (sketches, hint layers) from the bucket, if not here."""
    shared = shared_mode()
    if shared is None:
        return
    wanted = [f"pages/{name}" for page in pages for name in (page.file, page.hints) if name is not None]
    shared.store.download_folder(shared.relative(batch_dir), batch_dir, only=wanted)


def pull_batch(batch_dir: Path) -> None:
    """Shared mode: this host's copy of the batch's pages and results brought up to the bucket's."""
    shared = shared_mode()
    if shared is not None:
        shared.store.download_folder(shared.relative(batch_dir), batch_dir)


def _result_names(batch_dir: Path) -> set[str]:
    shared = shared_mode()
    if shared is not None:
        return {
            name.decode() for name in cast(set[bytes], shared.redis.smembers(_results_key(batch_dir.name)))
        }
    try:
        return {entry.name for entry in os.scandir(results_dir(batch_dir)) if not entry.name.startswith(".")}
    except FileNotFoundError:
        return set()


def _record_key(batch_id: str) -> str:
    return SharedMode.key("batch", batch_id)


def _results_key(batch_id: str) -> str:
    return SharedMode.key("batch", batch_id, "results")


def _beats_key(batch_id: str) -> str:
    return SharedMode.key("batch", batch_id, "beats")


def _lock(batch_dir: Path) -> FileLock:
    return FileLock(str(batch_dir / ".batch.lock"), timeout=30)


def create_batch(batch_dir: Path, record: Batch, pages: list[Page]) -> None:
    """Write the page list, then the record: a batch is listed only once it is complete."""
    results_dir(batch_dir).mkdir(parents=True, exist_ok=True)
    page_list = PageList(pages=pages).model_dump_json(indent=1)
    write_atomically(batch_dir / PAGES, page_list, durable=True)
    shared = shared_mode()
    if shared is not None:  # the pages first, every host's workers read them from the bucket
        shared.store.upload_folder(pages_dir(batch_dir), shared.relative(pages_dir(batch_dir)))
        shared.store.upload_file(batch_dir / PAGES, shared.relative(batch_dir / PAGES))
        if not shared.redis.set(_record_key(record.id), record.model_dump_json(), nx=True):
            raise FileExistsError(f"batch {record.id} exists already")
        shared.redis.zadd(shared.key("batches"), {record.id: time.time()})
        return
    write_atomically(batch_dir / RECORD, record.model_dump_json(indent=2), durable=True)


class PageList(BaseModel):
    pages: list[Page]


def read_pages(batch_dir: Path) -> list[Page]:
    shared = shared_mode()
    if shared is not None and not (batch_dir / PAGES).is_file():  # written once: a copy never goes stale
        shared.store.download_file(shared.relative(batch_dir / PAGES), batch_dir / PAGES)
    return PageList.model_validate_json((batch_dir / PAGES).read_text()).pages


def read_batch(batch_dir: Path) -> Batch | None:
    try:
        shared = shared_mode()
        if shared is not None:
            stored = shared.get(_record_key(batch_dir.name))
            return None if stored is None else Batch.model_validate_json(stored)
        return Batch.model_validate_json((batch_dir / RECORD).read_text())
    except (OSError, ValidationError):
        return None


def list_batches(batches_dir: Path) -> list[Batch]:
    """Every batch, newest first."""
    shared = shared_mode()
    if shared is not None:
        found = [
            read_batch(Path(batches_dir) / batch_id) for batch_id in shared.members(shared.key("batches"))
        ]
    elif Path(batches_dir).is_dir():
        found = [read_batch(entry) for entry in Path(batches_dir).iterdir() if is_batch_id(entry.name)]
    else:
        return []
    return sorted((batch for batch in found if batch), key=lambda batch: batch.created_at, reverse=True)


def update_batch(batch_dir: Path, change: Callable[[Batch], Result]) -> Result:
    """Read, change and write the record under its lock; `change` may raise to leave it as it was."""
    shared = shared_mode()
    if shared is not None:

        def change_stored(stored: bytes | None) -> tuple[Result, str]:
            if stored is None:
                raise FileNotFoundError(f"no batch record in {batch_dir.name}")
            record = Batch.model_validate_json(stored)
            return change(record), record.model_dump_json()

        return shared.compare_and_set(_record_key(batch_dir.name), change_stored)
    with _lock(batch_dir):
        record = read_batch(batch_dir)
        if record is None:
            raise FileNotFoundError(f"no batch record in {batch_dir.name}")
        result = change(record)
        write_atomically(batch_dir / RECORD, record.model_dump_json(indent=2))
        return result


def _move(record: Batch, state: BatchState) -> None:
    if state not in TRANSITIONS[record.state]:
        raise WrongState(f"batch {record.id} is {record.state.value}; it cannot become {state.value}")
    record.state = state
    if state == BatchState.RUNNING:
        record.started_at = record.started_at or utc_now()
    if state in FINAL_STATES:
        record.finished_at = utc_now()


# ---- what workers and the API change ----------------------------------------------------------------------
def start(batch_dir: Path) -> Batch:
    """A worker takes a chunk: queued -> running (no change once running or final)."""

    def change(record: Batch) -> Batch:
        if record.state == BatchState.QUEUED:
            _move(record, BatchState.RUNNING)
        return record

    return update_batch(batch_dir, change)


def fail(batch_dir: Path, error: str) -> Batch:
    """The whole batch cannot run (its version is gone or will not load); a final batch stays as it is."""

    def change(record: Batch) -> Batch:
        if record.state not in FINAL_STATES:
            record.error = error
            _move(record, BatchState.FAILED)
        return record

    return update_batch(batch_dir, change)


def page_finished(batch_dir: Path, page: Page | None = None, reason: str | None = None) -> Batch:
    """Count again after a page finished (`reason`: it failed, and why); the batch is done with its last page.
    Idempotent: the counts come from the result files and the named failures, never from increments."""

    def change(record: Batch) -> Batch:
        if page is not None and reason is not None and all(f.name != page.name for f in record.failures):
            record.failures.append(PageFailure(name=page.name, reason=reason))
        record.pages_failed = len(record.failures)
        record.pages_done = _count_results(batch_dir)
        if (
            record.state == BatchState.RUNNING
            and record.pages_done + record.pages_failed >= record.pages_total
        ):
            _move(record, BatchState.DONE)
        return record

    return update_batch(batch_dir, change)


def _count_results(batch_dir: Path) -> int:
    return len(_result_names(batch_dir))


def request_cancel(batch_dir: Path) -> Batch:
    """Queued or running: cancelled at once; each worker sees it before its next page. Final: WrongState."""

    def change(record: Batch) -> Batch:
        if record.state in FINAL_STATES:
            raise WrongState(
                f"batch {record.id} is {record.state.value}; only a queued or running one can be cancelled"
            )
        record.cancel_requested = True
        _move(record, BatchState.CANCELLED)
        return record

    return update_batch(batch_dir, change)


def should_stop(batch_dir: Path) -> bool:
    """Whether a worker should leave the rest of its chunk: the batch was cancelled, failed or deleted."""
    record = read_batch(batch_dir)
    return record is None or record.state in FINAL_STATES


def delete_batch(batch_dir: Path) -> None:
    """Renamed away first (so it is never listed half deleted), then removed."""
    shared = shared_mode()
    if shared is not None:  # the record first: the batch disappears for every host at once
        shared.compare_and_set(_record_key(batch_dir.name), lambda stored: (None, DELETE))
        shared.redis.delete(_beats_key(batch_dir.name), _results_key(batch_dir.name))
        shared.redis.zrem(shared.key("batches"), batch_dir.name)
        shared.store.delete_folder(shared.relative(batch_dir))
        shutil.rmtree(batch_dir, ignore_errors=True)
        return
    doomed = batch_dir.with_name(f".deleting-{batch_dir.name}-{uuid.uuid4().hex[:8]}")
    os.rename(batch_dir, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def disk_used(batches_dir: Path) -> int:
    """Bytes kept under the batches folder (uploads and results): what the disk budget counts (in shared
    mode: what the bucket keeps of them)."""
    shared = shared_mode()
    if shared is not None:
        return sum(remote.size for remote in shared.store.list_files(shared.relative(Path(batches_dir))))
    total = 0
    for root, _, files in os.walk(batches_dir):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


# ---- chunks: which pages one worker task takes, and whether its worker is alive ----------------------------
def chunk_of(pages: list[Page], chunk: int) -> list[Page]:
    return pages[chunk * CHUNK_PAGES : (chunk + 1) * CHUNK_PAGES]


def chunk_count(pages: list[Page]) -> int:
    return (len(pages) + CHUNK_PAGES - 1) // CHUNK_PAGES


def beat_path(batch_dir: Path, chunk: int) -> Path:
    return batch_dir / "chunks" / f"{chunk}.beat"


def beat(batch_dir: Path, chunk: int, ahead_seconds: float = 0.0) -> None:
    """The chunk's worker is alive (written while it works, removed when the chunk is finished);
    `ahead_seconds`: dated that far ahead (a chunk queued again gets time to wait its turn)."""
    shared = shared_mode()
    if shared is not None:
        shared.redis.hset(_beats_key(batch_dir.name), str(chunk), shared.now() + ahead_seconds)
        return
    path = beat_path(batch_dir, chunk)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    when = time.time() + ahead_seconds
    os.utime(path, (when, when))


def chunk_finished(batch_dir: Path, chunk: int) -> None:
    shared = shared_mode()
    if shared is not None:
        shared.redis.hdel(_beats_key(batch_dir.name), str(chunk))
        return
    beat_path(batch_dir, chunk).unlink(missing_ok=True)


def silent_chunks(batch_dir: Path, older_than_seconds: float) -> Iterator[int]:
    """Chunks that a worker started and stopped beating for without finishing: its worker died."""
    shared = shared_mode()
    if shared is not None:
        now = shared.now()
        beats = cast(dict[bytes, bytes], shared.redis.hgetall(_beats_key(batch_dir.name)))
        for chunk, when in beats.items():
            if now - float(when) > older_than_seconds and chunk.isdigit():
                yield int(chunk)
        return
    folder = batch_dir / "chunks"
    if not folder.is_dir():
        return
    now = time.time()
    for entry in folder.glob("*.beat"):
        try:
            silent = now - entry.stat().st_mtime
        except FileNotFoundError:
            continue
        if silent > older_than_seconds and entry.stem.isdigit():
            yield int(entry.stem)
