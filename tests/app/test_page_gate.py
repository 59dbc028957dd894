"""The quality gate on the page, in a real Chromium against real servers: a version the gate held back says why in
its row, in words a phone shows without hover, with a Serve button (locked while the server wants a token) that
pins it; the launch form sends the job's `promote` choice."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.app.browser import ARTIFACTS
from tests.app.conftest import DATASET, Server, serve_version_1, wait_for_version
from tests.app.test_page_hints import open_page
from tests.app.test_page_token import TOKEN, assert_fits
from tests.conftest import publish_tiny_generator

REASON = (
    "validation L1 0.2100 is worse than served version 1's 0.2000: "
    "published, not served (pin it to serve it anyway)"
)
HELD_BACK = '#models-body tr[data-version="2"]'
# The element's box lies inside the screen's width: seen without scrolling the page or the table sideways.
ON_SCREEN = """(element) => {
  const box = element.getBoundingClientRect();
  return box.width > 0 && box.left >= 0 && box.right <= document.documentElement.clientWidth;
}"""


def make_data(data_dir: Path) -> None:
    """Version 1 passed the gate (served), version 2 was held back with REASON; the dataset DATASET to launch on."""
    from model.synthetic import make_synthetic_dataset
    from storage.serving_policy import GateDecision

    passed = GateDecision(passed=True, reason="nothing was served yet")
    held = GateDecision(passed=False, reason=REASON, compared_with=1)
    assert publish_tiny_generator(data_dir / "models", seed=1, gate=passed, val={"l1": 0.2}) == 1
    assert publish_tiny_generator(data_dir / "models", seed=2, gate=held, val={"l1": 0.21}) == 2
    make_synthetic_dataset(data_dir / "datasets" / DATASET, train=4, val=2, seed=0)


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve_version_1(tmp_path_factory.mktemp("page-gate"), make_data)


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve_version_1(tmp_path_factory.mktemp("page-gate-token"), make_data, api_token=TOKEN)


def open_at(browser: Browser, server: Server, width: int) -> tuple[Page, list[str]]:
    if width >= 1000:
        return open_page(browser, server)
    return open_page(
        browser, server, viewport={"width": width, "height": 844}, is_mobile=True, has_touch=True
    )


@pytest.mark.parametrize("width", [390, 1280])
def test_a_held_back_version_says_why_without_hover(
    browser: Browser, open_server: Server, width: int
) -> None:
    page, errors = open_at(browser, open_server, width)
    try:
        row = page.locator(HELD_BACK)
        expect(row.locator(".state")).to_have_text("held back", timeout=15_000)
        reason = row.locator(".gate-reason")
        expect(reason).to_have_text(REASON)
        reason.scroll_into_view_if_needed()
        assert reason.evaluate(ON_SCREEN), f"the reason is off the {width} px screen: {reason.bounding_box()}"
        serve_button = row.locator(".gate").get_by_role("button", name="Serve")
        expect(serve_button).to_be_visible()
        assert serve_button.evaluate(ON_SCREEN), f"Serve is off the {width} px screen"
        expect(row.get_by_role("button", name="Serve")).to_have_count(1)  # not a second one among the actions
        passed = page.locator('#models-body tr[data-version="1"]')
        expect(passed.locator(".state")).to_have_text("passed")
        expect(passed.locator(".gate-reason")).to_have_count(0)
        assert_fits(page, width)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.locator("section", has=page.locator("#models")).screenshot(
            path=str(ARTIFACTS / f"page-gate-{width}.png")
        )
    finally:
        page.context.close()
    assert not errors, errors


def test_serve_pins_the_held_back_version(browser: Browser, open_server: Server) -> None:
    page, errors = open_at(browser, open_server, 390)
    try:
        row = page.locator(HELD_BACK)
        with page.expect_request(lambda r: r.method == "PUT" and r.url.endswith("/models/active")) as sent:
            row.get_by_role("button", name="Serve").click()
        assert sent.value.post_data_json == {"version": 2}
        expect(row).to_contain_text("2 · served", timeout=15_000)
        expect(page.get_by_test_id("policy-line")).to_contain_text("Pinned: serving version 2")
        expect(page.get_by_test_id("model-status")).to_have_text("model version 2", timeout=15_000)
        expect(row.get_by_role("button", name="Serve")).to_have_count(0)
        # Still the gate's decision, now pinned past it.
        expect(row.locator(".gate-reason")).to_have_text(REASON)
    finally:
        page.context.close()
        with open_server.client() as client:
            client.put("/models/active", json={"version": "latest"})
        wait_for_version(open_server, 1)
    assert not errors, errors


def test_serve_is_locked_until_the_token_is_entered(browser: Browser, token_server: Server) -> None:
    page, errors = open_at(browser, token_server, 390)
    try:
        expect(page.locator("body")).to_have_attribute("data-token", "needed", timeout=15_000)
        row = page.locator(HELD_BACK)
        expect(row.locator(".gate-reason")).to_have_text(REASON)  # GET /models is public: the reason shows
        expect(row.get_by_role("button", name="Serve")).to_be_hidden()
        page.locator("#token").fill(TOKEN)
        page.locator("#token").press("Enter")
        expect(page.locator("body")).to_have_attribute("data-token", "accepted", timeout=15_000)
        with page.expect_request(lambda r: r.method == "PUT" and r.url.endswith("/models/active")) as sent:
            row.get_by_role("button", name="Serve").click()
        assert sent.value.headers.get("authorization") == f"Bearer {TOKEN}"
        expect(row).to_contain_text("2 · served", timeout=15_000)
    finally:
        page.context.close()
        with token_server.client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            client.put("/models/active", json={"version": "latest"})
    assert not errors, errors


def test_the_launch_form_sends_the_promote_choice(browser: Browser, open_server: Server) -> None:
    page, errors = open_at(browser, open_server, 1280)
    try:
        promote = page.get_by_label("When it finishes")
        expect(promote).to_have_value("auto")
        expect(page.locator("#dataset")).to_have_value(DATASET, timeout=15_000)
        for choice in ("auto", "never"):
            promote.select_option(choice)
            with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/jobs")) as sent:
                page.get_by_role("button", name="Launch training").click()
            assert sent.value.post_data_json["promote"] == choice
            response = sent.value.response()
            assert response is not None and response.status == 202, response and response.text()
            with open_server.client() as client:
                job = client.get(f"/jobs/{response.json()['id']}").json()
            assert job["params"]["promote"] == choice, job
        expect(promote.locator("option")).to_have_text(
            ["serve it if it passes the quality gate", "always serve it", "publish only"]
        )
    finally:
        page.context.close()
    assert not errors, errors
