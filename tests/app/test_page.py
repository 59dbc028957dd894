"""The browser page, driven in a real Chromium: draw or upload a sketch, colorize it, see the jobs panel."""

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.app.browser import keep_screenshot
from tests.app.conftest import DATASET, Server, draw_sketch, encode, png_pixels

READ_RESULT_IMAGE = """async () => {
  const blob = await (await fetch(document.getElementById("result").src)).blob();
  return await new Promise((resolve) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.split(",")[1]);
    reader.readAsDataURL(blob);
  });
}"""


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    opened = context.new_page()
    console_errors: list[str] = []
    opened.on("pageerror", lambda error: console_errors.append(str(error)))
    opened.goto(server.base_url + "/")
    expect(opened.get_by_test_id("model-status")).to_have_text("model version 2", timeout=15_000)
    yield opened
    context.close()
    assert not console_errors, f"JavaScript errors on the page: {console_errors}"


def _shown_result(page: Page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(page.evaluate(READ_RESULT_IMAGE)))))


def _api_answer(server: Server, image_bytes: bytes) -> np.ndarray:
    with server.client() as client:
        return png_pixels(client.post("/colorize", files={"file": ("s.png", image_bytes, "image/png")}))


def test_a_normal_visit_logs_no_console_error(browser: Browser, server: Server) -> None:
    """No 404 for /favicon.ico and no failed request: the console stays clean when nothing is wrong."""
    context = browser.new_context()
    visit = context.new_page()
    messages: list[str] = []
    visit.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    failed: list[str] = []
    visit.on(
        "response",
        lambda response: (
            failed.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    try:
        visit.goto(server.base_url + "/")
        expect(visit.get_by_test_id("model-status")).to_have_text("model version 2", timeout=15_000)
        expect(visit.locator("#jobs-body tr.job").first).to_be_visible(timeout=15_000)
        visit.wait_for_timeout(500)
    finally:
        context.close()
    assert not [message for message in messages if message.startswith("error")], messages
    assert not failed, f"requests that failed on a normal visit: {failed}"
    with server.client() as client:
        icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


def test_draw_strokes_and_colorize(page: Page, server: Server, tmp_path: Path) -> None:
    box = page.locator("#sketch").bounding_box()
    assert box is not None
    strokes = [[(0.2, 0.2), (0.8, 0.25), (0.7, 0.8)], [(0.3, 0.7), (0.5, 0.4), (0.6, 0.6)]]
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0] * box["width"], box["y"] + stroke[0][1] * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=12)
        page.mouse.up()
    page.get_by_role("button", name="Colorize").click()

    expect(page.locator("#result")).to_be_visible(timeout=20_000)
    expect(page.get_by_test_id("result-caption")).to_contain_text("model version 2")
    keep_screenshot(page, "page-desktop.png")

    sketch_png = base64.b64decode(
        page.evaluate("document.getElementById('sketch').toDataURL('image/png').split(',')[1]")
    )
    sketch = np.asarray(Image.open(io.BytesIO(sketch_png)).convert("L"))
    assert (sketch < 64).mean() > 0.005, "the mouse strokes should have drawn black lines on the canvas"
    shown = _shown_result(page)
    assert shown.shape == (256, 256, 3)
    assert np.array_equal(shown, _api_answer(server, sketch_png)), "the page should show what the API returns"


def test_upload_a_file_and_colorize(page: Page, server: Server, tmp_path: Path) -> None:
    sketch_file = tmp_path / "upload.png"
    sketch_file.write_bytes(encode(draw_sketch(360, 220, seed=42)))
    page.locator("#upload").set_input_files(str(sketch_file))
    expect(page.locator("#sketch-caption")).to_contain_text("upload.png")
    page.get_by_role("button", name="Colorize").click()

    expect(page.get_by_test_id("result-caption")).to_contain_text("model version 2", timeout=20_000)
    assert np.array_equal(_shown_result(page), _api_answer(server, sketch_file.read_bytes())), (
        "an uploaded file is sent as is: the page should show the API's answer for that file"
    )


def test_full_size_result_is_shown_and_downloaded(page: Page, server: Server, tmp_path: Path) -> None:
    wide = tmp_path / "wide.png"
    draw_sketch(600, 240, seed=9).save(wide)
    page.locator("#upload").set_input_files(str(wide))
    page.get_by_label("Result size").select_option("original")
    page.get_by_role("button", name="Colorize").click()
    expect(page.get_by_test_id("result-caption")).to_contain_text("600x240", timeout=20_000)
    shown = _shown_result(page)
    assert shown.shape == (240, 600, 3), f"the page shows a {shown.shape} image, not the sketch's size"
    open_download_menu(page)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="PNG").click()
    download = download_info.value
    assert download.suggested_filename == "wide-colored-v2-600x240.png", download.suggested_filename
    saved = tmp_path / "downloaded.png"
    download.save_as(saved)
    assert np.array_equal(np.asarray(Image.open(saved).convert("RGB")), shown), "the download is the result"
    page.screenshot(path=str(tmp_path / "page-full-size.png"), full_page=True)


