"""The one settings class, read from S2C_* environment variables by the API, the worker and the CLI.

docs/ARCHITECTURE.md ("Settings") and docs/DEPLOY.md ("Settings") list every setting; tests tie docker-compose.yml and .env.example to it.
"""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from storage.shared import StorageSettings


class Settings(StorageSettings):
    """data_dir, broker_url, storage_url and s3_endpoint_url come from StorageSettings (storage/shared.py)."""

    model_config = SettingsConfigDict(env_prefix="S2C_", extra="ignore")

    result_backend: str | None = None
    api_token: str | None = None
    model_poll_seconds: float = Field(2.0, gt=0)
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0)
    max_pixels: int = Field(40_000_000, gt=0)
    # fill=regions: the widest gap in an outline still closed, in pixels per 1024 px of the drawing's side.
    fill_gap: float = Field(5.0, ge=0, le=64)
    cors_origins: str | None = None
    max_batch_size: int = Field(16, ge=1, le=256)
    max_batch_wait_ms: float = Field(5.0, ge=0)
    job_lease_seconds: float = Field(30.0, gt=0)
    # A job whose worker dies this many times in a row (out of memory, most often) fails instead of re-queuing.
    max_worker_losses: int = Field(3, ge=1, le=1000)
    max_dataset_upload_bytes: int = Field(2 * 1024**3, gt=0)
    max_dataset_files: int = Field(50_000, gt=0)
    max_dataset_unpacked_bytes: int = Field(16 * 1024**3, gt=0)
    # Chapters (POST /batches): the upload's size, its pages, and the disk all kept batches may fill together.
    max_batch_upload_bytes: int = Field(1024**3, gt=0)
    max_batch_pages: int = Field(1000, gt=0)
    batch_disk_budget_bytes: int = Field(20 * 1024**3, gt=0)
    body_timeout_seconds: float = Field(60.0, gt=0)
    # Request bodies the API holds in memory at once, all requests together (uploads over it: 503, retry).
    max_in_flight_body_bytes: int = Field(256 * 1024 * 1024, gt=0)
    # Who may show the page (GET /) in a frame: CSP frame-ancestors sources; "*" or empty: anyone (no header).
    # The page deletes models and launches training: by default no other site may frame it (clickjacking).
    frame_ancestors: str = "'self'"

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def batches_dir(self) -> Path:
        return self.data_dir / "batches"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in (self.cors_origins or "").split(",") if origin.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
