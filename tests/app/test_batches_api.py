"""Chapter uploads in process (embedded broker, no worker: nothing runs): what POST /batches accepts and
refuses, the record it answers with, the disk budget, cancel and delete."""

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.conftest import API_TOKEN, InProcessApp, draw_sketch, encode, in_process_app
from tests.chapters import chapter_zip, hint_layer
from tests.conftest import publish_tiny_generator

BUDGET_BYTES = 200_000


@pytest.fixture(scope="module")
def batches_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """Version 1, a plain tiny generator (no hints), labelled `stable`; a small disk budget for batches."""
    from storage.serving_policy import label

    data_dir = tmp_path_factory.mktemp("in-process-batches") / "data"
    assert publish_tiny_generator(data_dir / "models", seed=1) == 1
    label(data_dir / "models", "stable", 1)
    with in_process_app(data_dir, api_token=API_TOKEN, batch_disk_budget_bytes=BUDGET_BYTES) as running:
        yield running


def page(seed: int = 0, size: tuple[int, int] = (96, 64)) -> bytes:
    return encode(draw_sketch(*size, seed=seed))


def kept(app: InProcessApp) -> list[str]:
    folder = app.data_dir / "batches"
    return sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_pages_as_files_give_a_queued_record_naming_the_file_that_is_no_page(batches_app: InProcessApp):
    files = [("files", ("a.png", page(1))), ("files", ("b.png", page(2))), ("files", ("notes.txt", b"hello"))]
    with batches_app.client() as client:
        response = client.post("/batches", params={"version": "stable", "format": "psd"}, files=files)
        assert response.status_code == 202, response.text
        record = response.json()
        assert response.headers["location"] == f"/batches/{record['id']}"
        assert (record["state"], record["version"], record["pages_total"]) == ("queued", 1, 3), record
        assert record["options"]["format"] == "psd" and record["chunks"] == 1, record
        assert [(f["name"], "not an image" in f["reason"]) for f in record["failures"]] == [
            ("notes.txt", True)
        ]
        assert client.get(f"/batches/{record['id']}").json() == record
        assert record["id"] in [entry["id"] for entry in client.get("/batches").json()]

        assert client.delete(f"/batches/{record['id']}").status_code == 409, "a queued batch is not deleted"
        cancelled = client.post(f"/batches/{record['id']}/cancel")
        assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled", cancelled.text
        assert client.post(f"/batches/{record['id']}/cancel").status_code == 409
        result = client.get(f"/batches/{record['id']}/result.zip")
        assert result.status_code == 200, result.text
        assert zipfile.ZipFile(io.BytesIO(result.content)).namelist() == [], "no page was finished"
        assert client.delete(f"/batches/{record['id']}").status_code == 200
        assert client.get(f"/batches/{record['id']}").status_code == 404
    assert record["id"] not in kept(batches_app)


@pytest.mark.parametrize(
    ("archive", "status", "words"),
    [
        (zipped({"../evil.png": page()}), 422, "path traversal"),
        (zipped({"p.png": b"\0" * 100_000}), 422, "zip bomb"),
        (b"this is no zip", 415, "not a zip"),
        (zipped({"notes.txt": b"only words"}), 422, "no pages"),
        (chapter_zip(2, hinted=0), 422, "trained without color hints"),
    ],
)
def test_a_refused_upload_says_why_and_leaves_nothing(batches_app: InProcessApp, archive, status, words):
    before = kept(batches_app)
    with batches_app.client() as client:
        response = client.post("/batches", files={"files": ("chapter.zip", archive)})
    assert response.status_code == status, response.text
    assert words in response.json()["detail"], response.json()
    assert kept(batches_app) == before, "a refused upload left files behind"


def test_the_token_an_unknown_version_and_the_disk_budget(batches_app: InProcessApp):
    files = {"files": ("a.png", page())}
    with batches_app.client(token=None) as client:
        assert client.post("/batches", files=files).status_code == 401
        assert client.get("/batches").status_code == 401
    with batches_app.client() as client:
        assert client.post("/batches", params={"version": "7"}, files=files).status_code == 404
        assert client.post("/batches", params={"version": "nolabel"}, files=files).status_code == 404
        big = [("files", (f"p{index}.png", page(index, (600, 600)))) for index in range(40)]
        refused = client.post("/batches", files=big)
    assert refused.status_code == 507, refused.text
    assert "S2C_BATCH_DISK_BUDGET_BYTES" in refused.json()["detail"], refused.json()


