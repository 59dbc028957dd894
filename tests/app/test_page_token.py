"""The page on a server with an API token, and on a phone, in a real Chromium against real servers: the panels that
need the token (datasets, training, model changes) say so and ask for it in one place (the header) instead of
showing 401 errors or empty lists; entering it unlocks them without a reload; a wrong one is said once. Colorizing
needs no token. At phone width a new result below the sketch is brought into view."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.app.browser import keep_screenshot
from tests.app.conftest import DATASET, Server, serve_version_1
from tests.app.test_page import FITS_THE_SCREEN
from tests.app.test_page_hints import after, drag, open_page
from tests.conftest import TINY_WIDTH, publish_tiny_generator

TOKEN = "page-token-secret"
PHONE_WIDTHS = [360, 390, 430]
LOCKS = ("datasets-locked", "jobs-locked", "models-locked", "batches-locked")
# Everything a person can see that says "401": text on the page and the options of every select.
SHOWN_401 = """() => [document.body.innerText, ...[...document.querySelectorAll("option")].map((o) => o.text)]
  .filter((text) => text.includes("401"))"""
RESULT_IN_VIEW = """() => {
  const box = document.getElementById("result-frame").getBoundingClientRect();
  return box.top >= -1 && box.bottom <= window.innerHeight + 1;
}"""


def make_data(data_dir: Path) -> str:
    """A published tiny generator, the dataset DATASET, and one finished job record on it; return the job id."""
    from contracts.job_record import Job
    from contracts.job_states import JobState
    from contracts.jobs import create_record, new_job_id, new_record, update_record, utc_now
    from contracts.train_config import TrainConfig
    from model.synthetic import make_synthetic_dataset

    publish_tiny_generator(data_dir / "models", seed=1)
    make_synthetic_dataset(data_dir / "datasets" / DATASET, train=4, val=2, seed=0)
    params = TrainConfig(steps=10, batch_size=2, ngf=TINY_WIDTH, ndf=TINY_WIDTH)
    job_id = new_job_id()
    create_record(data_dir / "runs" / job_id, new_record(job_id, DATASET, params, params.steps))

    def finish(record: Job) -> None:  # as a worker leaves it: all its steps done, its version published
        record.state = JobState.SUCCEEDED
        record.started_at = record.finished_at = utc_now()
        record.progress.step = params.steps
        record.progress.version = 1

    update_record(data_dir / "runs" / job_id, finish)
    return job_id


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve_version_1(tmp_path_factory.mktemp("page-no-token"), make_data)


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve_version_1(tmp_path_factory.mktemp("page-token"), make_data, api_token=TOKEN)


def phone(browser: Browser, server: Server, width: int) -> tuple[Page, list[str]]:
    return open_page(
        browser, server, viewport={"width": width, "height": 844}, is_mobile=True, has_touch=True
    )


def assert_fits(page: Page, width: int) -> None:
    layout = page.evaluate(FITS_THE_SCREEN)
    assert layout["scroll"] <= width and not layout["wide"], f"wider than a {width} px screen: {layout}"


def assert_unlocked(page: Page) -> None:
    """The datasets and the jobs are listed, no lock line or error shows, nothing says 401."""
    expect(page.locator(f'#datasets-body tr[data-dataset="{DATASET}"]')).to_be_visible(timeout=15_000)
    expect(page.locator("#jobs-body tr.job")).to_have_count(1, timeout=15_000)
    expect(page.locator("#dataset")).to_have_value(DATASET)
    for lock in LOCKS:
        expect(page.get_by_test_id(lock)).to_be_hidden()
    for error in ("#datasets-error", "#jobs-error", "#models-error"):
        expect(page.locator(error)).to_be_hidden()
    assert page.evaluate(SHOWN_401) == []


def assert_locked(page: Page) -> None:
    """Each panel that needs the token says so, in place of its controls; no error, no empty list, no 401."""
    expect(page.locator("body")).to_have_attribute("data-token", "needed", timeout=15_000)
    expect(page.get_by_test_id("token-form")).to_be_visible()
    for lock in LOCKS:
        expect(page.get_by_test_id(lock)).to_be_visible()
        expect(page.get_by_test_id(lock)).to_contain_text("This server needs an API token")
    for hidden in ("#dataset-upload", "#datasets-body", "#launch", "#jobs-body", "#set-label", "#jobs-error",
                   "#batch-upload", "#batches-body"):  # fmt: skip
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.get_by_text("No datasets yet")).to_have_count(0)
    assert page.evaluate(SHOWN_401) == []
    expect(page.get_by_test_id("model-status")).to_have_text("model version 1")  # GET /models needs none
    expect(page.locator("#models-body tr[data-version='1']")).to_be_visible()


@pytest.mark.parametrize("width", PHONE_WIDTHS)
def test_without_a_token_configured_nothing_is_locked(
    browser: Browser, open_server: Server, width: int
) -> None:
    page, errors = phone(browser, open_server, width)
    try:
        assert_unlocked(page)
        expect(page.locator("body")).to_have_attribute("data-token", "open")
        expect(page.get_by_test_id("token-form")).to_be_hidden()  # nothing to ask for
        assert_fits(page, width)
    finally:
        page.context.close()
    assert not errors, errors


@pytest.mark.parametrize("width", PHONE_WIDTHS)
def test_the_panels_ask_for_the_token_and_unlock_when_it_is_entered(
    browser: Browser, token_server: Server, width: int
) -> None:
    page, errors = phone(browser, token_server, width)
    try:
        assert_locked(page)
        assert_fits(page, width)
        if width == 390:
            keep_screenshot(page, "page-token-needed-390.png")
        page.get_by_test_id("datasets-locked").get_by_role("button", name="Enter the token").click()
        expect(page.locator("#token")).to_be_focused()

        page.evaluate("window.notReloaded = true")
        page.locator("#token").fill(TOKEN)
        page.locator("#token").press("Enter")
        assert_unlocked(page)
        expect(page.locator("body")).to_have_attribute("data-token", "accepted")
        assert page.evaluate("window.notReloaded === true"), "the page reloaded"
        assert_fits(page, width)
        if width == 390:
            keep_screenshot(page, "page-token-entered-390.png")
    finally:
        page.context.close()
    assert not errors, errors


def test_the_desktop_page_before_and_after_the_token(
    browser: Browser, token_server: Server, tmp_path: Path
) -> None:
    """Screenshots at 1280 px; colorizing works while the panels are locked, and sends no token."""
    from tests.app.conftest import draw_sketch, encode

    page, errors = open_page(browser, token_server)
    try:
        assert_locked(page)
        page.locator("#upload").set_input_files(
            files=[{"name": "s.png", "mimeType": "image/png", "buffer": encode(draw_sketch(seed=3))}]
        )
        with page.expect_request(lambda request: "/colorize" in request.url) as sent:
            page.get_by_role("button", name="Colorize").click()
        expect(page.get_by_test_id("result-caption")).to_contain_text("model version 1", timeout=20_000)
        assert "authorization" not in sent.value.headers
        keep_screenshot(page, "page-token-needed-1280.png")
        page.locator("#token").fill(TOKEN)
        page.get_by_role("button", name="Use token").click()
        assert_unlocked(page)
        expect(page.locator('#models-body tr[data-version="1"]')).to_be_visible()
        keep_screenshot(page, "page-token-entered-1280.png")
    finally:
        page.context.close()
    assert not errors, errors


def test_a_wrong_token_is_said_once_near_the_field(browser: Browser, token_server: Server) -> None:
    page, errors = open_page(browser, token_server)
    try:
        assert_locked(page)
        page.locator("#token").fill("not-the-token")
        page.get_by_role("button", name="Use token").click()
        message = page.get_by_test_id("token-message")
        expect(message).to_have_text("The server refused this token. Check it and enter it again.")
        expect(page.locator("body")).to_have_attribute("data-token", "wrong")
        page.wait_for_timeout(3500)  # one more round of polling: still said once
        expect(page.get_by_text("refused", exact=False)).to_have_count(1)
        for lock in LOCKS:
            expect(page.get_by_test_id(lock)).to_be_visible()
        assert page.evaluate(SHOWN_401) == []

        page.locator("#token").fill(TOKEN)
        page.locator("#token").press("Enter")
        assert_unlocked(page)
        expect(message).to_be_hidden()
    finally:
        page.context.close()
    assert not errors, errors


def test_the_token_is_kept_for_the_tab_and_enter_launches_nothing(
    browser: Browser, token_server: Server
) -> None:
    page, errors = open_page(browser, token_server)
    launches = []
    page.on(
        "request", lambda r: launches.append(r) if r.method == "POST" and r.url.endswith("/jobs") else None
    )
    try:
        assert_locked(page)
        page.locator("#token").fill(TOKEN)
        page.locator("#token").press("Enter")
        assert_unlocked(page)
        assert not launches, "pressing Enter in the token field launched a job"
        assert page.evaluate("localStorage.length") == 0, "the token is kept for the tab only"
        with page.expect_request(lambda request: request.url.endswith("/jobs")) as jobs_request:
            page.reload()
        assert jobs_request.value.headers.get("authorization") == f"Bearer {TOKEN}"
        expect(page.locator("#token")).to_have_value(TOKEN)
        assert_unlocked(page)
    finally:
        page.context.close()
    assert not errors, errors


def test_at_phone_width_the_result_comes_into_view(browser: Browser, open_server: Server) -> None:
    """After Colorize the result below the sketch scrolls into view; after a hint stroke the page stays where the
    user draws and a chip offers the result, one tap away."""
    page, errors = phone(browser, open_server, 390)
    try:
        page.get_by_test_id("tool-pen").click()
        drag(page, [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8), (0.2, 0.2)])
        page.evaluate("window.scrollTo(0, 0)")
        assert not page.evaluate(RESULT_IN_VIEW), "the test needs the result off screen at first"
        page.get_by_role("button", name="Colorize").click()
        expect(page.locator("#result")).to_be_visible(timeout=20_000)
        page.wait_for_function(RESULT_IN_VIEW)
        expect(page.get_by_test_id("result-chip")).to_be_hidden()

        page.get_by_test_id("swatch-red").click()
        page.get_by_test_id("hint-canvas").evaluate("canvas => canvas.scrollIntoView({block: 'end'})")
        assert not page.evaluate(RESULT_IN_VIEW)
        scrolled = page.evaluate("window.scrollY")
        after(page, lambda: drag(page, [(0.3, 0.5), (0.7, 0.5)]))
        assert page.evaluate("window.scrollY") == scrolled, "the page moved under the user's stroke"
        chip = page.get_by_test_id("result-chip")
        expect(chip).to_have_text("Result ready ↓")
        chip.tap()
        page.wait_for_function(RESULT_IN_VIEW)
        expect(chip).to_be_hidden()
    finally:
        page.context.close()
    assert not errors, errors
