"""Colorizing a chunk of a chapter's pages (contracts/batches.py), and bringing back chunks whose worker died.

A chunk's pages are decoded, run through the generator together (one call per chunk, the batch's version,
loaded once per worker process and kept) and finished one by one with the code of POST /colorize
(model/page_result.py); each result is written atomically. Before each page the worker looks at the record:
a cancelled (or failed, or deleted) batch stops within the chunk. A page already finished is skipped, so a
chunk done again (its worker was killed) never redoes a page.

While a worker holds a chunk it touches the chunk's heartbeat file; a chunk whose heartbeat went silent
(SIGKILL, out of memory) is queued again by the sweeper every batch worker runs. The message of the dead
worker's chunk is not acknowledged either (acks late), so the broker would bring it back on its own, but only
after its visibility timeout (days, for training jobs' sake): the heartbeat makes it seconds.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from celery import Celery

from contracts import batches
from contracts.batches import Batch, Page
from contracts.queue import enqueue_chunk
from contracts.settings import Settings
from storage.layout import relative_to_data
from storage.shared import shared_mode
from storage.shared_versions import sync_versions
from storage.versions import read_version

if TYPE_CHECKING:
    from model.page_result import DecodedPage

logger = logging.getLogger("sketch2color.batches")
Predict = Callable[[np.ndarray, np.ndarray | None], np.ndarray]


@dataclass
class Decoded:
    page: Page
    read: "DecodedPage"


@lru_cache(maxsize=2)
def load_generator(version_path: str) -> tuple[Predict, bool]:
    """The version's serving function (kept: a worker loads a version once) and whether it takes hints."""
    from model.export import load_serving_function

    serving_function = load_serving_function(version_path)

    def predict(sketches: np.ndarray, hints: np.ndarray | None) -> np.ndarray:
        return np.asarray(serving_function(sketches, hints).numpy())

    return predict, bool(serving_function.accepts_hints)


class Heartbeat:
    """Touches the chunk's heartbeat file every `interval` seconds while the chunk runs."""

    def __init__(self, batch_dir: Path, chunk: int, interval: float):
        self.batch_dir, self.chunk, self.interval = batch_dir, chunk, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"batch-beat-{chunk}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        batches.beat(self.batch_dir, self.chunk)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                batches.beat(self.batch_dir, self.chunk)
            except OSError:  # the batch was deleted meanwhile
                return


def run_chunk(settings: Settings, batch_id: str, chunk: int) -> dict[str, Any]:
    """Colorize chunk `chunk` of batch `batch_id`; returns what became of its pages."""
    batch_dir = batches.batch_dir_for(settings.batches_dir, batch_id)
    record = batches.read_batch(batch_dir)
    if record is None or record.state in batches.FINAL_STATES:
        return {"batch": batch_id, "chunk": chunk, "skipped": record.state.value if record else "deleted"}
    outcome = {"batch": batch_id, "chunk": chunk, "done": 0, "failed": 0, "skipped": 0, "stopped": False}
    try:
        _run(settings, batch_dir, record, chunk, outcome)
    except FileNotFoundError:
        if batches.read_batch(batch_dir) is not None:
            raise
        return {**outcome, "stopped": True, "deleted": True}  # deleted while a page was being finished
    logger.info("batch %s chunk %d: %s", batch_id, chunk, outcome)
    return outcome


def _run(settings: Settings, batch_dir: Path, record: Batch, chunk: int, outcome: dict[str, Any]) -> None:
    pages = batches.chunk_of(batches.read_pages(batch_dir), chunk)
    with Heartbeat(batch_dir, chunk, max(0.2, settings.job_lease_seconds / 4)):
        batches.start(batch_dir)
        batches.fetch_pages(batch_dir, pages)
        model = _generator(settings, batch_dir, record)
        if model is None:
            outcome["stopped"] = True
            return
        todo = [page for page in pages if not _settled(batch_dir, record, page, outcome)]
        decoded = [item for page in todo if (item := _decode(settings, batch_dir, record, page, model[1]))]
        colors = _colorize(settings, batch_dir, decoded, model[0])
        for item, colorized in colors:
            if batches.should_stop(batch_dir):
                outcome["stopped"] = True
                break
            _finish(settings, batch_dir, record, item, colorized, outcome)
    batches.chunk_finished(batch_dir, chunk)


