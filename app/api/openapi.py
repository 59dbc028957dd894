"""What the OpenAPI document tells generated clients beyond the routes' own types: method names (operation
ids) and files (binary bodies): a client gets `colorize()` returning bytes, not `colorize_colorize_post()`."""

from typing import Any

from fastapi.routing import APIRoute

# A file's bytes under its media type: generators map it to bytes/Blob instead of dropping the body.
BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
PNG_FILE: dict[str, Any] = {"content": {"image/png": {"schema": BINARY}}}


def operation_id(route: APIRoute) -> str:
    """The route function's name in camelCase (`list_jobs` -> `listJobs`): readable, and unique because the
    route functions' names are (tests/app/test_service.py checks)."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)
