"""Routes: the pair datasets under `<data_dir>/datasets/`, which training jobs are launched on."""

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from app.api.deps import ApiTokenDep, SettingsDep
from model.layout import pair_files

router = APIRouter(tags=["jobs"], dependencies=[ApiTokenDep])

# A dataset is named by one plain folder name: no separators, no "..", nothing hidden, never a path.
DATASET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


class DatasetSummary(BaseModel):
    name: str
    train: int  # pair images in train/
    val: int  # pair images in val/


def count_pairs(folder: Path) -> int:
    """The trainer's own rule (model/layout.py), so a count here is what a job will train on."""
    return len(pair_files(folder))


def check_dataset_name(name: str) -> None:
    """422 unless `name` is a plain folder name that cannot leave the datasets folder."""
    if not DATASET_NAME.match(name) or ".." in name:
        raise HTTPException(
            422,
            f"dataset: {name!r} is not a dataset name; give the name of a folder under the datasets folder "
            "(letters, digits, '.', '_' and '-'; no paths, no '..')",
        )


def summarize(dataset_dir: Path) -> dict[str, Any]:
    return {
        "name": dataset_dir.name,
        "train": count_pairs(dataset_dir / "train"),
        "val": count_pairs(dataset_dir / "val"),
    }


def list_datasets(datasets_dir: Path) -> list[dict[str, Any]]:
    if not datasets_dir.is_dir():
        return []
    folders = (entry for entry in datasets_dir.iterdir() if entry.is_dir() and DATASET_NAME.match(entry.name))
    return [summarize(folder) for folder in sorted(folders, key=lambda folder: folder.name)]


@router.get("/datasets", response_model=list[DatasetSummary])
def get_datasets(settings: SettingsDep) -> list[dict[str, Any]]:
    """Datasets under the data folder with their pair counts: the names POST /jobs accepts."""
    return list_datasets(settings.datasets_dir)