def _generator(settings: Settings, batch_dir: Path, record: Batch) -> tuple[Predict, bool] | None:
    published = read_version(settings.models_dir, record.version)
    shared = shared_mode()
    if published is None and shared is not None:  # published on another host since this one last looked
        sync_versions(shared, settings.models_dir)
        published = read_version(settings.models_dir, record.version)
    if published is None:
        batches.fail(batch_dir, f"generator version {record.version} is no longer published")
        return None
    try:
        return load_generator(str(published.path))
    except Exception as error:
        batches.fail(
            batch_dir, f"generator version {record.version} fails to load: {type(error).__name__}: {error}"
        )
        return None


def _settled(batch_dir: Path, record: Batch, page: Page, outcome: dict[str, Any]) -> bool:
    """Already finished (a chunk done again) or refused at upload: nothing to do but count again."""
    if page.file is None or any(failure.name == page.name for failure in record.failures):
        return True
    if batches.is_page_done(batch_dir, page, record.options.format):
        batches.page_finished(batch_dir)
        outcome["skipped"] += 1
        return True
    return False


def _decode(
    settings: Settings, batch_dir: Path, record: Batch, page: Page, accepts_hints: bool
) -> Decoded | None:
    """The page as POST /colorize reads a sketch and its hint layer; a bad page fails alone, saying why."""
    from model.page_result import decode_page

    assert page.file is not None
    folder = batches.pages_dir(batch_dir)
    options = record.options
    try:  # read as bytes: what is wrong with a page is said without the server's paths
        hints = (folder / page.hints).read_bytes() if page.hints is not None else None
        read = decode_page(
            (folder / page.file).read_bytes(), hints, options.size, options.fill, options.format, accepts_hints,
            settings.max_pixels,
        )  # fmt: skip
    except Exception as error:
        batches.page_finished(batch_dir, page, _reason(error, settings))
        return None
    return Decoded(page, read)


def _colorize(
    settings: Settings, batch_dir: Path, decoded: list[Decoded], predict: Predict
) -> list[tuple[Decoded, np.ndarray]]:
    """The chunk's pages through the generator together (one call per kind: with hints, without)."""
    from model.page_result import colorize_pages

    try:
        colors = colorize_pages([item.read for item in decoded], predict)
    except Exception as error:  # out of memory, most likely: these pages fail, saying so
        for item in decoded:
            batches.page_finished(batch_dir, item.page, f"the generator failed: {_reason(error, settings)}")
        return []
    return list(zip(decoded, colors, strict=True))


def _finish(
    settings: Settings,
    batch_dir: Path,
    record: Batch,
    item: Decoded,
    colorized: np.ndarray,
    outcome: dict[str, Any],
) -> None:
    from model.page_result import result_file

    options = record.options
    try:
        read = item.read
        body, _ = result_file(
            options.size, options.format, colorized, read.sketch, read.original, options.lines, options.fill,
            read.hints, read.full_hints, settings.fill_gap,
        )  # fmt: skip
        batches.keep_result(batch_dir, item.page, options.format, body)
    except Exception as error:
        batches.page_finished(batch_dir, item.page, _reason(error, settings))
        outcome["failed"] += 1
        return
    batches.page_finished(batch_dir)
    outcome["done"] += 1


def _reason(error: Exception, settings: Settings) -> str:
    """What went wrong with a page, for its record: never the server's paths."""
    from model.imageio import BadImage

    text = str(error) if isinstance(error, BadImage | ValueError) else f"{type(error).__name__}: {error}"
    return relative_to_data(text, settings.data_dir)


class Sweeper(threading.Thread):
    """In every batch worker: queue again each chunk of a running batch whose heartbeat went silent."""

    def __init__(self, celery_app: Celery, settings: Settings):
        super().__init__(name="batch-sweeper", daemon=True)
        self.celery_app, self.settings = celery_app, settings
        self.silent_after = 3 * settings.job_lease_seconds
        self.requeue_grace = 10 * settings.job_lease_seconds
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.settings.job_lease_seconds):
            try:
                self.sweep()
            except Exception:  # never let the sweeper die: the next sweep tries again
                logger.exception("batch sweep failed")

    def sweep(self) -> list[tuple[str, int]]:
        requeued = []
        for record in batches.list_batches(self.settings.batches_dir):
            if record.state in batches.FINAL_STATES:
                continue
            batch_dir = self.settings.batches_dir / record.id
            for chunk in batches.silent_chunks(batch_dir, self.silent_after):
                # Claimed: silent again only after a grace for the new message to wait its turn in the queue.
                batches.beat(batch_dir, chunk, ahead_seconds=self.requeue_grace)
                enqueue_chunk(self.celery_app, record.id, chunk)
                logger.warning("batch %s chunk %d: its worker went silent; queued again", record.id, chunk)
                requeued.append((record.id, chunk))
        return requeued
