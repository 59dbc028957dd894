"""The page's color hints, in a real Chromium against a real server: the brush paints on a layer of its own over the
sketch, and what leaves the browser is the multipart field `hints` of `POST /colorize`, an RGBA PNG of the sketch's
size whose alpha marks the hint pixels. The tests only watch the requests the page sends; nothing is mocked."""

import base64
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Request, expect

from tests.app.browser import keep_screenshot
from tests.app.conftest import Server, draw_sketch, encode
from tests.app.test_page import FITS_THE_SCREEN, READ_RESULT_IMAGE

RED = (229, 57, 53)  # the first swatch, #e53935
BLUE = (30, 136, 229)  # #1e88e5
STROKE = [(0.3, 0.5), (0.7, 0.5)]  # a horizontal stroke across the middle, in fractions of the canvas
DEBOUNCE_SECONDS = 0.4
# The Colorize button says whether a colorize request is due or out (see app/web/colorize.js).
RECOLOR_IDLE = "() => document.getElementById('colorize').dataset.recolor === 'idle'"
LATENCY_MS = 3000  # a slow network, for the test of one request at a time


def open_page(browser: Browser, server: Server, **options) -> tuple[Page, list[str]]:
    context = browser.new_context(**({"viewport": {"width": 1280, "height": 1000}} | options))
    # Chromium reports no body for a request built from blobs unless the request passes through a route: this one
    # lets every colorize request through unchanged, so that the tests can read what the page sent.
    context.route("**/colorize*", lambda route: route.continue_())
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(server.base_url + "/")
    expect(opened.get_by_test_id("model-status")).to_contain_text("model version", timeout=15_000)
    return opened, errors


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    opened, errors = open_page(browser, server)
    yield opened
    opened.context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def is_colorize(request: Request) -> bool:
    return request.method == "POST" and "/colorize" in request.url


def multipart(request: Request) -> dict[str, bytes]:
    """The parts of a multipart/form-data request body, by field name."""
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data"), content_type
    boundary = content_type.split("boundary=", 1)[1].encode()
    body = request.post_data_buffer
    assert body is not None, "the request carries no body"
    parts = {}
    for chunk in body.split(b"--" + boundary)[1:-1]:
        head, _, content = chunk[2:].partition(b"\r\n\r\n")
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        parts[name] = content[:-2]  # the CRLF before the next boundary
    return parts


def hint_layer(request: Request) -> np.ndarray:
    """The request's `hints` part, after checking it is an RGBA PNG: as an HxWx4 array."""
    parts = multipart(request)
    assert "hints" in parts, f"no hints field; fields: {sorted(parts)}"
    image = Image.open(io.BytesIO(parts["hints"]))
    assert image.format == "PNG" and image.mode == "RGBA", f"hints is a {image.format} {image.mode} image"
    return np.asarray(image)


def image_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def drag(page: Page, stroke: list[tuple[float, float]], steps: int = 10) -> None:
    """A mouse stroke over the canvases (the hint layer on top takes the pointer), in fractions of their box; the
    canvases are scrolled into view first, as a person would (on a phone they start below the tools)."""
    canvas = page.get_by_test_id("hint-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    x, y = stroke[0]
    page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
    page.mouse.down()
    for x, y in stroke[1:]:
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=steps)
    page.mouse.up()


def draw_a_sketch_and_colorize(page: Page) -> Request:
    page.get_by_test_id("tool-pen").click()
    drag(page, [(0.15, 0.15), (0.85, 0.15), (0.85, 0.85), (0.15, 0.85), (0.15, 0.15)])
    with page.expect_request(is_colorize) as first:
        page.get_by_role("button", name="Colorize").click()
    settle(page)
    return first.value


def settle(page: Page) -> None:
    """Wait until no colorize request is due or out, and the result is on screen."""
    page.wait_for_function(RECOLOR_IDLE)
    expect(page.locator("#result")).to_be_visible()


def after(page: Page, action: Callable[[], None]) -> Request:
    """The colorize request that `action` sets off (after the debounce), once its answer is shown."""
    with page.expect_request(is_colorize, timeout=10_000) as sent:
        action()
    settle(page)
    return sent.value


