"""Shared mode's coordination in process, against a real redis-server and a real S3 server (`rclone serve s3`):
the races the two-host tests cannot time (two deliveries at once, a worker that lost its lease and pushes
anyway, many publishers at once), and what a host's cache may and may not remove."""

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import shared
from storage.shared_runs import (
    dataset_counts,
    pull_dataset,
    pull_run,
    pull_run_outputs,
    push_dataset,
    push_run,
)
from storage.shared_versions import FROM_BUCKET, next_version_number, sync_versions
from tests.support import S3_ACCESS_KEY, S3_SECRET_KEY, flush_redis_db, start_s3_server
from worker.leases import Lease, read_lease, revoke

REDIS_DB = 10
INDEX = 'model_checkpoint_path: "ckpt-{step}"\nall_model_checkpoint_paths: "ckpt-{step}"\n'


@pytest.fixture(scope="module")
def mode(tmp_path_factory, redis_port: int) -> Iterator[shared.SharedMode]:
    """This process in shared mode (S2C_* variables) for the module's tests, and back afterwards."""
    flush_redis_db(redis_port, REDIS_DB)
    root = tmp_path_factory.mktemp("shared-coordination")
    (root / "s3" / "bucket").mkdir(parents=True)
    server, endpoint = start_s3_server(root / "s3")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "S2C_STORAGE_URL": "s3://bucket/team",
            "S2C_S3_ENDPOINT_URL": endpoint,
            "S2C_BROKER_URL": f"redis://127.0.0.1:{redis_port}/{REDIS_DB}",
            "S2C_DATA_DIR": str(root / "host"),
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            patch.setenv(name, value)
        shared.shared_mode.cache_clear()
        try:
            current = shared.shared_mode()
            assert current is not None
            yield current
        finally:
            shared.shared_mode.cache_clear()
            server.stop()
    shared.shared_mode.cache_clear()


def checkpoint(run_dir: Path, step: int, content: bytes) -> None:
    """What CheckpointManager leaves: the step's shards, then the index naming it."""
    folder = run_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"ckpt-{step}.index").write_bytes(content[:4])
    (folder / f"ckpt-{step}.data-00000-of-00001").write_bytes(content)
    (folder / "checkpoint").write_text(INDEX.format(step=step))


