"""Flat colors that stay inside the lines: the regions the sketch's lines enclose, each filled with one color.

A hint fills the whole region it touches (the dominant hint color where several touch it); every other region
takes the median of the model's colors inside it. This is what flatting tools and Krita's colorize mask do
(LazyBrush, trapped-ball segmentation), kept to connected-component labelling in scipy's C code:

1. **Lines**: a pixel is ink where its darkest channel is darker than halfway between the paper and the ink
   (both read from the histogram), so gray, colored and anti-aliased lines count and JPEG ringing does not.
2. **Gaps**: ink is grown by half the widest gap to close (`gap` pixels per 1024 px of the drawing's longer
   side, at least 2 px; chessboard distance), so an outline with a small opening still encloses its region.
3. **Regions**: the paper left over is labelled (4-connected); these cores, away from the lines, are where the
   model's colors are read. Every other pixel (lines, their fringes, the grown margin) then joins its nearest
   core, so the flat color runs under the lines and the lines (multiplied back on top) hide the seams.
4. **Fallback**: where regions cannot be trusted the model's own colors stay, so nothing gets worse than the
   soft result: in a region larger than `MAX_REGION_SHARE` of the picture (a background, or a leak through an
   open outline), and everywhere when the drawing has no structure of closed shapes (photo-like sketches,
   hatching: too much ink, most of the ink in specks rather than strokes, or too much of the picture in
   regions too small to be shapes).

Everything works on uint8/int32 buffers at the output's size; no float copy of the picture is made.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

DEFAULT_GAP = 5  # widest gap closed, in pixels per 1024 px of the longer side
MIN_GAP_PX = 2
MAX_REGION_SHARE = 0.5  # a region above this share of the picture is background or a leak: model colors there
MAX_SPECK_SHARE = 0.2  # more of the picture than this in specks: hatching or a photo, not closed shapes
MAX_INK_SHARE = 0.35  # more ink than this is hatching or a photo, not line art
MIN_REGION_SHARE = 0.0002  # cores below this share of the picture are specks, too small to count as structure
MIN_LINE_CONTRAST = 48  # paper and ink closer than this: no lines at all
INK_QUANTILE = 0.0002  # the ink level is read this far into the dark end: a sparse drawing has little ink
MAX_SPECKLED_INK = 0.5  # more of the ink than this in specks: a photo's texture, not drawn lines
STATISTICS_SAMPLE = 1 << 20  # at most this many pixels are read for the medians
HINT_BITS = 4  # hint colors are grouped by their top 4 bits per channel to find the dominant one


@dataclass(frozen=True)
class Regions:
    """The drawing cut into regions: `labels` (int32, 1..count) for every pixel, `cores` the same labels
    away from the lines (0 on lines and their margin), and whether the structure can be trusted at all.
    Where it cannot (a blank page, no lines, specks), the two are empty: nothing reads them."""

    labels: np.ndarray
    cores: np.ndarray
    count: int
    reliable: bool


_NO_REGIONS = Regions(np.zeros((0, 0), np.int32), np.zeros((0, 0), np.int32), 0, reliable=False)


def gap_pixels(width: int, height: int, gap: float = DEFAULT_GAP) -> float:
    """The widest gap closed in a width x height drawing: `gap` per 1024 px of its longer side."""
    return max(float(MIN_GAP_PX), gap * max(width, height) / 1024)


def find_ink(sketch: np.ndarray) -> np.ndarray:
    """bool [H, W]: the sketch's lines (uint8 RGB [H, W, 3] in). Empty when paper and ink do not differ."""
    darkest = np.minimum(np.minimum(sketch[..., 0], sketch[..., 1]), sketch[..., 2])
    histogram = np.array(Image.fromarray(darkest, "L").histogram())  # C, no int64 copy of the picture
    cumulative = np.cumsum(histogram)
    paper = int(np.searchsorted(cumulative, 0.9 * cumulative[-1]))
    ink = int(np.searchsorted(cumulative, INK_QUANTILE * cumulative[-1]))
    if paper - ink < MIN_LINE_CONTRAST:
        return np.zeros(darkest.shape, bool)
    return darkest < (paper + ink) // 2 + 1


def find_regions(sketch: np.ndarray, gap: float = DEFAULT_GAP) -> Regions:
    """The regions of a uint8 RGB sketch [H, W, 3] at its own size (see the module docstring)."""
    height, width = sketch.shape[:2]
    area = height * width
    ink = find_ink(sketch)
    ink_share = float(ink.mean())
    radius = int(np.ceil(gap_pixels(width, height, gap) / 2))  # a gap of g px is bridged from both ends
    if ink_share == 0:  # a blank page: one region, nothing to trust
        return _NO_REGIONS
    if _speckled(ink, MIN_REGION_SHARE * area):
        return _NO_REGIONS
    grown = ndimage.distance_transform_cdt(~ink, metric="chessboard") <= radius
    cores, count = ndimage.label(~grown)
    cores = cores.astype(np.int32, copy=False)
    if count == 0:
        return _NO_REGIONS
    nearest = ndimage.distance_transform_cdt(
        cores == 0, metric="chessboard", return_distances=False, return_indices=True
    )
    labels = cores[nearest[0], nearest[1]]
    del nearest
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    core_sizes = np.bincount(cores.ravel(), minlength=count + 1)[1:]
    specks = float(sizes[core_sizes < MIN_REGION_SHARE * area].sum()) / area
    reliable = ink_share <= MAX_INK_SHARE and specks <= MAX_SPECK_SHARE
    return Regions(labels, cores, int(count), reliable)


