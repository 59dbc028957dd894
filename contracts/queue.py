"""The job queue: the one Celery app configuration, used by the API and the CLI (to enqueue and check the
broker) and by the training worker (worker/celery_app.py makes its app from it).

Broker and result store come from the settings: Redis (or any Celery broker) when S2C_BROKER_URL is set, else
an embedded single-machine broker under the data folder (kombu's filesystem transport and Celery's file result
backend), so one machine runs jobs with no Redis and through the same code paths.

Choices that keep multi-hour jobs safe (worker/tasks.py has the rest):
- acks late, prefetch 1, concurrency 1: a worker holds at most the one job it runs, acknowledged when it ends;
- solo pool: TensorFlow is loaded in the process that trains and never forked;
- a very long Redis visibility timeout, in the broker's and the result backend's options alike: Redis does not
  hand a running job to a second worker after an hour. Recovery of a dead worker's job does not wait for it
  either: the lease and the janitor (worker/leases.py, worker/janitor.py) re-enqueue it within seconds.

Importing this module neither loads TensorFlow nor creates folders. Tasks are named, never imported, so
the client side needs none of the worker's code; the worker passes its task module in (`include`).
"""

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from celery import Celery

from contracts.settings import Settings

if TYPE_CHECKING:
    import redis

TRAIN_TASK_NAME = "sketch2color.train"
TRAINING_QUEUE = "training"
IMPORT_TASK_NAME = "sketch2color.import_dataset"
# Imports have their own queue and worker, so an upload never waits behind an hours-long training job.
DATASETS_QUEUE = "datasets"
# Chapters: each task colorizes one chunk of a batch's pages (contracts/batches.py); every worker that takes
# this queue shares a chapter. Training and batches may share workers (`--queues training,batches`).
BATCH_TASK_NAME = "sketch2color.colorize_pages"
BATCHES_QUEUE = "batches"
# Thirty days: longer than any job. Redis redelivers an unacknowledged message only after this long.
VISIBILITY_TIMEOUT_SECONDS = 30 * 24 * 3600
CONNECT_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class BrokerChoice:
    broker_url: str
    result_backend: str
    description: str
    embedded: bool
    broker_transport_options: dict[str, Any] = field(default_factory=dict)


