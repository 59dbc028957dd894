"""The page's Download menu, in a real Chromium against real servers: PNG saves the shown result; PSD and ORA ask
POST /colorize again with exactly what made the shown result (sketch, hint layer, size, fill, the version that
drew it) plus `format`, and save the layered file, which painting apps open (psd-tools reads the PSD here). The
tests watch the requests the page sends and open the files it saves; nothing is mocked."""

import io
import re
import shutil
import xml.etree.ElementTree as ElementTree
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Download, Page, Request, Route, expect
from psd_tools import PSDImage

from tests.app.browser import keep_screenshot
from tests.app.conftest import Server, draw_sketch, encode, run_server, wait_for_version
from tests.app.test_page import FITS_THE_SCREEN, open_download_menu
from tests.app.test_page_hints import (
    STROKE,
    after,
    drag,
    draw_a_sketch_and_colorize,
    is_colorize,
    multipart,
    open_page,
    settle,
    shown_result,
)
from tests.conftest import publish_tiny_generator

TOKEN = "page-download-token"
PSD_NAME = re.compile("^PSD")
ORA_NAME = re.compile("^ORA")


@pytest.fixture
def page(browser: Browser, hinted_server: Server) -> Iterator[Page]:
    opened, errors = open_page(browser, hinted_server)
    yield opened
    opened.context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def query_of(request: Request) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlparse(request.url).query).items()}


def download_from_menu(page: Page, item: re.Pattern[str]) -> tuple[Request, Download]:
    """Open the Download menu, click the layered format `item`: the colorize request it sends and the download."""
    open_download_menu(page)
    with page.expect_download() as saved, page.expect_request(is_colorize) as sent:
        page.get_by_role("button", name=item).click()
    return sent.value, saved.value


def saved_bytes(download: Download, folder: Path) -> bytes:
    path = folder / download.suggested_filename
    download.save_as(path)
    return path.read_bytes()


def shown_size(page: Page) -> tuple[int, int]:
    width, height = page.locator("#result").evaluate("image => [image.naturalWidth, image.naturalHeight]")
    return width, height


def assert_same_inputs(layered: Request, shown: Request, page: Page, file_format: str) -> None:
    """The layered file's request repeats the shown result's: the same multipart parts, byte for byte, the same
    size and fill, the version that drew it, and `format`."""
    asked, made = query_of(layered), query_of(shown)
    version = page.locator("#result").get_attribute("data-version")
    assert asked == {"size": made["size"], "fill": made["fill"], "version": version, "format": file_format}, (
        f"the layered request {layered.url} is not the shown result's {shown.url} (version {version})"
    )
    assert multipart(layered) == multipart(shown), "the sketch and the hints are not the ones sent before"
    assert "authorization" not in layered.headers, "POST /colorize needs no token: the page sends none"


