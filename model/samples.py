"""Sample grids (sketch | output | truth) written during training, and the progress GIF made from them."""

from pathlib import Path

import numpy as np
from PIL import Image

from model.export import float_to_uint8
from storage.atomic import write_with
from storage.layout import sample_grids


def sample_grid(sketches, outputs, targets) -> np.ndarray:
    """One row per image: sketch | output | truth, uint8 [rows * 256, 3 * 256, 3]."""
    rows = [
        np.concatenate([float_to_uint8(image).numpy() for image in triple], axis=1)
        for triple in zip(sketches, outputs, targets, strict=True)
    ]
    return np.concatenate(rows, axis=0)


def write_png_atomically(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_with(path, lambda file: Image.fromarray(array).save(file, format="PNG"), suffix=".png")


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
    write_with(
        target,
        lambda file: frames[0].save(
            file, format="GIF", save_all=True, append_images=frames[1:], duration=400, loop=0
        ),
        suffix=".gif",
    )
    return target
