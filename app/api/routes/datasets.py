"""Routes: the pair datasets under `<data_dir>/datasets/`: list, upload (import by a worker), inspect, delete.

An upload is a zip streamed to disk (never held in memory), checked at once from its directory (traversal,
links, nested archives, non-images, duplicates, bombs: a 4xx naming the entry, and nothing left behind), then
imported by the `datasets` worker queue; its record goes `importing -> ready | failed`.
"""

import io
import pathlib
import shutil
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.api.deps import ApiTokenDep, JobQueueDep, SettingsDep
from app.api.errors import client_error, error_responses
from app.api.http import require_broker
from app.api.openapi import BINARY, PNG_FILE
from app.api.services import JobQueue
from contracts import datasets, jobs
from contracts.queue import enqueue_import
from contracts.settings import Settings
from contracts.train_config import explain
from model.dataset_import import BadArchive, ImportLimits, inspect_archive
from storage.layout import pair_files
from storage.shared import SharedMode, shared_mode
from storage.shared_runs import dataset_counts, pull_first_pairs

router = APIRouter(tags=["datasets"], dependencies=[ApiTokenDep], responses=error_responses(401))
DatasetName = Path(pattern=f"^{datasets.DATASET_NAME.pattern}$", description="A dataset's folder name.")


class DatasetSummary(BaseModel):
    name: str
    train: int = Field(description="Pair images in train/.")
    val: int = Field(description="Pair images in val/.")
    state: Literal["ready", "importing", "failed"] = "ready"


class ImportProgress(BaseModel):
    done: int
    total: int | None


class DatasetImport(BaseModel):
    name: str
    state: Literal["importing", "ready", "failed"]
    options: dict[str, str | float | int]
    archive_bytes: int
    progress: ImportProgress
    counts: dict[str, int] | None
    skipped: list[str] = Field(description="Images left out (over S2C_MAX_PIXELS with oversize=skip).")
    error: str | None = Field(description="Which file and why, when the import failed.")
    created_at: str
    finished_at: str | None
    heartbeat_at: str | None = Field(
        None,
        description="When its importer last said it is alive; silent for a minute while importing means it "
        "died, and the import is failed (so the name can be deleted or reused).",
    )


class DatasetDetail(BaseModel):
    name: str
    state: Literal["ready", "importing", "failed"]
    train: int
    val: int
    bytes: int
    preview: str | None = Field(description="A few pairs as one PNG (color | sketch), when ready.")
    import_record: DatasetImport | None = Field(None, alias="import")

    model_config = ConfigDict(populate_by_name=True)


class UploadOptions(BaseModel):
    """The form fields of POST /datasets besides `name` and `archive`."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["pairs", "pictures"] = Field(
        "pairs", description="pairs (color left, sketch right) or plain color pictures (sketches are made)."
    )
    sketch_side: Literal["right", "left"] = "right"
    val_fraction: float = Field(0.05, gt=0, le=0.5, description="Validation share of a flat archive.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of that split.")
    oversize: Literal["skip", "fail"] = Field("skip", description="Images over S2C_MAX_PIXELS: skip or fail.")


UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["name", "archive"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": f"^{datasets.DATASET_NAME.pattern}$"},
                    "archive": {**BINARY, "description": "A zip file."},
                    **UploadOptions.model_json_schema()["properties"],
                },
            }
        }
    },
}


@router.get("/datasets", response_model=list[DatasetSummary])
def list_datasets(settings: SettingsDep) -> list[dict[str, Any]]:
    """Datasets with their pair counts (the names POST /jobs accepts), and imports still running or failed."""
    ready = datasets.list_datasets(settings.datasets_dir)
    shared = shared_mode()
    if shared is not None:  # the bucket's datasets, imported on any host (a copy here is fetched to train)
        ready = shared_datasets(shared, settings.datasets_dir)
    names = {entry["name"] for entry in ready}
    pending = []
    folder = datasets.imports_dir(settings.datasets_dir)
    for record_path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record = datasets.fail_if_abandoned(settings.datasets_dir, record_path.stem)
        if record and record["state"] != "ready" and record["name"] not in names:
            pending.append({"name": record["name"], "train": 0, "val": 0, "state": record["state"]})
    return ready + pending


def shared_datasets(shared: SharedMode, datasets_dir: pathlib.Path) -> list[dict[str, Any]]:
    found = []
    for name in shared.store.subfolders(shared.relative(datasets_dir)):
        counts = dataset_counts(shared, datasets_dir / name) if datasets.is_dataset_name(name) else None
        if counts is not None:
            found.append({"name": name, **counts})
    return found


@router.post(
    "/datasets",
    status_code=202,
    response_model=DatasetImport,
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses=error_responses(400, 409, 413, 415, 422, 503, e409="The name is taken."),
)
async def upload_dataset(request: Request, settings: SettingsDep, job_queue: JobQueueDep) -> JSONResponse:
    """Upload a zip of pairs or pictures as dataset `name`; 202 with the import record (`Location` follows it)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "multipart/form-data":
        raise HTTPException(415, "send multipart/form-data with fields `name`, `archive` (a zip) and options")
    form = await request.form(max_files=1, max_fields=16)
    try:
        name, archive = form.get("name"), form.get("archive")
        if not isinstance(name, str) or not isinstance(archive, UploadFile):
            raise HTTPException(422, "send the fields `name` (text) and `archive` (a zip file)")
        fields = {key: value for key, value in form.items() if key not in ("name", "archive")}
        try:
            options = UploadOptions.model_validate(fields)
        except ValidationError as error:
            raise HTTPException(422, explain(error)) from None
        record = await run_in_threadpool(_accept_upload, job_queue, settings, name, archive, options)
    finally:
        await form.close()
    return JSONResponse(record, status_code=202, headers={"Location": f"/datasets/{name}"})


