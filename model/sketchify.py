"""Line sketches from color images (XDoG), and `prepare`: a folder of pictures -> a pair dataset.

XDoG (Winnemoeller et al., 2012) sharpens a difference of Gaussians into clean dark lines on white, which looks
close enough to a hand-drawn sketch for pix2pix to learn from a user's own art.
"""

import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from model.imageio import BadImage, open_image, to_rgb
from model.synthetic import make_pair_image
from storage.layout import IMAGE_SIZE

SOURCE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


def _gaussian_blur(gray: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian blur with mirrored edges, in NumPy: the importer needs no TensorFlow for it."""
    radius = max(1, int(round(3 * sigma)))
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    padded = np.pad(gray.astype(np.float32), radius, mode="symmetric")
    height, width = gray.shape
    rows = np.zeros((padded.shape[0], width), np.float32)
    for tap, weight in enumerate(kernel):
        rows += weight * padded[:, tap : tap + width]
    blurred = np.zeros((height, width), np.float32)
    for tap, weight in enumerate(kernel):
        blurred += weight * rows[tap : tap + height, :]
    return blurred


def xdog(
    gray: np.ndarray,
    sigma: float = 0.8,
    k: float = 1.6,
    tau: float = 0.98,
    epsilon: float = -0.005,
    phi: float = 200.0,
) -> np.ndarray:
    """Grayscale in [0, 1] -> line drawing in [0, 1] (1 = white paper, 0 = ink)."""
    difference = _gaussian_blur(gray, sigma) - tau * _gaussian_blur(gray, sigma * k)
    lines = np.where(difference >= epsilon, 1.0, 1.0 + np.tanh(phi * (difference - epsilon)))
    return np.clip(lines, 0.0, 1.0)


def sketchify(image: Image.Image) -> Image.Image:
    """An RGB picture -> an RGB line sketch of the same size."""
    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    lines = (xdog(gray) * 255.0).round().astype(np.uint8)
    return Image.fromarray(lines, "L").convert("RGB")


def center_square(image: Image.Image, size: int) -> Image.Image:
    """Crop the largest centered square and resize it: training pairs keep the subject, not white bars."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)


def prepare_dataset(
    images_dir: str | os.PathLike,
    out: str | os.PathLike,
    val_fraction: float = 0.1,
    seed: int = 0,
    size: int = IMAGE_SIZE,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write `out/train` and `out/val` pairs (color left, sketch right); unreadable pictures are skipped."""
    images_dir, out = Path(images_dir), Path(out)
    if not images_dir.is_dir():
        raise ValueError(f"no such folder: {images_dir}")
    sources = sorted(path for path in images_dir.rglob("*") if path.suffix.lower() in SOURCE_SUFFIXES)
    if len(sources) < 2:
        raise ValueError(
            f"need at least 2 images in {images_dir} (found {len(sources)}): one for train, one for val"
        )
    random.Random(seed).shuffle(sources)
    val_count = min(len(sources) - 1, max(1, round(len(sources) * val_fraction)))
    counts = {"train": 0, "val": 0, "skipped": 0}
    for index, source in enumerate(sources):
        split = "val" if index < val_count else "train"
        try:
            color = center_square(to_rgb(open_image(source)), size)
        except BadImage as error:
            counts["skipped"] += 1
            if progress:
                progress(f"skipped {source}: {error}")
            continue
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        make_pair_image(color, sketchify(color)).save(folder / f"{index:06d}_{source.stem}.png")
        counts[split] += 1
        if progress and (index + 1) % 100 == 0:
            progress(f"{index + 1}/{len(sources)} images")
    if counts["train"] == 0 or counts["val"] == 0:
        raise ValueError(f"too few readable images in {images_dir}: {counts}")
    return counts
