import io

import numpy as np
import pytest
from PIL import Image

from model.imageio import EmptyImage, ImageTooLarge, NotAnImage, UndecodableImage, load_sketch


def _encode(image, format="PNG", **options):
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def test_non_square_sketch_is_padded_with_white_not_stretched():
    wide = Image.new("RGB", (400, 200), (0, 0, 0))
    sketch = load_sketch(_encode(wide))
    assert sketch.shape == (256, 256, 3)
    assert (sketch[:50] == 255).all() and (sketch[-50:] == 255).all(), "bars above and below must be white"
    assert (sketch[100:156] < 5).all(), "the black picture must stay in the middle"


@pytest.mark.parametrize(
    ("image", "expected_corner"),
    [
        (Image.new("RGBA", (32, 32), (0, 0, 0, 0)), [255, 255, 255]),  # transparent -> white
        (Image.new("LA", (32, 32), (0, 128)), [127, 127, 127]),
        (Image.new("1", (32, 32), 0), [0, 0, 0]),
        (Image.new("P", (32, 32), 0), [0, 0, 0]),
        (Image.new("CMYK", (32, 32), (0, 0, 0, 0)), [255, 255, 255]),
        (Image.new("I;16", (32, 32), 65535), [255, 255, 255]),
    ],
)
def test_any_mode_becomes_rgb(image, expected_corner):
    format = "JPEG" if image.mode == "CMYK" else "PNG"
    sketch = load_sketch(_encode(image, format=format))
    np.testing.assert_allclose(sketch[0, 0], expected_corner, atol=2)


def test_gif_first_frame_and_webp_and_bmp_are_read():
    frames = [Image.new("RGB", (16, 16), color) for color in ((255, 255, 255), (0, 0, 0))]
    gif = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert load_sketch(gif)[0, 0].tolist() == [255, 255, 255]
    for format in ("WEBP", "BMP"):
        assert load_sketch(_encode(Image.new("RGB", (16, 16), (0, 0, 0)), format)).shape == (256, 256, 3)


def test_bad_inputs_raise_what_is_wrong():
    png = _encode(Image.new("RGB", (64, 64), (10, 20, 30)))
    with pytest.raises(EmptyImage):
        load_sketch(b"")
    with pytest.raises(NotAnImage):
        load_sketch(b"%PDF-1.4 definitely not a picture")
    with pytest.raises(UndecodableImage):
        load_sketch(png[: len(png) // 2])
    with pytest.raises(ImageTooLarge, match="limit is 1000"):
        load_sketch(png, max_pixels=1000)