def sketch_pixels(page: Page) -> np.ndarray:
    data = page.evaluate("document.getElementById('sketch').toDataURL('image/png').split(',')[1]")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def test_a_brush_stroke_is_sent_as_an_rgba_layer_of_the_sketch_size(page: Page) -> None:
    first = draw_a_sketch_and_colorize(page)
    assert "hints" not in multipart(first), "an empty hint layer is not sent"
    expect(page.get_by_test_id("tool-caption")).to_have_text("Tool: pen")

    page.get_by_test_id("swatch-red").click()
    expect(page.get_by_test_id("tool-brush")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("tool-pen")).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_test_id("tool-caption")).to_have_text("Tool: color brush")
    before = sketch_pixels(page)
    request = after(page, lambda: drag(page, STROKE))

    parts = multipart(request)
    assert image_size(parts["file"]) == (512, 512)
    hints = hint_layer(request)
    assert hints.shape == (512, 512, 4), "the hint layer has the size of the sketch sent with it"
    # The brush is 12 of 256 wide, so 24 canvas pixels: rows 244-268 along x 154-358, with round caps.
    stroke = hints[250:263, 160:352]
    assert (stroke[..., 3] == 255).all(), "the stroke is opaque"
    assert np.abs(stroke[..., :3].astype(int) - RED).max() <= 1, "the stroke has the brush's color"
    outside = np.ones(hints.shape[:2], bool)
    outside[238:275, 135:378] = False
    assert (hints[outside][:, 3] == 0).all(), "the layer is transparent away from the stroke"
    assert np.array_equal(sketch_pixels(page), before), "the color brush never touches the sketch"
    expect(page.get_by_test_id("result-caption")).to_contain_text("with hints")
    expect(page.get_by_test_id("hint-note")).to_be_hidden()


def test_the_hint_eraser_removes_hint_pixels_and_undo_brings_them_back(page: Page) -> None:
    draw_a_sketch_and_colorize(page)
    before = sketch_pixels(page)
    page.get_by_test_id("swatch-blue").click()
    painted = hint_layer(after(page, lambda: drag(page, STROKE)))
    assert (painted[256, 170:340, 3] == 255).all()
    assert np.abs(painted[256, 170:340, :3].astype(int) - BLUE).max() <= 1

    page.get_by_role("button", name="Hint eraser").click()
    expect(page.get_by_test_id("tool-hint-eraser")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("tool-caption")).to_have_text("Tool: hint eraser")
    erased = hint_layer(after(page, lambda: drag(page, [(0.5, 0.3), (0.5, 0.7)])))  # across the middle
    assert (erased[256, 246:266, 3] == 0).all(), "the eraser took the hint pixels away"
    assert (erased[256, 170:220, 3] == 255).all() and (erased[256, 300:340, 3] == 255).all(), (
        "only where it went"
    )
    assert np.array_equal(sketch_pixels(page), before), "the hint eraser leaves the sketch alone"

    undone = hint_layer(after(page, lambda: page.get_by_role("button", name="Undo hint").click()))
    assert np.array_equal(undone, painted), "undo restores the layer as it was before the eraser stroke"

    cleared = after(page, lambda: page.get_by_role("button", name="Clear hints").click())
    assert "hints" not in multipart(cleared), "an emptied layer is not sent"
    page.locator("body").click(position={"x": 5, "y": 5})  # focus outside any text field
    again = after(page, lambda: page.keyboard.press("Control+z"))
    assert np.array_equal(hint_layer(again), painted), "Ctrl+Z undoes the clear"
    after(page, lambda: page.get_by_role("button", name="Undo hint").click())
    expect(page.get_by_role("button", name="Undo hint")).to_be_disabled()


def test_hints_off_sends_no_hints_field(page: Page) -> None:
    draw_a_sketch_and_colorize(page)
    page.get_by_test_id("swatch-green").click()
    assert hint_layer(after(page, lambda: drag(page, STROKE)))[256, 256, 3] == 255
    toggle = page.get_by_label("Hints on")
    off = after(page, lambda: toggle.uncheck())
    assert "hints" not in multipart(off), "hints off: no hints field"
    expect(page.locator("#canvas-stack")).to_have_class("canvas-stack hints-off")
    expect(page.get_by_test_id("result-caption")).not_to_contain_text("with hints")
    with page.expect_request(is_colorize) as clicked:  # a click with hints off sends none either
        page.get_by_role("button", name="Colorize").click()
    settle(page)
    assert "hints" not in multipart(clicked.value)
    on = after(page, lambda: toggle.check())
    assert hint_layer(on)[256, 256, 3] == 255, "back on: the kept hints are sent again"


def test_a_quick_burst_of_strokes_sends_one_request(page: Page) -> None:
    draw_a_sketch_and_colorize(page)
    page.get_by_test_id("swatch-orange").click()
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request) if is_colorize(request) else None)
    rows = (0.3, 0.4, 0.5, 0.6, 0.7)
    for _attempt in range(3):  # on a busy machine a pause between two strokes may outlast the debounce: again
        sent.clear()
        pauses, ended = [], None
        for row in rows:  # each stroke starts well within the debounce after the previous one ends
            if ended is not None:
                pauses.append(time.monotonic() - ended)
            drag(page, [(0.3, row), (0.7, row)], steps=4)
            ended = time.monotonic()
        page.wait_for_timeout(1500)
        settle(page)
        if max(pauses) < DEBOUNCE_SECONDS * 0.75:
            break
    else:
        pytest.fail(f"no burst of strokes quick enough to test the debounce; pauses {pauses}")
    assert len(sent) == 1, f"{len(sent)} requests for one burst of strokes (pauses {pauses})"
    hints = hint_layer(sent[0])
    for row in rows:
        assert hints[int(row * 512), 256, 3] == 255, f"the stroke at {row} is in the one request"


