"""The FastAPI application factory: the services (app/api/services.py), middleware, routes and error shape."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from app.api.errors import ErrorDetail
from app.api.openapi import operation_id
from app.api.routes import batch_pages, batches, colorize, datasets, embed, health, jobs, models, pages
from app.api.services import AppServices
from app.failures import FailureMiddleware
from app.observability import MetricsMiddleware
from app.uploads import UploadLimitMiddleware
from contracts.settings import Settings, get_settings
from contracts.train_config import describe_problems
from storage.serving_policy import DamagedPolicy
from storage.shared import shared_mode

logger = logging.getLogger("sketch2color")
REDACTED = "[query redacted]"


def create_app(settings: Settings | None = None, services: AppServices | None = None) -> FastAPI:
    """The app over `services` (built here from `settings` unless given: tests hand in their own)."""
    services = services or AppServices.build(settings or get_settings())
    settings = services.settings
    _configure_logging()
    shared_mode()  # S2C_STORAGE_URL without a Redis broker (or a malformed one) stops the start, saying why

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with services.running():
            yield

    # FastAPIOffline: /docs and /redoc with their scripts served from the package, so they work offline.
    app = FastAPIOffline(
        favicon_url="/web/favicon.svg",
        title="sketch2color",
        summary="Colorize black-and-white sketches with pix2pix, and train the models yourself.",
        version="0.1.0",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    app.state.services = services
    # Middleware added last runs first: metrics see every response, CORS headers reach error responses too.
    body_limits = {
        "/colorize": (settings.max_upload_bytes, "S2C_MAX_UPLOAD_BYTES"),
        "/datasets": (settings.max_dataset_upload_bytes, "S2C_MAX_DATASET_UPLOAD_BYTES"),
        "/batches": (settings.max_batch_upload_bytes, "S2C_MAX_BATCH_UPLOAD_BYTES"),
    }
    app.add_middleware(
        UploadLimitMiddleware,
        limits=body_limits,
        timeout_seconds=settings.body_timeout_seconds,
        in_flight_budget=settings.max_in_flight_body_bytes,
        streamed=frozenset({"/datasets", "/batches"}),  # streamed to disk, counted by its own limit
    )
    app.add_middleware(FailureMiddleware)  # inside CORS: every failure answer carries its headers
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Model-Version", "X-Image-Size", "Location", "Retry-After"],
        )
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    app.add_exception_handler(ClientDisconnect, _client_disconnected)
    app.add_exception_handler(DamagedPolicy, _damaged_policy)
    app.add_exception_handler(RequestValidationError, _bad_parameters)
    app.add_exception_handler(Exception, _unexpected_error)
    routers = (colorize, models, health, datasets, jobs, batches, batch_pages, pages, embed)
    for router in (module.router for module in routers):
        app.include_router(router)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    document_one_error_shape(app)
    return app


async def _damaged_policy(request: Request, error: Exception) -> JSONResponse:
    """The serving policy file is damaged: nothing may be changed or decided from it until someone fixes it."""
    logger.warning("%s %s refused: %s", request.method, request.url.path, error)
    return JSONResponse({"detail": str(error)}, 503)


async def _client_disconnected(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": "the client closed the connection before the upload was complete"}, 400)


async def _bad_parameters(request: Request, error: Exception) -> JSONResponse:
    """422 in the one error shape of this API, `{"detail": "<field>: <problem> (got <value>)"}`."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": describe_problems(error.errors())}, 422)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    """Starlette's own errors in our shape; a 405 lists every method the path has, not just one route's."""
    assert isinstance(error, StarletteHTTPException)
    headers = dict(error.headers or {})
    if error.status_code == 405:
        methods = set()
        for route in request.app.routes:
            if isinstance(route, APIRoute) and route.matches(request.scope)[0] != Match.NONE:
                methods |= route.methods or set()
        headers["Allow"] = ", ".join(sorted(methods))
    return JSONResponse({"detail": str(error.detail)}, error.status_code, headers=headers)


def document_one_error_shape(app: FastAPI) -> None:
    """FastAPI documents its own list-shaped 422; ours is `{"detail": "..."}` like every other error."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schemas = schema.get("components", {}).get("schemas", {})
        schemas.setdefault("ErrorDetail", ErrorDetail.model_json_schema())
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                unprocessable = operation.get("responses", {}).get("422")
                if unprocessable is not None:
                    unprocessable["content"] = {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}
                    }
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """The last resort: a JSON 500. The traceback goes to the log (the server logs it), not to the client."""
    return JSONResponse({"detail": "internal server error; the server log has the details"}, 500)


class QuietReads(logging.Filter):
    """Successful GETs (the page polls /jobs and /models every few seconds) and health probes are access-logged
    only at debug."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5) or logging.getLogger(
            "uvicorn.access"
        ).isEnabledFor(logging.DEBUG):
            return True
        method, path, status = args[1], str(args[2]).split("?")[0], args[4]
        probe = path in ("/readyz", "/healthz")  # a 503 there means "not ready yet", asked every second
        return not (method in ("GET", "HEAD") and isinstance(status, int) and (status < 400 or probe))


class RedactQueryStrings(logging.Filter):
    """An access-log line shows the path, never the query string: a client may put a secret there (`?token=`),
    and a log is read by more people than the API's token holders."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and "?" in str(args[2]):
            path = str(args[2]).split("?", 1)[0]
            record.args = (args[0], args[1], f"{path}?{REDACTED}", args[3], args[4])
        return True


def _configure_logging() -> None:
    """Our INFO lines (model loads, failures) next to uvicorn's, unless the host set up logging already; the
    access log's filters always."""
    access = logging.getLogger("uvicorn.access")
    for kind in (RedactQueryStrings, QuietReads):
        if not any(isinstance(existing, kind) for existing in access.filters):
            access.addFilter(kind())
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
