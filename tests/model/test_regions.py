"""Flat colors inside the lines (model/regions.py), on drawn sketches: a hint fills the closed shape it touches
and nothing beyond it, also through a small gap, on anti-aliased, JPEG and colored-line sketches; unhinted
shapes become flat; a drawing without closed shapes keeps the model's colors."""

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from model.fullsize import full_size_result, square_result
from model.regions import find_ink, find_regions, flat_colors, gap_pixels

SIDE = 512
CIRCLE = (60, 60, 240, 240)  # left, top, right, bottom
SQUARE = (280, 280, 460, 460)
YELLOW, RED, BLUE = (250, 210, 20), (220, 30, 30), (40, 60, 200)


def drawing(side: int = SIDE, line: tuple[int, int, int] = (0, 0, 0), width: int = 4) -> Image.Image:
    """A circle and a square on white paper, both closed."""
    sketch = Image.new("RGB", (side, side), "white")
    pen = ImageDraw.Draw(sketch)
    scale = side / SIDE
    pen.ellipse([round(v * scale) for v in CIRCLE], outline=line, width=width)
    pen.rectangle([round(v * scale) for v in SQUARE], outline=line, width=width)
    return sketch


def model_colors(side: int = SIDE, seed: int = 0) -> np.ndarray:
    """What a model paints: a smooth, blotchy color field that ignores the lines."""
    rng = np.random.default_rng(seed)
    coarse = (rng.random((8, 8, 3)) * 120 + 90).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC))


def dot(side: int, center: tuple[int, int], color: tuple[int, int, int], radius: int = 5) -> np.ndarray:
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    x, y = center
    ImageDraw.Draw(layer).ellipse((x - radius, y - radius, x + radius, y + radius), fill=(*color, 255))
    return np.asarray(layer)


def inside(box: tuple[int, int, int, int], side: int = SIDE, margin: int = 10) -> np.ndarray:
    """Pixels well inside an axis-aligned box (for the circle: its inscribed square)."""
    scale = side / SIDE
    left, top, right, bottom = (round(v * scale) for v in box)
    if box == CIRCLE:  # the square inscribed in the circle
        inset = round((right - left) * (1 - 1 / np.sqrt(2)) / 2)
        left, top, right, bottom = left + inset, top + inset, right - inset, bottom - inset
    mask = np.zeros((side, side), bool)
    mask[top + margin : bottom - margin, left + margin : right - margin] = True
    return mask


def center_of(box: tuple[int, int, int, int], side: int = SIDE) -> tuple[int, int]:
    scale = side / SIDE
    return round((box[0] + box[2]) / 2 * scale), round((box[1] + box[3]) / 2 * scale)


def error(pixels: np.ndarray, color: tuple[int, int, int]) -> float:
    return float(np.abs(pixels.astype(int) - np.array(color)).mean())


def jpeg(image: Image.Image, quality: int = 60) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def fill(sketch: Image.Image, hints: np.ndarray | None, colors: np.ndarray | None = None) -> np.ndarray:
    return flat_colors(np.asarray(sketch), model_colors(sketch.width) if colors is None else colors, hints)


