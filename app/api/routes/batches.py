"""Routes: chapters. Many pages colorized in one batch by the workers (queue `batches`), followed, downloaded.

The upload streams to disk (app/batch_uploads.py checks it), the version is resolved once, here, for every
page, and the pages go to the workers in chunks (contracts/batches.py). The record is the only source of a
batch's state and counts; result.zip streams the pages finished so far, straight from their files.
"""

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from app.api.batch_lookup import batch_dir_of, batch_record
from app.api.deps import ApiTokenDep, JobQueueDep, SettingsDep
from app.api.errors import client_error, error_responses
from app.api.http import require_broker
from app.api.openapi import BINARY
from app.api.services import JobQueue
from app.batch_uploads import OverBudget, StoredPages, Upload, file_uploads, store_pages, zip_uploads
from contracts import batches
from contracts.batches import Batch, BatchOptions, BatchState
from contracts.queue import enqueue_chunk
from contracts.settings import Settings
from model.zip_safety import BadArchive, NotAZipArchive
from storage.serving_policy import LABEL_PATTERN, read_policy, served_version
from storage.shared import shared_mode
from storage.versions import list_versions, read_version

router = APIRouter(tags=["batches"], dependencies=[ApiTokenDep], responses=error_responses(401))
NO_BATCH = error_responses(404, e404="No such batch.")
FILES_FIELD = "files"

UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILES_FIELD],
                "properties": {
                    FILES_FIELD: {
                        "type": "array",
                        "items": BINARY,
                        "description": "The pages: one zip of them, or the page images themselves (repeat the "
                        "field). `NAME.hints.png` beside `NAME.png` is that page's hint layer.",
                    }
                },
            }
        }
    },
}


