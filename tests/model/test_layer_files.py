"""The layered files (model/layer_files.py) opened by readers other than our own code: psd-tools and
ImageMagick for the PSD, ImageMagick and the zip structure the OpenRaster spec asks for the ORA, the zip's
PNGs. Each holds the drawn picture's layers by name, and its merged image equals the PNG result."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from psd_tools import PSDImage
from psd_tools.constants import BlendMode

from model.fullsize import full_size_result
from model.layer_files import layered_file
from model.layers import full_size_layers
from tests.layered import (
    SIZE,
    assert_close,
    drawn_sketch,
    hint_dots,
    imagemagick,
    imagemagick_flatten,
    imagemagick_psd_layers,
    ora_structure,
    pixels,
)
from tests.model.test_layers import model_colors

TOP_FIRST = ["hints", "lines", "shading", "flats"]


@pytest.fixture(scope="module")
def drawn() -> tuple:
    """The drawn picture's layers (fill=regions, lines kept, hint dots) and its PNG result's pixels."""
    sketch, hints = drawn_sketch(), np.asarray(hint_dots())
    stack = full_size_layers(model_colors(), sketch, "keep", "regions", hints)
    png = np.asarray(full_size_result(model_colors(), sketch, "keep", "regions", hints)).astype(int)
    return stack, png


def test_psd_tools_reads_the_layers_their_modes_and_alpha_and_the_merged_image(drawn):
    stack, png = drawn
    psd = PSDImage.open(io.BytesIO(layered_file(stack, "psd")))
    assert psd.size == SIZE
    layers = list(psd)  # psd-tools lists bottom first
    assert [layer.name for layer in reversed(layers)] == TOP_FIRST
    by_name = {layer.name: layer for layer in layers}
    assert all(layer.size == SIZE and layer.offset == (0, 0) for layer in layers)
    expected = {"hints": (BlendMode.NORMAL, False), "lines": (BlendMode.MULTIPLY, True),
                "shading": (BlendMode.SOFT_LIGHT, False), "flats": (BlendMode.NORMAL, True)}  # fmt: skip
    assert {name: (layer.blend_mode, layer.visible) for name, layer in by_name.items()} == expected
    assert not any(layer.has_mask() for layer in layers), "transparency is the layers' own, not a mask"

    lines = by_name["lines"].numpy()  # float [H, W, 4] in [0, 1]
    darkest = np.asarray(drawn_sketch()).min(axis=2)
    alpha = np.round(lines[..., 3] * 255)
    assert (alpha[darkest == 0] == 255).all(), "the line layer must be opaque on the lines"
    assert (alpha[darkest == 255] == 0).all(), "the line layer must be clear between the lines"
    hints = np.round(by_name["hints"].numpy()[..., 3] * 255)
    np.testing.assert_array_equal(hints, np.asarray(hint_dots())[..., 3])

    assert_close(pixels(psd.topil()), png, "the PSD's merged image")
    assert_close(pixels(psd.composite(force=True)), png, "psd-tools' own rendering of the layers")


def test_imagemagick_reads_the_psd_s_layers_and_flattens_them_to_the_png_result(drawn, tmp_path: Path):
    stack, png = drawn
    path = tmp_path / "drawn.psd"
    path.write_bytes(layered_file(stack, "psd"))
    frames = imagemagick_psd_layers(path)
    assert [frame["name"] for frame in frames[1:]] == TOP_FIRST[::-1], frames  # bottom first
    assert all(frame["size"] == SIZE for frame in frames), frames
    modes = {frame["name"]: frame["compose"] for frame in frames[1:]}
    assert modes == {"flats": "Over", "shading": "None", "lines": "Multiply", "hints": "None"}, modes
    assert_close(pixels(Image.open(imagemagick_frame(path, 0, tmp_path))), png, "ImageMagick's merged image")
    assert_close(
        imagemagick_flatten(path, tmp_path / "flat.png"), png, "ImageMagick's flattening of the layers"
    )
    lines = pixels(Image.open(imagemagick_frame(path, 3, tmp_path)), "RGBA")
    darkest = np.asarray(drawn_sketch()).min(axis=2)
    assert (lines[darkest == 0][:, 3] == 255).all() and (lines[darkest == 255][:, 3] == 0).all()


def imagemagick_frame(path: Path, index: int, folder: Path) -> Path:
    out = folder / f"frame-{index}.png"
    imagemagick("convert", f"{path}[{index}]", out)
    return out


def test_the_ora_follows_the_openraster_spec_and_imagemagick_reads_its_layers(drawn, tmp_path: Path):
    stack, png = drawn
    layers, archive = ora_structure(layered_file(stack, "ora"))
    assert [layer["name"] for layer in layers] == TOP_FIRST  # OpenRaster lists the top layer first
    modes = {layer["name"]: (layer["composite-op"], layer["visibility"]) for layer in layers}
    assert modes == {"hints": ("svg:src-over", "hidden"), "lines": ("svg:multiply", "visible"),
                     "shading": ("svg:soft-light", "hidden"), "flats": ("svg:src-over", "visible")}  # fmt: skip
    assert_close(pixels(archive.read("mergedimage.png")), png, "the ORA's mergedimage.png")
    darkest = np.asarray(drawn_sketch()).min(axis=2)
    for layer in layers:
        path = tmp_path / layer["src"].replace("/", "-")
        path.write_bytes(archive.read(layer["src"]))
        width, height, channels = imagemagick("identify", "-format", "%w %h %[channels]", path).split()
        assert (int(width), int(height)) == SIZE, (layer["name"], width, height)
        if layer["name"] == "lines":
            assert "a" in channels, f"the line layer has no alpha for ImageMagick: {channels}"
            alpha = pixels(Image.open(path), "RGBA")[..., 3]
            assert (alpha[darkest == 0] == 255).all() and (alpha[darkest == 255] == 0).all()


def test_the_zip_holds_each_layer_the_composite_and_their_order_and_modes(drawn):
    stack, png = drawn
    archive = zipfile.ZipFile(io.BytesIO(layered_file(stack, "zip")))
    manifest = json.loads(archive.read("layers.json"))
    assert [layer["name"] for layer in manifest["layers_top_first"]] == TOP_FIRST
    assert {layer["name"]: layer["blend"] for layer in manifest["layers_top_first"]}["lines"] == "multiply"
    for layer in manifest["layers_top_first"]:
        assert Image.open(io.BytesIO(archive.read(layer["file"]))).size == SIZE
    assert_close(pixels(archive.read(manifest["composite"])), png, "the zip's composite.png")


def test_png_is_the_composite_and_an_unknown_format_is_refused(drawn):
    stack, png = drawn
    np.testing.assert_array_equal(pixels(layered_file(stack, "png")), png)
    with pytest.raises(ValueError, match="format must be one of png, psd, ora, zip"):
        layered_file(stack, "tiff")
