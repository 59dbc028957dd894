"""The API under test, two ways. In process (`colorize_app`, `jobs_app`): the app over real services on a
temporary data folder, called through TestClient, for route behaviour (milliseconds a request). Real servers:
`uvicorn` subprocesses on free ports, each with its own data folder, for what needs a process (hot reload,
concurrency, workers, slow or vanishing clients, logs).

TensorFlow costs seconds per process, so the tests share as few servers as they can: one session-wide server
with two published versions, and one per test module that needs a server of its own (an empty data folder).
"""

import io
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.conftest import TINY_WIDTH, publish_tiny_generator
from tests.support import Process, child_environment, start_uvicorn, wait_until

if TYPE_CHECKING:  # the services import TensorFlow: only the in-process fixtures load them
    from fastapi.testclient import TestClient
    from playwright.sync_api import Browser

    from app.api.services import AppServices

POLL_SECONDS = 0.5
STARTUP_TIMEOUT_SECONDS = 90.0
# The shared server's limits are small so that the tests can cross them with small payloads.
MAX_UPLOAD_BYTES = 1_000_000
MAX_PIXELS = 4_000_000
ALLOWED_ORIGIN = "http://allowed.example"
DATASET = "shapes"


def train_tiny_generator(data_dir: Path) -> int:
    """Train a tiny pix2pix for a few steps with the model package, the way a job does: dataset under
    `datasets/`, run folder and job record (contracts/jobs.py) under `runs/<id>/`, versions under `models/`.
    Return the published version."""
    from contracts.job_record import Job, Progress
    from contracts.job_states import JobState
    from contracts.jobs import create_record, new_job_id, new_record, update_record, utc_now
    from contracts.train_config import TrainConfig
    from model.synthetic import make_synthetic_dataset
    from model.train import train_pix2pix

    dataset_dir = data_dir / "datasets" / DATASET
    make_synthetic_dataset(dataset_dir, train=16, val=4, seed=0)
    params = TrainConfig(steps=20, batch_size=2, ngf=TINY_WIDTH, ndf=TINY_WIDTH, checkpoint_every=20,
                         export_every=0, log_every=10, val_samples=4)  # fmt: skip
    job_id = new_job_id()
    run_dir = data_dir / "runs" / job_id
    create_record(run_dir, new_record(job_id, DATASET, params, params.steps))

    def set_state(state: JobState) -> None:
        def change(record: Job) -> None:
            record.state = state
            setattr(record, "started_at" if state == JobState.RUNNING else "finished_at", utc_now())

        update_record(run_dir, change)

    def save_progress(progress: Progress) -> None:
        update_record(run_dir, lambda record: setattr(record, "progress", progress))

    set_state(JobState.RUNNING)
    result = train_pix2pix(
        dataset_dir,
        run_dir,
        params,
        models_dir=data_dir / "models",
        on_progress=save_progress,
        job_id=job_id,
    )
    assert result.status == "finished" and len(result.versions) == 1, f"training did not publish: {result}"
    set_state(JobState.SUCCEEDED)
    return result.versions[0]


def train_hinted_generator(data_dir: Path, steps: int = 30) -> int:
    """Train a tiny hint model briefly on random-color shapes (only hints tell their colors) and publish it
    under `data_dir/models`; return the version."""
    from contracts.train_config import TrainConfig
    from model.synthetic import make_synthetic_dataset
    from model.train import train_pix2pix

    dataset_dir = data_dir / "datasets" / "random-colors"
    make_synthetic_dataset(dataset_dir, train=16, val=4, seed=0, colors="random")
    config = TrainConfig(steps=steps, batch_size=2, ngf=TINY_WIDTH, ndf=TINY_WIDTH, hints=True,
                         checkpoint_every=steps, val_samples=4)  # fmt: skip
    result = train_pix2pix(dataset_dir, data_dir / "runs" / "hinted", config, models_dir=data_dir / "models")
    assert result.status == "finished" and len(result.versions) == 1, f"training did not publish: {result}"
    return result.versions[0]


@pytest.fixture(scope="session")
def hinted_models_dir(tmp_path_factory) -> Path:
    """A models folder with one generator trained briefly WITH color hints (version 1): it follows hints."""
    data_dir = tmp_path_factory.mktemp("hinted")
    train_hinted_generator(data_dir)
    return data_dir / "models"


@dataclass
class Server:
    base_url: str
    data_dir: Path
    process: Process

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def log(self, last_chars: int = 4000) -> str:
        return self.process.log()[-last_chars:]

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=options.pop("timeout", 60.0), **options)


