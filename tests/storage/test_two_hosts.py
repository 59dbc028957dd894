"""Two hosts that share nothing but Redis and an object store (shared mode, storage/shared.py).

Real servers: a private redis-server, a real S3-compatible server (`rclone serve s3`), and two "hosts", each
with its own data folder, API process and worker process. Shown: a job launched through host A's API trains
on host B's worker and both APIs serve its version; a pin through A is obeyed by B; a version missing its
manifest in the bucket is never served; two workers publishing at once get distinct numbers; a dataset
uploaded through A is imported on a worker and shown by both; a chapter uploaded through A is colorized by the
workers and downloaded whole through B; a SIGKILLed worker's job resumes on the other host from the bucket's
newest complete checkpoint; the S3 server restarted mid-job, the job still finishes. The tests run in order
and share the hosts.
"""

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import redis

from model.dataset_import import zip_folder
from tests.chapters import chapter_zip, result_sizes
from tests.support import (
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    JobSystem,
    Process,
    flush_redis_db,
    start_s3_server,
    wait_until,
)

REDIS_DB = 11
HALF_WRITTEN = "models/generator/9999/saved_model.pb"
WORKER_QUEUES = "training,batches,datasets"
BUCKET, PREFIX = "s2c-bucket", "team"
POLL_WAIT_SECONDS = 120
# Four processes with TensorFlow (two APIs, two workers) share the machine: generous waits, on conditions.
JOB_WAIT_SECONDS = 600
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
    "AWS_DEFAULT_REGION": "us-east-1",
}


