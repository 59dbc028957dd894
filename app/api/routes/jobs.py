"""Routes: training jobs. Launch, list, inspect, follow (metrics, samples), cancel, resume and delete.

The job record (`runs/<id>/job.json`, contracts/jobs.py) is the one source of a job's existence, parameters,
state and progress. Jobs are enqueued by task name (contracts/queue.py), so TensorFlow is never imported
here. With the broker down, these routes answer 503 at once (short connection timeouts), while /colorize keeps
working. File and broker calls block, so they never run on the event loop: the routes are plain `def`
(FastAPI runs those and their dependencies in its thread pool), and POST /jobs, async only to read its own
body, hands the rest to that pool.
"""

import json
import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.deps import ApiTokenDep, JobQueueDep, SettingsDep, get_broker
from app.api.errors import error_responses
from app.api.http import require_broker
from app.api.job_schemas import Deleted, JobMetrics, JobView, job_views
from app.api.openapi import PNG_FILE
from app.api.services import JobQueue
from contracts import jobs
from contracts.datasets import DATASET_NAME, BadDatasetName, check_dataset_name, summarize
from contracts.job_record import Job
from contracts.queue import enqueue_job
from contracts.settings import Settings
from contracts.train_config import TrainConfig, explain
from storage.run_folder import RunFolder
from storage.shared import shared_mode
from storage.shared_runs import dataset_counts, pull_run_outputs

logger = logging.getLogger("sketch2color.jobs")


router = APIRouter(tags=["jobs"], dependencies=[ApiTokenDep], responses=error_responses(401, 413, 422, 507))
BROKER_DOWN = error_responses(503, e503="The job broker is unreachable (with Retry-After and what to do).")
NO_JOB = error_responses(404, e404="No such job.")


class JobLaunch(TrainConfig):
    """POST /jobs: a dataset name plus the trainer's hyper-parameters (contracts/train_config.py), by the same names."""

    dataset: str = Field(
        description="A folder name under <data_dir>/datasets (GET /datasets lists them).",
        json_schema_extra={"pattern": f"^{DATASET_NAME.pattern}$"},
    )


LAUNCH_BODY = {
    "required": True,
    "content": {"application/json": {"schema": JobLaunch.model_json_schema()}},
    "description": 'e.g. {"dataset": "demo", "steps": 60, "batch_size": 4, "ngf": 16, "ndf": 16}',
}


def run_dir_of(settings: Settings, job_id: str) -> Path:
    if not jobs.is_job_id(job_id) or jobs.read_record(settings.runs_dir / job_id) is None:
        raise HTTPException(404, f"no job {job_id!r}; GET /jobs lists them")
    return settings.runs_dir / job_id