def test_one_request_at_a_time_and_the_latest_state_after_it(page: Page) -> None:
    """With a slow network, strokes painted while a request is out wait for it; then their sum goes at once."""
    draw_a_sketch_and_colorize(page)
    page.get_by_test_id("swatch-purple").click()
    events: list[tuple[str, Request]] = []
    page.on("request", lambda request: events.append(("sent", request)) if is_colorize(request) else None)
    for done in ("requestfinished", "requestfailed"):
        page.on(done, lambda request: events.append(("back", request)) if is_colorize(request) else None)

    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": LATENCY_MS, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    drag(page, [(0.3, 0.3), (0.7, 0.3)])
    page.wait_for_timeout(600)  # the first request is out now, for at least 3 s
    assert [kind for kind, _ in events] == ["sent"], events
    drag(page, [(0.3, 0.5), (0.7, 0.5)])
    page.wait_for_timeout(500)  # its debounce has passed while the first one is still out
    drag(page, [(0.3, 0.7), (0.7, 0.7)])
    page.wait_for_timeout(500)
    assert [kind for kind, _ in events] == ["sent"], f"the first request is still out: {events}"
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    page.wait_for_function(RECOLOR_IDLE, timeout=15_000)
    page.wait_for_timeout(300)
    kinds = [kind for kind, _ in events]
    assert kinds == ["sent", "back", "sent", "back"], f"two requests, one after the other: {kinds}"
    first, latest = hint_layer(events[0][1]), hint_layer(events[2][1])
    assert first[int(0.3 * 512), 256, 3] == 255 and first[int(0.7 * 512), 256, 3] == 0
    for row in (0.3, 0.5, 0.7):
        assert latest[int(row * 512), 256, 3] == 255, "the second request carries every stroke painted since"


def test_an_uploaded_sketch_gets_its_hints_at_its_own_size(page: Page, tmp_path: Path) -> None:
    sketch_file = tmp_path / "wide.png"
    sketch_file.write_bytes(encode(draw_sketch(360, 220, seed=3)))
    page.locator("#upload").set_input_files(str(sketch_file))
    expect(page.locator("#sketch-caption")).to_contain_text("wide.png")
    page.get_by_test_id("swatch-red").click()
    request = after(page, lambda: drag(page, [(0.45, 0.5), (0.55, 0.5)]))  # an upload colorizes as you paint
    # Chromium does not show the bytes of a file the user chose (only of blobs made in the page): its part's name.
    assert b'name="file"; filename="wide.png"' in (request.post_data_buffer or b""), (
        "the upload is sent as is"
    )
    expect(page.get_by_test_id("result-caption")).to_contain_text("with hints")
    hints = hint_layer(request)
    assert hints.shape == (220, 360, 4), "the hints have the uploaded image's own size"
    assert (hints[105:115, 170:190, 3] == 255).all(), "the stroke lands where it was painted over the preview"
    assert np.abs(hints[110, 180, :3].astype(int) - RED).max() <= 2
    assert hints[:95, :, 3].max() == 0 and hints[125:, :, 3].max() == 0 and hints[:, :140, 3].max() == 0


def test_a_version_that_ignores_hints_gets_a_note_and_no_hints_field(page: Page, server: Server) -> None:
    """The shared server's version 1 was published without hints (GET /models says `hints: false`)."""
    with server.client() as client:
        versions = {
            entry["version"]: entry for entry in client.get("/models").raise_for_status().json()["versions"]
        }
    assert versions[1]["hints"] is False and versions[2]["hints"] is True
    draw_a_sketch_and_colorize(page)
    page.get_by_test_id("swatch-red").click()
    assert hint_layer(after(page, lambda: drag(page, STROKE)))[256, 256, 3] == 255  # version 2 takes them
    expect(page.get_by_test_id("hint-note")).to_be_hidden()

    page.get_by_label("Model version").select_option("1")
    expect(page.get_by_test_id("hint-note")).to_contain_text("version 1 ignores hints")
    expect(page.get_by_test_id("hint-note")).to_contain_text("train with hints on")
    request = after(page, lambda: drag(page, [(0.3, 0.6), (0.7, 0.6)]))  # the brush still paints
    assert "hints" not in multipart(request), "a version that ignores hints gets no hints field"
    expect(page.get_by_test_id("result-caption")).to_contain_text("model version 1")
    expect(page.locator("#colorize-error")).to_be_hidden()
    keep_screenshot(page, "page-hints-ignored.png")

    page.get_by_label("Model version").select_option("")
    expect(page.get_by_test_id("hint-note")).to_be_hidden()


