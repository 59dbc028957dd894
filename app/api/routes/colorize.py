"""Routes: colorize one sketch, optionally steered by color hints; the result as a PNG or as a layered file.

The image arrives as multipart field `file` or as the raw body; color hints as the multipart field `hints`
(an RGBA image, alpha > 0 marking a hint), mapped onto the sketch's square as the sketch is (model/imageio.py). Decoding, inference, layering and encoding all
run in threads, never on the event loop; inference goes through the micro-batcher. Every way a client's
bytes can be wrong maps to a 4xx with a JSON detail, never to a 500.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from PIL import Image
from starlette.datastructures import FormData

from app.api.deps import BatcherDep, ModelStoreDep, SettingsDep
from app.api.errors import ErrorDetail, client_error
from app.api.http import no_generator_error, retry_after
from app.api.openapi import BINARY
from app.model_store import LoadedModel, ModelStore, VersionNotFound, VersionUnloadable
from app.uploads import too_large_detail
from contracts.settings import Settings
from model.imageio import BadImage, load_hint_layers, load_sketch_and_original
from model.layer_files import MEDIA_TYPES
from model.page_result import result_file
from storage.serving_policy import LABEL_PATTERN, DamagedPolicy, read_policy

router = APIRouter(tags=["colorize"])
T = TypeVar("T")
logger = logging.getLogger("sketch2color.colorize")

RAW_MEDIA_TYPES = (
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/bmp",
    "image/gif",
    "application/octet-stream",
)
FIELD_NAME = "file"
HINTS_FIELD = "hints"


_binary = {"schema": BINARY}
REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "The sketch: multipart field `file`, or the raw image with an image content type. "
    "Color hints: multipart field `hints`, beside `file`.",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FIELD_NAME],
                "properties": {
                    FIELD_NAME: {**_binary["schema"], "description": "The sketch."},
                    HINTS_FIELD: {
                        **_binary["schema"],
                        "description": "Optional color hints: an RGBA image (PNG), best the sketch's own "
                        "size, transparent except where the user painted a color (alpha > 0 marks a hint). "
                        "It is mapped onto the sketch as the sketch is mapped onto 256x256; a thin stroke "
                        "survives the downscale. Only versions with `hints: true` in GET /models accept it. "
                        "Left empty (no file chosen), it counts as absent.",
                    },
                },
            },
            "encoding": {FIELD_NAME: {"contentType": "image/*"}, HINTS_FIELD: {"contentType": "image/png"}},
            "examples": {
                "sketch": {"summary": "A sketch alone", "value": {FIELD_NAME: "(sketch.png bytes)"}},
                "with hints": {
                    "summary": "A sketch and a red stroke where the hair is",
                    "description": "curl -F file=@sketch.png -F hints=@hints.png localhost:8000/colorize",
                    "value": {FIELD_NAME: "(sketch.png bytes)", HINTS_FIELD: "(hints.png: RGBA, same size)"},
                },
            },
        },
        **{media_type: _binary for media_type in RAW_MEDIA_TYPES},
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {media_type: _binary for media_type in MEDIA_TYPES.values()},
        "description": "The colorized RGB PNG (`format=png`): 256x256, or the sketch's own size with "
        "`size=original`. With `format=psd`, `ora` or `zip`: the same picture as layers at that size, top "
        "first `hints` (when sent; hidden), `lines` (multiply), `shading` (soft light, hidden; `fill=regions` "
        "only) and `flats`, the PNG as the file's merged image; an attachment (Content-Disposition).",
        "headers": {
            "X-Model-Version": {
                "description": "The generator version that drew it.",
                "schema": {"type": "integer"},
            },
            "X-Image-Size": {
                "description": "The result's width x height, e.g. `1200x900`.",
                "schema": {"type": "string"},
            },
            "Content-Disposition": {
                "description": "With `format=psd`, `ora` or `zip`: `attachment; filename=colorized.psd` (or "
                "`.ora`, `.zip`).",
                "schema": {"type": "string"},
            },
        },
    },
    400: {"model": ErrorDetail, "description": "Empty, truncated or undecodable image (sketch or hints)."},
    404: {
        "model": ErrorDetail,
        "description": "The `version` is not published, or no version has that label.",
    },
    413: {
        "model": ErrorDetail,
        "description": "Upload over S2C_MAX_UPLOAD_BYTES or image over S2C_MAX_PIXELS.",
    },
    415: {"model": ErrorDetail, "description": "Not an image, or a content type that is not an image."},
    422: {
        "model": ErrorDetail,
        "description": "No multipart field `file` (or an empty one), a bad `version`, `size`, `fill`, `lines` or "
        "`format`, "
        "hints without an alpha channel, or hints sent to a version trained without them.",
    },
    503: {
        "model": ErrorDetail,
        "description": "No generator published yet, or the pinned version fails to load (with Retry-After).",
    },
}


@router.post(
    "/colorize",
    response_class=Response,
    responses=RESPONSES,
    openapi_extra={"requestBody": REQUEST_BODY},
    summary="Colorize a sketch",
)
async def colorize(
    request: Request,
    store: ModelStoreDep,
    batcher: BatcherDep,
    settings: SettingsDep,
    version: Annotated[
        str | None,
        Query(
            pattern=f"^([1-9][0-9]{{0,8}}|{LABEL_PATTERN})$",
            description="A published version number or a label (e.g. `stable`); default: the served version.",
        ),
    ] = None,
    size: Annotated[
        Literal["256", "original"],
        Query(description="`256` (a 256x256 square) or `original` (the sketch's own width and height)."),
    ] = "256",
    fill: Annotated[
        Literal["regions", "soft"],
        Query(
            description="`regions`: flat colors, one per region the sketch's lines enclose; a hint fills the "
            "region it touches (gaps in outlines up to S2C_FILL_GAP px per 1024 px are closed); where the "
            "drawing has no closed regions (a background, open strokes, hatching) the model's own colors stay. "
            "`soft`: the model's colors as they come, hints spread softly around their dabs."
        ),
    ] = "regions",
    lines: Annotated[
        Literal["keep", "none"],
        Query(
            description="Lay the sketch's own lines over the colors (`keep`) or not (`none`: flats without "
            "lines). Applies at both sizes, except `size=256` with `fill=soft`, which is the model's own "
            "picture (it draws the lines itself)."
        ),
    ] = "keep",
    file_format: Annotated[
        Literal["png", "psd", "ora", "zip"],
        Query(
            alias="format",
            description="`png`: the picture. `psd` (Photoshop, Clip Studio Paint, Krita, GIMP), `ora` "
            "(OpenRaster: Krita, GIMP, MyPaint) or `zip` (the layer PNGs with `layers.json`): the picture as "
            "layers to keep painting on, top first `hints` (the strokes sent, hidden), `lines` (multiply: the "
            "sketch's lines on transparency), `shading` (soft light, hidden: the model's light and dark "
            "against each region's flat color; `fill=regions` only) and `flats` (one color per region; with "
            "`fill=soft` the model's colors). Opened as saved, the file looks exactly like the PNG.",
        ),
    ] = "png",
) -> Response:
    """PNG, JPEG, WebP, BMP or GIF (first frame), any mode and size: scaled to fit a white 256x256 square and
    colorized. Returns a 256x256 RGB PNG, or with `size=original` the colors upsampled to the sketch's own
    size (the padding cut away) with its lines kept crisp; the generator version is in `X-Model-Version`.
    Color hints (multipart field `hints`, an RGBA layer over the sketch) tell a hint model which colors go
    where: with `fill=regions` (the default) a dab fills the whole region of the drawing it touches.
    `format=psd`, `ora` or `zip` returns the same picture as layers for painting apps."""
    version_number = await _version_number(version, settings, store)
    with batcher.announce() as ticket:
        # The upload is read and its sketch decoded before a version is loaded: a request with no usable
        # image costs no model load (a pinned version's load takes seconds and slows everyone's requests).
        data, hints_data = await _read_image_bytes(request, settings)
        sketch, original = await _decode(data, settings)
        model = await _pick_model(store, settings, version_number)
        if hints_data is not None and model.predict_with_hints is None:
            raise HTTPException(
                422,
                f"generator version {model.version} was trained without color hints and does not accept them: "
                "leave out the `hints` field, or serve a version trained with hints on (GET /models says "
                "`hints: true`)",
            )
        hints, full_hints = None, None
        if hints_data is not None:  # at the sketch's size where the fill reads them or a layer shows them
            wanted = fill == "regions" or file_format != "png"
            full_size = original.size if size == "original" and wanted else None
            hints, full_hints = await _decode_hints(hints_data, settings, full_size)
        colorized = await batcher.colorize(model, sketch, ticket, hints=hints)
    body, (width, height) = await asyncio.to_thread(
        result_file, size, file_format, colorized, sketch, original, lines, fill, hints, full_hints,
        settings.fill_gap,
    )  # fmt: skip
    headers = {
        "X-Model-Version": str(model.version),
        "X-Image-Size": f"{width}x{height}",
        "Cache-Control": "no-store",
    }
    if file_format != "png":
        headers["Content-Disposition"] = f'attachment; filename="colorized.{file_format}"'
    return Response(body, media_type=MEDIA_TYPES[file_format], headers=headers)


async def _version_number(version: str | None, settings: Settings, store: ModelStore) -> int | None:
    """A number as given, or the version a label points at (404 for an unknown label)."""
    if version is None or version.isdigit():
        return int(version) if version else None
    try:
        labels = (await asyncio.to_thread(read_policy, settings.models_dir)).labels
    except DamagedPolicy:  # GET /models says so; labels as the model store last read them
        labels = store.policy.labels
    if version not in labels:
        raise HTTPException(404, f"no version labelled {version!r}; GET /models lists the labels")
    return labels[version]


async def _pick_model(store: ModelStore, settings: Settings, version: int | None) -> LoadedModel:
    try:
        model = await store.get(version)
    except VersionNotFound as error:
        raise HTTPException(404, str(error)) from error
    except VersionUnloadable as error:  # the server's files are at fault, not the request: 503, not 4xx
        detail = (
            f"{error}. Leave out ?version for the newest version or pin another (GET /models lists them with "
            "their load errors); this one is tried again once its files change"
        )
        raise HTTPException(503, detail, headers=retry_after(settings)) from error
    if model is None:
        raise no_generator_error(store, settings)
    return model


async def _read_image_bytes(request: Request, settings: Settings) -> tuple[bytes, bytes | None]:
    """The sketch's bytes, and the hint layer's when the request has one."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    hints: bytes | None = None
    if media_type == "multipart/form-data":
        form = await request.form(max_files=2, max_fields=16)
        try:
            no_sketch = f"send the image as a file in the multipart field '{FIELD_NAME}'"
            chosen = await _chosen_file(form, FIELD_NAME, no_sketch)
            if chosen is None:  # missing, or left empty: one answer
                raise HTTPException(422, no_sketch)
            data = chosen
            hints = await _chosen_file(
                form,
                HINTS_FIELD,
                f"send the hints as a file (an RGBA PNG) in the multipart field '{HINTS_FIELD}'",
            )
            if hints is not None and len(hints) > settings.max_upload_bytes:
                raise HTTPException(413, "hints: " + too_large_detail(settings.max_upload_bytes))
        finally:
            await form.close()
    elif media_type.startswith("image/") or media_type == "application/octet-stream":
        data = await request.body()
    else:
        raise HTTPException(
            415,
            f"send the image as multipart field '{FIELD_NAME}' or as the raw body with an image/* content "
            f"type, not {media_type or 'no content type'}",
        )
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, too_large_detail(settings.max_upload_bytes))
    return data, hints


