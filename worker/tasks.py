"""The training task, and the worker's signal handlers: shutdown hand-back, janitor, TensorFlow preload.

Imported by the worker only (the API enqueues by task name), so TensorFlow never loads in the API for jobs.
"""

import logging
import threading
import time
from typing import Any

from celery import Celery, Task, signals

from contracts.queue import BATCH_TASK_NAME, BATCHES_QUEUE, IMPORT_TASK_NAME, TRAIN_TASK_NAME, TRAINING_QUEUE
from worker.batches import Sweeper, run_chunk
from worker.celery_app import app
from worker.imports import run_import
from worker.janitor import Janitor
from worker.runner import JobRun

logger = logging.getLogger("sketch2color.worker")
# Set on SIGTERM/SIGINT (Celery's warm shutdown): the running job checkpoints, stops and is re-queued.
SHUTDOWN_REQUESTED = threading.Event()
# Pools that run tasks in this process: TensorFlow may be loaded up front without being forked afterwards.
IN_PROCESS_POOLS = ("celery.concurrency.solo", "celery.concurrency.thread")


@app.task(name=TRAIN_TASK_NAME, bind=True)
def train_job(self: Task, job_id: str) -> dict[str, Any]:
    """Run (or resume) the training job `job_id`; its parameters are in runs/<job_id>/job.json."""
    return JobRun(self, job_id, app.settings, SHUTDOWN_REQUESTED).run()


@app.task(name=IMPORT_TASK_NAME)
def import_dataset(name: str) -> dict[str, Any]:
    """Import the uploaded dataset `name` (archive and options in datasets/.imports/)."""
    return run_import(app.settings, name)


@app.task(name=BATCH_TASK_NAME)
def colorize_pages(batch_id: str, chunk: int) -> dict[str, Any]:
    """Colorize one chunk of batch `batch_id`'s pages (acknowledged when done: acks late)."""
    return run_chunk(app.settings, batch_id, chunk)


def consumed_queues(celery_app: Celery) -> set[str]:
    """The queues this worker takes tasks from (`--queues`; the default queue, `training`, without it)."""
    return set(celery_app.amqp.queues.consume_from)


@signals.worker_shutting_down.connect
def _on_worker_shutting_down(**_: Any) -> None:
    # Runs inside the signal handler: only set the flag; the trainer sees it before its next step.
    SHUTDOWN_REQUESTED.set()


@signals.worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    settings = app.settings
    hostname = getattr(sender, "hostname", None) or "worker"
    Janitor(app, settings, hostname).start()
    queues = consumed_queues(app)
    if BATCHES_QUEUE in queues:
        Sweeper(app, settings).start()
    loaded = ""
    if TRAINING_QUEUE in queues:  # an import worker has no TensorFlow trainer to preload
        loaded = _preload_trainer(sender)
    logger.info(
        "worker %s ready on queue %s%s; %s; data folder %s",
        hostname, ", ".join(sorted(queues)), loaded, app.broker_choice.description, settings.data_dir.resolve(),
    )  # fmt: skip


def _preload_trainer(sender: Any) -> str:
    """Load TensorFlow and the trainer now, so the first job starts training sooner; how long it took."""
    pool_module = type(getattr(sender, "pool", None)).__module__
    if pool_module not in IN_PROCESS_POOLS:
        logger.warning(
            "pool %s forks: TensorFlow loads in each child; run with --pool solo (sketch2color worker)",
            pool_module,
        )
        return ""
    started = time.perf_counter()
    import model.train  # noqa: F401

    return f" (TensorFlow and the trainer loaded in {time.perf_counter() - started:.1f} s)"
