"""The result as layers a painting app can keep working on, all at the result's size, listed top first:

- `hints` (only when hints were sent; hidden): the user's strokes as painted, on transparency.
- `lines` (multiply): the sketch's lines in their own color (black for a black pen) on transparency, alpha
  from their darkness, so anti-aliasing survives. Read as "the color that, multiplied over the paint at this
  alpha, gives the sketch" (color-to-alpha against white paper), it reproduces the PNG's multiplied lines
  exactly, colored lines included, and is clear wherever the paper is white.
- `shading` (`fill=regions` only; soft light, hidden): the model's light and dark inside each region,
  relative to the model's own median color there, as gray around 50% (which changes nothing; so it is under
  the hint strokes, which are the user's colors, not the model's light and dark). It is hidden
  because the PNG result is flat; turn it on to bring the model's shading back over the flats.
- `flats` (normal, opaque): one color per region, no lines (with `fill=soft`: the model's colors as they come).

The composite is the PNG result itself (model/fullsize.py), so a file opened with its layers as saved looks
exactly like the PNG. Where the PNG carries no laid-over lines (`lines=none`, or `size=256` with `fill=soft`,
which is the model's own picture with the lines it draws itself), the `lines` layer is there but hidden.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from model.fullsize import Fill, Lines, check_choices, lay_lines, upsampled_colors
from model.regions import DEFAULT_GAP, Flats, flatten

Blend = Literal["normal", "multiply", "soft-light"]
NEUTRAL_GRAY = 128  # soft light with 50% gray changes nothing
SHADING_GAIN = 2  # soft light moves a mid tone by about half the gray's distance from 50%


@dataclass(frozen=True)
class Layer:
    name: str
    image: Image.Image  # RGBA, RGB or L, at the result's size
    blend: Blend = "normal"
    visible: bool = True


@dataclass(frozen=True)
class LayerStack:
    """The layers, top first (as painting apps list them), and the composite: the PNG result (RGB)."""

    layers: tuple[Layer, ...]
    composite: Image.Image

    @property
    def size(self) -> tuple[int, int]:
        return self.composite.size


def full_size_layers(
    colorized: np.ndarray,
    sketch: Image.Image,
    lines: Lines = "keep",
    fill: Fill = "soft",
    hints: np.ndarray | None = None,
    gap: float = DEFAULT_GAP,
) -> LayerStack:
    """The layers of `full_size_result` (same arguments): `hints` RGBA at the sketch's size, or None."""
    check_choices(lines, fill)
    return _stack(upsampled_colors(colorized, sketch), sketch, lines, fill, hints, gap)


def square_layers(
    colorized: np.ndarray,
    sketch: np.ndarray,
    lines: Lines = "keep",
    fill: Fill = "soft",
    hints: np.ndarray | None = None,
    gap: float = DEFAULT_GAP,
) -> LayerStack:
    """The layers of `square_result` (same arguments): the 256x256 result of the model's own input."""
    check_choices(lines, fill)
    colors, square = Image.fromarray(colorized, "RGB"), Image.fromarray(sketch, "RGB")
    if fill == "soft":  # the model's own picture, lines drawn by the model: nothing is laid over it
        lines = "none"
    return _stack(colors, square, lines, fill, hints, gap)


def _stack(
    colors: Image.Image, sketch: Image.Image, lines: str, fill: str, hints: np.ndarray | None, gap: float
) -> LayerStack:
    layers = []
    if hints is not None:
        layers.append(Layer("hints", Image.fromarray(hints, "RGBA"), visible=False))
    layers.append(Layer("lines", Image.fromarray(line_layer(np.asarray(sketch)), "RGBA"), "multiply",
                        visible=lines == "keep"))  # fmt: skip
    if fill == "regions":
        flats = flatten(np.asarray(sketch), np.asarray(colors), hints, gap)
        gray = shading(np.asarray(colors), flats, hints)
        layers.append(Layer("shading", Image.fromarray(gray, "L"), "soft-light", visible=False))
        colors = Image.fromarray(flats.colors, "RGB")
    layers.append(Layer("flats", colors))
    return LayerStack(tuple(layers), lay_lines(colors, sketch, lines))


def line_layer(sketch: np.ndarray) -> np.ndarray:
    """uint8 RGBA [H, W, 4]: the lines of a uint8 RGB sketch on transparency. Alpha is the darkest channel's
    distance from white; the color is what is left of the line once that alpha is taken out (black for gray
    and black pens), so multiplied over paint at that alpha it gives exactly paint x sketch / 255."""
    alpha = 255 - np.minimum(np.minimum(sketch[..., 0], sketch[..., 1]), sketch[..., 2])
    divisor = np.maximum(alpha, 1).astype(np.uint16)
    layer = np.empty((*sketch.shape[:2], 4), np.uint8)
    for channel in range(3):  # one channel at a time: no [H, W, 3] wide copies of a large sketch
        ink = (255 - sketch[..., channel]).astype(np.uint16)  # <= alpha, so the quotient is <= 255
        layer[..., channel] = 255 - (ink * 255 + divisor // 2) // divisor
    layer[..., 3] = alpha
    return layer


def shading(colors: np.ndarray, flats: Flats, hints: np.ndarray | None = None) -> np.ndarray:
    """uint8 gray [H, W]: the model's luma (`colors`, uint8 RGB) against its median luma in each region, as
    a soft-light layer around NEUTRAL_GRAY; neutral where the flats are the model's own colors already, and
    under the hint strokes (RGBA `hints`), where the model paints the stroke's color, not light or shade."""
    if flats.labels is None or flats.medians is None or flats.kept is None:
        return np.full(colors.shape[:2], NEUTRAL_GRAY, np.uint8)
    reference = _luma(flats.medians)[flats.labels].astype(np.int16)
    gray = _luma(colors).astype(np.int16)
    gray -= reference
    gray *= SHADING_GAIN
    gray += NEUTRAL_GRAY
    np.clip(gray, 0, 255, out=gray)
    gray[flats.kept[flats.labels]] = NEUTRAL_GRAY
    if hints is not None:
        gray[hints[..., 3] > 0] = NEUTRAL_GRAY
    return gray.astype(np.uint8)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 luma (ITU-R BT.601 weights in 8-bit fixed point) of uint8 RGB [..., 3]."""
    weighted = rgb[..., 0].astype(np.uint16) * 77
    weighted += rgb[..., 1].astype(np.uint16) * 150
    weighted += rgb[..., 2].astype(np.uint16) * 29  # at most 255 * 256: no overflow
    return (weighted >> 8).astype(np.uint8)
