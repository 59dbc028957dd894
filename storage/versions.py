"""Finding published generator versions: plain file-system reads, no TensorFlow.

Kept apart from model/export.py so that light processes (the launcher, the API's model poller, scripts) can
list versions without loading TensorFlow. Layout: `<models_dir>/generator/<version>/` with a SavedModel and
`manifest.json` (written last); hidden, temporary and incomplete folders are never a version.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def generator_dir(models_dir: str | os.PathLike) -> Path:
    return Path(models_dir) / "generator"


@dataclass(frozen=True)
class PublishedVersion:
    version: int
    path: Path
    manifest: dict[str, Any]


def numbered_versions(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    return sorted(
        int(entry.name) for entry in directory.iterdir() if entry.name.isdigit() and int(entry.name) > 0
    )


def is_complete(version_path: Path) -> bool:
    """A version counts only once its SavedModel and manifest are both there (the manifest is written last)."""
    return (version_path / "saved_model.pb").is_file() and (version_path / MANIFEST).is_file()


def list_versions(models_dir: str | os.PathLike) -> list[PublishedVersion]:
    """Complete published versions, oldest first. Hidden, temporary and incomplete folders are ignored."""
    directory = generator_dir(models_dir)
    versions = []
    for number in numbered_versions(directory):
        path = directory / str(number)
        if not is_complete(path):
            continue
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        versions.append(PublishedVersion(number, path, manifest))
    return versions


def latest_version(models_dir: str | os.PathLike) -> PublishedVersion | None:
    versions = list_versions(models_dir)
    return versions[-1] if versions else None


def resolve_model_path(path: str | os.PathLike) -> Path:
    """Accept a version folder, a `models` folder or a `models/generator` folder; return a version folder."""
    path = Path(path)
    if is_complete(path):
        return path
    models_dir = path.parent if path.name == "generator" else path
    newest = latest_version(models_dir)
    if newest is None:
        raise FileNotFoundError(
            f"no published generator at {path}: expected a version folder or a models folder"
        )
    return newest.path
