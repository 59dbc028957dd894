"""How long a job will take on this machine, learned from the jobs that ran here (docs/ARCHITECTURE.md, "Jobs").

A job's time is more than its training steps: a worker first builds the networks and traces the step (start-up,
half a minute on a small CPU), and every published version costs a SavedModel export and an ONNX conversion.
Workers measure both, and each finished job's speed, into `runs/.timings.json` (the newest KEPT samples of
each, written atomically under a lock). Estimates are medians of those samples, or DEFAULT_* figures on a data
folder where nothing ran yet. The same functions serve the worker (the record's `eta_seconds`) and the API (the
time left counted at the moment it answers, queue places and waits), so both say the same. No TensorFlow.
"""

import json
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from filelock import FileLock
from pydantic import BaseModel, Field, ValidationError

from contracts.job_record import Job, Phase
from contracts.job_states import WORKING_STATES, JobState
from contracts.train_config import TrainConfig
from storage.atomic import write_atomically

__all__ = [
    "DEFAULT_PUBLISH_SECONDS",
    "DEFAULT_START_SECONDS",
    "Estimates",
    "JobTimings",
    "QueuePlace",
    "Speed",
    "publishes_after",
    "queue_places",
    "seconds_left",
]

TIMINGS_FILE = ".timings.json"
KEPT = 9  # the newest samples of each kind: a median of few follows a changed machine (or load) soon
# Measured on a loaded 2-core laptop (width 16, ONNX on): start-up ~35 s, one version's export ~40 s.
DEFAULT_START_SECONDS = 30.0
DEFAULT_PUBLISH_SECONDS = 30.0


class Speed(BaseModel):
    """A finished job's training speed at its generator width."""

    ngf: int
    images_per_second: float


class TimingSamples(BaseModel):
    start_seconds: list[float] = Field(default_factory=list)
    publish_seconds: list[float] = Field(default_factory=list)
    speeds: list[Speed] = Field(default_factory=list)


class QueuePlace(BaseModel):
    """Where a queued job stands: `position` 1 is the next to start."""

    position: int = Field(description="1: the next job a worker takes.")
    jobs_ahead: int = Field(description="Jobs that start before it: queued ahead of it, plus those running.")
    wait_seconds: float | None = Field(
        None,
        description="Expected seconds until a worker starts it (running jobs' time left and the queued jobs' "
        "ahead, one job at a time per running job's worker); null while a job ahead has no estimate.",
    )


@dataclass(frozen=True)
class Estimates:
    """What a job's parts are expected to take here; `learned` says whether any sample was measured."""

    start_seconds: float = DEFAULT_START_SECONDS
    publish_seconds: float = DEFAULT_PUBLISH_SECONDS
    speeds: tuple[Speed, ...] = ()
    learned: bool = False

    def images_per_second(self, ngf: int) -> float | None:
        """The median speed measured at this width; else one at another width, scaled by the square of the
        widths (a step's work grows with it); None when no job finished here yet."""
        same = [speed.images_per_second for speed in self.speeds if speed.ngf == ngf]
        if same:
            return statistics.median(same)
        if not self.speeds:
            return None
        newest = self.speeds[-1]
        return newest.images_per_second * (newest.ngf / ngf) ** 2

    def training_seconds(
        self, params: TrainConfig, steps: int, images_per_second: float | None
    ) -> float | None:
        speed = images_per_second or self.images_per_second(params.ngf)
        if steps <= 0:
            return 0.0
        return steps * params.batch_size / speed if speed else None


def publishes_after(params: TrainConfig, step: int, total_steps: int) -> int:
    """How many versions a job publishes after `step`: every export_every steps, and at its last step (as
    model/schedule.py schedules them)."""
    if step >= total_steps:
        return 0
    every = params.export_every
    periodic = total_steps // every - step // every if every > 0 else 0
    last_is_periodic = every > 0 and total_steps % every == 0
    return periodic + (0 if last_is_periodic else 1)


def _seconds_since(stamp: str | None, now: datetime) -> float:
    if stamp is None:
        return 0.0
    try:
        return max(0.0, (now - datetime.fromisoformat(stamp)).total_seconds())
    except ValueError:
        return 0.0


