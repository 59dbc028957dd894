"""The batch record: counts that a chunk done twice cannot spoil, its states, and silent chunks."""

import os
import time
from pathlib import Path

import pytest

from contracts import batches
from contracts.batches import Batch, BatchOptions, BatchState, Page


def new_batch(root: Path, pages: int = 3) -> tuple[Path, list[Page]]:
    batch_id = batches.new_batch_id()
    batch_dir = root / batch_id
    page_list = [Page(index=index, name=f"p{index}.png", file=f"{index:05d}.png") for index in range(pages)]
    record = Batch(id=batch_id, state=BatchState.QUEUED, options=BatchOptions(), version=1, pages_total=pages)
    batches.create_batch(batch_dir, record, page_list)
    return batch_dir, page_list


def finish(batch_dir: Path, page: Page) -> None:
    batches.result_path(batch_dir, page, "png").write_bytes(b"png")
    batches.page_finished(batch_dir)


def test_a_page_counted_twice_counts_once_and_the_last_page_ends_the_batch(tmp_path: Path):
    batch_dir, pages = new_batch(tmp_path)
    assert batches.start(batch_dir).state == BatchState.RUNNING
    finish(batch_dir, pages[0])
    finish(batch_dir, pages[0])  # its chunk done again after its worker was killed
    for _ in range(2):
        record = batches.page_finished(batch_dir, pages[1], "cannot read the image")
    assert (record.pages_done, record.pages_failed, record.state) == (1, 1, BatchState.RUNNING), record
    finish(batch_dir, pages[2])
    record = batches.read_batch(batch_dir)
    assert record is not None and record.state == BatchState.DONE and record.finished_at, record
    assert [failure.name for failure in record.failures] == ["p1.png"]
    with pytest.raises(batches.WrongState, match="done"):
        batches.request_cancel(batch_dir)
    assert [page.name for page in batches.read_pages(batch_dir)] == ["p0.png", "p1.png", "p2.png"]


def test_cancel_is_final_and_workers_see_it(tmp_path: Path):
    batch_dir, _ = new_batch(tmp_path)
    assert not batches.should_stop(batch_dir)
    record = batches.request_cancel(batch_dir)
    assert record.state == BatchState.CANCELLED and record.cancel_requested
    assert batches.should_stop(batch_dir)
    assert batches.fail(batch_dir, "too late").state == BatchState.CANCELLED, "a final batch stays as it is"
    batches.delete_batch(batch_dir)
    assert batches.should_stop(batch_dir) and batches.list_batches(tmp_path) == []


def test_a_chunk_is_silent_once_its_worker_stops_beating_and_a_requeued_one_gets_a_grace(tmp_path: Path):
    batch_dir, _ = new_batch(tmp_path)
    batches.beat(batch_dir, 0)
    batches.beat(batch_dir, 1, ahead_seconds=60)
    old = time.time() - 30
    os.utime(batches.beat_path(batch_dir, 0), (old, old))
    assert list(batches.silent_chunks(batch_dir, 10)) == [0]
    batches.chunk_finished(batch_dir, 0)
    assert list(batches.silent_chunks(batch_dir, 10)) == []