@router.post(
    "/batches",
    status_code=202,
    response_model=Batch,
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses=error_responses(
        400,
        404,
        413,
        415,
        422,
        503,
        507,
        e400="The multipart body is malformed.",
        e507="Kept batches fill S2C_BATCH_DISK_BUDGET_BYTES: delete some first.",
    ),
)
async def create_batch(
    request: Request,
    settings: SettingsDep,
    job_queue: JobQueueDep,
    version: Annotated[
        str | None,
        Query(
            pattern=f"^([1-9][0-9]{{0,8}}|{LABEL_PATTERN})$",
            description="A version or label; default: served.",
        ),
    ] = None,
    size: Annotated[Literal["256", "original"], Query(description="As POST /colorize.")] = "256",
    fill: Annotated[Literal["regions", "soft"], Query(description="As POST /colorize.")] = "regions",
    lines: Annotated[Literal["keep", "none"], Query(description="As POST /colorize.")] = "keep",
    file_format: Annotated[
        Literal["png", "psd", "ora", "zip"], Query(alias="format", description="As POST /colorize.")
    ] = "png",
) -> JSONResponse:
    """Colorize a chapter: a zip of pages (or the pages as several `files` fields), every page with the options
    of POST /colorize and one version, resolved now. 202 with the batch record (`Location` follows it)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "multipart/form-data":
        raise HTTPException(
            415, f"send multipart/form-data with the pages (or one zip) in `{FILES_FIELD}` fields"
        )
    options = BatchOptions(size=size, fill=fill, lines=lines, format=file_format, version=version)
    form = await _form_on_disk(request, max_files=2 * settings.max_batch_pages + 1)
    try:
        files = [
            value for value in form.getlist(FILES_FIELD) if isinstance(value, UploadFile) and value.filename
        ]
        if not files:
            raise HTTPException(
                422, f"send the pages (or one zip of them) as files in `{FILES_FIELD}` fields"
            )
        record = await run_in_threadpool(_accept, job_queue, settings, options, files)
    finally:
        await form.close()
    return JSONResponse(record.stored(), status_code=202, headers={"Location": f"/batches/{record.id}"})


class _DiskMultiPartParser(MultiPartParser):
    """Every uploaded file goes to disk from its first bytes (Starlette keeps each file of up to 1 MiB in memory:
    a chapter of many small pages would otherwise sit in memory whole)."""

    spool_max_size = 1


async def _form_on_disk(request: Request, max_files: int) -> FormData:
    parser = _DiskMultiPartParser(request.headers, request.stream(), max_files=max_files, max_fields=16)
    try:
        return await parser.parse()
    except MultiPartException as error:
        raise HTTPException(400, error.message) from None


def _accept(job_queue: JobQueue, settings: Settings, options: BatchOptions, files: list[UploadFile]) -> Batch:
    """Resolve the version, store the pages, write the record, queue the chunks; undo everything on a refusal."""
    celery_app = require_broker(job_queue)
    version = _resolve_version(settings, options.version)
    used = batches.disk_used(settings.batches_dir)
    budget_left = settings.batch_disk_budget_bytes - used
    upload_bytes = sum(file.size or 0 for file in files)
    if upload_bytes > budget_left:
        raise _over_budget(
            settings, f"the upload ({upload_bytes} bytes) is more than the {max(budget_left, 0)} left"
        )
    batch_id = batches.new_batch_id()
    batch_dir = settings.batches_dir / batch_id
    try:
        stored = _store(files, batch_dir, settings, budget_left)
        if any(page.hints for page in stored.pages) and not _accepts_hints(settings, version):
            raise HTTPException(
                422,
                f"generator version {version} was trained without color hints: leave out the *.hints.png "
                "layers, or pick a version trained with hints (GET /models says `hints: true`)",
            )
        pages = sorted([*stored.pages, *_refused_pages(stored)], key=lambda page: page.index)
        record = Batch(
            id=batch_id,
            state=BatchState.QUEUED,
            options=options,
            version=version,
            pages_total=len(pages),
            failures=stored.refused,
            pages_failed=len(stored.refused),
            chunks=batches.chunk_count(pages),
            upload_bytes=upload_bytes,
        )
        batches.create_batch(batch_dir, record, pages)
        for chunk in range(record.chunks):
            enqueue_chunk(celery_app, batch_id, chunk)
    except BadArchive as error:
        _remove(batch_dir)
        raise client_error(error, "files: ") from None
    except OverBudget as error:
        _remove(batch_dir)
        raise _over_budget(settings, str(error)) from None
    except HTTPException:
        _remove(batch_dir)
        raise
    except OSError as error:  # the broker went away, or the disk is full
        _remove(batch_dir)
        raise HTTPException(503, f"could not queue the batch: {type(error).__name__}: {error}") from None
    except BaseException:
        _remove(batch_dir)
        raise
    return record


def _store(files: list[UploadFile], batch_dir: Path, settings: Settings, budget_left: int) -> StoredPages:
    folder = batches.pages_dir(batch_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if len(files) == 1 and (files[0].filename or "").lower().endswith(".zip"):
        archive = batch_dir / "upload.zip"
        with open(archive, "wb") as kept:
            files[0].file.seek(0)
            while chunk := files[0].file.read(1 << 20):
                kept.write(chunk)
        try:
            with zipfile.ZipFile(archive) as zipped:
                uploads: list[Upload] = zip_uploads(zipped, archive, settings.max_batch_pages)
                return store_pages(uploads, folder, settings.max_batch_pages, budget_left)
        except zipfile.BadZipFile as error:
            raise NotAZipArchive(f"not a zip archive: {error}") from None
        finally:
            archive.unlink(missing_ok=True)
    uploads = file_uploads((file.filename or "", file.size or 0, file.file) for file in files)
    return store_pages(uploads, folder, settings.max_batch_pages, budget_left)


def _refused_pages(stored: StoredPages) -> list[batches.Page]:
    """Refused entries keep their place in the page list (no file): the list then names every entry."""
    taken = {page.index for page in stored.pages}
    free = (index for index in range(len(stored.pages) + len(stored.refused)) if index not in taken)
    return [batches.Page(index=next(free), name=failure.name) for failure in stored.refused]


def _over_budget(settings: Settings, why: str) -> HTTPException:
    return HTTPException(
        507,
        f"kept batches would pass the disk budget of {settings.batch_disk_budget_bytes} bytes "
        f"(S2C_BATCH_DISK_BUDGET_BYTES): {why}; delete finished batches (DELETE /batches/<id>) first",
    )


def _remove(batch_dir: Path) -> None:
    if batch_dir.exists() or shared_mode() is not None:
        batches.delete_batch(batch_dir)


def _resolve_version(settings: Settings, asked: str | None) -> int:
    """The version every page gets: the number asked, a label's version, or the one served now."""
    if asked is not None and asked.isdigit():
        if read_version(settings.models_dir, int(asked)) is None:
            raise HTTPException(404, f"generator version {asked} is not published; GET /models lists them")
        return int(asked)
    policy = read_policy(settings.models_dir)
    if asked is not None:
        if asked not in policy.labels:
            raise HTTPException(404, f"no version labelled {asked!r}; GET /models lists the labels")
        return policy.labels[asked]
    served = served_version(list_versions(settings.models_dir), policy)
    if served is None:
        raise HTTPException(
            503, "no generator is published yet: train one first (POST /jobs)", headers={"Retry-After": "5"}
        )
    return served.version