def test_an_orphan_hint_layer_is_a_named_failure(batches_app: InProcessApp, tmp_path: Path):
    archive = zipped({"p1.png": page(), "p2.hints.png": hint_layer(96, 64)})
    with batches_app.client() as client:
        response = client.post("/batches", files={"files": ("chapter.zip", archive)})
        assert response.status_code == 202, response.text
        record = response.json()
        assert record["pages_total"] == 2 and record["failures"][0]["name"] == "p2.hints.png", record
        client.post(f"/batches/{record['id']}/cancel")
        client.delete(f"/batches/{record['id']}")


def test_the_gallery_routes_serve_finished_pages_and_their_originals(batches_app: InProcessApp):
    """Pages finished as a worker finishes them (a result file, then a recount): no worker needed."""
    from contracts import batches

    sketches = [page(1), page(2), page(3)]
    files = [("files", (f"p{index}.png", data)) for index, data in enumerate(sketches)]
    with batches_app.client() as client:
        created = client.post("/batches", files=[*files, ("files", ("notes.txt", b"words"))])
        assert created.status_code == 202, created.text
        batch_id = created.json()["id"]
        batch_dir = batches_app.data_dir / "batches" / batch_id
        pages = {entry.name: entry for entry in batches.read_pages(batch_dir)}
        result_file = batches.result_path(batch_dir, pages["p0.png"], "png")
        first = client.get(f"/batches/{batch_id}/pages/{pages['p0.png'].index}/result")
        assert first.status_code == 404, "not finished yet"

        batches.start(batch_dir)
        result_file.write_bytes(page(9))
        batches.page_finished(batch_dir, pages["p0.png"])
        batches.page_finished(batch_dir, pages["p1.png"], reason="the page could not be decoded")

        statuses = client.get(f"/batches/{batch_id}/pages").json()
        assert [s["index"] for s in statuses] == [0, 1, 2, 3], "every page, in upload order"
        states = {s["name"]: s["state"] for s in statuses}
        assert states == {"notes.txt": "failed", "p0.png": "done", "p1.png": "failed", "p2.png": "pending"}, (
            statuses
        )
        by_name = {s["name"]: s for s in statuses}
        done, failed, pending = (
            by_name["p0.png"]["index"],
            by_name["p1.png"]["index"],
            by_name["p2.png"]["index"],
        )
        assert by_name["p1.png"]["reason"] == "the page could not be decoded", statuses

        result = client.get(f"/batches/{batch_id}/pages/{done}/result")
        assert result.status_code == 200, result.text
        assert (result.headers["content-type"], result.content) == ("image/png", page(9))
        assert result.headers["content-disposition"].startswith("inline"), result.headers
        original = client.get(f"/batches/{batch_id}/pages/{pending}/original")
        assert (original.status_code, original.headers["content-type"]) == (200, "image/png"), original.text
        assert original.content == sketches[2], "the original is the page as uploaded"

        refused = client.get(f"/batches/{batch_id}/pages/{failed}/result")
        assert refused.status_code == 404 and "could not be decoded" in refused.json()["detail"], refused.text
        waiting = client.get(f"/batches/{batch_id}/pages/{pending}/result")
        assert waiting.status_code == 404 and "not finished" in waiting.json()["detail"], waiting.text
        no_file = client.get(f"/batches/{batch_id}/pages/{by_name['notes.txt']['index']}/original")
        assert no_file.status_code == 404 and "refused at upload" in no_file.json()["detail"], no_file.text
        for answer in (refused, waiting, no_file):
            assert str(batches_app.data_dir) not in answer.text, f"a server path in {answer.text}"

        for bad in ("4", "-1", "one"):
            answer = client.get(f"/batches/{batch_id}/pages/{bad}/result")
            assert answer.status_code == 422 and "detail" in answer.json(), (bad, answer.text)
        assert client.get(f"/batches/{'0' * 32}/pages/0/original").status_code == 404
    with batches_app.client(token=None) as client:
        assert client.get(f"/batches/{batch_id}/pages/{done}/result").status_code == 401
        assert client.get(f"/batches/{batch_id}/pages/{done}/original").status_code == 401
        assert client.get(f"/batches/{batch_id}/pages").status_code == 401
    with batches_app.client() as client:
        client.post(f"/batches/{batch_id}/cancel")
        assert client.delete(f"/batches/{batch_id}").status_code == 200
