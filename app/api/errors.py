"""The one error shape of the API, `{"detail": "..."}`, its OpenAPI entries, and the one table that maps
the client's mistakes, as the lower layers raise them, to statuses."""

from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel

from contracts.datasets import BadDatasetName, DatasetExists
from model.dataset_import import BadArchive, NotAZipArchive
from model.imageio import BadImage, EmptyImage, ImageTooLarge, NoHintAlpha, NotAnImage, UndecodableImage

MEANINGS = {
    400: "The body is not JSON, or the image is empty, truncated or undecodable.",
    401: "Missing or wrong API token (only when the server sets S2C_API_TOKEN).",
    404: "No such job, dataset, version or label.",
    408: "The request body did not arrive in time (S2C_BODY_TIMEOUT_SECONDS).",
    409: "The job or version is in a state that does not allow this.",
    413: "The body or image is over the server's limits.",
    415: "Not an image, or a content type that is not an image.",
    422: "A parameter or field is missing, unknown or out of range; the detail names it.",
    503: "The job broker is unreachable, or no generator is loaded yet (with Retry-After).",
    507: "The server's disk is full: nothing was changed (with Retry-After).",
}


class ErrorDetail(BaseModel):
    detail: str


def error_responses(*statuses: int, **meanings: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these statuses, each with the error schema (override a meaning by `e409=`)."""
    return {
        status: {"model": ErrorDetail, "description": meanings.get(f"e{status}", MEANINGS[status])}
        for status in statuses
    }


# By exception type; a subclass not listed takes its nearest listed base's status.
STATUS_OF: dict[type[Exception], int] = {
    # An uploaded image (a sketch or a hint layer, model/imageio.py).
    EmptyImage: 400,
    UndecodableImage: 400,
    NotAnImage: 415,
    ImageTooLarge: 413,
    NoHintAlpha: 422,
    BadImage: 400,
    # An uploaded dataset: not a zip at all is the wrong kind of file; a zip we refuse holds the problem.
    NotAZipArchive: 415,
    BadArchive: 422,
    BadDatasetName: 422,
    DatasetExists: 409,
}


def status_of(error: Exception) -> int | None:
    """The status for a client's mistake this table knows, else None."""
    for kind in type(error).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return None


def client_error(error: Exception, prefix: str = "") -> HTTPException:
    """The HTTP error for a mistake in the table, its message after `prefix` (which part of the request)."""
    status = status_of(error)
    if status is None:
        raise TypeError(f"{type(error).__name__} is not a client error in STATUS_OF") from error
    return HTTPException(status, f"{prefix}{error}")
