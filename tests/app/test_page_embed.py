"""The embeddable widget in a real Chromium, on a page of another origin (examples/embed.html, served by a tiny
static server on another port): it loads the script from the API, draws, colorizes, fires `colorized`; an
origin the API does not list gets a clear error; it fits a phone and works from the keyboard alone."""

import base64
import io
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.app.browser import keep_screenshot
from tests.app.conftest import Server, draw_sketch, encode, run_server, wait_for_version
from tests.support import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "embed.html"
EXAMPLE_API = "http://localhost:8000"  # the address the example page names; the tests put theirs in its place
HINT_COLOR = (0xE0, 0x45, 0x2B)  # the widget's default hint color
SECOND_COLOR = "#2b6cd9"
RECORD_EVENTS = """
window.embedEvents = [];
document.addEventListener("colorized", (event) => window.embedEvents.push(
  {type: "colorized", version: event.detail.version, blobType: event.detail.blob.type, bytes: event.detail.blob.size,
   size: event.detail.size}));
document.addEventListener("colorize-error", (event) => window.embedEvents.push(
  {type: "colorize-error", message: event.detail.error.message, name: event.detail.error.name}));
"""
READ_RESULT = """async () => {
  const image = document.querySelector("sketch-colorizer").shadowRoot.querySelector(".result img");
  const blob = await (await fetch(image.src)).blob();
  return await new Promise((resolve) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.split(",")[1]);
    reader.readAsDataURL(blob);
  });
}"""


class ExampleSite:
    """The example page on an origin of its own: a static server in a thread of this process, on a free port.
    It names the API address set in `api_url` (the API starts after it: its CORS list names this site)."""

    def __init__(self) -> None:
        self.api_url = EXAMPLE_API
        site = self

        class ExamplePage(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = self.path in ("/", "/embed.html")
                body = EXAMPLE.read_text().replace(EXAMPLE_API, site.api_url).encode() if found else b"no"
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # quiet: the tests say what went wrong
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), ExamplePage)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @contextmanager
    def running(self) -> Iterator["ExampleSite"]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(10)


@dataclass
class EmbedSetup:
    api: Server
    allowed_site: str  # an origin the API's S2C_CORS_ORIGINS lists
    other_site: str  # one it does not


@pytest.fixture(scope="module")
def embed_setup(hinted_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbedSetup]:
    """An API serving the session's tiny hint model (with fill=regions a hint dot fills its shape whatever the
    model's colors) that allows the first of two sites."""
    data_dir = tmp_path_factory.mktemp("embed") / "data"
    shutil.copytree(hinted_models_dir, data_dir / "models")
    with ExampleSite().running() as allowed, ExampleSite().running() as other:
        with run_server(data_dir, cors_origins=allowed.url) as api:
            allowed.api_url = other.api_url = api.base_url
            wait_for_version(api, 1)
            yield EmbedSetup(api, allowed.url, other.url)


@contextmanager
def example_page(browser: Browser, site: str, width: int) -> Iterator[Page]:
    """The example page at `width` px, its `colorized` and `colorize-error` events recorded; no JS errors."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.add_init_script(RECORD_EVENTS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(site + "/")
        page.wait_for_function("customElements.get('sketch-colorizer') !== undefined", timeout=15_000)
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def drawing_box(page: Page) -> dict[str, float]:
    box = page.locator("sketch-colorizer .stack").bounding_box()
    assert box is not None, "the drawing is not on the page"
    return box


def draw_outline(page: Page, corners: list[tuple[float, float]]) -> None:
    """A closed outline with the pen, through `corners` (fractions of the drawing's width and height)."""
    box = drawing_box(page)
    page.get_by_role("button", name="Pen", exact=True).click()
    points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in [*corners, corners[0]]]
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point, steps=8)
    page.mouse.up()


def drop_dot(page: Page, x: float, y: float, color: str | None = None) -> None:
    """One bucket dot at (x, y), in `color` (a #rrggbb) or the widget's hint color."""
    box = drawing_box(page)
    if color is not None:
        page.get_by_label("Hint color").fill(color)
    page.get_by_role("button", name="Bucket").click()
    page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])