def test_of_deliveries_racing_for_a_lease_one_wins_and_holds_the_newest_token(mode, tmp_path: Path):
    run_dir = mode.data_dir / "runs" / "race"
    leases = [Lease(run_dir, f"worker-{index}", seconds=30) for index in range(6)]
    start = threading.Barrier(len(leases))
    taken: dict[str, bool] = {}

    def deliver(lease: Lease) -> None:
        start.wait()
        taken[lease.owner] = lease.acquire()[0]

    threads = [threading.Thread(target=deliver, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [lease for lease in leases if taken[lease.owner]]
    assert len(winners) == 1, taken
    assert winners[0].still_fenced(), "the winner's token must be the newest: the losers took none"
    assert winners[0].renew()
    assert read_lease(run_dir)["owner"] == winners[0].owner


def test_a_worker_that_lost_its_lease_cannot_change_what_the_next_one_resumes_from(mode, tmp_path: Path):
    run_dir = mode.data_dir / "runs" / "fenced"
    first = Lease(run_dir, "first", seconds=30)
    assert first.acquire()[0]
    checkpoint(run_dir, 5, b"first at 5")
    push_run(mode, run_dir, first.fence)

    assert revoke(run_dir, read_lease(run_dir)), "a janitor takes the lease away"
    second = Lease(run_dir, "second", seconds=30)
    assert second.acquire()[0] and second.fence > first.fence
    checkpoint(run_dir, 10, b"first at 10, too late")
    with pytest.raises(PermissionError):
        push_run(mode, run_dir, first.fence)

    second_host = dataclasses.replace(mode, data_dir=tmp_path / "second-host")
    resumed = second_host.data_dir / "runs" / "fenced"
    pull_run(second_host, resumed)
    assert (resumed / "checkpoints" / "checkpoint").read_text() == INDEX.format(step=5)
    assert (resumed / "checkpoints" / "ckpt-5.data-00000-of-00001").read_bytes() == b"first at 5"
    assert not (resumed / "checkpoints" / "ckpt-10.data-00000-of-00001").exists()

    checkpoint(resumed, 7, b"second at 7")
    push_run(second_host, resumed, second.fence)
    third_host = dataclasses.replace(mode, data_dir=tmp_path / "third-host")
    again = third_host.data_dir / "runs" / "fenced"
    pull_run(third_host, again)
    assert (again / "checkpoints" / "ckpt-7.data-00000-of-00001").read_bytes() == b"second at 7"
    left = [remote.key for remote in mode.store.list_files("runs/fenced/checkpoints")]
    assert left and all(key.startswith(f"runs/fenced/checkpoints/{second.fence}/") for key in left), left

    # The first host gets the job back: what it kept of its own fenced-off attempt is not what it resumes from.
    pull_run(mode, run_dir)
    assert sorted(path.name for path in (run_dir / "checkpoints").iterdir()) == [
        "checkpoint", "ckpt-7.data-00000-of-00001", "ckpt-7.index"
    ]  # fmt: skip


def test_publishers_at_once_get_distinct_numbers_above_what_the_bucket_holds(mode):
    models_dir = mode.data_dir / "models"
    mode.store.put_bytes("models/generator/40/saved_model.pb", b"an upload that never got its manifest")
    numbers: list[int] = []
    start = threading.Barrier(8)

    def publish() -> None:
        start.wait()
        numbers.append(next_version_number(mode, models_dir))

    threads = [threading.Thread(target=publish) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(41, 49)), numbers


def test_a_hosts_copy_drops_only_versions_it_copied_from_the_bucket(mode):
    generator = mode.data_dir / "models" / "generator"
    for number, copied in ((70, False), (71, True)):
        folder = generator / str(number)
        folder.mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"model")
        (folder / "manifest.json").write_text("{}")
        if copied:
            (folder / FROM_BUCKET).touch()

    sync_versions(mode, mode.data_dir / "models")

    assert (generator / "70").is_dir(), "a version from before shared mode is never deleted by a sync"
    assert not (generator / "71").exists(), "a copy of a version the bucket no longer has goes"


def test_a_dataset_is_there_only_once_its_upload_is_complete(mode, tmp_path: Path):
    dataset = mode.data_dir / "datasets" / "half"
    mode.store.put_bytes("datasets/half/train/a.png", b"png")
    assert dataset_counts(mode, dataset) is None, "no marker yet: another host is still uploading it"

    source = tmp_path / "half"
    for split in ("train", "val"):
        (source / split).mkdir(parents=True)
        (source / split / "a.png").write_bytes(b"png")
    push_dataset(mode, dataset, source=source)
    assert dataset_counts(mode, dataset) == {"train": 1, "val": 1}


def test_a_store_or_redis_that_does_not_answer_is_a_503_with_retry_after_not_a_500():
    import boto3
    import botocore.config
    import botocore.exceptions
    import redis

    from app.failures import failure_response

    once = botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=1)
    unreachable = boto3.client(  # the discard port: nothing listens there
        "s3", endpoint_url="http://127.0.0.1:9", config=once, region_name="us-east-1",
        aws_access_key_id="any", aws_secret_access_key="any",
    )  # fmt: skip
    with pytest.raises(botocore.exceptions.EndpointConnectionError) as store_error:
        unreachable.list_objects_v2(Bucket="bucket")
    with pytest.raises(redis.ConnectionError) as redis_error:
        redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=1).ping()
    for error in (store_error.value, redis_error.value):
        answer = failure_response(error)
        assert answer.status_code == 503 and answer.headers["retry-after"] == "10", error
        assert b"shared storage" in answer.body


def test_a_reimported_dataset_replaces_the_old_files_in_the_bucket_and_in_each_hosts_copy(
    mode, tmp_path: Path
):
    dataset = mode.data_dir / "datasets" / "again"
    first, second = tmp_path / "first", tmp_path / "second"
    for source, names in ((first, ["old.png", "both.png"]), (second, ["both.png", "new.png"])):
        (source / "train").mkdir(parents=True)
        for name in names:
            (source / "train" / name).write_bytes(source.name.encode())
    push_dataset(mode, dataset, source=first)
    pull_dataset(mode, dataset)
    push_dataset(mode, dataset, source=second)
    pull_dataset(mode, dataset)
    assert sorted(path.name for path in (dataset / "train").iterdir()) == ["both.png", "new.png"]
    assert dataset_counts(mode, dataset) == {"train": 2, "val": 0}


def test_the_apis_copy_of_metrics_never_shortens_the_trainers_own(mode):
    run_dir = mode.data_dir / "runs" / "metrics"
    run_dir.mkdir(parents=True)
    mode.store.put_bytes("runs/metrics/metrics.jsonl", b'{"step": 2}\n')
    (run_dir / "metrics.jsonl").write_bytes(b'{"step": 2}\n{"step": 4}\n')  # appended since the last push
    pull_run_outputs(mode, run_dir)
    assert (run_dir / "metrics.jsonl").read_bytes() == b'{"step": 2}\n{"step": 4}\n'
