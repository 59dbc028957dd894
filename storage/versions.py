"""Finding published generator versions: plain file-system reads, no TensorFlow.

Kept apart from model/export.py (which writes versions) so that light processes (the launcher, the API's model
poller, the CLI, scripts) can list versions without loading TensorFlow. Layout (docs/ARCHITECTURE.md):
`<models_dir>/generator/<version>/` with a SavedModel and `manifest.json` (written last); hidden, temporary and
incomplete folders are never a version.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
ModelsDir = str | os.PathLike[str]


def generator_dir(models_dir: ModelsDir) -> Path:
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


def read_version(models_dir: ModelsDir, version: int) -> PublishedVersion | None:
    """The version if it is published (complete, with a readable manifest), else None."""
    path = generator_dir(models_dir) / str(version)
    if version < 1 or not is_complete(path):
        return None
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return PublishedVersion(version, path, manifest) if isinstance(manifest, dict) else None


def list_versions(models_dir: ModelsDir) -> list[PublishedVersion]:
    """Complete published versions, oldest first. Hidden, temporary and incomplete folders are ignored."""
    found = (read_version(models_dir, number) for number in numbered_versions(generator_dir(models_dir)))
    return [version for version in found if version is not None]


def damaged_versions(models_dir: ModelsDir) -> list[tuple[int, str]]:
    """Numbered version folders that cannot be read as published versions, each with why. Publishing renames
    a finished folder into place, so a numbered folder is complete unless something damaged it by hand."""
    damaged = []
    for number in numbered_versions(generator_dir(models_dir)):
        path = generator_dir(models_dir) / str(number)
        if not (path / "saved_model.pb").is_file():
            damaged.append((number, "its saved_model.pb is missing"))
            continue
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except FileNotFoundError:
            damaged.append((number, f"its {MANIFEST} is missing"))
            continue
        except (OSError, ValueError) as error:
            damaged.append((number, f"its {MANIFEST} cannot be read: {error}"))
            continue
        if not isinstance(manifest, dict):
            damaged.append((number, f"its {MANIFEST} is not a JSON object"))
    return damaged


def latest_version(models_dir: ModelsDir) -> PublishedVersion | None:
    versions = list_versions(models_dir)
    return versions[-1] if versions else None


def resolve_model_path(path: ModelsDir) -> Path:
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
