"""HTTP answers more than one route gives: 503s with what to do about them, and their Retry-After."""

import math

from fastapi import HTTPException

from app.api.services import JobQueue
from app.model_store import ModelStore
from contracts.job_states import JobState
from contracts.jobs import list_records
from contracts.queue import QueueApp, broker_problem
from contracts.settings import Settings


def retry_after(settings: Settings) -> dict[str, str]:
    """One poll interval: when the store next looks at the published versions."""
    return {"Retry-After": str(max(1, math.ceil(settings.model_poll_seconds)))}


def no_generator_error(store: ModelStore, settings: Settings) -> HTTPException:
    """503 with what to do about it (or when a running job's first version is due), and a Retry-After."""
    if store.loading_version is not None:
        detail = f"generator version {store.loading_version} is loading; try again in a moment"
    elif (coming := first_version_on_its_way(settings)) is not None:
        detail = coming
    else:
        detail = (
            "no generator is published yet: train one with `sketch2color train DATASET --run-dir RUN "
            "--models-dir $S2C_DATA_DIR/models` or POST /jobs; a new version under "
            "$S2C_DATA_DIR/models/generator/ is picked up without a restart"
        )
    return HTTPException(503, detail, headers=retry_after(settings))


def first_version_on_its_way(settings: Settings) -> str | None:
    """What the newest queued or running job says about its first version, from its record alone."""
    for record in list_records(settings.runs_dir)[:20]:
        if record.state not in (JobState.QUEUED, JobState.RUNNING):
            continue
        job = f"job {record.id[:8]} on dataset {record.dataset!r}"
        if record.state == JobState.QUEUED:
            return f"no generator is published yet; {job} is queued and will publish one when it has trained"
        progress, params = record.progress, record.params
        step, total = progress.step, progress.total_steps or 0
        every = params.export_every
        due = min(total, (step // every + 1) * every) if every else total
        speed = progress.images_per_second or 0
        batch = params.batch_size
        when = (
            f"in about {math.ceil((due - step) * batch / speed)} s"
            if speed
            else "once it has measured its speed"
        )
        return (
            f"no generator is published yet; {job} is training (step {step} of {total}) and publishes its first "
            f"version at step {due}, {when}"
        )
    return None


def require_broker(job_queue: JobQueue) -> QueueApp:
    """The Celery client, or a 503 when jobs can neither be queued nor followed (which broker, what to do).
    Blocks (a broker ping): call it off the event loop."""
    try:
        celery_app = job_queue.client()
        problem = broker_problem(celery_app)
    except OSError as error:
        problem = f"its folder cannot be created ({error})"
    if problem is not None:
        raise HTTPException(
            503,
            f"the job broker is unreachable: {problem}. Start it (e.g. `redis-server`) or point "
            "S2C_BROKER_URL at a reachable one; colorizing with published models keeps working meanwhile",
            headers={"Retry-After": "10"},
        )
    return celery_app