def draw_square_with_a_dot(page: Page) -> None:
    draw_outline(page, [(0.3, 0.3), (0.7, 0.3), (0.7, 0.7), (0.3, 0.7)])
    drop_dot(page, 0.5, 0.5)


def shown_result(page: Page) -> np.ndarray:
    image = Image.open(io.BytesIO(base64.b64decode(page.evaluate(READ_RESULT))))
    return np.asarray(image.convert("RGB"))


def assert_filled(
    result: np.ndarray, color: tuple[int, int, int], x: tuple[float, float], y: tuple[float, float]
) -> None:
    """The window x by y (fractions of the width and height) of the result is all `color`."""
    height, width, _ = result.shape
    window = result[int(y[0] * height) : int(y[1] * height), int(x[0] * width) : int(x[1] * width)]
    off = np.abs(window.reshape(-1, 3).astype(int) - np.array(color)).max(axis=1)
    assert np.mean(off <= 12) > 0.95, (
        f"the shape should be filled with the hint color {color}; it is mostly "
        f"{tuple(np.median(window.reshape(-1, 3), axis=0).astype(int))}"
    )


def assert_fits(page: Page, width: int) -> None:
    overflow = page.evaluate(
        """() => {
          const frame = document.querySelector("sketch-colorizer").shadowRoot.querySelector(".frame");
          return {page: document.documentElement.scrollWidth, frame: frame.scrollWidth - frame.clientWidth,
                  right: document.querySelector("sketch-colorizer").getBoundingClientRect().right};
        }"""
    )
    assert overflow["page"] <= width and overflow["frame"] <= 0 and overflow["right"] <= width, (
        f"the widget overflows a {width} px page: {overflow}"
    )


def test_a_page_on_another_origin_draws_colorizes_and_hears_the_event(
    browser: Browser, embed_setup: EmbedSetup
) -> None:
    with example_page(browser, embed_setup.allowed_site, 1280) as page:
        draw_outline(page, [(0.1, 0.3), (0.46, 0.3), (0.46, 0.7), (0.1, 0.7)])
        drop_dot(page, 0.28, 0.5)
        draw_outline(page, [(0.54, 0.72), (0.73, 0.28), (0.92, 0.72)])
        drop_dot(page, 0.73, 0.6, SECOND_COLOR)
        page.get_by_role("button", name="Colorize").click()
        page.wait_for_function("window.embedEvents.length > 0", timeout=30_000)
        events = page.evaluate("window.embedEvents")
        assert events[0]["type"] == "colorized", f"expected the colorized event, got {events}"
        assert events[0]["version"] == 1 and events[0]["blobType"] == "image/png" and events[0]["bytes"] > 0
        expect(page.locator("#log")).to_contain_text("Model version 1 drew a 256x256 picture")
        expect(page.get_by_role("link", name="Download")).to_have_attribute("download", "colorized.png")
        result = shown_result(page)
        assert_filled(result, HINT_COLOR, x=(0.2, 0.36), y=(0.4, 0.6))
        assert_filled(result, (0x2B, 0x6C, 0xD9), x=(0.7, 0.76), y=(0.55, 0.65))
        keep_screenshot(page, "embed-desktop.png")
        page.set_viewport_size({"width": 390, "height": 900})
        assert_fits(page, 390)
        keep_screenshot(page, "embed-phone.png")


def test_an_origin_the_api_does_not_list_gets_a_clear_error(
    browser: Browser, embed_setup: EmbedSetup
) -> None:
    """The script itself loads anywhere; the API's answers reach only the origins S2C_CORS_ORIGINS lists."""
    with example_page(browser, embed_setup.other_site, 1280) as page:
        draw_square_with_a_dot(page)
        page.get_by_role("button", name="Colorize").click()
        page.wait_for_function("window.embedEvents.length > 0", timeout=30_000)
        events = page.evaluate("window.embedEvents")
        assert [event["type"] for event in events] == ["colorize-error"], events
        assert events[0]["name"] == "NetworkError", events
        expect(page.get_by_role("alert")).to_contain_text("does not allow this page's origin")
        expect(page.locator("sketch-colorizer .result img")).to_be_hidden()


