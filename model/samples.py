"""Sample grids (sketch | output | truth) written during training, and the progress GIF made from them."""

import os
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from model.export import float_to_uint8
from model.layout import sample_grids


def sample_grid(sketches, outputs, targets) -> np.ndarray:
    """One row per image: sketch | output | truth, uint8 [rows * 256, 3 * 256, 3]."""
    rows = [
        np.concatenate([float_to_uint8(image).numpy() for image in triple], axis=1)
        for triple in zip(sketches, outputs, targets, strict=True)
    ]
    return np.concatenate(rows, axis=0)


def write_png_atomically(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.png")
    Image.fromarray(array).save(temporary, format="PNG")
    os.replace(temporary, path)


def write_progress_gif(samples_dir: Path, max_width: int = 384) -> Path | None:
    """Animate the epoch grids in order, so the whole training run shows at a glance."""
    grids = sample_grids(samples_dir)
    if not grids:
        return None
    frames = []
    for grid in grids:
        with Image.open(grid) as image:
            scale = min(1.0, max_width / image.width)
            frames.append(
                image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)))
            )
    target = samples_dir / "progress.gif"
    temporary = samples_dir / f".progress.{uuid.uuid4().hex}.gif"
    frames[0].save(temporary, format="GIF", save_all=True, append_images=frames[1:], duration=400, loop=0)
    os.replace(temporary, target)
    return target
