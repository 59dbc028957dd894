"""Colors that stay inside the lines, from the page, in a real Chromium against a real server with a hint model: the
paint bucket drops a hint dot, the brush paints, and with `fill=regions` (the Result selector's default) the
region either touches comes back flat in the hint's color; the eyedropper takes a color from the result; `soft`
asks for the model's colors as they come. The tests watch the requests the page sends and read the result it
shows; nothing is mocked."""

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.app.browser import keep_screenshot
from tests.app.conftest import Server, run_server, wait_for_version
from tests.app.test_page import FITS_THE_SCREEN
from tests.app.test_page_hints import after, drag, hint_layer, is_colorize, multipart, open_page, shown_result

# Two closed squares side by side, in fractions of the canvas (left, top, right, bottom); the rest of the picture
# (three quarters of it) is one big region, where the model's own colors stay.
LEFT = (0.15, 0.3, 0.45, 0.7)
RIGHT = (0.55, 0.3, 0.85, 0.7)
PURPLE = (123, 31, 162)  # #7b1fa2, set in the color input: no swatch has it
ORANGE = (251, 140, 0)  # the orange swatch, #fb8c00
TOLERANCE = 12  # levels per channel
MARGIN = 6  # result pixels kept away from the lines (4 px wide at 256) when reading a region's color
TOKEN = "page-fill-token"