def ora_layers(data: bytes) -> tuple[list[str], tuple[int, int]]:
    """After checking the OpenRaster signature: the layer names (top first) and the image size."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        first = archive.infolist()[0]
        assert first.filename == "mimetype", f"the first entry is {first.filename!r}"
        assert archive.read(first) == b"image/openraster"
        assert first.compress_type == zipfile.ZIP_STORED, "the mimetype entry must be stored"
        stack = ElementTree.fromstring(archive.read("stack.xml"))
    return [layer.get("name", "") for layer in stack.iter("layer")], (
        int(stack.get("w")),
        int(stack.get("h")),
    )


def test_psd_and_ora_are_the_shown_result_as_layers(page: Page, tmp_path: Path) -> None:
    """An upload at its own size with a hint stroke: the PSD and the ORA hold that result's layers at its size
    (hints included), their merged image is the shown picture, and PNG still saves the shown result."""
    page.locator("#upload").set_input_files(
        files=[{"name": "wide.png", "mimeType": "image/png", "buffer": encode(draw_sketch(600, 240, seed=9))}]
    )
    page.get_by_label("Result size").select_option("original")
    page.get_by_role("button", name="Colorize").click()
    settle(page)
    page.get_by_test_id("swatch-red").click()
    shown = after(page, lambda: drag(page, STROKE))
    assert "hints" in multipart(shown), "the shown result was made with hints"
    assert shown_size(page) == (600, 240)
    png_name = page.locator("#download").get_attribute("download")
    assert png_name == "wide-colored-v1-600x240.png", png_name

    open_download_menu(page)
    page.locator("#colorize-title").scroll_into_view_if_needed()
    keep_screenshot(page, "page-download-desktop.png")
    request, download = download_from_menu(page, PSD_NAME)
    assert_same_inputs(request, shown, page, "psd")
    assert download.suggested_filename == "wide-colored-v1-600x240.psd", download.suggested_filename
    document = PSDImage.open(io.BytesIO(saved_bytes(download, tmp_path)))
    names = [layer.name for layer in document]
    assert {"flats", "lines", "hints"} <= set(names), f"layers: {names}"
    assert document.size == shown_size(page), f"PSD {document.size}, shown result {shown_size(page)}"
    merged = np.asarray(document.topil().convert("RGB")).astype(int)
    differs = (np.abs(merged - shown_result(page)) > 8).any(axis=2).mean()
    assert differs < 0.01, f"the PSD's merged image is not the shown picture: {differs:.1%} of pixels differ"
    expect(page.get_by_test_id("download-menu")).not_to_have_attribute("open", "")  # closed once saved
    expect(page.get_by_test_id("download-error")).to_be_hidden()

    request, download = download_from_menu(page, ORA_NAME)
    assert_same_inputs(request, shown, page, "ora")
    assert download.suggested_filename == "wide-colored-v1-600x240.ora", download.suggested_filename
    names, size = ora_layers(saved_bytes(download, tmp_path))
    assert {"flats", "lines", "hints"} <= set(names) and size == (600, 240), (names, size)

    open_download_menu(page)
    with page.expect_download() as saved:
        page.get_by_role("link", name="PNG").click()
    assert saved.value.suggested_filename == png_name
    png = Image.open(io.BytesIO(saved_bytes(saved.value, tmp_path)))
    assert np.array_equal(np.asarray(png.convert("RGB")), shown_result(page)), "the PNG is the shown result"


def test_the_layered_file_follows_the_shown_result_not_the_selectors(page: Page, tmp_path: Path) -> None:
    """A result from the history is downloaded as it was made (256, flat regions), although the Result selectors
    now say soft colors at the sketch's own size; the newer soft result gives a PSD at that size without the shading
    layer. (A change of the selectors re-colorizes at once, and that result replaces the previous automatic one in
    the history, so each change is waited for before the history is used.)"""
    flat = draw_a_sketch_and_colorize(page)
    assert query_of(flat)["size"] == "256" and query_of(flat)["fill"] == "regions", flat.url
    soft = after(page, lambda: page.get_by_label("Result colors").select_option("soft"))
    assert query_of(soft)["fill"] == "soft", soft.url
    resize = lambda: page.get_by_label("Result size").select_option("original")  # noqa: E731
    soft = after(page, resize)  # the canvas is 512x512: a different size
    assert query_of(soft) == {"size": "original", "fill": "soft"}, soft.url
    history = page.get_by_test_id("history").locator("button")
    expect(history).to_have_count(2)
    history.nth(1).click()  # the first result, flat regions at 256

    request, download = download_from_menu(page, ORA_NAME)
    assert_same_inputs(request, flat, page, "ora")
    names, size = ora_layers(saved_bytes(download, tmp_path))
    assert size == (256, 256) == shown_size(page) and "shading" in names, (names, size)

    history.nth(0).click()  # the soft one, at the sketch's own size
    request, download = download_from_menu(page, PSD_NAME)
    assert_same_inputs(request, soft, page, "psd")
    document = PSDImage.open(io.BytesIO(saved_bytes(download, tmp_path)))
    names = [layer.name for layer in document]
    assert document.size == (512, 512) == shown_size(page), (document.size, shown_size(page))
    assert "shading" not in names and "flats" in names, names


def test_the_menu_works_from_the_keyboard_and_shows_it_is_busy(page: Page, tmp_path: Path) -> None:
    draw_a_sketch_and_colorize(page)
    menu = page.get_by_test_id("download-menu")
    summary = menu.locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="PNG")).to_be_focused()
    page.keyboard.press("Tab")
    psd = page.get_by_role("button", name=PSD_NAME)
    expect(psd).to_be_focused()

    held: list[Route] = []  # the PSD request waits here until the busy state is checked
    page.route(re.compile(r"/colorize\?.*format=psd"), lambda route: held.append(route))
    with page.expect_download() as saved:
        page.keyboard.press("Enter")
        expect(menu).to_have_attribute("aria-busy", "true")
        expect(page.get_by_test_id("download-status")).to_have_text("Making the PSD file…")
        expect(psd).to_be_disabled()
        expect(page.get_by_role("button", name=ORA_NAME)).to_be_disabled()
        while not held:
            page.wait_for_timeout(20)
        held[0].continue_()
    assert saved.value.suggested_filename.endswith(".psd")
    PSDImage.open(io.BytesIO(saved_bytes(saved.value, tmp_path)))
    expect(menu).not_to_have_attribute("aria-busy", "true")
    expect(page.get_by_test_id("download-status")).to_be_hidden()
    expect(menu).not_to_have_attribute("open", "")
    expect(summary).to_be_focused()  # the keyboard goes on from the menu's button

    page.keyboard.press(" ")
    expect(menu).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    page.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", "")
    expect(summary).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    with page.expect_download() as saved:
        page.keyboard.press("Enter")
    assert saved.value.suggested_filename.endswith(".png")


@pytest.mark.parametrize("width", [390])
def test_the_menu_fits_a_phone(browser: Browser, hinted_server: Server, tmp_path: Path, width: int) -> None:
    phone, errors = open_page(
        browser, hinted_server, viewport={"width": width, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        draw_a_sketch_and_colorize(phone)
        open_download_menu(phone)
        for item in ("download", *(f"[data-format={name}]" for name in ("psd", "ora"))):
            box = phone.locator(f"#{item}" if item == "download" else item).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, f"{item} off-screen: {box}"
        layout = phone.evaluate(FITS_THE_SCREEN)
        assert layout["scroll"] <= width and not layout["wide"], f"wider than a {width} px screen: {layout}"
        phone.get_by_test_id("result").scroll_into_view_if_needed()
        keep_screenshot(phone, f"page-download-phone-{width}.png")
        with phone.expect_download() as saved:
            phone.get_by_role("button", name=ORA_NAME).tap()
        assert ora_layers(saved_bytes(saved.value, tmp_path))[1] == (256, 256)
    finally:
        phone.context.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def token_server(hinted_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with an API token and four versions: the hint model (1) and three plain tiny ones, 4 served."""
    data_dir = tmp_path_factory.mktemp("page-download-token") / "data"
    shutil.copytree(hinted_models_dir, data_dir / "models")
    for seed in (2, 3, 4):
        publish_tiny_generator(data_dir / "models", seed=seed)
    with run_server(data_dir, api_token=TOKEN) as running:
        wait_for_version(running, 4)
        yield running


