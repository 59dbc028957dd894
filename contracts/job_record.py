"""The typed job record `runs/<job_id>/job.json` and the trainer's log points, defined once.

The trainer (model/train.py) produces `Progress` and `MetricsPoint`, the worker and the janitor change `Job`
through contracts/jobs.py, and the API answers with these same models. Stored records keep unknown keys
(`extra="allow"`), so a record written by a newer or older version is read and written back without loss.
"""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.job_states import JobState
from contracts.train_config import TrainConfig
from storage.serving_policy import GateDecision

__all__ = [
    "Attempt",
    "GateDecision",
    "Job",
    "JobEvent",
    "LeaseInfo",
    "Losses",
    "MetricsPoint",
    "Phase",
    "Progress",
    "RunEvent",
    "ValMetrics",
    "utc_now",
]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _closed_schema(schema: dict[str, Any]) -> None:
    """Unknown keys are kept on disk, but clients are told only of the declared ones (typed OpenAPI)."""
    schema.pop("additionalProperties", None)


class Stored(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=_closed_schema)


class Losses(Stored):
    gen_gan: float
    gen_l1: float
    disc: float


class ValMetrics(Stored):
    """Validation scores: L1 in [-1, 1] units, PSNR, SSIM. A hint model adds the same scored with 10 hints per
    image (`l1_hints10`, `psnr_hints10`, `ssim_hints10`), kept as extra keys so that other models' records and
    answers hold only the three."""

    l1: float
    psnr: float
    ssim: float


class Phase(StrEnum):
    """What a running job's worker is doing: building the networks and tracing the first step, training steps,
    or exporting a version (SavedModel and ONNX copy), during which the step counter stands still."""

    STARTING = "starting"
    TRAINING = "training"
    PUBLISHING = "publishing"


class Progress(Stored):
    epoch: int = 0
    step: int = 0
    total_steps: int | None = None
    images_per_second: float | None = None
    eta_seconds: float | None = Field(
        None,
        description="At `updated_at`, the expected seconds until the job ends: start-up, training steps left, and "
        "every version still to publish, as measured on this data folder (contracts/job_timing.py).",
    )
    phase: Phase | None = Field(
        None, description="What the worker is doing; null unless running or cancelling."
    )
    phase_started_at: str | None = None
    updated_at: str | None = Field(None, description="When the worker last wrote this progress.")
    losses: Losses | None = None
    val: ValMetrics | None = None
    version: int | None = Field(None, description="The newest version the job published.")
    gate: GateDecision | None = Field(None, description="The quality gate's decision on that version.")


class LeaseInfo(Stored):
    owner: str
    acquired_at: float
    renewed_at: float
    expires_at: float


class Attempt(Stored):
    worker: str
    pid: int
    owner: str
    started_at: str
    resumed_from_step: int | None = None
    previous_lease: LeaseInfo | None = None
    ended_at: str | None = None
    outcome: str | None = Field(
        None,
        description="succeeded, failed, cancelled, handed back, worker lost, worker lost, gave up (the job "
        "failed after its worker died too often in a row), lease lost",
    )
    last_step: int | None = None
    lost_noticed_at: str | None = None


class JobEvent(Stored):
    at: str = Field(default_factory=utc_now)
    event: str
    worker: str | None = None
    holder: str | None = None
    step: int | None = None
    noticed_by: str | None = None
    lease: LeaseInfo | None = None


class Job(Stored):
    id: str
    state: JobState
    dataset: str
    params: TrainConfig
    created_at: str = Field(default_factory=utc_now)
    queued_at: str | None = Field(None, description="When it last entered the queue: its place in line.")
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    progress: Progress = Field(default_factory=Progress)
    cancel_requested: bool = False
    message_sent: bool = Field(
        True,
        description="False while a queued job's queue message could not be sent; a janitor sends it later.",
    )
    attempts: list[Attempt] = Field(default_factory=list)
    events: list[JobEvent] = Field(default_factory=list)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class MetricsPoint(Stored):
    """One line of `metrics.jsonl`: the losses averaged since the last point, plus val scores when scored."""

    step: int
    epoch: int
    gen_gan: float
    gen_l1: float
    disc: float
    imgs_per_s: float
    val_l1: float | None = None
    val_psnr: float | None = None
    val_ssim: float | None = None
    version: int | None = None


class RunEvent(Stored):
    """An event line of `metrics.jsonl` (`"event": "resumed"`, ...)."""

    step: int
    epoch: int
    event: str