@router.post(
    "/jobs",
    status_code=202,
    openapi_extra={"requestBody": LAUNCH_BODY},
    response_model=JobView,
    responses={**error_responses(400, 404, 415, e404="No such dataset."), **BROKER_DOWN},
)
async def launch_job(request: Request, settings: SettingsDep, job_queue: JobQueueDep) -> JSONResponse:
    """Queue a training job; 202 with its record (and its place in the queue) and `Location: /jobs/<id>`."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, f"send the job as application/json, not {media_type or 'no content type'}")
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than anyone writes by hand
        raise HTTPException(
            400, 'body: not valid JSON; send an object, e.g. {"dataset": "demo", "steps": 60}'
        ) from None
    try:
        launch = JobLaunch.model_validate(body)
    except ValidationError as error:
        raise HTTPException(422, explain(error)) from None
    # Walking the dataset, the broker check, the fsync'ed record and the publish all block: not on the loop.
    record = await run_in_threadpool(queue_job, job_queue, settings, launch)
    [view] = await run_in_threadpool(job_views, settings.runs_dir, [record])
    return JSONResponse(
        view.model_dump(mode="json"), status_code=202, headers={"Location": f"/jobs/{record.id}"}
    )


def queue_job(job_queue: JobQueue, settings: Settings, launch: JobLaunch) -> Job:
    """Check the dataset and the broker, write the job's record and enqueue it; returns the record."""
    try:
        check_dataset_name(launch.dataset)
    except BadDatasetName as error:
        raise HTTPException(422, str(error)) from None
    counts = trainable_dataset(settings, launch.dataset)
    celery_app = require_broker(job_queue)

    job_id = jobs.new_job_id()
    run_dir = settings.runs_dir / job_id
    params = TrainConfig.model_validate(launch.model_dump(exclude={"dataset"}))
    record = jobs.new_record(job_id, launch.dataset, params, launch.total_steps(counts["train"]))
    jobs.create_record(run_dir, record)
    try:
        enqueue_job(celery_app, job_id)
    except Exception as error:
        try:
            jobs.forget_unqueued(run_dir)
        except Exception as cleanup_error:  # shared mode with Redis gone too: the janitor sends it later
            logger.error("could not remove the unqueued job %s: %s", job_id, cleanup_error)
        logger.error("could not queue job %s: %s", job_id, error)
        raise HTTPException(503, f"the job broker is unreachable: {type(error).__name__}: {error}") from None
    logger.info("queued job %s on dataset %s", job_id, launch.dataset)
    return record


def run_outputs_of(settings: Settings, job_id: str) -> RunFolder:
    """The job's run folder, holding the newest metrics and sample grids (in shared mode, from the bucket)."""
    run = RunFolder(run_dir_of(settings, job_id))
    shared = shared_mode()
    if shared is not None:
        pull_run_outputs(shared, run.root)
    return run


def trainable_dataset(settings: Settings, name: str, whose: str = "") -> dict[str, int]:
    """The dataset's pair counts: 404 when it is not there, 422 without pairs in both train/ and val/. A launch
    and a resume ask the same, so neither queues a job that can only fail on the worker."""
    dataset_dir = settings.datasets_dir / name
    shared = shared_mode()  # in shared mode the bucket's copy is the dataset: the worker trains on that one
    counts = dataset_counts(shared, dataset_dir) if shared is not None else None
    if counts is None and (shared is not None or not dataset_dir.is_dir()):
        raise HTTPException(
            404, f"{whose}dataset {name!r} not found under the datasets folder; GET /datasets lists them"
        )
    counts = counts if counts is not None else summarize(dataset_dir)
    if not counts["train"] or not counts["val"]:
        raise HTTPException(
            422, f"{whose}dataset {name!r} needs pair images in both train/ and val/ (has {counts})"
        )
    return counts


@router.get("/jobs", dependencies=[Depends(get_broker)], response_model=list[JobView], responses=BROKER_DOWN)
def list_jobs(settings: SettingsDep, limit: int = 100) -> list[JobView]:
    """Job records, newest first, each with its time left and, queued, its place in line and wait (503 while
    the broker is down: nothing listed could run meanwhile)."""
    return job_views(settings.runs_dir)[: max(limit, 0)]


@router.get(
    "/jobs/{job_id}",
    dependencies=[Depends(get_broker)],
    response_model=JobView,
    responses={**NO_JOB, **BROKER_DOWN},
)
def get_job(job_id: str, settings: SettingsDep) -> JobView:
    """One job record: state, parameters, times, error, attempts and progress; its time left and, queued, its
    place in line and wait."""
    record = jobs.read_record(run_dir_of(settings, job_id))
    if record is None:  # deleted since run_dir_of looked
        raise HTTPException(404, f"no job {job_id!r}; GET /jobs lists them")
    return job_views(settings.runs_dir, [record])[0]