def test_at_360_px_it_fits_and_works_from_the_keyboard_alone(
    browser: Browser, embed_setup: EmbedSetup
) -> None:
    """Focus the drawing, draw a square with the arrow keys, drop a dot with the bucket, colorize with Enter.
    The token attribute makes the browser ask first (a CORS preflight), which the configured origin passes."""
    with example_page(browser, embed_setup.allowed_site, 360) as page:
        assert_fits(page, 360)
        page.locator("sketch-colorizer").evaluate("(element) => element.setAttribute('token', 'any')")
        page.locator("sketch-colorizer .stack").focus()
        keyboard = page.keyboard
        for key in ["Shift+ArrowUp"] * 3 + ["Shift+ArrowLeft"] * 3 + ["p", "Space"]:
            keyboard.press(key)
        for direction in ("Right", "Down", "Left", "Up"):
            for _ in range(6):
                keyboard.press(f"Shift+Arrow{direction}")
        for key in ["Space"] + ["Shift+ArrowRight"] * 3 + ["Shift+ArrowDown"] * 3 + ["b", "Enter", "Tab"]:
            keyboard.press(key)
        colorize = page.get_by_role("button", name="Colorize")
        expect(colorize).to_be_focused()
        keyboard.press("Enter")
        page.wait_for_function("window.embedEvents.length > 0", timeout=30_000)
        events = page.evaluate("window.embedEvents")
        assert events[0]["type"] == "colorized", events
        assert_filled(shown_result(page), HINT_COLOR, x=(0.4, 0.6), y=(0.4, 0.6))
        assert_fits(page, 360)
        page.set_viewport_size({"width": 320, "height": 900})
        assert_fits(page, 320)


DROP_FILE = """(encoded) => {
  const bytes = Uint8Array.from(atob(encoded), (character) => character.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
  return transfer;
}"""


def test_a_dropped_picture_becomes_the_sketch_and_size_original_answers_at_its_size(
    browser: Browser, embed_setup: EmbedSetup
) -> None:
    with example_page(browser, embed_setup.allowed_site, 1280) as page:
        widget = page.locator("sketch-colorizer")
        widget.evaluate("(element) => element.setAttribute('size', 'original')")
        transfer = page.evaluate_handle(DROP_FILE, base64.b64encode(encode(draw_sketch(300, 200))).decode())
        page.locator("sketch-colorizer .stack").dispatch_event("drop", {"dataTransfer": transfer})
        expect(page.get_by_role("status")).to_have_text("Opened dropped.png.")
        assert widget.evaluate("(element) => [element.sketchCanvas.width, element.sketchCanvas.height]") == [
            300,
            200,
        ]
        page.get_by_role("button", name="Colorize").click()
        page.wait_for_function("window.embedEvents.length > 0", timeout=30_000)
        events = page.evaluate("window.embedEvents")
        assert events[0]["type"] == "colorized", events
        assert events[0]["size"] == {"width": 300, "height": 200}, events
        expect(page.locator("#log")).to_contain_text("a 300x200 picture")


def test_an_api_error_shows_the_apis_detail(browser: Browser, embed_setup: EmbedSetup) -> None:
    with example_page(browser, embed_setup.allowed_site, 1280) as page:
        page.locator("sketch-colorizer").evaluate("(element) => element.setAttribute('version', '99')")
        draw_square_with_a_dot(page)
        page.get_by_role("button", name="Colorize").click()
        page.wait_for_function("window.embedEvents.length > 0", timeout=30_000)
        events = page.evaluate("window.embedEvents")
        assert [event["name"] for event in events] == ["ApiError"], events
        expect(page.get_by_role("alert")).to_contain_text("404: ")
        expect(page.get_by_role("alert")).to_contain_text("99")
        expect(page.get_by_role("button", name="Colorize")).to_be_enabled()