@pytest.fixture
def page(browser: Browser, hinted_server: Server) -> Iterator[Page]:
    opened, errors = open_page(browser, hinted_server)
    yield opened
    opened.context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def hex_color(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{channel:02x}" for channel in rgb)


def rgb_of(hex_value: str) -> tuple[int, int, int]:
    red, green, blue = (int(hex_value[i : i + 2], 16) for i in (1, 3, 5))
    return red, green, blue


def fill_of(request: Request) -> str | None:
    values = parse_qs(urlparse(request.url).query).get("fill")
    return values[0] if values else None


def rectangle(box: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    left, top, right, bottom = box
    return [(left, top), (right, top), (right, bottom), (left, bottom), (left, top)]


def center(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def inside(result: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The result's pixels inside a square, MARGIN pixels away from its outline: N x 3."""
    height, width = result.shape[:2]
    left, top, right, bottom = box
    return result[
        round(top * height) + MARGIN : round(bottom * height) - MARGIN,
        round(left * width) + MARGIN : round(right * width) - MARGIN,
    ].reshape(-1, 3)


def outside(result: np.ndarray) -> np.ndarray:
    """The result's pixels well above and below both squares: N x 3."""
    height = result.shape[0]
    return np.concatenate(
        [result[: round(0.3 * height) - 2 * MARGIN], result[round(0.7 * height) + 2 * MARGIN :]]
    )


def near(pixels: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """Per pixel: every channel within TOLERANCE of `rgb`."""
    return (np.abs(pixels.reshape(-1, 3).astype(int) - rgb) <= TOLERANCE).all(axis=1)


def click_at(page: Page, point: tuple[float, float], test_id: str = "hint-canvas") -> None:
    target = page.get_by_test_id(test_id)
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"])


def draw_two_squares_and_colorize(page: Page) -> Request:
    page.get_by_test_id("tool-pen").click()
    drag(page, rectangle(LEFT))
    drag(page, rectangle(RIGHT))
    with page.expect_request(is_colorize) as sent:
        page.get_by_role("button", name="Colorize").click()
    page.wait_for_function("() => document.getElementById('colorize').dataset.recolor === 'idle'")
    expect(page.locator("#result")).to_be_visible()
    return sent.value


def bucket_fill(page: Page, color: tuple[int, int, int], box: tuple[float, float, float, float]) -> Request:
    """Choose `color` in the color input, take the paint bucket, click once in the middle of `box`."""
    page.get_by_test_id("hint-color").fill(hex_color(color))
    page.get_by_role("button", name="Paint bucket").click()
    expect(page.get_by_test_id("tool-caption")).to_have_text("Tool: paint bucket")
    return after(page, lambda: click_at(page, center(box)))


def test_a_bucket_click_fills_the_region_with_the_hint_color(page: Page) -> None:
    first = draw_two_squares_and_colorize(page)
    assert fill_of(first) == "regions", f"the default Result colors are flat regions: {first.url}"
    assert "hints" not in multipart(first)
    plain = shown_result(page)

    request = bucket_fill(page, PURPLE, LEFT)
    assert fill_of(request) == "regions", request.url
    layer = hint_layer(request)
    assert layer.shape == (512, 512, 4)
    dot = layer[..., 3] > 0
    rows, columns = np.nonzero(dot)
    x, y = round(center(LEFT)[0] * 512), round(center(LEFT)[1] * 512)
    assert 20 <= dot.sum() <= 120, f"one small dot, not a stroke: {dot.sum()} hint pixels"
    assert np.abs(rows - y).max() <= 6 and np.abs(columns - x).max() <= 6, "the dot is where the click was"
    assert (layer[layer[..., 3] == 255][:, :3] == PURPLE).all(), "the dot has the chosen color"
    expect(page.get_by_test_id("result-caption")).to_contain_text("with hints")

    result = shown_result(page)
    assert result.shape == (256, 256, 3)
    filled = near(inside(result, LEFT), PURPLE)
    assert filled.all(), (
        f"the whole square takes the hint color: {filled.mean():.1%} of it does, mean "
        f"{inside(result, LEFT).mean(0).round(1)}"
    )
    assert near(inside(plain, LEFT), PURPLE).mean() < 0.5, "it was not that color before the click"
    assert near(outside(result), PURPLE).mean() < 0.05, "outside the square the colors stay the model's"
    assert near(inside(result, RIGHT), PURPLE).mean() < 0.05, "the other square stays as it was"


def test_a_brush_stroke_fills_its_region_too(page: Page) -> None:
    draw_two_squares_and_colorize(page)
    bucket_fill(page, PURPLE, LEFT)
    page.get_by_test_id("swatch-orange").click()
    expect(page.get_by_test_id("tool-caption")).to_have_text("Tool: color brush")
    x, y = center(RIGHT)
    stroke = [(x - 0.08, y), (x + 0.08, y)]  # a short stroke inside the square
    request = after(page, lambda: drag(page, stroke))
    assert fill_of(request) == "regions"
    layer = hint_layer(request)
    assert layer[round(y * 512), round(x * 512), 3] == 255

    result = shown_result(page)
    assert near(inside(result, RIGHT), ORANGE).all(), (
        f"the stroke fills its whole square: mean {inside(result, RIGHT).mean(0).round(1)}"
    )
    assert near(inside(result, LEFT), PURPLE).all(), "the bucket's square keeps its color"
    assert near(outside(result), ORANGE).mean() < 0.05, "the stroke's color stays inside its square"


def test_the_eyedropper_picks_a_color_from_the_result(page: Page) -> None:
    draw_two_squares_and_colorize(page)
    bucket_fill(page, PURPLE, LEFT)
    page.get_by_test_id("swatch-blue").click()  # another color, and the brush
    expect(page.get_by_test_id("hint-color")).to_have_value("#1e88e5")

    page.locator("body").click(position={"x": 5, "y": 5})  # focus outside any field: the shortcut works
    page.keyboard.press("i")
    expect(page.get_by_test_id("tool-eyedropper")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("tool-caption")).to_have_text("Tool: eyedropper")
    click_at(page, center(LEFT), "result")
    picked = page.get_by_test_id("hint-color").input_value()
    assert np.abs(np.subtract(rgb_of(picked), PURPLE)).max() <= TOLERANCE, (
        f"picked {picked}, not the square's"
    )
    result = shown_result(page)
    x, y = center(LEFT)
    assert rgb_of(picked) == tuple(result[int(y * 256), int(x * 256)]), "the exact pixel under the click"
    expect(page.get_by_test_id("tool-brush")).to_have_attribute("aria-pressed", "true")  # back to the brush
    expect(page.get_by_test_id("tool-caption")).to_have_text("Tool: color brush")

    page.get_by_role("button", name="Eyedropper").click()  # the button too, from the bucket this time
    page.keyboard.press("g")
    expect(page.get_by_test_id("tool-bucket")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Eyedropper").click()
    click_at(page, (0.5, 0.05), "result")  # the top edge, outside both squares
    outer = page.get_by_test_id("hint-color").input_value()
    assert rgb_of(outer) == tuple(result[int(0.05 * 256), 128]), "the pixel under the second click"
    assert outer != picked
    expect(page.get_by_test_id("tool-bucket")).to_have_attribute("aria-pressed", "true")  # back to the bucket

    page.keyboard.press("i")
    page.keyboard.press("Escape")  # changed its mind: the previous tool, the color as it was
    expect(page.get_by_test_id("tool-bucket")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("hint-color")).to_have_value(outer)
    page.keyboard.press("b")
    expect(page.get_by_test_id("tool-brush")).to_have_attribute("aria-pressed", "true")


def test_the_result_selector_sends_soft_and_back(page: Page) -> None:
    draw_two_squares_and_colorize(page)
    bucket_fill(page, PURPLE, LEFT)
    colors = page.get_by_label("Result colors")
    expect(colors).to_have_value("regions")
    soft = after(page, lambda: colors.select_option("soft"))  # a result is shown: it is colored again at once
    assert fill_of(soft) == "soft", soft.url
    assert "hints" in multipart(soft), "the hints still go along"
    share = near(inside(shown_result(page), LEFT), PURPLE).mean()
    print(f"soft: {share:.1%} of the hinted square is within {TOLERANCE} levels of the hint color")
    assert share < 0.9, "soft shows the model's own colors, not the flat fill"
    with page.expect_request(is_colorize) as clicked:
        page.get_by_role("button", name="Colorize").click()
    assert fill_of(clicked.value) == "soft"
    page.wait_for_function("() => document.getElementById('colorize').dataset.recolor === 'idle'")
    regions = after(page, lambda: colors.select_option("regions"))
    assert fill_of(regions) == "regions"
    assert near(inside(shown_result(page), LEFT), PURPLE).all()


@pytest.fixture(scope="module")
def token_server(hinted_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The hint model on a server that has an API token."""
    data_dir = tmp_path_factory.mktemp("page-fill-token") / "data"
    shutil.copytree(hinted_models_dir, data_dir / "models")
    with run_server(data_dir, api_token=TOKEN) as running:
        wait_for_version(running, 1)
        yield running


def test_the_bucket_works_with_and_without_the_api_token(browser: Browser, token_server: Server) -> None:
    """POST /colorize needs no token: the page never sends one there, whatever the token field says."""
    page, errors = open_page(browser, token_server)
    try:
        draw_two_squares_and_colorize(page)
        request = bucket_fill(page, PURPLE, LEFT)
        assert "authorization" not in request.headers
        assert near(inside(shown_result(page), LEFT), PURPLE).all()

        page.locator("#token").fill(TOKEN)
        page.locator("#token").dispatch_event("change")
        request = bucket_fill(page, ORANGE, RIGHT)
        assert "authorization" not in request.headers
        result = shown_result(page)
        assert near(inside(result, RIGHT), ORANGE).all() and near(inside(result, LEFT), PURPLE).all()
        expect(page.locator("#colorize-error")).to_be_hidden()
    finally:
        page.context.close()
    assert not errors, errors


@pytest.mark.parametrize("width", [390])
def test_the_fill_tools_fit_a_phone(browser: Browser, hinted_server: Server, width: int) -> None:
    phone, errors = open_page(
        browser, hinted_server, viewport={"width": width, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        for control in ("tool-bucket", "tool-eyedropper", "result-fill", "hint-color"):
            box = phone.get_by_test_id(control).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, f"{control} off-screen: {box}"
        draw_two_squares_and_colorize(phone)
        bucket_fill(phone, PURPLE, LEFT)
        assert near(inside(shown_result(phone), LEFT), PURPLE).all()
        phone.get_by_test_id("tool-eyedropper").tap()
        phone.get_by_test_id("result").tap(position={"x": 10, "y": 10})
        expect(phone.get_by_test_id("tool-bucket")).to_have_attribute("aria-pressed", "true")
        layout = phone.evaluate(FITS_THE_SCREEN)
        assert layout["scroll"] <= width and not layout["wide"], f"wider than a {width} px screen: {layout}"
        phone.locator("#colorize-title").scroll_into_view_if_needed()
        keep_screenshot(phone, f"page-fill-phone-{width}.png")
    finally:
        phone.context.close()
    assert not errors, errors


def test_desktop_screenshot_with_filled_regions(page: Page) -> None:
    draw_two_squares_and_colorize(page)
    bucket_fill(page, PURPLE, LEFT)
    page.get_by_test_id("swatch-orange").click()
    x, y = center(RIGHT)
    after(page, lambda: drag(page, [(x - 0.08, y), (x + 0.08, y)]))
    page.locator("#colorize-title").scroll_into_view_if_needed()
    keep_screenshot(page, "page-fill-desktop.png")
