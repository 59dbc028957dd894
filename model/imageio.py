"""Reading any user image as a 256x256 RGB sketch, safely.

Shared by the CLI and the API. Bad input raises a `BadImage` subclass that says what is wrong, so callers can
map it to an exit message or an HTTP status. Pillow's decompression-bomb guard is made strict: the pixel limit
is checked from the header, before any pixel is decoded.
"""

import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from storage.layout import IMAGE_SIZE

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
DEFAULT_MAX_PIXELS = 40_000_000
BAND_ROWS = 256  # rows converted at a time: memory stays a few bands, never a float copy of a big picture


class BadImage(ValueError):
    """The input is not a usable image."""


class EmptyImage(BadImage):
    pass


class NotAnImage(BadImage):
    pass


class UndecodableImage(BadImage):
    pass


class ImageTooLarge(BadImage):
    pass


class NoHintAlpha(BadImage):
    """A hint layer without transparency: nothing would say where the hints are."""


def open_image(source: bytes | str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode the first frame of a PNG/JPEG/WebP/BMP/GIF, refusing images over `max_pixels` before decoding."""
    if isinstance(source, bytes):
        if not source:
            raise EmptyImage("the upload is empty")
        stream: io.BytesIO | str | os.PathLike = io.BytesIO(source)
    else:
        stream = source
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(stream, formats=ACCEPTED_FORMATS)
        except UnidentifiedImageError as error:
            raise NotAnImage(f"not a supported image: send one of {', '.join(ACCEPTED_FORMATS)}") from error
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageTooLarge(f"image is too large: {error}") from error
        except OSError as error:
            raise UndecodableImage(f"cannot read the image: {error}") from error
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
            )
        if width < 1 or height < 1:
            raise UndecodableImage(f"image has no pixels ({width}x{height})")
        try:
            image.seek(0)
            image.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            raise UndecodableImage(
                f"cannot decode the {image.format} image (truncated or corrupt): {error}"
            ) from error
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to RGB: transparency is composited on white, 16-bit gray is scaled, CMYK is converted."""
    image = ImageOps.exif_transpose(image) if image.format == "JPEG" else image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return _deep_gray_to_rgb(image)
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L").convert("RGB")
    if image.mode == "P" or image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _deep_gray_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer) gray scaled to 8 bits, a band of rows at a time in integers: a float copy
    of a 40-megapixel picture would cost gigabytes."""
    values = np.asarray(image)
    peak = 65535 if image.mode.startswith("I;16") or values.max() > 255 else 255
    gray = np.empty(values.shape, np.uint8)
    for top in range(0, values.shape[0], BAND_ROWS):
        band = np.clip(values[top : top + BAND_ROWS].astype(np.int64), 0, peak)
        gray[top : top + BAND_ROWS] = (band * 255 + peak // 2) // peak
    return Image.fromarray(gray, "L").convert("RGB")


def content_box(width: int, height: int, size: int = IMAGE_SIZE) -> tuple[int, int, int, int]:
    """Where a width x height picture lands on the white size x size square: (left, top, right, bottom).

    The picture keeps its aspect ratio and is centered; the rest of the square is white padding, which the
    full-size result cuts away again (model/fullsize.py).
    """
    side = max(width, height)
    scaled_width = max(1, round(width * size / side))
    scaled_height = max(1, round(height * size / side))
    left, top = (size - scaled_width) // 2, (size - scaled_height) // 2
    return left, top, left + scaled_width, top + scaled_height


def prepare_sketch(image: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """RGB, scaled to fit and centered on a white square: uint8 [size, size, 3], the model's input.

    Scaling comes before padding, so no buffer is ever larger than the picture itself or the small square
    (a 1 x 2,000,000 image costs 2 M pixels, not a 2 M x 2 M canvas).
    """
    rgb = to_rgb(image)
    if rgb.size == (size, size):
        return np.asarray(rgb, dtype=np.uint8)
    left, top, right, bottom = content_box(*rgb.size, size=size)
    scaled = rgb.resize((right - left, bottom - top), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(scaled, (left, top))
    return np.asarray(canvas, dtype=np.uint8)


def load_sketch(source: bytes | str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode and prepare a sketch in one call: uint8 [256, 256, 3]."""
    return prepare_sketch(open_image(source, max_pixels=max_pixels))


