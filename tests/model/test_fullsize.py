"""The full-size result (model/fullsize.py): the sketch's own size, the padding cut away, its lines kept."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from model.fullsize import full_size_result
from model.imageio import content_box, prepare_sketch


def lined_sketch(width: int, height: int) -> Image.Image:
    sketch = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sketch)
    draw.rectangle((width // 8, height // 8, width * 7 // 8, height * 7 // 8), outline="black", width=3)
    draw.line((0, 0, width - 1, height - 1), fill=(40, 40, 40), width=2)
    return sketch


def fake_colors(sketch: Image.Image) -> np.ndarray:
    """What a model might answer: the content region red-ish with a gradient, the padding bright green."""
    colors = np.zeros((256, 256, 3), np.uint8)
    colors[...] = (0, 255, 0)
    left, top, right, bottom = content_box(*sketch.size)
    ramp = np.linspace(60, 220, right - left, dtype=np.uint8)
    colors[top:bottom, left:right, 0] = 230
    colors[top:bottom, left:right, 1] = ramp[None, :]
    colors[top:bottom, left:right, 2] = 40
    return colors


@pytest.mark.parametrize("size", [(1200, 300), (300, 1200), (640, 480), (257, 256), (5000, 3)])
def test_the_result_has_the_sketch_s_size_and_none_of_the_padding(size):
    sketch = lined_sketch(*size)
    result = full_size_result(fake_colors(sketch), sketch, lines="none")
    assert result.size == size and result.mode == "RGB"
    pixels = np.asarray(result).astype(int)
    green = (pixels[..., 1] > 200) & (pixels[..., 0] < 100)
    assert green.mean() < 0.01, f"{green.mean():.1%} of the output is the padding's color"


@pytest.mark.parametrize("size", [(900, 400), (400, 900)])
def test_kept_lines_are_at_least_as_dark_as_the_sketch(size):
    sketch = lined_sketch(*size)
    kept = np.asarray(full_size_result(fake_colors(sketch), sketch, lines="keep")).astype(int)
    plain = np.asarray(full_size_result(fake_colors(sketch), sketch, lines="none")).astype(int)
    lines = np.asarray(sketch.convert("L")) < 128
    assert lines.sum() > 500
    assert (kept[lines] <= np.asarray(sketch)[lines]).all(), "a line came out lighter than drawn"
    assert kept[lines].max() < 60, "lines must stay dark"
    assert np.array_equal(kept[~lines & (np.asarray(sketch.convert("L")) == 255)],
                          plain[~lines & (np.asarray(sketch.convert("L")) == 255)]), "paper keeps the colors"  # fmt: skip


def test_bad_lines_value_is_refused():
    with pytest.raises(ValueError, match="lines must be"):
        full_size_result(np.zeros((256, 256, 3), np.uint8), Image.new("RGB", (10, 10)), lines="bold")


def test_the_model_input_of_an_extreme_aspect_ratio_needs_no_huge_canvas():
    """A 1 x 2,000,000 picture is scaled before padding: the input is 256x256, the picture a thin line."""
    tall = Image.new("RGB", (1, 2_000_000), "black")
    sketch = prepare_sketch(tall)
    assert sketch.shape == (256, 256, 3)
    left = content_box(1, 2_000_000)[0]
    assert (sketch[:, left] < 10).all(), "the picture is the one dark column in the middle"
    assert (sketch[:, :left] == 255).all() and (sketch[:, left + 1 :] == 255).all()


def test_a_square_sketch_s_model_input_is_a_plain_bicubic_resize():
    square = lined_sketch(512, 512)
    expected = np.asarray(square.resize((256, 256), Image.Resampling.BICUBIC))
    assert np.array_equal(prepare_sketch(square), expected)