def redact(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def embedded_folders(settings: Settings) -> dict[str, Any]:
    broker_dir = settings.data_dir.resolve() / "broker"
    return {
        "queue": broker_dir / "queue",
        "processed": broker_dir / "processed",
        "control": broker_dir / "control",
        "results": broker_dir / "results",
    }


def choose_broker(settings: Settings) -> BrokerChoice:
    if settings.broker_url:
        backend = settings.result_backend or settings.broker_url
        description = f"broker {redact(settings.broker_url)}, results {redact(backend)}"
        options: dict[str, Any] = {
            "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
            "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        }
        return BrokerChoice(
            settings.broker_url, backend, description, embedded=False, broker_transport_options=options
        )
    folders = embedded_folders(settings)
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    folder_options: dict[str, Any] = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        # Moving a message into `processed` is an atomic rename on one file system, so two workers polling the
        # same folder never both take it; the janitor prunes old processed messages.
        "store_processed": True,
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "polling_interval": 0.5,
    }
    backend = settings.result_backend or f"file://{folders['results']}"
    description = (
        f"embedded single-machine broker in {folders['queue'].parent} (no S2C_BROKER_URL), results {backend}"
    )
    # The host is named only so that kombu does not warn "No hostname was supplied" in every process.
    return BrokerChoice(
        "filesystem://localhost//",
        backend,
        description,
        embedded=True,
        broker_transport_options=folder_options,
    )


class QueueApp(Celery):
    """A Celery app that also says, as typed fields, the settings it was made from and the broker it chose
    (what the queue helpers below, the worker's tasks and its janitor read)."""

    def __init__(self, *args: Any, settings: Settings, broker_choice: BrokerChoice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        self.broker_choice = broker_choice

    def __reduce_keys__(self) -> dict[str, Any]:
        """What unpickling passes back to `__init__` (Celery pickles its app for some pools)."""
        return {**super().__reduce_keys__(), "settings": self.settings, "broker_choice": self.broker_choice}


def create_celery_app(settings: Settings, include: Sequence[str] = ()) -> QueueApp:
    """The one configuration. `include`: the task modules to import (the worker's; a client needs none)."""
    choice = choose_broker(settings)
    celery_app = QueueApp(
        "sketch2color",
        broker=choice.broker_url,
        backend=choice.result_backend,
        include=list(include),
        settings=settings,
        broker_choice=choice,
    )
    celery_app.conf.update(
        task_default_queue=TRAINING_QUEUE,
        task_routes={
            TRAIN_TASK_NAME: {"queue": TRAINING_QUEUE},
            IMPORT_TASK_NAME: {"queue": DATASETS_QUEUE},
            BATCH_TASK_NAME: {"queue": BATCHES_QUEUE},
        },
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_track_started=True,
        result_extended=True,
        result_expires=7 * 24 * 3600,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        worker_pool="solo",
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options=choice.broker_transport_options,
        result_backend_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
        redis_socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        redis_socket_timeout=10.0,
        # The API must answer fast when the broker is down: give up publishing after ~1 s, not Celery's ~3 s.
        task_publish_retry_policy={
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 0.5,
        },
    )
    return celery_app


def enqueue_job(celery_app: Celery, job_id: str) -> None:
    """Queue (or re-queue) a job: the task id is the job id, the job's parameters live in its record."""
    celery_app.send_task(TRAIN_TASK_NAME, args=[job_id], task_id=job_id, queue=TRAINING_QUEUE)


def enqueue_import(celery_app: Celery, name: str) -> None:
    """Queue the import of an uploaded dataset (its archive and options wait in datasets/.imports/)."""
    celery_app.send_task(IMPORT_TASK_NAME, args=[name], queue=DATASETS_QUEUE)


def enqueue_chunk(celery_app: Celery, batch_id: str, chunk: int) -> None:
    """Queue one chunk of a batch's pages (acknowledged when done: a killed worker's chunk comes back)."""
    celery_app.send_task(BATCH_TASK_NAME, args=[batch_id, chunk], queue=BATCHES_QUEUE)


# Task ids are UUID strings (job ids too): what a message names, found without parsing its format.
_TASK_ID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def task_ids_in_broker(celery_app: QueueApp) -> frozenset[str] | None:
    """Every task id the broker holds a message for: waiting in a queue, or taken but not acked.

    One read of the whole queue, however many jobs ask (the janitor checks all its queued jobs against one
    answer). Used to notice a queued job whose message was lost (Redis restarted without persistence, a
    worker died between taking the message and taking the job's lease). None: this broker cannot be looked
    into (not Redis, not embedded), so never re-queue on a guess. Reads only; raises if the broker cannot be
    read.
    """
    choice = celery_app.broker_choice
    if choice.embedded:
        return frozenset(_ids_in(_embedded_messages(choice.broker_transport_options["data_folder_in"])))
    if not choice.broker_url.startswith(("redis://", "rediss://", "unix://")):
        return None
    client = _redis_client(choice.broker_url)
    messages: list[bytes | str] = []  # redis-py types its answers both ways; ours are bytes
    for queue in (TRAINING_QUEUE, DATASETS_QUEUE):
        for key in client.scan_iter(match=f"{queue}*", count=100):
            if client.type(key) == b"list":
                messages.extend(client.lrange(key, 0, -1))
    messages.extend(client.hvals("unacked"))
    return frozenset(_ids_in(messages))


def _embedded_messages(folder: str) -> Iterator[bytes]:
    for entry in os.scandir(folder):
        try:
            with open(entry.path, "rb") as message:
                yield message.read()
        except OSError:  # taken by a worker right now
            continue


def _ids_in(messages: Iterable[bytes | str]) -> Iterator[str]:
    for message in messages:
        for found in _TASK_ID.findall(message.encode() if isinstance(message, str) else message):
            yield found.decode()


@lru_cache(maxsize=8)
def _redis_client(url: str) -> "redis.Redis":
    import redis

    return redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=CONNECT_TIMEOUT_SECONDS
    )


def broker_problem(celery_app: QueueApp) -> str | None:
    """Why jobs cannot be queued or inspected right now (None when the broker and result store answer)."""
    choice = celery_app.broker_choice
    if choice.embedded:
        folders = [
            choice.broker_transport_options["data_folder_in"],
            choice.broker_transport_options["processed_folder"],
        ]
        for folder in folders:
            if not _writable(folder):
                return f"the embedded broker folder {folder} is missing or not writable"
        return None
    urls = dict.fromkeys([choice.broker_url, choice.result_backend])
    for url in urls:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            continue
        try:
            _redis_client(url).ping()
        except Exception as error:  # redis raises ConnectionError, TimeoutError, AuthenticationError, ...
            return f"{redact(url)} is unreachable ({type(error).__name__}: {error})"
    return None


def _writable(folder: str) -> bool:
    return os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)
