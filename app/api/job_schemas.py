"""Typed schemas of the job routes' answers beyond the job record itself (contracts/job_record.py)."""

from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from contracts import jobs
from contracts.job_record import Job, MetricsPoint, RunEvent
from contracts.job_states import JobState
from contracts.job_timing import JobTimings, QueuePlace, queue_places, seconds_left


class JobView(Job):
    """A job record as GET /jobs and GET /jobs/{id} answer it: the record, plus what is counted as they answer."""

    seconds_left: float | None = Field(
        None,
        description="Expected seconds until the job ends, counted now: its queue wait is not included (see "
        "`queue`), start-up, training, and the versions still to publish are; 0 once it ended, null while "
        "unknown (no speed measured on this data folder yet).",
    )
    queue: QueuePlace | None = Field(None, description="A queued job's place in line and expected wait.")


def job_views(runs_dir: Path, records: list[Job] | None = None) -> list[JobView]:
    """Every job, newest first, or just `records`, as answered (a queued one's place is among every job)."""
    shown = jobs.list_records(runs_dir) if records is None else records
    estimates, now = JobTimings(runs_dir).estimates(), datetime.now(UTC)
    places = {}
    if any(record.state == JobState.QUEUED for record in shown):
        everyone = shown if records is None else jobs.list_records(runs_dir)
        places = queue_places(everyone, estimates, now)
    return [
        JobView(
            **record.stored(), seconds_left=seconds_left(record, estimates, now), queue=places.get(record.id)
        )
        for record in shown
    ]


class JobMetrics(BaseModel):
    id: str
    metrics: list[MetricsPoint]
    events: list[RunEvent]


class Deleted(BaseModel):
    deleted: str
