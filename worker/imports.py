"""One dataset import: the uploaded archive becomes `datasets/<name>/`, or the import fails saying why.

The archive and options wait in `datasets/.imports/`; pairs are written into a hidden staging folder that
becomes the dataset in one rename, so a half-imported dataset is never listed or trained on. A failed import
leaves nothing behind but its record (state `failed`, the file and the reason).
"""

import logging
import shutil
import threading
import time
from pathlib import Path

from contracts import datasets
from contracts.settings import Settings
from model.dataset_import import BadArchive, ImportLimits, ImportOptions, import_archive
from storage.shared import shared_mode
from storage.shared_runs import push_dataset

logger = logging.getLogger("sketch2color.worker")
PROGRESS_EVERY_SECONDS = 1.0


def limits_of(settings: Settings) -> ImportLimits:
    return ImportLimits(settings.max_dataset_files, settings.max_dataset_unpacked_bytes, settings.max_pixels)


def run_import(settings: Settings, name: str) -> dict:
    folder = settings.datasets_dir
    record = datasets.read_import(folder, name)
    if record is None or record["state"] != "importing":
        logger.info("dataset import %s is %s; nothing to do", name, record and record["state"])
        return {"name": name, "state": record and record["state"]}
    staging = datasets.staging_dir(folder, name)
    shutil.rmtree(staging, ignore_errors=True)  # what an interrupted earlier attempt left
    last_report = 0.0
    writing = threading.Lock()  # the heartbeat and the import write the one record: never at the same time

    def progress(done: int, total: int) -> None:
        nonlocal last_report
        if done == total or time.monotonic() - last_report >= PROGRESS_EVERY_SECONDS:
            last_report = time.monotonic()
            with writing:
                datasets.update_import(folder, name, progress={"done": done, "total": total})

    try:
        datasets.fetch_archive(folder, name)  # shared mode: uploaded through another host's API
        with _Heartbeat(folder, name, writing):  # stopped before the final state is written
            report = import_archive(
                datasets.archive_path(folder, name), staging, ImportOptions(**record["options"]),
                limits_of(settings), progress,
            )  # fmt: skip
            shared = shared_mode()
            if shared is not None:  # the bucket first: every host's workers train on it from there
                sent = push_dataset(shared, folder / name, source=staging)
                logger.info("dataset %s: %d files copied to the bucket", name, sent)
            datasets.publish_dataset(folder, name)
    except Exception as error:
        shutil.rmtree(staging, ignore_errors=True)
        reason = str(error) if isinstance(error, BadArchive) else f"{type(error).__name__}: {error}"
        datasets.update_import(folder, name, state="failed", error=reason)
        datasets.remove_archive(folder, name)
        logger.warning("dataset import %s failed: %s", name, reason)
        return {"name": name, "state": "failed", "error": reason}
    datasets.update_import(folder, name, state="ready", counts=report.counts, skipped=report.skipped)
    datasets.remove_archive(folder, name)
    logger.info("dataset %s imported: %s, skipped %d", name, report.counts, len(report.skipped))
    return {"name": name, "state": "ready", "counts": report.counts}


class _Heartbeat:
    """Writes `heartbeat_at` into the import record while the import runs, so an import whose importer died
    is seen as abandoned (contracts/datasets.py) instead of `importing` forever."""

    def __init__(self, folder: Path, name: str, writing: threading.Lock):
        self.folder, self.name, self.writing = folder, name, writing
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"import-heartbeat-{name}", daemon=True)

    def __enter__(self) -> "_Heartbeat":
        self._write()
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _beat(self) -> None:
        while not self.stopped.wait(datasets.IMPORT_HEARTBEAT_SECONDS):
            self._write()

    def _write(self) -> None:
        with self.writing:
            if self.stopped.is_set():
                return
            record = datasets.read_import(self.folder, self.name)
            if record is not None and record["state"] == "importing":
                datasets.update_import(
                    self.folder,
                    self.name,
                    heartbeat_at=datasets.heartbeat_clock().isoformat(timespec="seconds"),
                )
