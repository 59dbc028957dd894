"""The model store: serves the version the serving policy chooses, and swaps without dropping a request.

A background task looks at `models/generator/` and the serving policy (storage/serving_policy.py) every
`poll_seconds`. The policy names the version to serve: a pinned one, or the newest that passed the quality
gate. When that is not the version being served (a new one passed the gate, a pin, a rollback, or the served
version's files changed on disk), it is loaded with `tf.saved_model.load` in a worker thread, warmed up with
one batch, checked (and its ONNX copy, if any, weighed against it for batches of one: model/onnx_engine.py),
and only then made current by replacing a single reference. A request takes that reference once when it starts, so requests already in
flight finish on the model they started with. A version that fails to load is logged once and remembered by
its files' modification times, so it is skipped on later polls (and tried again only if its files change).
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.networks import IMAGE_SIZE
from model.onnx_engine import choose_batch1_engine
from storage.layout import relative_to_data
from storage.serving_policy import (
    DamagedPolicy,
    ServingPolicy,
    labels_of,
    passed_gate,
    read_policy,
)
from storage.shared import shared_mode
from storage.shared_versions import sync_versions
from storage.versions import MANIFEST, PublishedVersion, damaged_versions, list_versions

logger = logging.getLogger("sketch2color.models")
SLOW_LOAD_WARNING_SECONDS = 60.0

Fingerprint = tuple[int, ...]


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """One loaded version: `predict` maps a uint8 batch [N, 256, 256, 3] to a uint8 batch of that shape;
    a hint model's `predict_with_hints` also takes uint8 RGBA hints [N, 256, 256, 4]."""

    version: int
    path: Path
    manifest: dict[str, Any]
    predict: Callable[[np.ndarray], np.ndarray]
    load_seconds: float
    predict_with_hints: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    engine: dict[str, Any] = field(default_factory=dict)  # which engine serves a batch of one, and why
    loaded_at: float = field(default_factory=time.time)
    files: "Fingerprint" = ()  # what was on disk when it was loaded: new files under the same number reload


class VersionNotFound(LookupError):
    """The pinned version is not published (or not complete)."""


class VersionUnloadable(RuntimeError):
    """The pinned version is published but failed to load."""


def fingerprint(version_path: Path) -> Fingerprint:
    """The identity of a version's files (inode, size, modification time of the graph, the variables' index
    and the manifest): a failed version is retried, and a served one reloaded, only when they change."""
    stamps: list[int] = []
    for path in (
        version_path / "saved_model.pb",
        version_path / "variables" / "variables.index",
        version_path / MANIFEST,
    ):
        try:
            status = path.stat()
            stamps += [status.st_ino, status.st_size, status.st_mtime_ns]
        except OSError:
            stamps += [0, 0, 0]
    return tuple(stamps)


def load_version(published: PublishedVersion) -> LoadedModel:
    """Load a version with `tf.saved_model.load`, warm it up, check its output. Blocking: run in a thread."""
    from model.export import load_serving_function

    started = time.perf_counter()
    files = fingerprint(published.path)
    serving_function = load_serving_function(published.path)

    def tensorflow_predict(sketches: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        return serving_function(sketches, hints).numpy()

    # The warm-up checks the signature's output and traces it before the engines are timed against each other.
    warm_up = tensorflow_predict(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8))
    if warm_up.shape != (1, IMAGE_SIZE, IMAGE_SIZE, 3) or warm_up.dtype != np.uint8:
        raise ValueError(
            f"serving signature returned {warm_up.dtype} {warm_up.shape}, expected uint8 [N, 256, 256, 3]"
        )
    choice, onnx_predict = choose_batch1_engine(
        published.path, tensorflow_predict, serving_function.accepts_hints
    )

    def predict(sketches: np.ndarray) -> np.ndarray:
        if onnx_predict is not None and len(sketches) == 1:
            return onnx_predict(sketches)
        return tensorflow_predict(sketches)

    def predict_with_hints(sketches: np.ndarray, hints: np.ndarray) -> np.ndarray:
        if onnx_predict is not None and len(sketches) == 1:
            return onnx_predict(sketches, hints)
        return tensorflow_predict(sketches, hints)

    return LoadedModel(
        version=published.version,
        path=published.path,
        manifest=published.manifest,
        predict=predict,
        load_seconds=time.perf_counter() - started,
        files=files,
        predict_with_hints=predict_with_hints if serving_function.accepts_hints else None,
        engine=choice.to_json(),
    )


