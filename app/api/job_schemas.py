"""Typed schemas of the job routes' answers beyond the job record itself (contracts/job_record.py)."""

from pydantic import BaseModel

from contracts.job_record import MetricsPoint, RunEvent


class JobMetrics(BaseModel):
    id: str
    metrics: list[MetricsPoint]
    events: list[RunEvent]


class Deleted(BaseModel):
    deleted: str
