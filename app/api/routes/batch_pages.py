"""Routes: one chapter's pages, for the page's gallery. Each page's state, its result once finished and the
page as uploaded, addressed by the page's index (its place in the upload), never by a client's file name.

The files are served from the batch folder with their media type; errors name the page, never a server path.
"""

from pathlib import Path as FilePath
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import FileResponse

from app.api.batch_lookup import batch_dir_of, batch_record
from app.api.deps import ApiTokenDep, SettingsDep
from app.api.errors import error_responses
from app.api.openapi import BINARY
from contracts import batches
from contracts.batches import PageStatus
from model.layer_files import MEDIA_TYPES

router = APIRouter(tags=["batches"], dependencies=[ApiTokenDep], responses=error_responses(401))
PAGE_ERRORS = error_responses(
    404,
    422,
    e404="No such batch, or the page has no such file (not finished, failed, or refused at upload).",
    e422="The page index is negative or past the last page.",
)
ORIGINAL_MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".gif": "image/gif",
}
PageIndex = Annotated[int, Path(ge=0, description="The page's place in the upload, from 0 (GET .../pages).")]
NOT_KEPT = {"Cache-Control": "no-store"}  # a deleted batch's pages must not come back from a cache


@router.get("/batches/{batch_id}/pages", response_model=list[PageStatus], responses=error_responses(404))
def list_batch_pages(batch_id: str, settings: SettingsDep) -> list[PageStatus]:
    """Every page in upload order: `done` (its result can be fetched), `failed` (with why) or `pending`."""
    batch_dir = batch_dir_of(settings, batch_id)
    return batches.page_statuses(batch_dir, batch_record(batch_dir))


@router.get(
    "/batches/{batch_id}/pages/{index}/result",
    response_class=FileResponse,
    responses={200: {"content": dict.fromkeys(MEDIA_TYPES.values(), {"schema": BINARY})}, **PAGE_ERRORS},
)
def get_batch_page_result(batch_id: str, index: PageIndex, settings: SettingsDep) -> FileResponse:
    """One finished page's result, in the batch's format (PNG, PSD, ORA or zip); 404 until it is finished."""
    batch_dir = batch_dir_of(settings, batch_id)
    record = batch_record(batch_dir)
    page = _page(batch_dir, index)
    path = batches.result_path(batch_dir, page, record.options.format)
    if not path.is_file():
        failure = next((failure for failure in record.failures if failure.name == page.name), None)
        why = (
            f"it failed: {failure.reason}" if failure else f"it is not finished (batch {record.state.value})"
        )
        raise HTTPException(404, f"page {index} ({page.name}) has no result: {why}")
    return _file(path, MEDIA_TYPES[record.options.format], batches.result_name(page, record.options.format))


@router.get(
    "/batches/{batch_id}/pages/{index}/original",
    response_class=FileResponse,
    responses={
        200: {"content": dict.fromkeys(ORIGINAL_MEDIA_TYPES.values(), {"schema": BINARY})},
        **PAGE_ERRORS,
    },
)
def get_batch_page_original(batch_id: str, index: PageIndex, settings: SettingsDep) -> FileResponse:
    """One page as it was uploaded (its sketch); 404 for an entry refused at upload (nothing was kept)."""
    batch_dir = batch_dir_of(settings, batch_id)
    page = _page(batch_dir, index)
    if page.file is None:
        raise HTTPException(404, f"page {index} ({page.name}) was refused at upload: nothing was kept")
    suffix = PurePosixPath(page.file).suffix.lower()
    path = batches.pages_dir(batch_dir) / page.file
    if suffix not in ORIGINAL_MEDIA_TYPES or not path.is_file():
        raise HTTPException(404, f"page {index} ({page.name}) is not kept")
    return _file(path, ORIGINAL_MEDIA_TYPES[suffix], PurePosixPath(page.name).name)


def _page(batch_dir: FilePath, index: int) -> batches.Page:
    try:
        pages = batches.read_pages(batch_dir)
    except FileNotFoundError:  # deleted since batch_dir_of looked
        raise HTTPException(404, f"no batch {batch_dir.name!r}; GET /batches lists them") from None
    if index >= len(pages):
        raise HTTPException(422, f"page index {index} is past the last page ({len(pages) - 1})")
    return pages[index]


def _file(path: FilePath, media_type: str, name: str) -> FileResponse:
    """Shown inline (the gallery's thumbnails), saved under the page's own name when downloaded."""
    return FileResponse(
        path,
        media_type=media_type,
        filename=PurePosixPath(name).name,
        content_disposition_type="inline",
        headers=NOT_KEPT,
    )
