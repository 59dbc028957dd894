"""POST /colorize?format=psd|ora|zip in process (`colorize_app`: version 2 a tiny hint generator): each is
the PNG result as layers, with its media type and an attachment name; a bad format is a 422, and the pixel
limit holds for every format."""

import io
import json
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image
from psd_tools import PSDImage

from tests.app.conftest import InProcessApp, encode
from tests.layered import SIZE, assert_close, drawn_sketch, encoded, hint_dots, ora_structure, pixels

SKETCH, HINTS = encoded(drawn_sketch()), encoded(hint_dots())
TOP_FIRST = ["hints", "lines", "shading", "flats"]


def post(
    app: InProcessApp, query: str, sketch: bytes = SKETCH, hints: bytes | None = HINTS
) -> httpx.Response:
    files = {"file": ("sketch.png", sketch, "image/png")}
    if hints is not None:
        files["hints"] = ("hints.png", hints, "image/png")
    with app.client() as client:
        return client.post(f"/colorize?{query}", files=files)


@pytest.mark.parametrize("size", ["original", "256"])
def test_psd_ora_and_zip_hold_the_layers_of_the_png_result(colorize_app: InProcessApp, size: str):
    png = post(colorize_app, f"size={size}")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png", png.text[:300]
    assert "content-disposition" not in png.headers, "the PNG is shown, not downloaded, as before"
    expected = pixels(png.content)
    side = SIZE if size == "original" else (256, 256)

    psd = post(colorize_app, f"size={size}&format=psd")
    assert psd.status_code == 200, psd.text[:300]
    assert psd.headers["content-type"] == "image/vnd.adobe.photoshop"
    assert psd.headers["content-disposition"] == 'attachment; filename="colorized.psd"'
    assert psd.headers["x-image-size"] == f"{side[0]}x{side[1]}" and psd.headers["x-model-version"] == "2"
    document = PSDImage.open(io.BytesIO(psd.content))
    assert [layer.name for layer in reversed(list(document))] == TOP_FIRST
    assert all(layer.size == side for layer in document)
    assert_close(pixels(document.topil()), expected, f"size={size}: the PSD's merged image")
    assert_close(pixels(document.composite(force=True)), expected, f"size={size}: psd-tools' rendering")

    ora = post(colorize_app, f"size={size}&format=ora")
    assert ora.status_code == 200 and ora.headers["content-type"] == "image/openraster"
    assert ora.headers["content-disposition"] == 'attachment; filename="colorized.ora"'
    layers, archive = ora_structure(ora.content)
    assert [layer["name"] for layer in layers] == TOP_FIRST
    assert_close(pixels(archive.read("mergedimage.png")), expected, f"size={size}: the ORA's merged image")

    packed = post(colorize_app, f"size={size}&format=zip")
    assert packed.status_code == 200 and packed.headers["content-type"] == "application/zip"
    assert packed.headers["content-disposition"] == 'attachment; filename="colorized.zip"'
    archive = zipfile.ZipFile(io.BytesIO(packed.content))
    names = [layer["name"] for layer in json.loads(archive.read("layers.json"))["layers_top_first"]]
    assert names == TOP_FIRST
    assert_close(pixels(archive.read("composite.png")), expected, f"size={size}: the zip's composite.png")


def test_soft_fill_without_hints_is_lines_over_the_models_colors(colorize_app: InProcessApp):
    response = post(colorize_app, "size=original&fill=soft&format=psd", hints=None)
    assert response.status_code == 200, response.text[:300]
    document = PSDImage.open(io.BytesIO(response.content))
    assert [layer.name for layer in reversed(list(document))] == ["lines", "flats"]
    png = post(colorize_app, "size=original&fill=soft", hints=None)
    assert_close(pixels(document.topil()), pixels(png.content), "fill=soft: the PSD's merged image")


def test_the_hints_layer_is_the_strokes_at_the_sketch_s_size_with_soft_fill_too(colorize_app: InProcessApp):
    response = post(colorize_app, "size=original&fill=soft&format=ora")
    layers, archive = ora_structure(response.content)
    hints = {layer["name"]: layer for layer in layers}["hints"]
    assert hints["visibility"] == "hidden"
    alpha = pixels(archive.read(hints["src"]), "RGBA")[..., 3]
    np.testing.assert_array_equal(alpha, np.asarray(hint_dots())[..., 3])


@pytest.mark.parametrize("query", ["format=tiff", "format=", "format=PSD"])
def test_an_unknown_format_is_a_422_naming_the_parameter(colorize_app: InProcessApp, query: str):
    response = post(colorize_app, query)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "format" in detail, detail


@pytest.mark.parametrize("file_format", ["psd", "ora", "zip"])
def test_the_pixel_limit_holds_for_every_format(colorize_app: InProcessApp, file_format: str):
    bomb = encode(Image.new("1", (2500, 2000), 1), "PNG", optimize=True)  # 5 M pixels, over the limit of 4 M
    response = post(colorize_app, f"size=original&format={file_format}", sketch=bomb, hints=None)
    assert response.status_code == 413 and "pixels" in response.json()["detail"], response.text


def test_the_openapi_schema_lists_the_formats_and_their_media_types(colorize_app: InProcessApp):
    with colorize_app.client() as client:
        operation = client.get("/openapi.json").json()["paths"]["/colorize"]["post"]
    parameter = {parameter["name"]: parameter for parameter in operation["parameters"]}["format"]
    assert (
        parameter["schema"]["enum"] == ["png", "psd", "ora", "zip"]
        and parameter["schema"]["default"] == "png"
    )
    content = operation["responses"]["200"]["content"]
    assert set(content) == {"image/png", "image/vnd.adobe.photoshop", "image/openraster", "application/zip"}
    assert "Content-Disposition" in operation["responses"]["200"]["headers"]