def test_layers_download_with_and_without_the_api_token(
    browser: Browser, token_server: Server, tmp_path: Path
) -> None:
    """POST /colorize needs no token: the page never sends one there, whatever the token field says."""
    page, errors = open_page(browser, token_server)
    try:
        shown = draw_a_sketch_and_colorize(page)
        request, download = download_from_menu(page, PSD_NAME)
        assert_same_inputs(request, shown, page, "psd")
        assert PSDImage.open(io.BytesIO(saved_bytes(download, tmp_path))).size == (256, 256)

        page.locator("#token").fill(TOKEN)
        page.locator("#token").dispatch_event("change")
        request, download = download_from_menu(page, ORA_NAME)
        assert_same_inputs(request, shown, page, "ora")
        assert ora_layers(saved_bytes(download, tmp_path))[1] == (256, 256)
        expect(page.get_by_test_id("download-error")).to_be_hidden()
    finally:
        page.context.close()
    assert not errors, errors


def test_a_failed_layered_file_says_why(browser: Browser, token_server: Server, tmp_path: Path) -> None:
    """The version that drew the shown result is deleted before the PSD is asked for (first pushed out of the
    server's small cache of pinned versions by two others): the menu shows the server's detail, keeps the focus,
    and the PNG, already in the browser, still downloads."""
    page, errors = open_page(browser, token_server)
    try:
        expect(page.locator("#model-choice option[value='1']")).to_be_attached()
        page.locator("#model-choice").select_option("1")
        draw_a_sketch_and_colorize(page)
        expect(page.locator("#result")).to_have_attribute("data-version", "1")
        with token_server.client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            for version in (2, 3):
                sketch = {"file": ("s.png", encode(draw_sketch(seed=version)), "image/png")}
                assert client.post(f"/colorize?version={version}", files=sketch).status_code == 200
            deleted = client.delete("/models/1")
            assert deleted.status_code == 200, deleted.text

        open_download_menu(page)
        psd = page.get_by_role("button", name=PSD_NAME)
        psd.click()
        error = page.get_by_test_id("download-error")
        expect(error).to_have_text(
            re.compile(r"^Could not make the PSD file: 404: generator version 1 is not published")
        )
        expect(error).to_have_attribute("role", "alert")
        expect(psd).to_be_enabled()
        expect(psd).to_be_focused()
        expect(page.get_by_test_id("download-status")).to_be_hidden()
        with page.expect_download() as saved:
            page.get_by_role("link", name="PNG").click()
        assert saved.value.suggested_filename.endswith("-v1-256x256.png")
    finally:
        page.context.close()
    assert not errors, errors