def load_sketch_and_original(
    source: bytes | str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, Image.Image]:
    """The model's input and the picture itself in RGB at its own size (for the full-size result)."""
    rgb = to_rgb(open_image(source, max_pixels=max_pixels))
    return prepare_sketch(rgb), rgb


ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def hint_rgba(image: Image.Image) -> Image.Image:
    """The hint layer as RGBA, refusing a layer without transparency (nothing would say where hints are)."""
    if image.mode not in ALPHA_MODES and "transparency" not in image.info:
        raise NoHintAlpha(
            f"the hints image has no alpha channel (mode {image.mode}): send an RGBA PNG, transparent "
            "where there is no hint"
        )
    return image if image.mode == "RGBA" else image.convert("RGBA")


def prepare_hints(image: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """An RGBA hint layer mapped onto the model's square exactly as a sketch of its size is: uint8 RGBA
    [size, size, 4], alpha 255 where there is a hint and 0 elsewhere.

    Downscaling averages areas: an output pixel is a hint if any hint pixel falls in its area (so a thin
    stroke survives), and its color is the mean color of the hint pixels there. Alpha > 0 marks a hint pixel.
    The layer is read in bands of rows and only its hint pixels are counted, so a huge layer costs a few
    bands of memory, never a float copy of itself.
    """
    rgba = hint_rgba(image)
    left, top, right, bottom = content_box(rgba.width, rgba.height, size=size)
    box_width, box_height = right - left, bottom - top
    cells = box_width * box_height
    counts = np.zeros(cells, np.int64)
    sums = np.zeros((3, cells), np.float64)
    column_cell = np.arange(rgba.width, dtype=np.int64) * box_width // rgba.width
    for band_top in range(0, rgba.height, BAND_ROWS):
        band = np.asarray(rgba.crop((0, band_top, rgba.width, min(rgba.height, band_top + BAND_ROWS))))
        rows, columns = np.nonzero(band[..., 3])
        if rows.size == 0:
            continue
        cell = (rows + band_top) * box_height // rgba.height * box_width + column_cell[columns]
        counts += np.bincount(cell, minlength=cells)
        for channel in range(3):
            sums[channel] += np.bincount(cell, weights=band[rows, columns, channel], minlength=cells)
    covered = counts > 0
    layer = np.zeros((size, size, 4), np.uint8)
    box = layer[top:bottom, left:right].reshape(cells, 4)
    for channel in range(3):
        box[covered, channel] = np.clip(np.round(sums[channel][covered] / counts[covered]), 0, 255)
    box[covered, 3] = 255
    layer[top:bottom, left:right] = box.reshape(box_height, box_width, 4)
    return layer


def hints_at_size(image: Image.Image, width: int, height: int) -> np.ndarray:
    """The hint layer stretched over a width x height sketch (uint8 RGBA [height, width, 4]), nearest
    neighbour so hint colors stay exact: the full-size fill reads which regions each hint touches."""
    rgba = hint_rgba(image)
    if rgba.size != (width, height):
        rgba = rgba.resize((width, height), Image.Resampling.NEAREST)
    return np.asarray(rgba, dtype=np.uint8)


def load_hints(source: bytes | str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode and map a hint layer in one call: uint8 RGBA [256, 256, 4] (see `prepare_hints`)."""
    return prepare_hints(open_image(source, max_pixels=max_pixels))


def load_hint_layers(
    source: bytes | str | os.PathLike,
    sketch_size: tuple[int, int] | None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode a hint layer once: the model's 256x256 layer, and the layer at the sketch's (width, height)
    when `sketch_size` is given (None otherwise)."""
    image = open_image(source, max_pixels=max_pixels)
    full = hints_at_size(image, *sketch_size) if sketch_size is not None else None
    return prepare_hints(image), full
