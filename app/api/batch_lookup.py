"""Finding a batch for a route: its folder and record, or a 404 that names the id (never a server path).
Shared by the chapter routes (routes/batches.py) and the page routes of its gallery (routes/batch_pages.py)."""

from pathlib import Path

from fastapi import HTTPException

from contracts import batches
from contracts.batches import Batch
from contracts.settings import Settings


def batch_dir_of(settings: Settings, batch_id: str) -> Path:
    """The batch's folder (in shared mode brought up to the bucket's pages and results first)."""
    if not batches.is_batch_id(batch_id) or batches.read_batch(settings.batches_dir / batch_id) is None:
        raise HTTPException(404, f"no batch {batch_id!r}; GET /batches lists them")
    batches.pull_batch(settings.batches_dir / batch_id)
    return settings.batches_dir / batch_id


def batch_record(batch_dir: Path) -> Batch:
    record = batches.read_batch(batch_dir)
    if record is None:  # deleted since batch_dir_of looked
        raise HTTPException(404, f"no batch {batch_dir.name!r}; GET /batches lists them")
    return record
