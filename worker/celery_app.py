"""The worker process's Celery app (`celery -A worker.celery_app worker`, or `sketch2color worker`).

It is the queue contract's app (contracts/queue.py) made from the environment's settings, with this package's
tasks included (the contract names no worker module); the API and the CLI make their own client from the same
contract and never import this.
"""

from functools import lru_cache
from typing import Any

from contracts.queue import QueueApp, create_celery_app
from contracts.settings import get_settings
from storage.shared import shared_mode

TASK_MODULES = ("worker.tasks",)


@lru_cache(maxsize=1)
def worker_app() -> QueueApp:
    shared_mode()  # S2C_STORAGE_URL without a Redis broker (or a malformed one) stops the start, saying why
    return create_celery_app(get_settings(), include=TASK_MODULES)


def __getattr__(name: str) -> Any:
    # `worker.celery_app.app` is made on first use: importing this module has no side effect.
    if name == "app":
        return worker_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
