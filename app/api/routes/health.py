"""Routes: liveness, readiness and Prometheus metrics."""

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from app.api.deps import MetricsDep, ModelStoreDep, SettingsDep
from app.api.http import no_generator_error

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    model_version: int


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process answers (a generator may not be loaded yet)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"description": "No generator loaded yet."}})
async def readyz(store: ModelStoreDep, settings: SettingsDep) -> Readiness:
    """Ready once a generator is loaded, so a load balancer only sends sketches that can be colorized."""
    model = store.current
    if model is None:
        raise no_generator_error(store, settings)
    return Readiness(status="ready", model_version=model.version)


@router.get("/metrics", include_in_schema=False)
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus text format: request counts and latencies, inference batch sizes, the active version."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
