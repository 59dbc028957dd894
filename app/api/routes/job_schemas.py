"""Typed schemas of the job routes' answers: the job record (contracts/jobs.py) and its metrics series."""

from typing import Literal

from pydantic import BaseModel, Field

from contracts.train_config import TrainConfig

JobState = Literal["queued", "running", "cancelling", "succeeded", "failed", "cancelled"]


class Losses(BaseModel):
    gen_gan: float
    gen_l1: float
    disc: float


class ValMetrics(BaseModel):
    l1: float
    psnr: float
    ssim: float


class GateDecision(BaseModel):
    passed: bool
    reason: str
    compared_with: int | None = None


class Progress(BaseModel):
    epoch: int
    step: int
    total_steps: int | None
    images_per_second: float | None
    eta_seconds: float | None
    losses: Losses | None
    val: ValMetrics | None
    version: int | None = Field(description="The newest version the job published.")
    gate: GateDecision | None = Field(None, description="The quality gate's decision on that version.")


class LeaseInfo(BaseModel):
    owner: str
    acquired_at: float
    renewed_at: float
    expires_at: float


class Attempt(BaseModel):
    worker: str
    pid: int
    owner: str
    started_at: str
    resumed_from_step: int | None
    previous_lease: LeaseInfo | None = None
    ended_at: str | None
    outcome: str | None = Field(
        description="succeeded, failed, cancelled, handed back, worker lost, lease lost"
    )
    last_step: int | None
    lost_noticed_at: str | None = None


class JobEvent(BaseModel):
    at: str
    event: str
    worker: str | None = None
    holder: str | None = None
    step: int | None = None
    noticed_by: str | None = None
    lease: LeaseInfo | None = None


class JobRecord(BaseModel):
    id: str
    state: JobState
    dataset: str
    params: TrainConfig
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None
    progress: Progress
    cancel_requested: bool
    attempts: list[Attempt]
    events: list[JobEvent]


class MetricsPoint(BaseModel):
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


class RunEvent(BaseModel):
    step: int
    epoch: int
    event: str


class JobMetrics(BaseModel):
    id: str
    metrics: list[MetricsPoint]
    events: list[RunEvent]


class Deleted(BaseModel):
    deleted: str