def seconds_left(record: Job, estimates: Estimates, now: datetime) -> float | None:
    """Expected seconds until the job ends, counted at `now`: start-up (queued or starting), the training steps
    left, the version being published and those still to come. 0 for a finished job; None while the speed is
    unknown (no progress yet and no job finished here)."""
    if record.state not in (JobState.QUEUED, JobState.RUNNING):
        return 0.0  # finished, or cancelling: it stops at its next step
    progress = record.progress
    total = progress.total_steps if progress.total_steps is not None else record.params.steps
    if total is None:
        return None
    step = progress.step
    start = publishing = 0.0
    since_update = 0.0
    if record.state == JobState.QUEUED:
        start = estimates.start_seconds
    elif progress.phase == Phase.STARTING:
        start = max(0.0, estimates.start_seconds - _seconds_since(progress.phase_started_at, now))
    elif progress.phase == Phase.PUBLISHING:
        publishing = max(0.0, estimates.publish_seconds - _seconds_since(progress.phase_started_at, now))
    else:
        since_update = _seconds_since(progress.updated_at, now)
    speed = progress.images_per_second if record.state != JobState.QUEUED else None
    training = estimates.training_seconds(record.params, total - step, speed)
    if training is None:
        return None
    training = max(0.0, training - since_update)
    later_versions = publishes_after(record.params, step, total) * estimates.publish_seconds
    return round(start + training + publishing + later_versions, 1)


def queue_places(records: list[Job], estimates: Estimates, now: datetime) -> dict[str, QueuePlace]:
    """The queued jobs' places, in the order they were queued (`queued_at`), and their expected waits. Jobs
    run one at a time per worker; the running jobs say how many workers there are (at least one)."""
    running = [record for record in records if record.state in WORKING_STATES]
    queued = sorted(
        (record for record in records if record.state == JobState.QUEUED),
        key=lambda record: record.queued_at or record.created_at,
    )
    workers = max(1, len(running))
    busy: float | None = 0.0
    for record in running:
        left = seconds_left(record, estimates, now)
        busy = None if busy is None or left is None else busy + left
    places: dict[str, QueuePlace] = {}
    for position, record in enumerate(queued, start=1):
        wait = None if busy is None else round(busy / workers, 1)
        places[record.id] = QueuePlace(
            position=position, jobs_ahead=position - 1 + len(running), wait_seconds=wait
        )
        duration = seconds_left(record, estimates, now)
        busy = None if busy is None or duration is None else busy + duration
    return places


class JobTimings:
    """The measured samples of one data folder's jobs: workers add, the API and workers estimate."""

    def __init__(self, runs_dir: Path):
        self.path = Path(runs_dir) / TIMINGS_FILE
        self._lock = FileLock(str(Path(runs_dir) / ".timings.lock"), timeout=10)

    def read(self) -> TimingSamples:
        try:
            return TimingSamples.model_validate_json(self.path.read_bytes())
        except (OSError, ValidationError, json.JSONDecodeError):
            return TimingSamples()  # none yet, or a damaged file: the defaults until the next sample

    def add(
        self,
        start_seconds: float | None = None,
        publish_seconds: float | None = None,
        speed: Speed | None = None,
    ) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            samples = self.read()
            if start_seconds is not None:
                samples.start_seconds = [*samples.start_seconds, round(start_seconds, 2)][-KEPT:]
            if publish_seconds is not None:
                samples.publish_seconds = [*samples.publish_seconds, round(publish_seconds, 2)][-KEPT:]
            if speed is not None:
                samples.speeds = [*samples.speeds, speed][-KEPT:]
            write_atomically(self.path, samples.model_dump_json(indent=2))

    def estimates(self) -> Estimates:
        samples = self.read()
        return Estimates(
            start_seconds=statistics.median(samples.start_seconds)
            if samples.start_seconds
            else DEFAULT_START_SECONDS,
            publish_seconds=(
                statistics.median(samples.publish_seconds)
                if samples.publish_seconds
                else DEFAULT_PUBLISH_SECONDS
            ),
            speeds=tuple(samples.speeds),
            learned=bool(samples.start_seconds or samples.publish_seconds or samples.speeds),
        )
