"""The app's services, built in one place (`AppServices.build`, called by `create_app`) and handed to the
routes through typed dependencies (app/api/deps.py): settings, metrics, model store, micro-batcher and the
job queue's Celery client. Tests build them the same way on a temporary data folder."""

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from app.batching import MicroBatcher
from app.model_store import LoadedModel, ModelStore
from app.observability import Metrics
from contracts.queue import QueueApp, create_celery_app
from contracts.settings import Settings

logger = logging.getLogger("sketch2color.jobs")


class JobQueue:
    """The API's Celery client, made once and kept. Making it can fail (the embedded broker's folder on a
    read-only disk): colorizing still works, and each job request tries again and answers 503 meanwhile."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: QueueApp | None = None
        self._lock = threading.Lock()

    def client(self) -> QueueApp:
        """The client (made on first use, and logged: which broker jobs go through); raises OSError."""
        with self._lock:
            if self._client is None:
                self._client = create_celery_app(self._settings)
                logger.info("jobs: %s", self._client.broker_choice.description)
            return self._client


@dataclass(frozen=True)
class AppServices:
    settings: Settings
    metrics: Metrics
    model_store: ModelStore
    batcher: MicroBatcher
    job_queue: JobQueue

    @classmethod
    def build(cls, settings: Settings) -> "AppServices":
        metrics = Metrics()

        def on_model_change(model: LoadedModel) -> None:
            metrics.model_version.set(model.version)
            metrics.model_loads.inc()

        return cls(
            settings=settings,
            metrics=metrics,
            model_store=ModelStore(
                settings.models_dir, settings.model_poll_seconds, on_change=on_model_change
            ),
            batcher=MicroBatcher(
                settings.max_batch_size, settings.max_batch_wait_ms / 1000.0, on_batch=metrics.observe_batch
            ),
            job_queue=JobQueue(settings),
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The app's lifespan: the store loads the first version in the background (/healthz and 503s
        answer meanwhile); the job queue's client is made up front so its broker is logged at startup."""
        self.batcher.start()
        self.model_store.start()
        try:
            self.job_queue.client()
        except (
            OSError
        ) as error:  # e.g. a read-only data folder: colorizing still works, job routes answer 503
            logger.warning("jobs: cannot set up the embedded broker: %s", error)
        try:
            yield
        finally:
            await self.model_store.stop()
            await self.batcher.stop()
