"""The layers of a result (model/layers.py) on a drawn picture: names and order, the line layer's alpha and
colors, the shading, and the composite, which is the PNG result itself and what the layers blend back to."""

import numpy as np
import pytest
from PIL import Image

from model.fullsize import full_size_result, square_result
from model.imageio import prepare_sketch
from model.layers import NEUTRAL_GRAY, full_size_layers, line_layer, square_layers
from tests.layered import BLUE_INK, HINTS, RECTANGLE, SIZE, drawn_sketch, hint_dots


def model_colors() -> np.ndarray:
    """What a model might answer: warm colors, dark at the top and light at the bottom (shading)."""
    colors = np.zeros((256, 256, 3), np.uint8)
    ramp = np.linspace(60, 230, 256)[:, None]
    colors[..., 0], colors[..., 1], colors[..., 2] = ramp, ramp * 3 / 4, 80
    return colors


def layers_by_name(stack) -> dict:
    return {layer.name: layer for layer in stack.layers}


def blend_back(stack) -> np.ndarray:
    """The visible layers blended as a painting app does (normal, then multiply over it), in floats."""
    layers = layers_by_name(stack)
    paint = np.asarray(layers["flats"].image.convert("RGB")).astype(float)
    lines = np.asarray(layers["lines"].image).astype(float) / 255
    if layers["lines"].visible:
        alpha = lines[..., 3:]
        paint = paint * (1 - alpha) + paint * lines[..., :3] * alpha
    return paint


def test_the_stack_is_hints_lines_shading_flats_and_its_composite_is_the_png_result():
    sketch, hints = drawn_sketch(), np.asarray(hint_dots())
    stack = full_size_layers(model_colors(), sketch, "keep", "regions", hints)
    assert [(layer.name, layer.blend, layer.visible) for layer in stack.layers] == [
        ("hints", "normal", False),
        ("lines", "multiply", True),
        ("shading", "soft-light", False),
        ("flats", "normal", True),
    ]
    assert all(layer.image.size == SIZE for layer in stack.layers) and stack.size == SIZE
    png = np.asarray(full_size_result(model_colors(), sketch, "keep", "regions", hints))
    np.testing.assert_array_equal(np.asarray(stack.composite), png)
    blended = blend_back(stack)
    assert np.abs(blended - png).max() <= 1.5, "the layers do not blend back to the PNG result"
    np.testing.assert_array_equal(np.asarray(stack.layers[0].image), hints)


def test_the_line_layer_is_opaque_on_lines_clear_between_them_and_keeps_their_color():
    sketch = drawn_sketch()
    layer = line_layer(np.asarray(sketch))
    darkest = np.asarray(sketch).min(axis=2)
    alpha = layer[..., 3]
    assert (alpha[darkest == 0] == 255).all(), "black line pixels must be opaque"
    assert (alpha[darkest == 255] == 0).all(), "the paper between the lines must be clear"
    soft = (darkest > 0) & (darkest < 255)
    assert soft.sum() > 200, "the ellipse's anti-aliased edge should leave partly transparent pixels"
    np.testing.assert_array_equal(alpha[soft], 255 - darkest[soft])
    black = np.asarray(sketch.convert("L")) < 10
    assert layer[black][:, :3].max() == 0, "black lines stay black"
    blue = np.abs(np.asarray(sketch).astype(int) - BLUE_INK).max(axis=2) == 0
    assert blue.sum() > 100
    ink = layer[blue].astype(int)
    assert (ink[:, 2] > ink[:, 1] + 100).all() and (ink[:, 2] > ink[:, 0] + 100).all(), "blue lines stay blue"
    over_paper = 255 - ink[:, 3:] + ink[:, :3] * ink[:, 3:] / 255  # multiplied over white at its alpha
    assert np.abs(over_paper - BLUE_INK).max() <= 1, "over white paper the layer gives the pen's own blue"


def test_the_shading_is_the_models_light_and_dark_against_each_region_s_flat_color():
    stack = full_size_layers(model_colors(), drawn_sketch(), "keep", "regions")
    shading = np.asarray(layers_by_name(stack)["shading"].image).astype(int)
    left, top, right, bottom = RECTANGLE
    inside = shading[top + 10 : bottom - 10, left + 10 : right - 10]
    assert inside[:10].mean() < NEUTRAL_GRAY - 10 < NEUTRAL_GRAY + 10 < inside[-10:].mean(), (
        "the model is darker at the top of the rectangle and lighter at its bottom than its flat color"
    )
    assert abs(np.median(inside) - NEUTRAL_GRAY) <= 6, "the flat color is the region's median"
    assert (shading[:20] == NEUTRAL_GRAY).all(), "the background keeps the model's colors: no shading there"
    hints = np.asarray(hint_dots())
    hinted = full_size_layers(model_colors(), drawn_sketch(), "keep", "regions", hints)
    under_hints = np.asarray(layers_by_name(hinted)["shading"].image)[hints[..., 3] > 0]
    assert (under_hints == NEUTRAL_GRAY).all(), "a hint stroke is the user's color, not the model's shading"


def test_soft_fill_has_no_shading_and_its_flats_are_the_models_colors():
    stack = full_size_layers(model_colors(), drawn_sketch(), "keep", "soft")
    assert [layer.name for layer in stack.layers] == ["lines", "flats"]
    plain = np.asarray(full_size_result(model_colors(), drawn_sketch(), "none", "soft"))
    np.testing.assert_array_equal(np.asarray(layers_by_name(stack)["flats"].image), plain)
    png = np.asarray(full_size_result(model_colors(), drawn_sketch(), "keep", "soft"))
    np.testing.assert_array_equal(np.asarray(stack.composite), png)


@pytest.mark.parametrize("fill", ["regions", "soft"])
def test_where_the_png_has_no_laid_over_lines_the_line_layer_is_hidden(fill):
    sketch = drawn_sketch()
    none = full_size_layers(model_colors(), sketch, "none", fill)
    assert not layers_by_name(none).get("lines").visible
    png = np.asarray(full_size_result(model_colors(), sketch, "none", fill))
    np.testing.assert_array_equal(np.asarray(none.composite), png)
    np.testing.assert_array_equal(blend_back(none), png)

    square = prepare_sketch(sketch)
    stack = square_layers(model_colors(), square, "keep", fill)
    assert stack.size == (256, 256)
    assert layers_by_name(stack)["lines"].visible is (fill == "regions"), "size=256 soft: the model's picture"
    np.testing.assert_array_equal(np.asarray(stack.composite), np.asarray(square_result(model_colors(), square,
                                                                                      "keep", fill)))  # fmt: skip


def test_hinted_regions_take_the_hint_color_in_the_flats():
    hints = np.asarray(hint_dots())
    stack = full_size_layers(model_colors(), drawn_sketch(), "keep", "regions", hints)
    flats = np.asarray(layers_by_name(stack)["flats"].image).astype(int)
    for (x, y), color in HINTS.items():
        assert np.abs(flats[y, x] - color).max() <= 2, f"the shape around {(x, y)} is not {color}"
    assert isinstance(stack.composite, Image.Image) and stack.composite.mode == "RGB"
