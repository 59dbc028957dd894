"""Routes: the pair datasets under `<data_dir>/datasets/`, which training jobs are launched on."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from app.api.deps import ApiTokenDep, SettingsDep
from app.api.errors import error_responses
from contracts.datasets import list_datasets

router = APIRouter(tags=["jobs"], dependencies=[ApiTokenDep], responses=error_responses(401))


class DatasetSummary(BaseModel):
    name: str
    train: int  # pair images in train/
    val: int  # pair images in val/


@router.get("/datasets", response_model=list[DatasetSummary])
def get_datasets(settings: SettingsDep) -> list[dict[str, Any]]:
    """Datasets under the data folder with their pair counts: the names POST /jobs accepts."""
    return list_datasets(settings.datasets_dir)
