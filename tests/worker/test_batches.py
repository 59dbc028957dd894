"""Chapters on real workers (Redis, two `--queues batches` workers shared by the module): a chapter ends done
with every page at its own size and the bad entry named; cancel stops within a chunk; SIGKILL of a worker
mid-chapter loses no page (last: it replaces the killed worker)."""

import io
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from contracts.batches import CHUNK_PAGES
from tests.app.conftest import draw_sketch, encode, publish_tiny_hint_generator
from tests.chapters import NOT_A_PAGE, chapter_zip, page_sizes, result_sizes
from tests.support import REPO_ROOT, JobSystem, wait_until

REDIS_DB = 12
API_TOKEN = "chapters-token"
BATCH_TIMEOUT_SECONDS = 180.0


@pytest.fixture(scope="module")
def system(redis_job_system: JobSystem) -> Iterator[JobSystem]:
    publish_tiny_hint_generator(redis_job_system.data_dir / "models", seed=3)
    first = redis_job_system.start_worker("pages-a", wait=False, queues="batches")
    second = redis_job_system.start_worker("pages-b", wait=False, queues="batches")
    redis_job_system.wait_ready(first)
    redis_job_system.wait_ready(second)
    yield redis_job_system


def upload(system: JobSystem, archive: bytes, **options: str) -> dict[str, Any]:
    with system.client() as client:
        response = client.post("/batches", params=options, files={"files": ("chapter.zip", archive)})
    assert response.status_code == 202, f"POST /batches answered {response.status_code}: {response.text}"
    assert response.headers["location"] == f"/batches/{response.json()['id']}"
    return response.json()


def batch(system: JobSystem, batch_id: str) -> dict[str, Any]:
    with system.client() as client:
        response = client.get(f"/batches/{batch_id}")
    assert response.status_code == 200, f"GET /batches/{batch_id}: {response.status_code} {response.text}"
    return response.json()


def wait_for(system: JobSystem, batch_id: str, condition, what: str, timeout: float = BATCH_TIMEOUT_SECONDS):
    latest: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        latest.update(batch(system, batch_id))
        return dict(latest) if condition(latest) else None

    return wait_until(
        check, timeout, lambda: f"batch {batch_id} never got {what}\n{system.diagnostics(latest)}"
    )


def result_zip(system: JobSystem, batch_id: str) -> bytes:
    with system.client() as client:
        response = client.get(f"/batches/{batch_id}/result.zip")
    assert response.status_code == 200, f"result.zip answered {response.status_code}: {response.text}"
    assert response.headers["content-type"] == "application/zip"
    return response.content


def test_a_chapter_ends_done_with_every_page_at_its_own_size_and_the_bad_entry_named(system: JobSystem):
    created = upload(system, chapter_zip(11, hinted=3, not_a_page=True), size="original")
    assert created["state"] == "queued" and created["pages_total"] == 12, created
    assert created["version"] == 1 and created["chunks"] == 2, created

    done = wait_for(system, created["id"], lambda record: record["state"] == "done", "done")
    assert (done["pages_done"], done["pages_failed"]) == (11, 1), done
    assert [failure["name"] for failure in done["failures"]] == [f"chapter/{NOT_A_PAGE}"], done
    assert "not an image" in done["failures"][0]["reason"], done

    sizes = result_sizes(result_zip(system, created["id"]))
    expected = {f"chapter/p{index:02d}.png": size for index, size in enumerate(page_sizes(11))}
    assert sizes == expected, f"each page at its own size, by its own name: {sizes}"