async def _chosen_file(form: FormData, field: str, not_a_file: str) -> bytes | None:
    """The bytes of the file in multipart field `field`, or None when no file was chosen: an empty field (what
    HTML forms and Swagger UI's "Try it out" send for a file left unchosen: an empty filename or no bytes, or
    an empty value) counts as absent. A non-empty text value is a 422 saying `not_a_file`."""
    value = form.get(field)
    if isinstance(value, str):
        if value:
            raise HTTPException(422, not_a_file)
        return None
    if value is None or not value.filename:
        return None
    return await value.read() or None


async def _decode(data: bytes, settings: Settings) -> tuple[np.ndarray, Image.Image]:
    return await _read_image(load_sketch_and_original, data, settings, "")


async def _decode_hints(
    data: bytes, settings: Settings, sketch_size: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The hint layer on the model's square, and at the sketch's size when the full-size fill needs it;
    errors name the `hints` field, so a client knows which part."""

    def load(source: bytes, max_pixels: int) -> tuple[np.ndarray, np.ndarray | None]:
        return load_hint_layers(source, sketch_size, max_pixels)

    return await _read_image(load, data, settings, "hints: ")


async def _read_image(load: Callable[[bytes, int], T], data: bytes, settings: Settings, prefix: str) -> T:
    """`load(data, max_pixels)` in a thread; what is wrong with the bytes gets its status from the one table
    (app/api/errors.py)."""
    try:
        return await asyncio.to_thread(load, data, settings.max_pixels)
    except BadImage as error:
        raise client_error(error, prefix) from error
    except MemoryError as error:  # too large for the memory left now (a bomb, or other large requests)
        logger.warning("out of memory decoding an uploaded image (%s)", prefix.rstrip(": ") or "sketch")
        raise HTTPException(
            413, f"{prefix}the image needs more memory than the server has free right now; send a smaller "
            "one, or try again later", headers={"Retry-After": "5"},
        ) from error  # fmt: skip
    except Exception as error:  # whatever else a hostile file makes Pillow raise is still the file's fault
        logger.warning("could not read an uploaded image (%s): %r", prefix.rstrip(": ") or "sketch", error)
        raise HTTPException(400, f"{prefix}cannot read the image: {type(error).__name__}") from error