class Hosts:
    def __init__(self, root: Path, redis_port: int):
        self.root = root
        self.s3_root = root / "s3"
        (self.s3_root / BUCKET).mkdir(parents=True)
        self.s3, self.endpoint = start_s3_server(self.s3_root)
        self.s3_port = int(self.endpoint.rsplit(":", 1)[1])
        shared = {
            "broker_url": f"redis://127.0.0.1:{redis_port}/{REDIS_DB}",
            "storage_url": f"s3://{BUCKET}/{PREFIX}",
            "s3_endpoint_url": self.endpoint,
        }
        self.a = JobSystem(root / "host-a", **shared)
        self.b = JobSystem(root / "host-b", **shared)
        for host in (self.a, self.b):
            host.environment.update(CREDENTIALS)
        self.redis = redis.Redis(host="127.0.0.1", port=redis_port, db=REDIS_DB)
        self.bucket = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name="us-east-1",
        )

    def restart_s3(self) -> None:
        self.s3.stop()
        self.s3, _ = start_s3_server(self.s3_root, port=self.s3_port)

    def keys(self, folder: str) -> list[str]:
        listed = self.bucket.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/{folder}/")
        return sorted(item["Key"][len(PREFIX) + 1 :] for item in listed.get("Contents", []))

    def bucket_checkpoint_step(self, job_id: str) -> int:
        """The newest step of the run's checkpoints in the bucket, as Redis' pointer names them (the attempt's
        folder and its index: storage/shared_runs.py), once that folder holds the step's files."""
        stored = self.redis.get(f"s2c:job:{job_id}:checkpoints")
        if stored is None:
            return 0
        pointer = json.loads(stored)
        match = re.search(r'^model_checkpoint_path:\s*"([^"]*?(\d+))"', pointer["index"], re.M)
        if match is None:
            return 0
        files = self.keys(f"runs/{job_id}/checkpoints/{pointer['attempt']}")
        assert any(f"/{match.group(1)}.index" in key for key in files), (pointer, files)
        return int(match.group(2))

    def close(self) -> None:
        self.a.close()
        self.b.close()
        self.s3.stop()


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, redis_port: int) -> Iterator[Hosts]:
    flush_redis_db(redis_port, REDIS_DB)
    setup = Hosts(tmp_path_factory.mktemp("two-hosts"), redis_port)
    try:
        # The dataset is imported on host A only: into A's data folder and the bucket.
        imported = subprocess.run(
            [sys.executable, "-m", "cli", "datasets", "import", str(setup.a.data_dir / "datasets" / "demo"), "shapes"],
            env=setup.a.environment, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert imported.returncode == 0, f"import on host A failed\n{imported.stdout}\n{imported.stderr}"
        # A version folder whose upload never finished (no manifest): no host may ever copy or serve it.
        setup.bucket.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{HALF_WRITTEN}", Body=b"not a model")
        setup.a.start_api()
        setup.b.start_api()
        setup.b.start_worker("b-worker", queues=WORKER_QUEUES)
        yield setup
    finally:
        setup.close()


def served(host: JobSystem) -> dict:
    with host.client() as client:
        response = client.get("/models")
    assert response.status_code == 200, response.text
    return response.json()


def active_version(host: JobSystem) -> int | None:
    return next((entry["version"] for entry in served(host)["versions"] if entry["active"]), None)


def wait_served(host: JobSystem, version: int, what: str) -> None:
    wait_until(
        lambda: active_version(host) == version,
        POLL_WAIT_SECONDS,
        lambda: (
            f"{what}: version {version} not served\n{json.dumps(served(host), indent=1)}\n{host.diagnostics()}"
        ),
    )


def launch_and_finish(hosts: Hosts, **params) -> dict:
    job_id = hosts.a.launch(dataset="shapes", **params)["id"]
    return hosts.a.wait_for_job(
        job_id, lambda job: job["state"] == "succeeded", "succeeded", JOB_WAIT_SECONDS
    )


def test_a_job_launched_on_host_a_trains_on_host_b_and_both_serve_its_version(hosts: Hosts):
    with hosts.a.client() as client:
        listed = client.get("/datasets").json()
    assert {"name": "shapes", "train": 16, "val": 4, "state": "ready"} in listed, listed

    job = launch_and_finish(hosts, steps=6, checkpoint_every=3, export_every=6)

    assert job["attempts"][0]["worker"].startswith("b-worker@"), job["attempts"]
    assert hosts.b.job(job["id"])["state"] == "succeeded", "host B's API reads the same record"
    version = job["progress"]["version"]
    assert f"models/generator/{version}/manifest.json" in hosts.keys("models/generator")
    assert not (hosts.a.data_dir / "runs" / job["id"] / "checkpoints").exists(), "A trained nothing"
    wait_served(hosts.a, version, "host A")
    wait_served(hosts.b, version, "host B")
    with hosts.a.client() as client:
        metrics = client.get(f"/jobs/{job['id']}/metrics").json()["metrics"]
        sample = client.get(f"/jobs/{job['id']}/samples/latest.png")
    assert [point["step"] for point in metrics] == [2, 3, 4, 6], "A shows the metrics B wrote"
    assert sample.status_code == 200 and sample.content.startswith(b"\x89PNG")


def test_a_pin_through_host_a_is_obeyed_by_host_b(hosts: Hosts):
    job = launch_and_finish(hosts, steps=4, export_every=4, promote="always")
    newest = job["progress"]["version"]
    wait_served(hosts.b, newest, "host B, before the pin")
    older = min(entry["version"] for entry in served(hosts.b)["versions"])
    assert older < newest

    with hosts.a.client() as client:
        pinned = client.put("/models/active", json={"version": older})
    assert pinned.status_code == 200, pinned.text

    wait_served(hosts.b, older, "host B, after the pin through A")
    assert served(hosts.b)["policy"]["served"] == older
    with hosts.b.client() as client:
        assert client.put("/models/active", json={"version": "latest"}).status_code == 200
    wait_served(hosts.a, newest, "host A, after B went back to latest")


def test_a_version_without_its_manifest_in_the_bucket_is_never_listed_or_served(hosts: Hosts):
    """The fixture put it there before the first job; both hosts have copied and served versions since."""
    for host in (hosts.a, hosts.b):
        listed = [entry["version"] for entry in served(host)["versions"]]
        assert listed and 9999 not in listed, listed
        assert min(listed) > 9999, f"numbers never go below what the bucket holds: {listed}"
        assert not (host.data_dir / "models" / "generator" / "9999").exists()
    assert HALF_WRITTEN in hosts.keys("models/generator/9999"), "no host deletes what it did not write"


def test_two_workers_publishing_at_once_get_distinct_numbers(hosts: Hosts):
    hosts.a.start_worker("a-worker", queues=WORKER_QUEUES)
    first = hosts.a.launch(dataset="shapes", steps=4, export_every=4)["id"]
    second = hosts.a.launch(dataset="shapes", steps=4, export_every=4)["id"]
    ended = [
        hosts.a.wait_for_job(job_id, lambda job: job["state"] == "succeeded", "succeeded", JOB_WAIT_SECONDS)
        for job_id in (first, second)
    ]
    workers = {job["attempts"][0]["worker"].split("@")[0] for job in ended}
    versions = [job["progress"]["version"] for job in ended]
    assert workers == {"a-worker", "b-worker"}, f"both hosts' workers trained: {workers}"
    assert versions[0] != versions[1], versions
    committed = hosts.keys("models/generator")
    for version in versions:
        assert f"models/generator/{version}/manifest.json" in committed


def test_a_dataset_uploaded_through_host_a_is_imported_into_the_bucket_and_shown_by_both(hosts: Hosts):
    archive = hosts.root / "pairs.zip"
    zip_folder(hosts.a.data_dir / "datasets" / "demo", archive)
    with hosts.a.client() as client:
        accepted = client.post(
            "/datasets", data={"name": "uploaded"}, files={"archive": ("pairs.zip", archive.read_bytes())}
        )
    assert accepted.status_code == 202, accepted.text

    def ready_on_b() -> dict | None:
        with hosts.b.client() as client:
            shown = client.get("/datasets/uploaded").json()
        return shown if shown["state"] != "importing" else None

    shown = wait_until(
        ready_on_b, JOB_WAIT_SECONDS, lambda: f"the import never ended\n{hosts.b.diagnostics()}"
    )
    assert shown["state"] == "ready" and (shown["train"], shown["val"]) == (16, 4), shown
    assert len([key for key in hosts.keys("datasets/uploaded") if key.endswith(".png")]) == 20
    assert not hosts.keys("datasets/.imports"), "the archive is removed once imported"
    with hosts.a.client() as client:
        preview = client.get("/datasets/uploaded/preview.png")
        assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG")
        assert client.delete("/datasets/uploaded").status_code == 200
    with hosts.b.client() as client:
        assert client.get("/datasets/uploaded").status_code == 404
    assert not hosts.keys("datasets/uploaded")


def test_a_chapter_uploaded_through_host_a_is_colorized_by_the_workers_and_downloaded_through_b(hosts: Hosts):
    pages = 20
    with hosts.a.client() as client:
        created = client.post("/batches", files={"files": ("chapter.zip", chapter_zip(pages))})
    assert created.status_code == 202, created.text
    batch_id = created.json()["id"]

    def done_on_b() -> dict | None:
        with hosts.b.client() as client:
            record = client.get(f"/batches/{batch_id}").json()
        return record if record["state"] in ("done", "failed", "cancelled") else None

    record = wait_until(
        done_on_b, JOB_WAIT_SECONDS, lambda: f"the chapter never ended\n{hosts.b.diagnostics()}"
    )
    assert record["state"] == "done" and record["pages_done"] == pages, json.dumps(record, indent=1)
    assert len(hosts.keys(f"batches/{batch_id}/results")) == pages
    with hosts.b.client() as client:
        result = client.get(f"/batches/{batch_id}/result.zip")
    assert result.status_code == 200, result.text
    assert len(result_sizes(result.content)) == pages
    with hosts.b.client() as client:
        assert client.delete(f"/batches/{batch_id}").status_code == 200
    assert not hosts.keys(f"batches/{batch_id}")


def test_a_killed_workers_job_resumes_on_the_other_host_from_the_buckets_checkpoint(hosts: Hosts):
    job_id = hosts.a.launch(dataset="shapes", steps=40, checkpoint_every=10, export_every=40)["id"]
    wait_until(
        lambda: hosts.bucket_checkpoint_step(job_id) >= 10,
        JOB_WAIT_SECONDS,
        lambda: f"no checkpoint in the bucket\n{hosts.a.diagnostics(hosts.a.job(job_id))}",
    )
    running = hosts.a.job(job_id)
    victim_name = running["attempts"][0]["worker"].split("@")[0]
    victim_host = hosts.a if victim_name == "a-worker" else hosts.b
    victim: Process = victim_host.workers[victim_name]
    victim.stop(signal.SIGKILL)
    in_bucket = hosts.bucket_checkpoint_step(job_id)

    finished = hosts.a.wait_for_job(
        job_id, lambda job: job["state"] == "succeeded", "succeeded after the kill"
    )
    assert len(finished["attempts"]) == 2, finished["attempts"]
    assert finished["attempts"][0]["outcome"] == "worker lost"
    survivor = finished["attempts"][1]
    assert survivor["worker"].split("@")[0] != victim_name
    assert survivor["resumed_from_step"] >= in_bucket >= 10, (survivor, in_bucket)
    victim_host.start_worker(
        victim_name, queues=WORKER_QUEUES
    )  # both hosts work again for the tests after this one


def test_the_s3_server_restarted_mid_job_the_job_still_finishes(hosts: Hosts):
    job_id = hosts.a.launch(dataset="shapes", steps=16, checkpoint_every=4, export_every=16)["id"]
    hosts.a.wait_for_job(job_id, lambda job: job["progress"]["step"] >= 2, "training", JOB_WAIT_SECONDS)
    hosts.restart_s3()
    assert hosts.a.job(job_id)["state"] == "running", (
        "the job ended before the store went away: nothing shown"
    )
    job = hosts.a.wait_for_job(
        job_id, lambda job: job["state"] in ("succeeded", "failed"), "an end", JOB_WAIT_SECONDS
    )
    assert job["state"] == "succeeded", job
    assert f"models/generator/{job['progress']['version']}/manifest.json" in hosts.keys("models/generator")
    assert hosts.bucket_checkpoint_step(job_id) == 16