def _accept_upload(
    job_queue: JobQueue, settings: Settings, name: str, archive: UploadFile, options: UploadOptions
) -> dict[str, Any]:
    """Claim the name, keep the archive, check its directory, queue the import; undo everything on a refusal."""
    folder = settings.datasets_dir
    try:
        datasets.check_dataset_name(name)
    except datasets.BadDatasetName as error:
        raise client_error(error) from None
    celery_app = require_broker(job_queue)
    try:
        record = datasets.new_import(folder, name, options.model_dump(), archive_bytes=archive.size or 0)
    except datasets.DatasetExists as error:
        raise client_error(error) from None
    try:
        with open(datasets.archive_path(folder, name), "wb") as kept:
            archive.file.seek(0)
            shutil.copyfileobj(archive.file, kept, 1024 * 1024)
        limits = ImportLimits(
            settings.max_dataset_files, settings.max_dataset_unpacked_bytes, settings.max_pixels
        )
        inspect_archive(datasets.archive_path(folder, name), limits)
        datasets.keep_archive(folder, name)  # shared mode: into the bucket, for any host's importer
    except BadArchive as error:  # not a zip at all (415), or a zip we refuse (422): app/api/errors.py
        datasets.delete_dataset(folder, name)
        raise client_error(error, "archive: ") from None
    except BaseException:
        datasets.delete_dataset(folder, name)
        raise
    try:
        enqueue_import(celery_app, name)
    except Exception as error:  # the broker went away between the check and the send
        datasets.delete_dataset(folder, name)
        raise HTTPException(503, f"could not queue the import: {type(error).__name__}: {error}") from None
    return record


def _ready_or_import(settings: Settings, name: str) -> tuple[bool, dict[str, Any] | None]:
    try:
        datasets.check_dataset_name(name)
    except datasets.BadDatasetName as error:
        raise client_error(error) from None
    ready = datasets.dataset_is_there(settings.datasets_dir, name)
    record = datasets.fail_if_abandoned(settings.datasets_dir, name)
    if not ready and record is None:
        raise HTTPException(404, f"no dataset {name!r}; GET /datasets lists them")
    return ready, record


@router.get(
    "/datasets/{name}",
    response_model=DatasetDetail,
    response_model_by_alias=True,
    responses=error_responses(404),
)
def get_dataset(settings: SettingsDep, name: str = DatasetName) -> dict[str, Any]:
    """Counts, size on disk, a preview, and the import record (progress, skipped files, or why it failed)."""
    ready, record = _ready_or_import(settings, name)
    shared = shared_mode()
    if ready and shared is not None:  # the bucket's copy is the dataset
        files = shared.store.list_files(shared.relative(settings.datasets_dir / name))
        summary = {"name": name, **(dataset_counts(shared, settings.datasets_dir / name) or {})}
        size = sum(remote.size for remote in files)
    elif ready:
        summary = datasets.summarize(settings.datasets_dir / name)
        size = datasets.folder_bytes(settings.datasets_dir / name)
    if ready:
        return {
            **summary,
            "state": "ready",
            "bytes": size,
            "preview": f"/datasets/{name}/preview.png",
            "import": record,
        }
    assert record is not None
    return {
        "name": name,
        "state": record["state"],
        "train": 0,
        "val": 0,
        "bytes": 0,
        "preview": None,
        "import": record,
    }


@router.get(
    "/datasets/{name}/preview.png",
    response_class=Response,
    responses={200: PNG_FILE, **error_responses(404)},
)
def get_dataset_preview(settings: SettingsDep, name: str = DatasetName, rows: int = 4) -> Response:
    """Up to `rows` pairs (color | sketch) as one small PNG."""
    ready, _ = _ready_or_import(settings, name)
    if not ready:
        raise HTTPException(404, f"dataset {name!r} is not ready yet")
    shared = shared_mode()
    if shared is not None:  # the first few pairs from the bucket, not the whole dataset
        pull_first_pairs(shared, settings.datasets_dir / name, max(1, min(rows, 8)))
    files = pair_files(settings.datasets_dir / name / "val") + pair_files(
        settings.datasets_dir / name / "train"
    )
    files = files[: max(1, min(rows, 8))]
    thumbs = []
    for file in files:
        with Image.open(file) as pair:
            thumbs.append(pair.convert("RGB").resize((256, 128)))
    sheet = Image.new("RGB", (256, 128 * len(thumbs)), "white")
    for index, thumb in enumerate(thumbs):
        sheet.paste(thumb, (0, 128 * index))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return Response(buffer.getvalue(), media_type="image/png")


@router.delete(
    "/datasets/{name}",
    responses=error_responses(404, 409, e409="A job uses the dataset, or it is being imported."),
)
def delete_dataset(settings: SettingsDep, name: str = DatasetName) -> dict[str, str]:
    """Delete a dataset (or a failed import's record); refused while a job uses it or it is importing."""
    ready, record = _ready_or_import(settings, name)
    if record is not None and record["state"] == "importing":
        raise HTTPException(409, f"dataset {name!r} is being imported; wait for it to finish")
    users = [
        job.id
        for job in jobs.list_records(settings.runs_dir)
        if job.dataset == name and job.state not in jobs.FINAL_STATES
    ]
    if users:
        raise HTTPException(409, f"dataset {name!r} is used by job {users[0]}; cancel it first")
    datasets.delete_dataset(settings.datasets_dir, name)
    return {"deleted": name}
