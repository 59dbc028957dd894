"""The serving policy through the API, on real servers sharing a data folder: a worse version is not served,
pin / label / back-to-latest switch within a poll under load, a pin survives a restart, two replicas agree,
and the served or a labelled version cannot be deleted."""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from storage.serving_policy import gate
from tests.app.conftest import POLL_SECONDS, Server, draw_sketch, encode, run_server
from tests.conftest import publish_tiny_generator
from tests.support import wait_until

TOKEN = "lifecycle-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SKETCH = encode(draw_sketch(seed=21))


def publish(models_dir: Path, l1: float, seed: int) -> int:
    """Publish the way the trainer does: the gate decides, under the publish lock, whether it may be served."""
    decision = gate(models_dir, "shapes", {"l1": l1, "psnr": 20.0, "ssim": 0.5})
    return publish_tiny_generator(models_dir, seed=seed, dataset="shapes", val={"l1": l1}, gate=decision)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("lifecycle") / "data"
    assert publish(data / "models", 0.10, seed=1) == 1
    assert publish(data / "models", 0.50, seed=2) == 2  # worse: published, not served
    return data


@pytest.fixture(scope="module")
def servers(data_dir: Path) -> Iterator[tuple[Server, Server]]:
    """Two API replicas on one data folder."""
    with run_server(data_dir, api_token=TOKEN) as first, run_server(data_dir, api_token=TOKEN) as second:
        yield first, second


def served_by(server: Server, query: str = "") -> int:
    with server.client() as client:
        response = client.post(f"/colorize{query}", files={"file": ("s.png", SKETCH, "image/png")})
    assert response.status_code == 200, response.text
    return int(response.headers["X-Model-Version"])


def wait_served(server: Server, version: int) -> None:
    def serving() -> bool:
        with server.client() as client:
            response = client.post("/colorize", files={"file": ("s.png", SKETCH, "image/png")})
        return response.status_code == 200 and response.headers["X-Model-Version"] == str(version)

    wait_until(serving, 10 * POLL_SECONDS + 30,
               lambda: f"version {version} to be served; log:\n{server.log()}")  # fmt: skip


def test_a_worse_version_does_not_replace_a_better_one(servers):
    first, _ = servers
    wait_served(first, 1)
    time.sleep(3 * POLL_SECONDS)
    assert served_by(first) == 1, "version 2 (validation L1 0.5 against 0.1) must not be served"
    models = httpx.get(f"{first.base_url}/models").json()
    listed = {entry["version"]: entry for entry in models["versions"]}
    assert listed[2]["gate"]["passed"] is False and "worse" in listed[2]["gate"]["reason"], listed[2]
    assert listed[1]["active"] and models["policy"] == {"served": "latest", "labels": {}}
    assert listed[2]["val"]["l1"] == 0.5 and listed[2]["dataset"] == "shapes"


def test_pin_and_back_to_latest_switch_every_replica_under_load_without_a_failed_request(servers):
    first, second = servers
    wait_served(first, 1)
    failures: list[str] = []
    seen: set[int] = set()
    stop = threading.Event()

    def load() -> None:
        with first.client() as client:
            while not stop.is_set():
                response = client.post("/colorize", files={"file": ("s.png", SKETCH, "image/png")})
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                else:
                    seen.add(int(response.headers["X-Model-Version"]))

    with ThreadPoolExecutor(4) as pool:
        loaders = [pool.submit(load) for _ in range(4)]
        try:
            with first.client() as client:
                assert client.put("/models/active", json={"version": 2}).status_code == 401, "token needed"
                pinned = client.put("/models/active", json={"version": 2}, headers=AUTH)
                assert pinned.status_code == 200 and pinned.json()["served"] == 2, pinned.text
            wait_served(first, 2)
            wait_served(second, 2)
            with second.client() as client:  # either replica changes the policy for both
                back = client.put("/models/active", json={"version": "latest"}, headers=AUTH)
                assert back.status_code == 200 and back.json()["served"] == "latest", back.text
            wait_served(first, 1)
            wait_served(second, 1)
        finally:
            stop.set()
            for loader in loaders:
                loader.result(timeout=60)
    assert not failures, f"{len(failures)} requests failed during the switches: {failures[:3]}"
    assert seen == {1, 2}, f"the load saw versions {seen}"


def test_labels_are_accepted_by_colorize_and_protect_their_version(servers):
    first, _ = servers
    with first.client(headers=AUTH) as client:
        labelled = client.put("/models/labels/canary", json={"version": 2})
        assert labelled.status_code == 200 and labelled.json()["labels"] == {"canary": 2}, labelled.text
        assert served_by(first, "?version=canary") == 2
        assert client.put("/models/labels/bad name", json={"version": 2}).status_code in (404, 422)
        assert client.put("/models/labels/stable", json={"version": 99}).status_code == 404
        refused = client.delete("/models/2")
        assert refused.status_code == 409 and "labelled canary" in refused.json()["detail"], refused.text
        served_now = client.delete("/models/1")
        assert served_now.status_code == 409 and "served" in served_now.json()["detail"], served_now.text
        assert client.delete("/models/labels/canary").status_code == 200
        assert client.delete("/models/labels/canary").status_code == 404
        assert client.get("/colorize").status_code == 405
        config = client.get("/models/tf-serving.config")
        assert config.status_code == 200 and "specific { versions: 1 }" in config.text, config.text


def test_an_unserved_unlabelled_version_is_deleted_safely(servers, data_dir: Path):
    first, second = servers
    assert publish(data_dir / "models", 0.9, seed=3) == 3  # worse again: not served
    with first.client(headers=AUTH) as client:
        wait_until(
            lambda: 3 in [v["version"] for v in client.get("/models").json()["versions"]], 30, "v3 listed"
        )
        deleted = client.delete("/models/3")
        assert deleted.status_code == 200 and deleted.json() == {"deleted": 3}, deleted.text
        assert client.delete("/models/3").status_code == 404
    assert not (data_dir / "models" / "generator" / "3").exists()
    assert served_by(first) == 1 and served_by(second) == 1


def test_a_pin_survives_a_restart(data_dir: Path, servers):
    first, _ = servers
    with first.client(headers=AUTH) as client:
        assert client.put("/models/active", json={"version": 2}).status_code == 200
    try:
        with run_server(data_dir, api_token=TOKEN) as restarted:
            wait_served(restarted, 2)
            assert httpx.get(f"{restarted.base_url}/models").json()["policy"]["served"] == 2
    finally:
        with first.client(headers=AUTH) as client:
            client.put("/models/active", json={"version": "latest"})