def _accepts_hints(settings: Settings, version: int) -> bool:
    published = read_version(settings.models_dir, version)
    return bool(published and published.manifest.get("hints", False))


@router.get("/batches", response_model=list[Batch])
def list_batches(settings: SettingsDep, limit: int = 100) -> list[Batch]:
    """Batch records, newest first."""
    return batches.list_batches(settings.batches_dir)[: max(limit, 0)]


@router.get("/batches/{batch_id}", response_model=Batch, responses=NO_BATCH)
def get_batch(batch_id: str, settings: SettingsDep) -> Batch:
    """One batch: state, options, version, pages total/done/failed, each failed page named with why."""
    return batch_record(batch_dir_of(settings, batch_id))


@router.get(
    "/batches/{batch_id}/result.zip",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {"schema": BINARY}}}, **NO_BATCH},
)
def get_batch_result(batch_id: str, settings: SettingsDep) -> StreamingResponse:
    """The pages finished so far (all of them once `done`), by their upload names, streamed as one zip."""
    batch_dir = batch_dir_of(settings, batch_id)
    record = batch_record(batch_dir)
    pages = batches.read_pages(batch_dir)
    headers = {
        "Content-Disposition": f'attachment; filename="batch-{batch_id[:8]}.zip"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(
        _zip_stream(batch_dir, pages, record.options.format), media_type="application/zip", headers=headers
    )


class _Pending:
    """A write-only stream that keeps what zipfile writes until the response takes it (no seek, no tell:
    zipfile then writes data descriptors, as a streamed zip needs)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _zip_stream(batch_dir: Path, pages: list[batches.Page], file_format: str) -> Iterator[bytes]:
    pending = _Pending()
    with zipfile.ZipFile(pending, "w", zipfile.ZIP_STORED) as zipped:
        for page in pages:
            path = batches.result_path(batch_dir, page, file_format)
            try:
                source = open(path, "rb")
            except FileNotFoundError:  # not finished (yet), or failed
                continue
            with source, zipped.open(batches.result_name(page, file_format), "w") as target:
                while chunk := source.read(1 << 20):
                    target.write(chunk)
                    yield pending.take()
            yield pending.take()
    yield pending.take()


@router.post(
    "/batches/{batch_id}/cancel",
    status_code=202,
    response_model=Batch,
    responses={**NO_BATCH, **error_responses(409, e409="The batch is already finished.")},
)
def cancel_batch(batch_id: str, settings: SettingsDep) -> Batch:
    """Cancel a queued or running batch: each worker stops before its next page; finished pages stay."""
    try:
        return batches.request_cancel(batch_dir_of(settings, batch_id))
    except batches.WrongState as error:
        raise HTTPException(409, str(error)) from None


@router.delete(
    "/batches/{batch_id}",
    responses={
        **NO_BATCH,
        **error_responses(409, e409="The batch is still queued or running: cancel it first."),
    },
)
def delete_batch(batch_id: str, settings: SettingsDep) -> dict[str, str]:
    """Delete a finished batch with its pages and results (what counts against the disk budget)."""
    batch_dir = batch_dir_of(settings, batch_id)
    record = batch_record(batch_dir)
    if record.state not in batches.FINAL_STATES:
        raise HTTPException(409, f"batch {batch_id} is {record.state.value}; cancel it first")
    batches.delete_batch(batch_dir)
    return {"deleted": batch_id}
