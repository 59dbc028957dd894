"""Routes: training jobs. Launch, list, inspect, follow (metrics, samples) and cancel.

The job record (`runs/<id>/job.json`, see worker/records.py) is the source of truth for a job's existence,
parameters and state; a running job's newest progress comes from Celery's task state. Jobs are enqueued by
task name, so TensorFlow is never imported here. With the broker down, these routes answer 503 at once (short
connection timeouts), while /colorize keeps working. File and broker calls block, so they never run on the
event loop: the routes are plain `def` (FastAPI runs those and their dependencies in its thread pool), and
POST /jobs, async only to read its own body, hands the rest to that pool.
"""

import json
import logging
import math
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from celery import Celery
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from app.api.deps import ApiTokenDep, SettingsDep
from app.api.routes.datasets import check_dataset_name, summarize
from app.core.config import Settings
from model.layout import sample_grids
from worker.celery_app import broker_problem, create_celery_app, enqueue_job
from worker.records import (
    FINAL_STATES,
    add_event,
    create_record,
    is_job_id,
    list_records,
    new_job_id,
    new_record,
    read_record,
    request_cancel,
    update_record,
    utc_now,
)

logger = logging.getLogger("sketch2color.jobs")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    try:
        job_queue(app, app.state.settings)
    except OSError as error:  # e.g. a read-only data folder: colorizing still works, job routes answer 503
        logger.warning("jobs: cannot set up the embedded broker: %s", error)
    yield


router = APIRouter(tags=["jobs"], dependencies=[ApiTokenDep], lifespan=lifespan)


class JobLaunch(BaseModel):
    """POST /jobs: a dataset name and hyper-parameters; everything but the length has the pix2pix default."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    dataset: str = Field(description="A folder name under <data_dir>/datasets (GET /datasets lists them).")
    epochs: int | None = Field(None, ge=1, le=100_000, description="Train this many epochs (or give steps).")
    steps: int | None = Field(None, ge=1, le=100_000_000, description="Train this many steps in total.")
    batch_size: int = Field(1, ge=1, le=1024)
    learning_rate: float = Field(2e-4, gt=0, le=1, validation_alias=AliasChoices("learning_rate", "lr"))
    beta_1: float = Field(0.5, ge=0, lt=1)
    lambda_l1: float = Field(100.0, ge=0, le=10_000)
    ngf: int = Field(64, ge=1, le=1024, description="Generator width (64 = the paper).")
    ndf: int = Field(64, ge=1, le=1024, description="Discriminator width (64 = the paper).")
    norm: Literal["instance", "batch"] = "instance"
    lr_decay_fraction: float = Field(
        0.0, ge=0, le=1, description="Decay lr linearly to 0 over this last share."
    )
    checkpoint_every: int = Field(500, ge=1, le=100_000_000)
    export_every: int = Field(
        0, ge=0, le=100_000_000, description="Publish every N steps (0 = only at the end)."
    )
    log_every: int = Field(100, ge=1, le=100_000_000, description="Progress and metrics every N steps.")
    keep_checkpoints: int = Field(3, ge=1, le=1000)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    sketch_side: Literal["right", "left"] = "right"
    xla: bool = False

    @model_validator(mode="after")
    def _exactly_one_length(self) -> "JobLaunch":
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("give exactly one of epochs or steps")
        return self


LAUNCH_BODY = {
    "required": True,
    "content": {"application/json": {"schema": JobLaunch.model_json_schema()}},
    "description": 'e.g. {"dataset": "demo", "steps": 60, "batch_size": 4, "ngf": 16, "ndf": 16}',
}


def job_queue(app: FastAPI, settings: Settings) -> Celery:
    """The Celery client of this API process, made once (and logged: which broker jobs go through)."""
    celery_app = getattr(app.state, "job_queue", None)
    if celery_app is None:
        celery_app = create_celery_app(settings)
        app.state.job_queue = celery_app
        logger.info("jobs: %s", celery_app.sketch2color_broker.description)
    return celery_app


def require_broker(request: Request, settings: SettingsDep) -> Celery:
    """503 when jobs can neither be queued nor followed; says which broker and what to do."""
    try:
        celery_app = job_queue(request.app, settings)
        problem = broker_problem(celery_app)
    except OSError as error:
        celery_app, problem = None, f"its folder cannot be created ({error})"
    if problem is not None:
        raise HTTPException(
            503,
            f"the job broker is unreachable: {problem}. Start it (e.g. `redis-server`) or point "
            "S2C_BROKER_URL at a reachable one; colorizing with published models keeps working meanwhile",
            headers={"Retry-After": "10"},
        )
    return celery_app


BrokerDep = Annotated[Celery, Depends(require_broker)]


def run_dir_of(settings: Settings, job_id: str) -> Path:
    if not is_job_id(job_id) or read_record(settings.runs_dir / job_id) is None:
        raise HTTPException(404, f"no job {job_id!r}; GET /jobs lists them")
    return settings.runs_dir / job_id


def validation_detail(error: ValidationError) -> str:
    """One line per problem, naming the field: `ngf: Input should be greater than or equal to 1 (got 0)`."""
    problems = []
    for problem in error.errors(include_url=False):
        field = ".".join(str(part) for part in problem["loc"]) or "body"
        message = problem["msg"].removeprefix("Value error, ")
        got = (
            f" (got {problem['input']!r})"
            if problem["type"] not in ("missing", "value_error", "model_type")
            else ""
        )
        problems.append(f"{field}: {message}{got}")
    return "; ".join(problems)


def total_steps(launch: JobLaunch, train_pairs: int) -> int:
    if launch.steps is not None:
        return launch.steps
    return math.ceil(launch.epochs * train_pairs / launch.batch_size)


def with_live_progress(celery_app: Celery, record: dict[str, Any]) -> dict[str, Any]:
    """A running job's newest progress, from its Celery task state when that is ahead of the record."""
    if record["state"] != "running":
        return record
    try:
        meta = celery_app.backend.get_task_meta(record["id"])
    except Exception:  # a result store hiccup: the record's progress is at most one log point older
        return record
    live = meta.get("result") if meta.get("status") == "PROGRESS" else None
    if isinstance(live, dict) and isinstance(live.get("progress"), dict):
        progress = live["progress"]
        if (progress.get("step") or 0) >= (record["progress"].get("step") or 0):
            return {**record, "progress": progress}
    return record


