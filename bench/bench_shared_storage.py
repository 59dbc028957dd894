"""Shared mode against the shared data folder, side by side in one run (issue: hosts that share only Redis and
an object store).

1. Publishing a full-width generator (ngf 64, ~218 MB SavedModel) and hot-loading it on another API:
   - folder: `publish_generator` into a data folder, then the API's loader (`app.model_store.load_version`:
     `tf.saved_model.load`, one warm-up batch) from that folder;
   - store: the same publish in shared mode (upload, then the manifest under the Redis publish lock), then what
     another host's API does on its next poll: copy the version from the bucket (`sync_versions`: download,
     sizes checked, renamed into place), then the same loader.
2. A chapter's pages per second with two worker processes (`--queues batches`, a served generator of width
   `--ngf`): both workers on one data folder and Redis, against two "hosts" (each with its own data folder and
   worker) on Redis and the bucket, the chapter uploaded through the first host's API.

A real redis-server and a real S3-compatible server (`rclone serve s3`) on free ports, started and stopped here;
the processes as the tests start them (tests/support.py). The S3 server is on this machine: the figures leave
out a network's bandwidth, they show what the store's protocol and the extra copies cost.

    .venv/bin/python bench/bench_shared_storage.py [--ngf 64] [--pages 48] [--chapter-ngf 32]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the test harness (tests/support.py) and the project's packages

import httpx  # noqa: E402

from tests.chapters import chapter_zip  # noqa: E402
from tests.support import (  # noqa: E402
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    JobSystem,
    start_redis_server,
    start_s3_server,
    wait_until,
)

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
    "AWS_DEFAULT_REGION": "us-east-1",
}


def shared_environment(endpoint: str, redis_port: int, data_dir: Path, db: int) -> dict[str, str]:
    return {
        "S2C_STORAGE_URL": "s3://bench/run",
        "S2C_S3_ENDPOINT_URL": endpoint,
        "S2C_BROKER_URL": f"redis://127.0.0.1:{redis_port}/{db}",
        "S2C_DATA_DIR": str(data_dir),
        **CREDENTIALS,
    }


def use_environment(values: dict[str, str] | None) -> None:
    """This process in shared mode (values) or in folder mode (None), its cached settings dropped."""
    from contracts.settings import get_settings
    from storage import shared

    for name in ("S2C_STORAGE_URL", "S2C_S3_ENDPOINT_URL", "S2C_BROKER_URL", "S2C_DATA_DIR"):
        os.environ.pop(name, None)
    os.environ.update(values or {})
    get_settings.cache_clear()
    shared.shared_mode.cache_clear()


def publish_and_load(root: Path, endpoint: str, redis_port: int, ngf: int) -> dict[str, float]:
    import keras

    from app.model_store import load_version
    from model.export import publish_generator
    from model.networks import build_generator
    from storage import shared
    from storage.shared_versions import sync_versions
    from storage.versions import read_version

    keras.utils.set_random_seed(0)
    generator = build_generator(ngf=ngf)
    manifest = {"job_id": None, "step": 0, "epoch": 0, "model": {"ngf": ngf}}
    publish_generator(
        generator, root / "warm-up" / "models", manifest
    )  # traces and compiles once, unmeasured
    figures: dict[str, float] = {}

    use_environment(None)
    started = time.perf_counter()
    published = publish_generator(generator, root / "folder" / "models", manifest)
    figures["folder publish s"] = time.perf_counter() - started
    started = time.perf_counter()
    load_version(published)
    figures["folder hot-load s"] = time.perf_counter() - started
    figures["version MB"] = (
        sum(path.stat().st_size for path in published.path.rglob("*") if path.is_file()) / 1e6
    )

    use_environment(shared_environment(endpoint, redis_port, root / "host-a", db=1))
    started = time.perf_counter()
    published = publish_generator(generator, root / "host-a" / "models", manifest)
    figures["store publish s"] = time.perf_counter() - started
    other_host = shared.SharedMode(shared.shared_mode().store, shared.shared_mode().redis, root / "host-b")
    started = time.perf_counter()
    sync_versions(other_host, root / "host-b" / "models")
    figures["store copy to another host s"] = time.perf_counter() - started
    copied = read_version(root / "host-b" / "models", published.version)
    assert copied is not None, "the other host has no copy"
    started = time.perf_counter()
    load_version(copied)
    figures["store hot-load (after the copy) s"] = time.perf_counter() - started
    use_environment(None)
    return figures


def chapter_seconds(hosts: list[JobSystem], pages: int) -> float:
    """Upload a chapter through the first host's API; seconds until it is done (as any host's API says)."""
    archive = chapter_zip(pages, size=(600, 800))
    with hosts[0].client() as client:
        started = time.perf_counter()
        created = client.post("/batches", files={"files": ("chapter.zip", archive)})
        assert created.status_code == 202, created.text
        batch_id = created.json()["id"]

    def done() -> dict | None:
        with hosts[-1].client() as client:
            record = client.get(f"/batches/{batch_id}").json()
        return record if record["state"] in ("done", "failed", "cancelled") else None

    record = wait_until(done, 1800, lambda: "the chapter never ended", 0.2)
    assert record["state"] == "done" and record["pages_done"] == pages, record
    return time.perf_counter() - started


def chapters(root: Path, endpoint: str, redis_port: int, pages: int, ngf: int) -> dict[str, float]:
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    import bench_http

    figures: dict[str, float] = {}
    folder = JobSystem(root / "chapter-folder", broker_url=f"redis://127.0.0.1:{redis_port}/2")
    try:
        bench_http.publish_random_generator(folder.data_dir / "models", ngf)
        folder.start_api()
        folder.start_worker("one", queues="batches")
        folder.start_worker("two", queues="batches")
        chapter_seconds([folder], 8)  # both workers load the generator, unmeasured
        figures["folder pages/s"] = pages / chapter_seconds([folder], pages)
    finally:
        folder.close()

    environment = shared_environment(endpoint, redis_port, root / "unused", db=3)
    settings = {"broker_url": environment["S2C_BROKER_URL"], "storage_url": "s3://bench/chapters",
                "s3_endpoint_url": endpoint}  # fmt: skip
    hosts = [JobSystem(root / f"chapter-host-{name}", **settings) for name in ("a", "b")]
    try:
        for host in hosts:
            host.environment.update(CREDENTIALS)
        use_environment({**environment, "S2C_STORAGE_URL": "s3://bench/chapters",
                         "S2C_DATA_DIR": str(hosts[0].data_dir)})  # fmt: skip
        bench_http.publish_random_generator(hosts[0].data_dir / "models", ngf)  # into the bucket
        use_environment(None)
        for host, name in zip(hosts, ("a", "b"), strict=True):
            host.start_api()
            host.start_worker(name, queues="batches")
        wait_until(lambda: _served(hosts[0]), 120, lambda: "host A serves nothing")
        chapter_seconds(hosts, 8)
        figures["store pages/s"] = pages / chapter_seconds(hosts, pages)
    finally:
        for host in hosts:
            host.close()
    return figures


def _served(host: JobSystem) -> bool:
    with httpx.Client(base_url=host.base_url) as client:
        return any(entry["active"] for entry in client.get("/models").json()["versions"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ngf", type=int, default=64, help="width of the published generator (64: full)")
    parser.add_argument("--pages", type=int, default=48)
    parser.add_argument("--chapter-ngf", type=int, default=32, help="width of the chapter's generator")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "s3" / "bench").mkdir(parents=True)
        redis_server, redis_port = start_redis_server(root)
        s3_server, endpoint = start_s3_server(root / "s3")
        os.environ.update(CREDENTIALS)
        try:
            publishing = publish_and_load(root, endpoint, redis_port, options.ngf)
            chapter = chapters(root, endpoint, redis_port, options.pages, options.chapter_ngf)
        finally:
            s3_server.stop()
            redis_server.stop()
    print(f"version of width {options.ngf}: {publishing['version MB']:.0f} MB")
    print(f"  publish:  folder {publishing['folder publish s']:.1f} s, store {publishing['store publish s']:.1f} s "
          f"({publishing['store publish s'] / publishing['folder publish s']:.2f}x)")  # fmt: skip
    store_load = publishing["store copy to another host s"] + publishing["store hot-load (after the copy) s"]
    print(f"  hot-load: folder {publishing['folder hot-load s']:.1f} s, store {store_load:.1f} s "
          f"(copy {publishing['store copy to another host s']:.1f} s + load "
          f"{publishing['store hot-load (after the copy) s']:.1f} s; "
          f"{store_load / publishing['folder hot-load s']:.2f}x)")  # fmt: skip
    print(f"chapter of {options.pages} pages (800x600, generator width {options.chapter_ngf}), two workers:")
    print(f"  folder {chapter['folder pages/s']:.2f} pages/s, store {chapter['store pages/s']:.2f} pages/s "
          f"({chapter['store pages/s'] / chapter['folder pages/s']:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
