"""Annotated dependencies shared by the routes."""

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.batching import MicroBatcher
from app.model_store import ModelStore
from app.observability import Metrics
from contracts.settings import Settings


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_model_store(request: Request) -> ModelStore:
    return request.app.state.model_store


def get_batcher(request: Request) -> MicroBatcher:
    return request.app.state.batcher


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


ModelStoreDep = Annotated[ModelStore, Depends(get_model_store)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


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