@router.post("/jobs", status_code=202, openapi_extra={"requestBody": LAUNCH_BODY})
async def launch_job(request: Request, settings: SettingsDep) -> JSONResponse:
    """Queue a training job; 202 with its record and `Location: /jobs/<id>`."""
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(
            400, 'body: not valid JSON; send an object, e.g. {"dataset": "demo", "steps": 60}'
        ) from None
    try:
        launch = JobLaunch.model_validate(body)
    except ValidationError as error:
        raise HTTPException(422, validation_detail(error)) from None
    # Walking the dataset, the broker check, the fsync'ed record and the publish all block: not on the loop.
    record = await run_in_threadpool(queue_job, request, settings, launch)
    return JSONResponse(record, status_code=202, headers={"Location": f"/jobs/{record['id']}"})


def queue_job(request: Request, settings: Settings, launch: JobLaunch) -> dict[str, Any]:
    """Check the dataset and the broker, write the job's record and enqueue it; returns the record."""
    check_dataset_name(launch.dataset)
    dataset_dir = settings.datasets_dir / launch.dataset
    if not dataset_dir.is_dir():
        raise HTTPException(
            404, f"dataset {launch.dataset!r} not found under the datasets folder; GET /datasets lists them"
        )
    counts = summarize(dataset_dir)
    if not counts["train"] or not counts["val"]:
        raise HTTPException(
            422, f"dataset {launch.dataset!r} needs pair images in both train/ and val/ (has {counts})"
        )
    celery_app = require_broker(request, settings)

    job_id = new_job_id()
    run_dir = settings.runs_dir / job_id
    params = launch.model_dump(exclude={"dataset"})
    record = new_record(job_id, launch.dataset, params, total_steps(launch, counts["train"]))
    create_record(run_dir, record)
    try:
        enqueue_job(celery_app, job_id)
    except Exception as error:
        shutil.rmtree(run_dir, ignore_errors=True)
        logger.error("could not queue job %s: %s", job_id, error)
        raise HTTPException(503, f"the job broker is unreachable: {type(error).__name__}: {error}") from None
    logger.info("queued job %s on dataset %s", job_id, launch.dataset)
    return record


@router.get("/jobs")
def get_jobs(settings: SettingsDep, celery_app: BrokerDep, limit: int = 100) -> list[dict[str, Any]]:
    """Job records, newest first."""
    return [
        with_live_progress(celery_app, record) for record in list_records(settings.runs_dir)[: max(limit, 0)]
    ]


@router.get("/jobs/{job_id}")
def get_job(job_id: str, settings: SettingsDep, celery_app: BrokerDep) -> dict[str, Any]:
    """One job record: state, parameters, times, error, attempts and progress."""
    return with_live_progress(celery_app, read_record(run_dir_of(settings, job_id)))


@router.post("/jobs/{job_id}/cancel", status_code=202)
def cancel_job(job_id: str, settings: SettingsDep, celery_app: BrokerDep) -> dict[str, Any]:
    """Cooperative cancel: a queued job ends at once; a running one checkpoints and stops within a step."""
    run_dir = run_dir_of(settings, job_id)
    state = read_record(run_dir)["state"]
    if state in FINAL_STATES:
        raise HTTPException(409, f"job {job_id} is already {state}")
    request_cancel(run_dir)  # the flag first: a worker starting the job right now sees it

    def change(record: dict[str, Any]) -> None:
        record["cancel_requested"] = True
        if record["state"] == "queued":
            record.update(state="cancelled", finished_at=utc_now())
            add_event(record, "cancelled while queued")
        elif record["state"] == "running":
            add_event(record, "cancel requested")

    update_record(run_dir, change)
    return with_live_progress(celery_app, read_record(run_dir))


@router.get("/jobs/{job_id}/metrics")
def get_metrics(job_id: str, settings: SettingsDep) -> dict[str, Any]:
    """The job's metrics series: one point per log step (a step redone after a resume: the newest)."""
    path = run_dir_of(settings, job_id) / "metrics.jsonl"
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


@router.get("/jobs/{job_id}/samples/latest.png", response_class=FileResponse)
def get_latest_sample(job_id: str, settings: SettingsDep) -> FileResponse:
    """The newest sample grid: one row per fixed val image, sketch | output | truth."""
    grids = sample_grids(run_dir_of(settings, job_id) / "samples")
    if not grids:
        raise HTTPException(404, f"job {job_id} has no sample grid yet; one is written at every checkpoint")
    return FileResponse(grids[-1], media_type="image/png", headers={"Cache-Control": "no-store"})