@contextmanager
def run_server(data_dir: Path, **settings: Any) -> Iterator[Server]:
    """Start the API (tests/support.py's uvicorn) with S2C_* settings on `data_dir` (model_poll_seconds
    POLL_SECONDS unless given); stop it afterwards."""
    data_dir.mkdir(parents=True, exist_ok=True)
    environment = child_environment(data_dir, **{"model_poll_seconds": POLL_SECONDS, **settings})
    process, base_url = start_uvicorn(environment, data_dir.parent, STARTUP_TIMEOUT_SECONDS)
    try:
        yield Server(base_url, data_dir, process)
    finally:
        process.stop(timeout=20)


def wait_for_version(server: Server, version: int, timeout: float = 60.0) -> None:
    def serving() -> bool:
        response = httpx.get(f"{server.base_url}/readyz", timeout=5)
        return response.status_code == 200 and response.json()["model_version"] == version

    wait_until(serving, timeout, f"version {version} to be served; log:\n{server.log()}")


def serve_version_1(folder: Path, make_data: Callable[[Path], object], **settings: Any) -> Iterator[Server]:
    """For a module's own server fixture: `make_data` fills `folder`/data (version 1 among what it publishes),
    then a server on it with `settings`, once version 1 is served."""
    data_dir = folder / "data"
    make_data(data_dir)
    with run_server(data_dir, **settings) as running:
        wait_for_version(running, 1)
        yield running


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shared server: version 1 a random tiny generator, version 2 (active) trained here by the model
    package as a finished job (its dataset, run and record in the data folder, so the job endpoints and the
    page have a real job to show); small limits so tests can cross them cheaply; CORS on for one origin."""
    data_dir = tmp_path_factory.mktemp("shared-server") / "data"
    assert publish_tiny_generator(data_dir / "models", seed=1) == 1
    assert train_tiny_generator(data_dir) == 2
    with run_server(
        data_dir, max_upload_bytes=MAX_UPLOAD_BYTES, max_pixels=MAX_PIXELS, cors_origins=ALLOWED_ORIGIN
    ) as running:
        wait_for_version(running, 2)
        yield running


@pytest.fixture(scope="session")
def hinted_server(hinted_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own on a copy of the models folder with one generator trained briefly with hints
    (version 1), shared by the page tests that need hints to be followed."""
    data_dir = tmp_path_factory.mktemp("page-hinted") / "data"
    shutil.copytree(hinted_models_dir, data_dir / "models")
    with run_server(data_dir) as running:
        wait_for_version(running, 1)
        yield running


class DirectModels:
    """The published SavedModels called in this process, without the service: what the API must return."""

    def __init__(self) -> None:
        self._loaded: dict[Path, Callable] = {}

    def colorize(self, version_path: Path, image_bytes: bytes) -> np.ndarray:
        from model.export import load_serving_function
        from model.imageio import load_sketch

        if version_path not in self._loaded:
            self._loaded[version_path] = load_serving_function(version_path)
        sketch = load_sketch(image_bytes)  # the same white padding and resize as the service
        return self._loaded[version_path](sketch[np.newaxis]).numpy()[0]


@pytest.fixture(scope="session")
def direct_models() -> DirectModels:
    return DirectModels()


def png_pixels(response: httpx.Response) -> np.ndarray:
    """The response as an RGB array, after checking it is the promised 256x256 RGB PNG."""
    assert response.status_code == 200, f"expected 200, got {response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"] == "image/png", response.headers
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.mode == "RGB" and image.size == (256, 256), (
        f"expected a 256x256 RGB PNG, got {image.format} {image.mode} {image.size}"
    )
    return np.asarray(image)


