"""The model store's pinned versions in-process, with a stand-in loader: what it keeps for a `?version=N`."""

import asyncio
import json
import time
from pathlib import Path

import numpy as np
import pytest

import app.model_store
from app.model_store import LoadedModel, ModelStore, VersionNotFound, VersionUnloadable


def _fake_version(models_dir: Path, number: int) -> None:
    """A folder that lists as a complete version; the stand-in loader never reads it."""
    path = models_dir / "generator" / str(number)
    path.mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"stand-in")
    (path / "manifest.json").write_text(json.dumps({"version": number}))


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace the TensorFlow loader with a slow stand-in; version 13 fails. Returns the versions loaded."""
    loaded: list[int] = []

    def load_version(published) -> LoadedModel:
        loaded.append(published.version)
        time.sleep(0.2)
        if published.version == 13:
            raise ValueError("not a SavedModel")
        return LoadedModel(published.version, published.path, published.manifest, np.copy, 0.2)

    monkeypatch.setattr(app.model_store, "load_version", load_version)
    return loaded


def test_unpublished_versions_leave_nothing_behind(models_dir: Path, loads: list[int]) -> None:
    """`?version=N` comes from any client: a store that kept something per N would grow without bound."""
    _fake_version(models_dir, 1)
    store = ModelStore(models_dir, poll_seconds=60)

    async def ask_for_unpublished_versions() -> None:
        for version in range(1000, 1200):
            with pytest.raises(VersionNotFound):
                await store.get(version)

    asyncio.run(ask_for_unpublished_versions())
    kept = {name: value for name, value in vars(store).items() if isinstance(value, dict) and value}
    assert not kept, f"the store kept something for versions that do not exist: {list(kept)}"
    assert loads == []


def test_concurrent_requests_for_a_pinned_version_share_one_load_and_keep_no_lock(
    models_dir: Path, loads: list[int]
) -> None:
    for number in (1, 2, 13):
        _fake_version(models_dir, number)
    store = ModelStore(models_dir, poll_seconds=60)

    async def pin_concurrently() -> tuple[list, list]:
        good = await asyncio.gather(*(store.get(2) for _ in range(8)))
        bad = await asyncio.gather(*(store.get(13) for _ in range(8)), return_exceptions=True)
        return good, bad

    good, bad = asyncio.run(pin_concurrently())
    assert {model.version for model in good} == {2} and len({id(model) for model in good}) == 1
    assert all(isinstance(error, VersionUnloadable) for error in bad), bad
    assert sorted(loads) == [2, 13], "eight concurrent requests for one version should load it once"
    assert list(store._pinned) == [2] and store._pinned_loads == {}, "only finished loads are kept"
