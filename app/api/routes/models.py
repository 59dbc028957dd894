"""Routes: the published generator versions, and the 503 every route gives while none is loaded."""

import asyncio
import math
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from app.api.deps import ModelStoreDep
from app.model_store import ModelStore
from contracts.settings import Settings

router = APIRouter(tags=["models"])


class ModelVersion(BaseModel):
    version: int
    active: bool
    created: str | None
    error: str | None  # why the version could not be loaded, if it could not
    manifest: dict[str, Any]


class ModelsResponse(BaseModel):
    active_version: int | None
    loading_version: int | None
    poll_seconds: float
    versions: list[ModelVersion]  # newest first


@router.get("/models", response_model=ModelsResponse)
async def list_models(store: ModelStoreDep) -> dict[str, Any]:
    """Every complete published version with its manifest, which one is serving, and which failed to load."""
    return await asyncio.to_thread(store.describe)


def no_generator_error(store: ModelStore, settings: Settings) -> HTTPException:
    """503 with what to do about it, and a Retry-After of one poll interval."""
    if store.loading_version is not None:
        detail = f"generator version {store.loading_version} is loading; try again in a moment"
    else:
        detail = (
            "no generator is published yet: train one with `sketch2color train DATASET --run-dir RUN "
            "--models-dir $S2C_DATA_DIR/models` or POST /jobs; a new version under "
            "$S2C_DATA_DIR/models/generator/ is picked up without a restart"
        )
    return HTTPException(503, detail, headers=retry_after(settings))


def retry_after(settings: Settings) -> dict[str, str]:
    """One poll interval: when the store next looks at the published versions."""
    return {"Retry-After": str(max(1, math.ceil(settings.model_poll_seconds)))}