class ModelStore:
    """Holds the current generator, polls for newer ones, and keeps a few pinned older versions at hand."""

    def __init__(
        self,
        models_dir: Path,
        poll_seconds: float,
        pinned_cache_size: int = 2,
        on_change: Callable[[LoadedModel], None] | None = None,
    ):
        self.models_dir = Path(models_dir)
        self.poll_seconds = poll_seconds
        self.current: LoadedModel | None = None
        self.loading_version: int | None = None
        self.policy = ServingPolicy()
        self.problem: str | None = None  # why the policy's choice is not what is served, if it is not
        self.failures: dict[int, tuple[Fingerprint, str]] = {}
        self._pinned: OrderedDict[int, LoadedModel] = OrderedDict()
        self._pinned_cache_size = pinned_cache_size
        self._pinned_loads: dict[int, asyncio.Task[LoadedModel]] = {}
        self._damaged_seen: set[int] = set()
        self._on_change = on_change
        self._task: asyncio.Task | None = None

    # Lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll_forever(), name="model-store-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad poll must never stop the polling
                logger.exception("looking for new generator versions failed")
            await asyncio.sleep(self.poll_seconds)

    # Hot reload ------------------------------------------------------------------------------------------

    async def refresh(self) -> LoadedModel | None:
        """Serve what the policy chooses, if it is not served already and can be loaded; return the current."""
        versions, policy, damage = await asyncio.to_thread(self._read_versions_and_policy)
        self.policy = policy
        current = self.current
        candidates = self._candidates(versions, policy)
        if damage is not None:  # said after _candidates, which clears what it does not report itself
            self._report(f"{damage}; serving by the last good policy meanwhile")
        for published in candidates:
            if current is not None and current.version == published.version:
                if current.files == await asyncio.to_thread(fingerprint, published.path):
                    return current  # already serving the best choice that loads
                logger.warning(
                    "the files of served version %d changed on disk; reloading it", published.version
                )
            loaded = self._pinned.pop(published.version, None)
            if loaded is not None and loaded.files != await asyncio.to_thread(fingerprint, published.path):
                loaded = None
            if loaded is None:
                if not await asyncio.to_thread(self._worth_trying, published):
                    continue
                self.loading_version = published.version
                try:
                    loaded = await self._load(published)
                finally:
                    self.loading_version = None
            if loaded is None:
                continue
            self._swap(loaded)
            return loaded
        if current is not None and not any(published.version == current.version for published in versions):
            self._report(
                f"served version {current.version} is no longer published and nothing else can be served"
            )
        return self.current

    def _read_versions_and_policy(self) -> tuple[list[PublishedVersion], ServingPolicy, DamagedPolicy | None]:
        """The versions and the policy; a damaged policy file leaves the last good policy in force. A version
        folder that cannot be read is logged once (GET /models lists it). In shared mode the bucket's new
        versions are copied here first (verified, then renamed into place)."""
        shared = shared_mode()
        if shared is not None:
            sync_versions(shared, self.models_dir)
        versions = list_versions(self.models_dir)
        damaged = dict(damaged_versions(self.models_dir))
        for number in damaged.keys() - self._damaged_seen:
            logger.warning("version %d cannot be read and is not served: %s", number, damaged[number])
        self._damaged_seen = set(damaged)
        try:
            return versions, read_policy(self.models_dir), None
        except DamagedPolicy as damage:
            return versions, self.policy, damage

    def _candidates(self, versions: list[PublishedVersion], policy: ServingPolicy) -> list[PublishedVersion]:
        """What to try, best first: the pinned version, or the versions that passed the gate, newest first."""
        if policy.served != "latest":
            pinned = [published for published in versions if published.version == policy.served]
            if pinned:
                self._report(None)
                return pinned
            self._report(
                f"pinned version {policy.served} is not published; serving the newest that passed the gate"
            )
        else:
            self._report(None)
        return [published for published in reversed(versions) if passed_gate(published)]

    def _swap(self, loaded: LoadedModel) -> None:
        """One reference: a request sees either the old or the new model. The old one stays at hand briefly."""
        previous, self.current = self.current, loaded
        if previous is not None and previous.version != loaded.version:
            self._keep_pinned(previous)
        logger.info("serving generator version %d (loaded in %.2f s)", loaded.version, loaded.load_seconds)
        if self._on_change is not None:
            self._on_change(loaded)

    def _report(self, problem: str | None) -> None:
        if problem is not None and problem != self.problem:
            logger.warning("%s", problem)
        self.problem = problem

    def _worth_trying(self, published: PublishedVersion) -> bool:
        failure = self.failures.get(published.version)
        return failure is None or failure[0] != fingerprint(published.path)

    async def _load(self, published: PublishedVersion) -> LoadedModel | None:
        stamp = await asyncio.to_thread(fingerprint, published.path)
        try:
            loaded = await self._load_and_report_slowness(published)
        except Exception as error:  # any broken SavedModel: keep serving the current one
            message = f"{type(error).__name__}: {error}".strip()
            # Clients see the failure (GET /models, the 503 for ?version=): paths relative to the data folder.
            public = relative_to_data(message, self.models_dir.parent)[:500]
            self.failures[published.version] = (stamp, public)
            logger.error("failed to load generator version %d from %s, skipping it: %s", published.version,
                         published.path, message[:500])  # fmt: skip
            return None
        self.failures.pop(published.version, None)
        return loaded

    async def _load_and_report_slowness(self, published: PublishedVersion) -> LoadedModel:
        """Load in a thread; a load that takes minutes is logged as it goes, so a stuck one is never silent."""
        started = time.monotonic()
        loading = asyncio.ensure_future(asyncio.to_thread(load_version, published))
        while True:
            done, _ = await asyncio.wait({loading}, timeout=SLOW_LOAD_WARNING_SECONDS)
            if done:
                return loading.result()
            logger.warning("still loading generator version %d after %.0f s (from %s)", published.version,
                           time.monotonic() - started, published.path)  # fmt: skip

    # Pinned versions -------------------------------------------------------------------------------------

    async def get(self, version: int | None = None) -> LoadedModel | None:
        """The current model, or a pinned version (loaded on first use, then cached); None before any load."""
        current = self.current
        if version is None or (current is not None and current.version == version):
            return current
        if version in self._pinned:
            self._pinned.move_to_end(version)
            return self._pinned[version]
        # The version comes from a client: nothing is kept for it unless it is published.
        published = await asyncio.to_thread(self._find, version)
        if published is None:
            raise VersionNotFound(
                f"generator version {version} is not published; GET /models lists the versions"
            )
        # Concurrent requests for the same version share one load; only loads in progress are kept here.
        loading = self._pinned_loads.get(version)
        if loading is None:
            loading = asyncio.create_task(self._load_pinned(published))
            self._pinned_loads[version] = loading
            loading.add_done_callback(lambda _: self._pinned_loads.pop(version, None))
        return await asyncio.shield(loading)  # a request that goes away does not cancel the others' load

    async def _load_pinned(self, published: PublishedVersion) -> LoadedModel:
        version = published.version
        if version in self._pinned:  # loaded while this request was looking for it
            return self._pinned[version]
        loaded = None
        if await asyncio.to_thread(self._worth_trying, published):  # a failed one: only if its files changed
            loaded = await self._load(published)
        if loaded is None:
            raise VersionUnloadable(
                f"generator version {version} cannot be loaded: {self.failures[version][1]}"
            )
        self._keep_pinned(loaded)
        return loaded

    def _keep_pinned(self, loaded: LoadedModel) -> None:
        self._pinned[loaded.version] = loaded
        self._pinned.move_to_end(loaded.version)
        while len(self._pinned) > self._pinned_cache_size:
            self._pinned.popitem(last=False)

    def _find(self, version: int) -> PublishedVersion | None:
        return next(
            (published for published in list_versions(self.models_dir) if published.version == version), None
        )

    # Reporting -------------------------------------------------------------------------------------------

    def _engine_of(self, version: int) -> dict[str, Any] | None:
        loaded = self.current if self.current is not None and self.current.version == version else None
        loaded = loaded or self._pinned.get(version)
        return loaded.engine if loaded is not None else None

    def describe(self) -> dict[str, Any]:
        """What GET /models shows: the policy, every complete version with its metrics, gate and labels, which
        one is served, why any failed to load. Blocking."""
        current = self.current
        try:
            policy = read_policy(self.models_dir)
        except DamagedPolicy:  # `problem` says so
            policy = self.policy
        versions = []
        for published in reversed(list_versions(self.models_dir)):
            failure = self.failures.get(published.version)
            manifest = published.manifest
            versions.append(
                {
                    "version": published.version,
                    "active": current is not None and current.version == published.version,
                    "created": manifest.get("created"),
                    "job_id": manifest.get("job_id"),
                    "dataset": manifest.get("dataset"),
                    "step": manifest.get("step"),
                    "hints": bool(manifest.get("hints", False)),
                    "val": manifest.get("val"),
                    "gate": manifest.get("gate"),
                    "labels": labels_of(policy, published.version),
                    "has_sample": (published.path / "sample.png").is_file(),
                    "error": failure[1] if failure else None,
                    "engine": self._engine_of(published.version),
                    "manifest": manifest,
                }
            )
        return {
            "active_version": current.version if current else None,
            "loading_version": self.loading_version,
            "poll_seconds": self.poll_seconds,
            "policy": policy.to_json(),
            "problem": self.problem,
            "versions": versions,
            "damaged": [
                {"version": number, "error": error} for number, error in damaged_versions(self.models_dir)
            ],
        }