def _speckled(ink: np.ndarray, speck_pixels: float) -> bool:
    """Whether most of the ink lies in blobs smaller than `speck_pixels`: XDoG of a photo's texture, screentone
    or noise, where drawn lines are long connected strokes."""
    blobs, count = ndimage.label(ink)
    sizes = np.bincount(blobs.ravel(), minlength=count + 1)[1:]
    return float(sizes[sizes < speck_pixels].sum()) > MAX_SPECKLED_INK * float(sizes.sum())


def region_medians(cores: np.ndarray, count: int, colors: np.ndarray) -> np.ndarray:
    """uint8 [count + 1, 3]: the median of `colors` (uint8 [H, W, 3]) over each region's core, read from an
    even sample of at most STATISTICS_SAMPLE pixels; a region the sample misses gets its core's mean."""
    stride = max(1, int(np.ceil(np.sqrt(cores.size / STATISTICS_SAMPLE))))
    sample_labels = cores[::stride, ::stride].ravel()
    sample_colors = colors[::stride, ::stride].reshape(-1, 3)
    inside = sample_labels > 0
    sample_labels, sample_colors = sample_labels[inside], sample_colors[inside]
    medians = np.zeros((count + 1, 3), np.uint8)
    counts = np.bincount(sample_labels, minlength=count + 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    seen = counts > 0
    for channel in range(3):
        order = np.lexsort((sample_colors[:, channel], sample_labels))
        ordered = sample_colors[order, channel]
        medians[seen, channel] = ordered[(starts + counts // 2)[seen]]
    missed = ~seen
    missed[0] = False
    if missed.any():
        flat_cores = cores.ravel()
        pixels = np.bincount(flat_cores, minlength=count + 1)
        for channel in range(3):
            sums = np.bincount(flat_cores, weights=colors[..., channel].ravel(), minlength=count + 1)
            medians[missed, channel] = np.round(sums[missed] / np.maximum(pixels[missed], 1)).astype(np.uint8)
    return medians


def dominant_hints(labels: np.ndarray, count: int, hints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each region, the hint color that covers most of it: (colors uint8 [count + 1, 3], hinted bool
    [count + 1]). Colors are grouped by their top HINT_BITS bits; the group's mean color is the result."""
    alpha = hints[..., 3]
    strong = alpha >= 128
    hinted_pixels = strong if strong.any() else alpha > 0
    colors = np.zeros((count + 1, 3), np.uint8)
    hinted = np.zeros(count + 1, bool)
    if not hinted_pixels.any():
        return colors, hinted
    region = labels[hinted_pixels].astype(np.int64)
    rgb = hints[hinted_pixels][:, :3]
    shift = 8 - HINT_BITS
    group = (
        (rgb[:, 0].astype(np.int64) >> shift) << (2 * HINT_BITS)
        | (rgb[:, 1].astype(np.int64) >> shift) << HINT_BITS
        | (rgb[:, 2].astype(np.int64) >> shift)
    )
    keys, inverse, votes = np.unique(
        region << (3 * HINT_BITS) | group, return_inverse=True, return_counts=True
    )
    key_region = keys >> (3 * HINT_BITS)
    order = np.lexsort((votes, key_region))  # by region, then by votes: each region's winner comes last
    last_of_region = np.append(key_region[order][1:] != key_region[order][:-1], True)
    winners = order[last_of_region]
    for channel in range(3):
        sums = np.bincount(inverse, weights=rgb[:, channel], minlength=len(keys))
        colors[key_region[winners], channel] = np.round(sums[winners] / votes[winners]).astype(np.uint8)
    hinted[key_region[winners]] = True
    hinted[0] = False
    return colors, hinted


@dataclass(frozen=True)
class Flats:
    """The flat picture, with what the layered files need besides: each pixel's region (`labels`), each
    region's median of the model's colors before any hint (`medians`, uint8 [count + 1, 3]) and which regions
    keep the model's own colors (`kept`, bool [count + 1]). The three are None where regions cannot be
    trusted (the model's colors stay everywhere)."""

    colors: np.ndarray
    labels: np.ndarray | None = None
    medians: np.ndarray | None = None
    kept: np.ndarray | None = None


def flatten(
    sketch: np.ndarray, colors: np.ndarray, hints: np.ndarray | None = None, gap: float = DEFAULT_GAP
) -> Flats:
    """`colors` (the model's, uint8 RGB at the sketch's size) made flat per region, hinted regions in their
    hint's color; the model's colors where regions cannot be trusted. `hints` is RGBA at the same size."""
    regions = find_regions(sketch, gap)
    if not regions.reliable:
        return Flats(colors)
    labels, count = regions.labels, regions.count
    medians = region_medians(regions.cores, count, colors)
    table = medians.copy()
    if hints is not None:
        hint_colors, hinted = dominant_hints(labels, count, hints)
        table[hinted] = hint_colors[hinted]
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    kept = sizes > MAX_REGION_SHARE * labels.size
    kept[0] = True
    flats = np.take(table, labels, axis=0)
    np.copyto(flats, colors, where=np.take(kept, labels)[..., None])
    return Flats(flats, labels, medians, kept)


def flat_colors(
    sketch: np.ndarray, colors: np.ndarray, hints: np.ndarray | None = None, gap: float = DEFAULT_GAP
) -> np.ndarray:
    """uint8 RGB [H, W, 3]: the flat picture alone (see `flatten`)."""
    return flatten(sketch, colors, hints, gap).colors
