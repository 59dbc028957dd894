"""Fixtures shared by every test package: tiny published generators and synthetic datasets."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

import pytest  # noqa: E402

if TYPE_CHECKING:
    from storage.serving_policy import GateDecision
    from tests.support import JobSystem

TINY_WIDTH = 8


def publish_tiny_generator(
    models_dir: Path, seed: int = 0, gate: "GateDecision | None" = None, **manifest_extra
) -> int:
    """Publish a tiny randomly initialised generator (deterministic by seed); return its version number.
    `gate` is the quality gate's decision, stored in the manifest as the trainer's is."""
    import keras

    from model.export import publish_generator
    from model.networks import build_generator

    keras.utils.set_random_seed(seed)
    generator = build_generator(ngf=TINY_WIDTH)
    manifest = {"job_id": None, "step": 0, "epoch": 0, "model": {"ngf": TINY_WIDTH, "norm": "instance"}}
    decided = None if gate is None else lambda: gate
    return publish_generator(generator, models_dir, {**manifest, **manifest_extra}, gate=decided).version


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    path = tmp_path / "models"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> Path:
    """64 train / 8 val synthetic pairs, made once per test session."""
    from model.synthetic import make_synthetic_dataset

    path = tmp_path_factory.mktemp("datasets") / "shapes"
    make_synthetic_dataset(path, train=64, val=8, seed=0)
    return path


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory) -> Iterator[int]:
    """A private redis-server for this test session, on a free port: never a server the tests did not start."""
    from tests.support import start_redis_server

    server, port = start_redis_server(tmp_path_factory.mktemp("redis"))
    try:
        yield port
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_job_system(request, tmp_path_factory, redis_port: int) -> Iterator["JobSystem"]:
    """An API and a Redis broker on the module's own database (its constant REDIS_DB); no workers yet."""
    from tests.support import JobSystem, flush_redis_db

    db = request.module.REDIS_DB
    api_token = getattr(request.module, "API_TOKEN", None)
    flush_redis_db(redis_port, db)
    system = JobSystem(
        tmp_path_factory.mktemp("jobs"),
        broker_url=f"redis://127.0.0.1:{redis_port}/{db}",
        api_token=api_token,
    )
    try:
        system.start_api()
        yield system
    finally:
        system.close()
