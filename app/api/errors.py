"""The one error shape of the API, `{"detail": "..."}`, and its OpenAPI entries."""

from typing import Any

from pydantic import BaseModel

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