@pytest.mark.parametrize("width", [360, 390])
def test_the_hint_controls_fit_a_phone(browser: Browser, server: Server, width: int) -> None:
    phone, errors = open_page(
        browser, server, viewport={"width": width, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        layout = phone.evaluate(FITS_THE_SCREEN)
        assert layout["scroll"] <= width and not layout["wide"], f"wider than a {width} px screen: {layout}"
        for control in (
            "tool-brush",
            "tool-hint-eraser",
            "swatch-brown",
            "hint-color",
            "hint-size",
            "hint-clear",
        ):
            box = phone.get_by_test_id(control).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, f"{control} off-screen: {box}"
        draw_a_sketch_and_colorize(phone)
        phone.get_by_test_id("swatch-yellow").click()
        after(phone, lambda: drag(phone, [(0.25, 0.3), (0.6, 0.35)]))
        phone.get_by_test_id("swatch-blue").click()
        after(phone, lambda: drag(phone, [(0.3, 0.65), (0.7, 0.6)]))
        phone.get_by_test_id("hint-canvas").scroll_into_view_if_needed()
        assert phone.evaluate(FITS_THE_SCREEN)["scroll"] <= width
        keep_screenshot(phone, f"page-hints-phone-{width}.png")
    finally:
        phone.context.close()
    assert not errors, errors


def test_desktop_screenshot_with_hints(page: Page) -> None:
    draw_a_sketch_and_colorize(page)
    for swatch, stroke in (("red", [(0.3, 0.3), (0.5, 0.35)]), ("blue", [(0.4, 0.65), (0.7, 0.7)])):
        page.get_by_test_id(f"swatch-{swatch}").click()
        after(page, lambda stroke=stroke: drag(page, stroke))
    page.locator("#colorize-title").scroll_into_view_if_needed()
    keep_screenshot(page, "page-hints-desktop.png")


def shown_result(page: Page) -> np.ndarray:
    return np.asarray(
        Image.open(io.BytesIO(base64.b64decode(page.evaluate(READ_RESULT_IMAGE)))).convert("RGB")
    )


def test_a_red_stroke_turns_its_region_red(browser: Browser, hinted_server: Server) -> None:
    """End to end with a generator trained with hints: a closed shape, colorized; a pure red stroke inside it; the
    result colorized again as you paint is redder under the stroke and closer to red than it was."""
    page, errors = open_page(browser, hinted_server)
    try:
        draw_a_sketch_and_colorize(page)  # a closed square from 0.15 to 0.85 of the canvas
        plain = shown_result(page).astype(float)
        page.get_by_test_id("hint-color").fill("#ff0000")
        expect(page.get_by_test_id("tool-brush")).to_have_attribute("aria-pressed", "true")
        request = after(page, lambda: drag(page, [(0.35, 0.5), (0.65, 0.5)]))
        layer = hint_layer(request)
        assert tuple(layer[256, 256]) == (255, 0, 0, 255)
        expect(page.get_by_test_id("result-caption")).to_contain_text("with hints")
        hinted = shown_result(page).astype(float)
        keep_screenshot(page, "page-hints-red.png")
    finally:
        page.context.close()
    assert not errors, errors
    under = np.zeros((256, 256), bool)  # the stroke in the 256x256 result: 12 px wide along row 128
    under[124:133, 94:163] = True
    red_before, red_after = plain[under][:, 0].mean(), hinted[under][:, 0].mean()
    distance_before = np.abs(plain[under] - (255, 0, 0)).mean()
    distance_after = np.abs(hinted[under] - (255, 0, 0)).mean()
    print(
        f"under the red stroke: mean RGB {plain[under].mean(0).round(1)} -> {hinted[under].mean(0).round(1)}; "
        f"mean red {red_before:.1f} -> {red_after:.1f}; mean distance to red {distance_before:.1f} -> "
        f"{distance_after:.1f}"
    )
    near = np.zeros(
        (256, 256), bool
    )  # inside the square, beside the stroke: how far the color spreads (reported)
    near[100:118, 94:163] = near[139:157, 94:163] = True
    print(
        f"beside it inside the square: mean RGB {plain[near].mean(0).round(1)} -> {hinted[near].mean(0).round(1)}"
    )
    assert red_after > red_before + 30, (
        f"the region under the stroke turns red: {red_before:.1f} -> {red_after:.1f}"
    )
    assert distance_after < distance_before - 20, (
        f"closer to red than before: mean distance {distance_before:.1f} -> {distance_after:.1f}"
    )