def test_cancel_stops_within_a_chunk(system: JobSystem):
    pages = 4 * CHUNK_PAGES
    created = upload(system, chapter_zip(pages, size=(1200, 900)), size="original", format="psd")
    wait_for(system, created["id"], lambda record: record["pages_done"] >= 1, "a first page", timeout=120)
    with system.client() as client:
        cancelled = client.post(f"/batches/{created['id']}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    done_at_cancel = cancelled.json()["pages_done"]
    assert cancelled.json()["state"] == "cancelled"

    results = system.data_dir / "batches" / created["id"] / "results"
    beats = system.data_dir / "batches" / created["id"] / "chunks"
    wait_until(lambda: not list(beats.glob("*.beat")), 60, "both workers to leave their chunks")
    time.sleep(1.0)  # a chunk still queued behind them would be skipped at once
    finished = len(list(results.glob("*.psd")))
    # At most the page each of the two workers was finishing when the cancel came.
    assert finished <= done_at_cancel + 2, f"{finished} pages after a cancel at {done_at_cancel}"
    assert finished < pages, "the whole chapter ran despite the cancel"
    final = batch(system, created["id"])
    assert final["state"] == "cancelled", final
    with system.client() as client:
        assert client.post(f"/batches/{created['id']}/cancel").status_code == 409
        assert client.delete(f"/batches/{created['id']}").status_code == 200
        assert client.get(f"/batches/{created['id']}").status_code == 404


def test_remote_batch_uploads_a_folder_follows_it_and_downloads_the_pages(system: JobSystem, tmp_path):
    pages, colored = tmp_path / "pages", tmp_path / "colored"
    with zipfile.ZipFile(io.BytesIO(chapter_zip(3, hinted=1))) as archive:
        archive.extractall(pages)
    (pages / "chapter" / "broken.png").write_bytes(b"not really a png")
    command = [sys.executable, "-m", "cli", "remote", "batch", str(pages), str(colored), "--url", system.base_url,
               "--token", API_TOKEN, "--poll-seconds", "0.2"]  # fmt: skip
    finished = subprocess.run(command, cwd=REPO_ROOT, env=system.environment, capture_output=True, text=True,
                              timeout=BATCH_TIMEOUT_SECONDS)  # fmt: skip
    assert finished.returncode == 1, (
        f"a failed page makes the exit status 1\n{finished.stdout}{finished.stderr}"
    )
    assert "failed: chapter/broken.png:" in finished.stderr, finished.stderr
    assert str(system.data_dir.resolve()) not in finished.stderr, "a page's failure names no server path"
    assert "done: wrote 3 pages" in finished.stdout, finished.stdout
    written = sorted(path.relative_to(colored).as_posix() for path in colored.rglob("*.png"))
    assert written == [f"chapter/p{index:02d}.png" for index in range(3)], written
    for index, size in enumerate(page_sizes(3)):
        assert Image.open(colored / "chapter" / f"p{index:02d}.png").size == size


def test_the_page_uploads_pages_follows_the_chapter_and_downloads_it_all(system: JobSystem, tmp_path):
    from playwright.sync_api import expect

    from tests.app.browser import ARTIFACTS, keep_screenshot, launched_chromium

    files = []
    for index, (width, height) in enumerate(page_sizes(3)):
        files.append(tmp_path / f"p{index}.png")
        files[-1].write_bytes(encode(draw_sketch(width, height, seed=index)))
    (tmp_path / "notes.txt").write_text("not a page")
    with launched_chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        context.add_init_script(f"sessionStorage.setItem('sketch2color.apiToken', '{API_TOKEN}')")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(system.base_url + "/")
        form = page.locator("#batch-upload")
        form.get_by_label("Pages").set_input_files([*map(str, files), str(tmp_path / "notes.txt")])
        form.get_by_role("button", name="Start chapter").click()
        expect(page.locator("#batches-message")).to_contain_text("4 pages queued")
        row = page.locator("#batches-body tr").first
        expect(row).to_contain_text("done", timeout=120_000)
        expect(row).to_contain_text("3 / 4 pages")
        expect(row).to_contain_text("1 failed")
        keep_screenshot(page, "page-chapters.png")
        batch_id = row.get_attribute("data-batch")
        gallery = page.locator(f'#batch-galleries section[data-batch="{batch_id}"]')
        expect(gallery.locator("img.result")).to_have_count(3)  # one per page done, beside its original
        expect(gallery.locator("img.original")).to_have_count(3)
        expect(gallery.locator(".gallery-failed li")).to_have_text([re.compile(r"^notes\.txt: not an image")])
        gallery.scroll_into_view_if_needed()
        page.wait_for_function(  # fetched with the token, shown through object URLs
            "id => [...document.querySelectorAll(`section[data-batch='${id}'] img`)]"
            ".every(image => image.complete && image.naturalWidth > 0)",
            arg=batch_id,
        )
        card = page.locator("section[aria-labelledby=batches-title]")
        card.screenshot(path=str(ARTIFACTS / "chapters-gallery-1280.png"))
        page.set_viewport_size({"width": 390, "height": 844})
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than a 390 px phone with the gallery"
        card.screenshot(path=str(ARTIFACTS / "chapters-gallery-390.png"))
        page.set_viewport_size({"width": 1280, "height": 1000})
        with page.expect_download() as download:
            row.get_by_role("button", name="Download all").click()
        saved = tmp_path / "chapter.zip"
        download.value.save_as(saved)
        assert sorted(result_sizes(saved.read_bytes()).values()) == sorted(page_sizes(3))
        row.get_by_role("button", name="Delete").click()
        expect(page.locator(f'#batches-body tr[data-batch="{batch_id}"]')).to_have_count(0)
    assert not errors, errors


def test_a_worker_killed_mid_chapter_loses_no_page(system: JobSystem):
    pages = 5 * CHUNK_PAGES
    created = upload(system, chapter_zip(pages, size=(900, 700)), size="original")
    beats = system.data_dir / "batches" / created["id"] / "chunks"
    wait_until(lambda: len(list(beats.glob("*.beat"))) >= 2, 120, "both workers on a chunk")
    wait_for(system, created["id"], lambda record: record["pages_done"] >= 1, "a first page", timeout=120)
    victim = system.workers["pages-a"]
    victim.stop(signal.SIGKILL)
    assert batch(system, created["id"])["pages_done"] < pages, "the chapter ended before the kill"

    done = wait_for(system, created["id"], lambda record: record["state"] == "done", "done after the kill")
    assert (done["pages_done"], done["pages_failed"]) == (pages, 0), done
    assert len(result_sizes(result_zip(system, created["id"]))) == pages
    survivor = system.workers["pages-b"]
    assert "queued again" in survivor.log(), "the survivor's sweeper should have brought the chunk back"
