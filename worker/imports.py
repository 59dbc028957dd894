"""One dataset import: the uploaded archive becomes `datasets/<name>/`, or the import fails saying why.

The archive and options wait in `datasets/.imports/`; pairs are written into a hidden staging folder that
becomes the dataset in one rename, so a half-imported dataset is never listed or trained on. A failed import
leaves nothing behind but its record (state `failed`, the file and the reason).
"""

import logging
import shutil
import time

from contracts import datasets
from contracts.settings import Settings
from model.dataset_import import BadArchive, ImportLimits, ImportOptions, import_archive

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

    def progress(done: int, total: int) -> None:
        nonlocal last_report
        if done == total or time.monotonic() - last_report >= PROGRESS_EVERY_SECONDS:
            last_report = time.monotonic()
            datasets.update_import(folder, name, progress={"done": done, "total": total})

    try:
        report = import_archive(
            datasets.archive_path(folder, name), staging, ImportOptions(**record["options"]), limits_of(settings),
            progress,
        )  # fmt: skip
        datasets.publish_dataset(folder, name)
    except Exception as error:
        shutil.rmtree(staging, ignore_errors=True)
        reason = str(error) if isinstance(error, BadArchive) else f"{type(error).__name__}: {error}"
        datasets.update_import(folder, name, state="failed", error=reason)
        datasets.archive_path(folder, name).unlink(missing_ok=True)
        logger.warning("dataset import %s failed: %s", name, reason)
        return {"name": name, "state": "failed", "error": reason}
    datasets.update_import(folder, name, state="ready", counts=report.counts, skipped=report.skipped)
    datasets.archive_path(folder, name).unlink(missing_ok=True)
    logger.info("dataset %s imported: %s, skipped %d", name, report.counts, len(report.skipped))
    return {"name": name, "state": "ready", "counts": report.counts}
