"""Dataset names (contracts/datasets.py): of several uploads of one name at once, exactly one reserves it."""

import threading
from pathlib import Path

from contracts import datasets

UPLOADS = 8


def upload(datasets_dir: Path, name: str, start: threading.Barrier, outcomes: list[str]) -> None:
    start.wait()
    try:
        datasets.new_import(datasets_dir, name, {}, archive_bytes=1)
        outcomes.append("reserved")
    except datasets.DatasetExists:
        outcomes.append("exists")


def test_concurrent_uploads_of_one_name_reserve_it_exactly_once(tmp_path):
    """Eight uploads of one name used to pass the check together: three got 202, and a refused one's cleanup
    then deleted the accepted one's record and archive. Many rounds, so a race would show."""
    for round_number in range(20):
        name, start, outcomes = f"pics{round_number}", threading.Barrier(UPLOADS), []
        threads = [
            threading.Thread(target=upload, args=(tmp_path, name, start, outcomes)) for _ in range(UPLOADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes) == ["exists"] * (UPLOADS - 1) + ["reserved"], (
            f"round {round_number}: {outcomes}"
        )
        assert datasets.read_import(tmp_path, name)["state"] == "importing"


def test_an_import_whose_importer_died_is_failed_and_its_name_freed(tmp_path):
    """An importer killed mid-import (SIGKILL, out of memory) used to leave the record `importing` forever:
    the name refused by DELETE and POST, its staging files kept. Its heartbeat now goes silent instead."""
    from datetime import UTC, datetime, timedelta

    datasets.new_import(tmp_path, "pics", {}, archive_bytes=1)
    assert datasets.fail_if_abandoned(tmp_path, "pics")["state"] == "importing", "queued: no heartbeat yet"
    staging = datasets.staging_dir(tmp_path, "pics")
    staging.mkdir()
    (staging / "half.png").write_bytes(b"...")
    fresh = datetime.now(UTC).isoformat(timespec="seconds")
    datasets.update_import(tmp_path, "pics", heartbeat_at=fresh)
    assert datasets.fail_if_abandoned(tmp_path, "pics")["state"] == "importing", "a live importer"
    silent = datetime.now(UTC) - timedelta(seconds=datasets.IMPORT_ABANDONED_SECONDS + 30)
    datasets.update_import(tmp_path, "pics", heartbeat_at=silent.isoformat(timespec="seconds"))
    record = datasets.fail_if_abandoned(tmp_path, "pics")
    assert record["state"] == "failed" and "importer stopped" in record["error"], record
    assert not staging.exists(), "its staging files are removed"
    assert datasets.new_import(tmp_path, "pics", {}, archive_bytes=1)["state"] == "importing", "name reusable"