def draw_sketch(width: int = 320, height: int = 200, seed: int = 0) -> Image.Image:
    """Black strokes on white, different for every seed, non-square by default."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, x1 = sorted(rng.integers(0, width, 2))
        y0, y1 = sorted(rng.integers(0, height, 2))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), outline="black", width=3)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), outline="black", width=3)
        else:
            draw.line((x0, y0, x1, y1), fill="black", width=4)
    return image


def form_body(parts: list[tuple[str, str | None, bytes]]) -> dict[str, Any]:
    """Request options for a multipart body built by hand, parts as (field, filename or None, bytes), so that
    a part can carry `filename=""`: what browsers send for a file input left empty (httpx drops an empty
    filename)."""
    boundary = "s2c-test-boundary"
    body = b""
    for field, filename, data in parts:
        disposition = f'form-data; name="{field}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        kind = "Content-Type: application/octet-stream\r\n" if filename is not None else ""
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{kind}\r\n".encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return {"content": body, "headers": {"Content-Type": f"multipart/form-data; boundary={boundary}"}}


def encode(image: Image.Image, image_format: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


# ---- The in-process layer: the app over real services, no server process, no port -------------------------
# Route behaviour that needs no real process (bad input -> 4xx, auth, schemas, listings, validation) is tested
# here in milliseconds per request. The servers above stay for what needs processes: hot reload, concurrency,
# real workers, slow or vanishing clients, logs.

API_TOKEN = "in-process-token"
DATASET_UPLOAD_LIMIT = 2_000_000


@dataclass
class InProcessApp:
    """`create_app` over `AppServices` built on a temporary data folder (a real model store over real published
    versions, a real micro-batcher, the embedded broker's client), driven by Starlette's TestClient."""

    test_client: "TestClient"  # an httpx.Client that calls the app in this process
    services: "AppServices"

    @property
    def data_dir(self) -> Path:
        return self.services.settings.data_dir

    @contextmanager
    def client(self, token: str | None = "default") -> Iterator[httpx.Client]:
        """The test client, like JobSystem.client: sending the app's API token (or `token`; None: none)."""
        token = self.services.settings.api_token if token == "default" else token
        if token:
            self.test_client.headers["Authorization"] = f"Bearer {token}"
        try:
            yield self.test_client
        finally:
            self.test_client.headers.pop("Authorization", None)


@contextmanager
def in_process_app(data_dir: Path, serving: int | None = None, **settings: Any) -> Iterator[InProcessApp]:
    """The app on `data_dir` with these settings, its lifespan running; first waits until version `serving`
    is loaded, when one is given."""
    from fastapi.testclient import TestClient

    from app.api.services import AppServices
    from app.main import create_app
    from contracts.settings import Settings

    data_dir.mkdir(parents=True, exist_ok=True)
    settings = {"broker_url": None, "api_token": None, "cors_origins": None, **settings}
    services = AppServices.build(Settings(data_dir=data_dir, model_poll_seconds=POLL_SECONDS, **settings))
    with TestClient(create_app(services=services)) as test_client:
        if serving is not None:
            wait_until(
                lambda: (current := services.model_store.current) is not None and current.version == serving,
                STARTUP_TIMEOUT_SECONDS,
                lambda: f"version {serving} to load in process: {services.model_store.describe()}",
            )
        yield InProcessApp(test_client, services)


def publish_tiny_hint_generator(models_dir: Path, seed: int = 0) -> int:
    """Publish a tiny randomly initialised generator that takes color hints; return its version number."""
    import keras

    from model.export import publish_generator
    from model.networks import build_generator

    keras.utils.set_random_seed(seed)
    manifest = {"job_id": None, "step": 0, "epoch": 0, "model": {"ngf": TINY_WIDTH, "norm": "instance"}}
    return publish_generator(build_generator(ngf=TINY_WIDTH, hints=True), models_dir, manifest).version


@pytest.fixture(scope="session")
def colorize_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """The shared server's twin in process: version 1 a plain tiny generator, version 2 (served) a tiny hint
    generator; the shared server's small limits and CORS origin."""
    data_dir = tmp_path_factory.mktemp("in-process-colorize") / "data"
    assert publish_tiny_generator(data_dir / "models", seed=1) == 1
    assert publish_tiny_hint_generator(data_dir / "models", seed=2) == 2
    with in_process_app(
        data_dir,
        serving=2,
        max_upload_bytes=MAX_UPLOAD_BYTES,
        max_pixels=MAX_PIXELS,
        cors_origins=ALLOWED_ORIGIN,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def jobs_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """Job and dataset routes in process: the embedded broker (nothing consumes it), the API token on, the
    dataset `demo` (16 train, 4 val pairs), a small dataset upload limit; no published version."""
    from model.synthetic import make_synthetic_dataset

    data_dir = tmp_path_factory.mktemp("in-process-jobs") / "data"
    make_synthetic_dataset(data_dir / "datasets" / "demo", train=16, val=4, seed=0)
    with in_process_app(
        data_dir, api_token=API_TOKEN, max_dataset_upload_bytes=DATASET_UPLOAD_LIMIT
    ) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator["Browser"]:
    """One Chromium for a test module's pages (each test opens its own context)."""
    from tests.app.browser import launched_chromium

    with launched_chromium() as launched:
        yield launched
