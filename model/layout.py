"""Which files of a dataset split are pair images: one rule for the trainer, the API and the launcher.

Plain file-system reads, no TensorFlow, so light processes can count pairs too.
"""

from pathlib import Path

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
