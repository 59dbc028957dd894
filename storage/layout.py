"""Which files of a dataset split are pair images, and which are a run's sample grids: one rule for the trainer,
the API and the launcher; and the size of the images the model reads and writes.

Plain file-system reads and constants, no TensorFlow, so light processes (the API's upload path, the
launcher) can use them too. The data-folder layout is described in docs/ARCHITECTURE.md.
"""

import re
from pathlib import Path

IMAGE_SIZE = 256  # the side of the square sketch and color image a generator reads and writes
DEMO_DATASET = (
    "demo"  # the synthetic dataset `up` trains its first model on; its versions never block a user's
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def pair_files(split_dir: Path) -> list[Path]:
    """The split's pair images, sorted; hidden files (such as macOS "._x.png" shadows) are not images."""
    if not split_dir.is_dir():
        return []
    return sorted(
        path
        for path in split_dir.iterdir()
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )


def sample_grids(samples_dir: Path) -> list[Path]:
    """A run's `epoch_NNNN.png` sample grids, oldest epoch first (by number: epoch 10000 follows 9999)."""
    grids = [path for path in samples_dir.glob("epoch_*.png") if path.stem.removeprefix("epoch_").isdigit()]
    return sorted(grids, key=lambda path: int(path.stem.removeprefix("epoch_")))


def relative_to_data(text: str, data_dir: Path) -> str:
    """`text` with the data folder's absolute path taken out of every path under it ("models/generator/3/...",
    relative to the data folder): for messages a client sees, which should not tell where the server keeps files."""
    roots = {str(data_dir.absolute()), str(data_dir.resolve())} - {"/"}
    for root in sorted(roots, key=len, reverse=True):  # a longer root first: it may contain the other
        text = re.sub(re.escape(root) + r"(/+|(?![\w-]|\.[\w-]))", _after_root, text)
    return text


def _after_root(match: re.Match[str]) -> str:
    return "" if match.group(1) else "the data folder"
