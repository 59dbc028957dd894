"""Typed dependencies: each route names the services it needs (app/api/services.py), never `app.state`."""

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.http import require_broker
from app.api.services import AppServices, JobQueue
from app.batching import MicroBatcher
from app.model_store import ModelStore
from app.observability import Metrics
from contracts.queue import QueueApp
from contracts.settings import Settings


def get_services(request: Request) -> AppServices:
    """The one place that reads `app.state`: override it to hand a test app its own services."""
    return request.app.state.services


ServicesDep = Annotated[AppServices, Depends(get_services)]


def get_app_settings(services: ServicesDep) -> Settings:
    return services.settings


def get_model_store(services: ServicesDep) -> ModelStore:
    return services.model_store


def get_batcher(services: ServicesDep) -> MicroBatcher:
    return services.batcher


def get_metrics(services: ServicesDep) -> Metrics:
    return services.metrics


def get_job_queue(services: ServicesDep) -> JobQueue:
    return services.job_queue


def get_broker(services: ServicesDep) -> QueueApp:
    """The Celery client, or 503 before the route runs (routes that check their input first call
    `require_broker` themselves, after the checks)."""
    return require_broker(services.job_queue)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ModelStoreDep = Annotated[ModelStore, Depends(get_model_store)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
BrokerDep = Annotated[QueueApp, Depends(get_broker)]


bearer = HTTPBearer(auto_error=False, description="The server's S2C_API_TOKEN (only when it sets one).")


def require_api_token(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """With S2C_API_TOKEN set, protected endpoints need `Authorization: Bearer <token>` (constant-time compare)."""
    if not settings.api_token:
        return
    presented = credentials.credentials.strip().encode() if credentials is not None else b""
    if not secrets.compare_digest(presented, settings.api_token.encode()):
        raise HTTPException(
            401,
            "missing or wrong API token: send `Authorization: Bearer <S2C_API_TOKEN>`",
            headers={"WWW-Authenticate": "Bearer"},
        )


ApiTokenDep = Depends(require_api_token)
