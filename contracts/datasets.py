"""Datasets under `<data_dir>/datasets/<name>/{train,val}/`: what a name may be, and what a folder holds.

Pair counts follow the trainer's own rule (model/layout.py), so a count here is what a job will train on.
"""

import re
from pathlib import Path
from typing import Any

from model.layout import pair_files

# A dataset is named by one plain folder name: no separators, no "..", nothing hidden, never a path.
DATASET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


class BadDatasetName(ValueError):
    """Not a name of a folder under the datasets folder."""


def is_dataset_name(name: str) -> bool:
    return bool(DATASET_NAME.fullmatch(name)) and ".." not in name


def check_dataset_name(name: str) -> None:
    if not is_dataset_name(name):
        raise BadDatasetName(
            f"dataset: {name!r} is not a dataset name; give the name of a folder under the datasets folder "
            "(letters, digits, '.', '_' and '-'; no paths, no '..')"
        )


def count_pairs(folder: Path) -> int:
    return len(pair_files(folder))


def summarize(dataset_dir: Path) -> dict[str, Any]:
    return {
        "name": dataset_dir.name,
        "train": count_pairs(dataset_dir / "train"),
        "val": count_pairs(dataset_dir / "val"),
    }


def list_datasets(datasets_dir: Path) -> list[dict[str, Any]]:
    """Every dataset folder with its pair counts, by name."""
    if not datasets_dir.is_dir():
        return []
    folders = (entry for entry in datasets_dir.iterdir() if entry.is_dir() and is_dataset_name(entry.name))
    return [summarize(folder) for folder in sorted(folders, key=lambda folder: folder.name)]