def test_a_bad_upload_shows_the_error_detail(page: Page, tmp_path: Path) -> None:
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are words, not pixels")
    page.locator("#upload").set_input_files(str(not_an_image))
    expect(page.locator("#colorize-error")).to_contain_text("notes.png is not an image")  # before sending
    expect(page.locator("#sketch-caption")).to_contain_text("(not an image)")
    page.get_by_role("button", name="Colorize").click()
    expect(page.locator("#colorize-error")).to_contain_text("415", timeout=20_000)
    expect(page.locator("#colorize-error")).to_contain_text("not a supported image")


def test_jobs_panel_shows_the_finished_job_and_draws_its_loss_curves(page: Page, server: Server) -> None:
    """The shared server's data folder holds a real finished run (see conftest): its record and metrics."""
    with server.client() as client:
        jobs = client.get("/jobs").raise_for_status().json()
        [job] = [job for job in jobs if job["dataset"] == DATASET and job["state"] == "succeeded"]
        metrics = client.get(f"/jobs/{job['id']}/metrics").raise_for_status().json()["metrics"]
    assert [point["step"] for point in metrics] == [10, 20]

    row = page.locator(f"#jobs-body tr.job[data-job-id='{job['id']}']")
    expect(row).to_contain_text("succeeded", timeout=10_000)
    cells = row.locator("td")
    expect(cells.nth(0)).to_have_text(job["id"][:8])
    expect(cells.nth(1)).to_have_text(DATASET)
    expect(cells.nth(3)).to_have_text("20 / 20")
    expect(cells.nth(6)).to_have_text("2")  # the version the job published
    expect(row.get_by_role("button", name="Cancel")).to_have_count(0)

    row.click()
    expect(page.locator("#chart-title")).to_have_text(f"Losses of job {job['id'][:8]}")
    expect(page.locator("#chart path")).to_have_count(4)  # gen_gan, gen_l1, disc, val_l1
    expect(page.locator("#chart-error")).to_be_hidden()
    last_l1 = page.evaluate("value => value.toPrecision(3)", metrics[-1]["gen_l1"])
    expect(page.locator("#chart")).to_contain_text(f"generator L1 {last_l1}")
    expect(page.locator("#chart")).to_contain_text("step 20")


def test_job_endpoint_errors_show_the_servers_detail(page: Page) -> None:
    """The detail goes in the panel, not in the dataset select: a long option would widen the page."""
    detail = "the job broker is unreachable: connection refused. Start it"
    for path in ("**/datasets", "**/jobs"):
        page.route(path, lambda route: route.fulfill(status=503, json={"detail": detail}))
    page.reload()
    expect(page.locator("#dataset option")).to_have_text("datasets unavailable")
    expect(page.locator("#datasets-body")).to_have_text(f"Datasets unavailable — 503: {detail}")
    expect(page.locator("#jobs-error")).to_have_text(f"Jobs unavailable — 503: {detail}")


def test_the_job_states_come_from_the_openapi_document(page: Page, server: Server) -> None:
    """The page groups the states /openapi.json lists: one it does not know of yet counts as active."""
    with server.client() as client:
        [job] = [job for job in client.get("/jobs").raise_for_status().json() if job["state"] == "succeeded"]
        openapi = client.get("/openapi.json").raise_for_status().json()
    listed = openapi["components"]["schemas"]["JobState"]["enum"]
    assert "succeeded" in listed, listed
    openapi["components"]["schemas"]["JobState"] = {"type": "string", "enum": [*listed, "waiting"]}
    waiting = {
        **job,
        "state": "waiting",
        "seconds_left": 30,
        "progress": {**job["progress"], "eta_seconds": 30},
    }
    page.route("**/openapi.json", lambda route: route.fulfill(json=openapi))
    page.route("**/jobs", lambda route: route.fulfill(json=[waiting]))
    page.reload()
    row = page.locator(f"#jobs-body tr.job[data-job-id='{job['id']}']")
    expect(row.locator("td").nth(2)).to_have_text("waiting")
    expect(row.locator("td").nth(4)).to_have_text("30 s")  # an ETA, as for any active job
    expect(row.get_by_role("button", name="Cancel")).to_have_count(1)
    expect(row.get_by_role("button", name="Delete")).to_have_count(0)