def assert_only_the_circle_is_yellow(flats: np.ndarray, side: int = SIDE) -> None:
    in_circle, in_square = inside(CIRCLE, side), inside(SQUARE, side)
    background = np.zeros((side, side), bool)
    background[: side // 20, -side // 20 :] = True  # the top-right corner: outside both shapes
    assert error(flats[in_circle], YELLOW) < 3, f"circle is {flats[in_circle].mean(axis=0)}, not {YELLOW}"
    for name, where in (("square", in_square), ("background", background)):
        assert error(flats[where], YELLOW) > 60, f"the yellow leaked into the {name}"


def test_a_hint_dot_fills_its_closed_shape_and_nothing_beyond():
    flats = fill(drawing(), dot(SIDE, center_of(CIRCLE), YELLOW))
    assert_only_the_circle_is_yellow(flats)


def test_a_hint_fills_the_shape_through_a_three_pixel_gap_in_its_outline():
    sketch = drawing(1024, width=6)
    top_of_circle = (center_of(CIRCLE, 1024)[0], round(CIRCLE[1] * 2))
    ImageDraw.Draw(sketch).rectangle(
        (top_of_circle[0] - 1, top_of_circle[1] - 12, top_of_circle[0] + 1, top_of_circle[1] + 12),
        fill="white",
    )
    assert gap_pixels(1024, 1024) >= 3
    gap_row = np.asarray(sketch)[top_of_circle[1] + 2, top_of_circle[0] - 4 : top_of_circle[0] + 5, 0]
    assert (gap_row == 255).sum() == 3, f"the drawing should have a 3 px opening: {gap_row}"
    flats = fill(sketch, dot(1024, center_of(CIRCLE, 1024), YELLOW))
    assert_only_the_circle_is_yellow(flats, 1024)


def test_anti_aliased_jpeg_and_colored_line_sketches_fill_the_same_way():
    sketches = {
        "anti-aliased": drawing().filter(ImageFilter.GaussianBlur(1.2)),
        "jpeg": jpeg(drawing()),
        "gray lines": drawing(line=(120, 120, 120)),
        "colored lines": drawing(line=(30, 90, 220)),
        "anti-aliased jpeg": jpeg(drawing(width=3).filter(ImageFilter.GaussianBlur(0.8)), quality=40),
    }
    for name, sketch in sketches.items():
        ink = find_ink(np.asarray(sketch))
        assert 0.005 < ink.mean() < 0.1, f"{name}: {ink.mean():.3f} of the picture taken for lines"
        try:
            assert_only_the_circle_is_yellow(fill(sketch, dot(SIDE, center_of(CIRCLE), YELLOW)))
        except AssertionError as failure:
            raise AssertionError(f"{name}: {failure}") from failure


def test_unhinted_shapes_take_one_flat_color_from_the_model():
    colors = model_colors()
    flats = fill(drawing(), None, colors)
    for name, box in (("circle", CIRCLE), ("square", SQUARE)):
        where = inside(box)
        spread = np.abs(flats[where].astype(int) - np.median(flats[where], axis=0)).mean()
        assert spread < 1, f"the {name} is not flat: mean deviation {spread:.1f}"
        model_median = np.median(colors[where], axis=0)
        assert error(flats[where], tuple(model_median)) < 25, f"the {name}'s color is not the model's"
    background = np.ones((SIDE, SIDE), bool)
    for left, top, right, bottom in (CIRCLE, SQUARE):
        background[top - 10 : bottom + 10, left - 10 : right + 10] = False
    np.testing.assert_array_equal(flats[background], colors[background])  # the background keeps the model's


def test_the_dominant_hint_color_wins_where_several_touch_a_shape():
    hints = dot(SIDE, center_of(CIRCLE), YELLOW, radius=12)
    hints = np.maximum(hints, dot(SIDE, (150, 110), RED, radius=4))  # a small red dab in the same circle
    hints = np.where(
        dot(SIDE, center_of(SQUARE), BLUE)[..., 3:] > 0, dot(SIDE, center_of(SQUARE), BLUE), hints
    )
    flats = fill(drawing(), hints)
    assert error(flats[inside(CIRCLE)], YELLOW) < 3
    assert error(flats[inside(SQUARE)], BLUE) < 3


def test_a_drawing_without_closed_shapes_keeps_the_model_colors():
    colors = model_colors()
    rng = np.random.default_rng(3)
    open_strokes = Image.new("RGB", (SIDE, SIDE), "white")
    pen = ImageDraw.Draw(open_strokes)
    for _ in range(12):  # short, unconnected strokes: nothing is enclosed
        x, y = rng.integers(40, SIDE - 80, 2)
        pen.line((x, y, x + rng.integers(10, 40), y + rng.integers(-20, 20)), fill="black", width=3)
    hatching = Image.new("RGB", (SIDE, SIDE), "white")
    pen = ImageDraw.Draw(hatching)
    for offset in range(-SIDE, SIDE, 6):  # dense cross-hatching: thousands of specks
        pen.line((offset, 0, offset + SIDE, SIDE), fill="black", width=2)
        pen.line((offset + SIDE, 0, offset, SIDE), fill="black", width=2)
    for name, sketch in (
        ("open strokes", open_strokes),
        ("hatching", hatching),
        ("blank", Image.new("RGB", (64, 64), "white")),
    ):
        sketch_colors = colors[: sketch.height, : sketch.width]
        flats = fill(sketch, dot(sketch.width, (30, 30), RED), sketch_colors)
        assert not find_regions(np.asarray(sketch)).reliable or name == "open strokes", name
        np.testing.assert_array_equal(flats, sketch_colors, err_msg=f"{name}: the model's colors should stay")


def test_full_size_and_square_results_fill_regions_and_soft_stays_the_models_picture():
    sketch = drawing(1000)
    square = np.asarray(sketch.resize((256, 256)))
    colorized = model_colors(256)
    assert np.array_equal(np.asarray(square_result(colorized, square, fill="soft")), colorized)
    small = np.asarray(
        square_result(
            colorized, square, fill="regions", lines="none", hints=dot(256, center_of(CIRCLE, 256), YELLOW, 2)
        )
    )
    assert error(small[inside(CIRCLE, 256, margin=4)], YELLOW) < 3
    hints = dot(1000, center_of(CIRCLE, 1000), YELLOW)
    big = np.asarray(full_size_result(colorized, sketch, lines="keep", fill="regions", hints=hints))
    assert big.shape == (1000, 1000, 3)
    assert error(big[inside(CIRCLE, 1000)], YELLOW) < 3
    lines = find_ink(np.asarray(sketch))
    assert big[lines].mean() < 60, "lines=keep lays the sketch's lines back on top"


def test_a_sparse_drawing_still_has_lines_and_a_photo_texture_does_not():
    """One small outlined triangle in a large picture is line art (its ink is 0.1% of the picture); the
    speckled lines XDoG draws from a photo's texture are not, however many little regions they enclose."""
    sparse = Image.new("RGB", (1024, 1024), "white")
    ImageDraw.Draw(sparse).polygon([(500, 440), (560, 560), (440, 560)], outline="black", width=3)
    assert find_ink(np.asarray(sparse)).mean() < 0.002
    flats = fill(sparse, dot(1024, (500, 530), YELLOW))
    assert error(flats[520:545, 490:510], YELLOW) < 3, "the triangle should be filled"
    rng = np.random.default_rng(5)
    texture = np.where(rng.random((SIDE, SIDE)) < 0.03, 0, 255).astype(np.uint8)  # dark specks on paper
    speckled = Image.fromarray(texture, "L").convert("RGB")
    assert not find_regions(np.asarray(speckled)).reliable
    colors = model_colors()
    np.testing.assert_array_equal(fill(speckled, dot(SIDE, (100, 100), RED), colors), colors)