@router.post(
    "/jobs/{job_id}/cancel",
    status_code=202,
    dependencies=[Depends(get_broker)],
    response_model=Job,
    responses={**NO_JOB, **error_responses(409, e409="The job is already finished."), **BROKER_DOWN},
)
def cancel_job(job_id: str, settings: SettingsDep) -> Job:
    """Cooperative cancel: a queued job ends at once; a running one checkpoints and stops within a step."""
    try:
        return jobs.request_cancel(run_dir_of(settings, job_id))
    except jobs.JobFinished as error:
        raise HTTPException(409, str(error)) from None


@router.post(
    "/jobs/{job_id}/resume",
    status_code=202,
    response_model=Job,
    responses={
        **error_responses(404, e404="No such job, or its dataset is gone."),
        **error_responses(409, e409="Only a cancelled or failed job resumes."),
        **BROKER_DOWN,
    },
)
def resume_job(job_id: str, settings: SettingsDep, job_queue: JobQueueDep) -> Job:
    """Queue a cancelled or failed job again: it continues from its newest checkpoint in the same run folder,
    with the same step counter (409 for a job in another state; 404, the record unchanged, when its dataset is
    gone, as POST /jobs answers for a missing dataset)."""
    run_dir = run_dir_of(settings, job_id)
    celery_app = require_broker(job_queue)
    stored = jobs.read_record(run_dir)
    if stored is not None and stored.state in jobs.RESUMABLE_STATES:  # another state: WrongState's 409 below
        trainable_dataset(settings, stored.dataset, whose=f"job {job_id} cannot resume: its ")
    try:
        record = jobs.resume(run_dir)
    except jobs.WrongState as error:
        raise HTTPException(409, str(error)) from None
    try:
        enqueue_job(celery_app, job_id)
    except Exception as error:
        jobs.mark_unsent(run_dir)  # stays queued, flagged: a janitor sends it once the broker answers again
        logger.error("could not queue resumed job %s: %s", job_id, error)
        record = jobs.read_record(run_dir) or record
    logger.info("resumed job %s", job_id)
    return record


@router.delete(
    "/jobs/{job_id}",
    response_model=Deleted,
    responses={**NO_JOB, **error_responses(409, e409="The job is not finished.")},
)
def delete_job(job_id: str, settings: SettingsDep) -> dict[str, Any]:
    """Remove a finished job and its run folder (checkpoints, samples, metrics); its published versions stay.
    409 while it is queued, running or cancelling."""
    try:
        jobs.delete_run(run_dir_of(settings, job_id))
    except jobs.WrongState as error:
        raise HTTPException(409, str(error)) from None
    except FileNotFoundError:
        raise HTTPException(404, f"no job {job_id!r}; GET /jobs lists them") from None
    logger.info("deleted job %s", job_id)
    return {"deleted": job_id}


@router.get("/jobs/{job_id}/metrics", response_model=JobMetrics, responses=NO_JOB)
def get_job_metrics(job_id: str, settings: SettingsDep) -> dict[str, Any]:
    """The job's metrics series: one point per log step (a step redone after a resume: the newest)."""
    path = run_outputs_of(settings, job_id).metrics
    points: dict[int, dict[str, Any]] = {}
    events = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                point = json.loads(line)
            except ValueError:  # a line being written right now
                continue
            if "event" in point:
                events.append(point)
            elif isinstance(point.get("step"), int):
                points[point["step"]] = point
    return {"id": job_id, "metrics": [points[step] for step in sorted(points)], "events": events}


@router.get(
    "/jobs/{job_id}/samples/latest.png",
    response_class=FileResponse,
    responses={
        200: PNG_FILE,
        **error_responses(404, e404="No such job, or no grid yet."),
    },
)
def get_latest_job_sample(job_id: str, settings: SettingsDep) -> FileResponse:
    """The newest sample grid: one row per fixed val image, sketch | output | truth."""
    grids = run_outputs_of(settings, job_id).sample_grids()
    if not grids:
        raise HTTPException(404, f"job {job_id} has no sample grid yet; one is written at every checkpoint")
    return FileResponse(grids[-1], media_type="image/png", headers={"Cache-Control": "no-store"})
