"""Datasets through the API, on the embedded broker with a real importer and training worker: upload pictures,
watch the import, train on the result to a served version. Hostile uploads get a 4xx and leave nothing, and
uploads need the token: in process (`jobs_app`)."""

import io
import zipfile
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import DATASET_UPLOAD_LIMIT, InProcessApp
from tests.support import JobSystem, wait_until

UPLOAD_LIMIT = DATASET_UPLOAD_LIMIT  # the in-process app's limit too


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    array = np.full((80, 100, 3), 255, np.uint8)
    top, left = rng.integers(5, 30, 2)
    array[top : top + 40, left : left + 50] = rng.integers(0, 255, 3)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG")
    return buffer.getvalue()


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> Iterator[JobSystem]:
    jobs = JobSystem(
        tmp_path_factory.mktemp("datasets"), broker_url=None, max_dataset_upload_bytes=UPLOAD_LIMIT
    )
    try:
        jobs.start_api()
        jobs.start_worker("trainer")
        jobs.start_worker("importer", queues="datasets")
        yield jobs
    finally:
        jobs.close()


def upload(system: JobSystem | InProcessApp, name: str, archive: bytes, **fields: str):
    with system.client() as client:
        return client.post("/datasets", data={"name": name, **fields},
                           files={"archive": ("upload.zip", archive, "application/zip")})  # fmt: skip


def leftovers(system: JobSystem | InProcessApp, name: str) -> list[str]:
    folder = system.data_dir / "datasets"
    found = [path.name for path in folder.iterdir() if name in path.name]
    imports = folder / ".imports"
    found += [path.name for path in imports.iterdir() if name in path.name] if imports.is_dir() else []
    return found


def test_pictures_upload_import_and_train_to_a_served_version(system: JobSystem):
    pictures = {f"holiday/{i}.jpg": jpeg(i) for i in range(12)}
    accepted = upload(system, "mine", zipped(pictures), kind="pictures", val_fraction="0.25")
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["state"] == "importing" and accepted.headers["location"] == "/datasets/mine"
    with system.client() as client:
        ready = wait_until(
            lambda: (answer := client.get("/datasets/mine").json())["state"] != "importing" and answer, 120,
            lambda: "the import to finish\n" + system.diagnostics(),
        )  # fmt: skip
        assert ready["state"] == "ready", ready
        assert (ready["train"], ready["val"]) == (9, 3) and ready["bytes"] > 0
        assert ready["import"]["progress"] == {"done": 12, "total": 12}
        assert ready["import"]["heartbeat_at"], "the importer says it is alive while it imports"
        preview = client.get(ready["preview"])
        assert preview.status_code == 200 and Image.open(io.BytesIO(preview.content)).size == (256, 128 * 4)
        assert {"name": "mine", "train": 9, "val": 3, "state": "ready"} in client.get("/datasets").json()
        assert (
            client.post("/datasets", data={"name": "mine"}, files={"archive": ("a.zip", b"x")}).status_code
            == 409
        )

    job = system.launch(dataset="mine", steps=6, checkpoint_every=6)
    with system.client() as client:
        refused = client.delete("/datasets/mine")
        assert refused.status_code == 409 and job["id"] in refused.json()["detail"], refused.text
    finished = system.wait_for_job(
        job["id"], lambda record: record["state"] in ("succeeded", "failed"), "finish"
    )
    assert finished["state"] == "succeeded", system.diagnostics(finished)
    version = finished["progress"]["version"]
    with system.client() as client:
        wait_until(
            lambda: client.get("/models").json()["active_version"] == version, 60, "the version served"
        )
        deleted = client.delete("/datasets/mine")
        assert deleted.status_code == 200 and client.get("/datasets/mine").status_code == 404
    assert leftovers(system, "mine") == []


def test_a_failed_import_leaves_only_its_record_saying_which_file(system: JobSystem):
    entries = {"train/a.png": jpeg(1), "train/b.png": b"\x89PNG not really", "val/c.png": jpeg(2)}
    assert upload(system, "broken", zipped(entries), kind="pictures").status_code == 202
    with system.client() as client:
        failed = wait_until(
            lambda: (answer := client.get("/datasets/broken").json())["state"] != "importing" and answer, 120,
            lambda: "the import to finish\n" + system.diagnostics(),
        )  # fmt: skip
        assert failed["state"] == "failed" and "'train/b.png'" in failed["import"]["error"], failed
        assert "broken" not in [d["name"] for d in client.get("/datasets").json() if d["state"] == "ready"]
        assert leftovers(system, "broken") == ["broken.json"], "nothing but the record"
        launch = client.post("/jobs", json={"dataset": "broken", "steps": 2})
        assert launch.status_code == 404, "a failed dataset is never trainable"
        assert client.delete("/datasets/broken").status_code == 200
    assert leftovers(system, "broken") == []


@pytest.mark.parametrize(
    ("name", "archive", "fields", "status", "says"),
    [
        ("../up", b"PK", {}, 422, "not a dataset name"),
        ("name\n", b"PK", {}, 422, "not a dataset name"),
        ("trav", zipped({"../../x.png": jpeg(1)}), {}, 422, "path traversal"),
        ("nest", zipped({"a.zip": b"PK", "b.png": jpeg(1)}), {}, 422, "archives inside"),
        ("text", zipped({"notes.txt": b"hi", "b.png": jpeg(1)}), {}, 422, "not an image"),
        ("dupe", zipped({"x/a.png": jpeg(1), "y/a.png": jpeg(2)}), {}, 422, "same name"),
        ("bomb", zipped({"b.png": b"\0" * 3_000_000}), {}, 422, "zip bomb"),
        ("junk", b"not a zip", {}, 415, "not a zip archive"),
        ("big", b"0" * (UPLOAD_LIMIT + 100_000), {}, 413, "S2C_MAX_DATASET_UPLOAD_BYTES"),
        ("opts", zipped({"b.png": jpeg(1)}), {"kind": "videos"}, 422, "kind"),
        ("opts2", zipped({"b.png": jpeg(1)}), {"val_fraction": "0.9"}, 422, "val_fraction"),
    ],
    ids=["dotdot-name", "newline-name", "traversal", "nested", "non-image", "duplicate", "bomb", "not-zip",
         "too-large", "bad-kind", "bad-fraction"],
)  # fmt: skip
def test_hostile_uploads_get_a_clear_4xx_and_leave_nothing(jobs_app, name, archive, fields, status, says):
    answer = upload(jobs_app, name, archive, **fields)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["detail"], answer.text
    if name.isalnum():
        assert leftovers(jobs_app, name) == [], "a refused upload leaves nothing behind"


def test_uploads_need_the_token_when_one_is_set(jobs_app: InProcessApp):
    assert jobs_app.services.settings.api_token, "the in-process jobs app sets a token"
    with jobs_app.client(token=None) as client:
        refused = client.post("/datasets", data={"name": "x"}, files={"archive": ("a.zip", b"PK")})
    assert refused.status_code == 401, refused.text