def test_a_missing_job_state_list_is_said_in_the_console(page: Page) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.route("**/openapi.json", lambda route: route.fulfill(json={"openapi": "3.1.0"}))
    page.reload()
    row = page.locator("#jobs-body tr.job").first
    expect(row).to_contain_text("succeeded")
    expect(row.get_by_role("button", name="Delete")).to_have_count(1)  # the page's own list still works
    assert any("lists no job states" in error for error in errors), errors


def open_download_menu(page: Page) -> None:
    """Open the Download menu under the result (a <details>), so that its items (PNG, PSD, ORA) can be clicked."""
    menu = page.get_by_test_id("download-menu")
    menu.scroll_into_view_if_needed()
    if menu.get_attribute("open") is None:
        menu.locator("summary").click()
    expect(menu).to_have_attribute("open", "")


FITS_THE_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll("body *")].filter((element) => {
    if (element.closest(".table-scroll") && !element.classList.contains("table-scroll")) return false;
    const box = element.getBoundingClientRect();
    return box.width > 0 && (box.right > width + 1 || box.left < -1);
  });
  return {scroll: document.documentElement.scrollWidth, width,
          wide: wide.slice(0, 5).map((element) => element.outerHTML.slice(0, 80))};
}"""


@pytest.mark.parametrize("width", [360, 390, 430])
def test_the_page_works_at_phone_width(browser: Browser, server: Server, tmp_path: Path, width: int) -> None:
    """Nothing wider than the screen (the jobs table scrolls in its own box), and every control clicks."""
    context = browser.new_context(viewport={"width": width, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    errors: list[str] = []
    phone.on("pageerror", lambda error: errors.append(str(error)))
    try:
        phone.goto(server.base_url + "/")
        expect(phone.get_by_test_id("model-status")).to_have_text("model version 2", timeout=15_000)
        expect(phone.locator("#jobs-body tr.job").first).to_be_visible(timeout=15_000)
        layout = phone.evaluate(FITS_THE_SCREEN)
        assert layout["scroll"] <= width and not layout["wide"], f"wider than a {width} px screen: {layout}"
        for name in ("Eraser", "Pen", "Clear"):  # exact: "Hint eraser" and "Clear hints" are buttons too
            phone.get_by_role("button", name=name, exact=True).click()
        sketch_file = tmp_path / "tall.png"
        draw_sketch(240, 420, seed=4).save(sketch_file)
        phone.locator("#upload").set_input_files(str(sketch_file))
        phone.get_by_label("Result size").select_option("original")
        phone.get_by_role("button", name="Colorize").click()
        expect(phone.get_by_test_id("result-caption")).to_contain_text("240x420", timeout=20_000)
        open_download_menu(phone)
        with phone.expect_download():
            phone.get_by_role("link", name="PNG").click()
        phone.locator("#jobs-body tr.job").first.click()
        expect(phone.locator("#chart-panel")).to_be_visible()
        launch = phone.get_by_role("button", name="Launch training")
        launch.scroll_into_view_if_needed()
        box = launch.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, f"launch button off-screen: {box}"
        keep_screenshot(phone, f"page-phone-{width}.png")
        assert phone.evaluate(FITS_THE_SCREEN)["scroll"] <= width, (
            "a result made the page wider than the screen"
        )
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_the_models_panel_pins_a_version_and_goes_back_to_latest(page: Page, server: Server) -> None:
    rows = page.locator("#models-body tr")
    expect(rows).to_have_count(2, timeout=15_000)
    expect(page.locator('#models-body tr[data-version="2"]')).to_contain_text("served")
    expect(page.locator('#models-body tr[data-version="2"] img.thumb')).to_be_visible()
    try:
        page.locator('#models-body tr[data-version="1"]').get_by_role("button", name="Serve").click()
        # "Serving" only once the server serves it (loading it takes a poll interval and the load).
        expect(page.get_by_test_id("model-status")).to_have_text("model version 1", timeout=15_000)
        expect(page.get_by_test_id("policy-line")).to_contain_text("Pinned: serving version 1")
        page.get_by_label("Model version").select_option("2")
        page.locator("#upload").set_input_files(
            files=[{"name": "s.png", "mimeType": "image/png", "buffer": encode(draw_sketch(seed=8))}]
        )
        page.get_by_role("button", name="Colorize").click()
        expect(page.get_by_test_id("result-caption")).to_contain_text("model version 2", timeout=20_000)
        page.get_by_role("button", name="Back to latest").click()
        expect(page.get_by_test_id("model-status")).to_have_text("model version 2", timeout=15_000)
        expect(page.get_by_test_id("policy-line")).to_contain_text("newest version that passed")
    finally:
        with server.client() as client:
            client.put("/models/active", json={"version": "latest"})


def test_the_api_docs_render_offline(browser: Browser, server: Server) -> None:
    """/docs works with no internet: Swagger UI's script and style come from the server itself."""
    context = browser.new_context()
    outside: list[str] = []

    def only_local(route) -> None:
        if route.request.url.startswith(server.base_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    docs = context.new_page()
    try:
        docs.goto(server.base_url + "/docs")
        expect(docs.locator(".swagger-ui .info .title")).to_contain_text("sketch2color", timeout=20_000)
        expect(docs.locator(".opblock-summary-path", has_text="/colorize").first).to_be_visible()
        expect(docs.get_by_role("button", name="Authorize")).to_be_visible()
    finally:
        context.close()
    assert not outside, f"/docs asked the internet for {outside}"


def test_the_launch_form_starts_small_and_estimates_the_time(page: Page) -> None:
    """Defaults that finish in minutes on a CPU, and how long they take here, from a measured speed."""
    form = page.locator("#launch")
    assert form.locator('input[name="steps"]').input_value() == "300"
    assert form.locator('input[name="ngf"]').input_value() == "16"
    estimate = page.get_by_test_id("launch-estimate")
    expect(estimate).to_contain_text("Expect about", timeout=15_000)
    expect(estimate).to_contain_text("at width 16")
    small = estimate.text_content()
    form.locator('input[name="ngf"]').fill("64")
    expect(estimate).to_contain_text("at width 64")
    assert estimate.text_content() != small


def test_the_last_results_stay_in_a_history(page: Page) -> None:
    history = page.get_by_test_id("history").locator("button")
    for seed in (1, 2):
        page.locator("#upload").set_input_files(
            files=[
                {"name": f"s{seed}.png", "mimeType": "image/png", "buffer": encode(draw_sketch(seed=seed))}
            ]
        )
        page.get_by_role("button", name="Colorize").click()
        expect(history).to_have_count(seed, timeout=20_000)
    newest = page.locator("#result").get_attribute("src")
    history.nth(1).click()
    assert page.locator("#result").get_attribute("src") != newest, "a click shows the older result"
    expect(page.locator("#download")).to_have_attribute("download", re.compile("^s1-colored"))


def test_a_zip_uploaded_from_the_page_becomes_a_ready_dataset(browser: Browser, tmp_path: Path) -> None:
    """A real job system (API and importer): upload pictures in a zip, watch it import, train from it."""
    import zipfile

    from tests.support import JobSystem

    archive = tmp_path / "pictures.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for seed in range(6):
            zipped.writestr(f"pics/{seed}.png", encode(draw_sketch(120, 90, seed=seed).convert("RGB")))
    system = JobSystem(tmp_path / "system", broker_url=None)
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        system.start_api()
        system.start_worker("importer", queues="datasets")
        page = context.new_page()
        page.goto(system.base_url + "/")
        form = page.locator("#dataset-upload")
        form.get_by_label("Name").fill("page-upload")
        form.get_by_label("Contents").select_option("pictures")
        form.get_by_label("Zip file").set_input_files(str(archive))
        form.get_by_role("button", name="Upload").click()
        message = page.locator("#datasets-message")
        expect(message).to_contain_text(
            re.compile("Uploaded page-upload: importing…|page-upload is imported")
        )
        row = page.locator('#datasets-body tr[data-dataset="page-upload"]')
        expect(row).to_contain_text("ready", timeout=60_000)
        expect(row).to_contain_text("5 train / 1 val")
        # The message follows the import: it does not say "importing…" once the dataset is ready.
        expect(message).to_have_text("page-upload is imported: 5 train / 1 val pairs, ready to train on.")
        row.get_by_role("link", name="show").click()
        expect(row.locator("img.preview")).to_be_visible()
        expect(page.locator("#dataset option", has_text="page-upload")).to_have_count(1)
        bad = tmp_path / "bad.zip"
        with zipfile.ZipFile(bad, "w") as zipped:
            zipped.writestr("../escape.png", b"x")
        form.get_by_label("Name").fill("evil")
        form.get_by_label("Zip file").set_input_files(str(bad))
        form.get_by_role("button", name="Upload").click()
        expect(page.locator("#datasets-error")).to_contain_text("path traversal")
        keep_screenshot(page, "page-datasets.png")
    finally:
        context.close()
        system.close()
