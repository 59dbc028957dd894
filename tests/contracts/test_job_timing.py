"""Time left, queue places and learned timings (contracts/job_timing.py): a job's time counts its start-up and
every version's export, learned from this data folder's jobs; queued jobs get a place in line and a wait."""

from datetime import UTC, datetime, timedelta

from contracts import jobs
from contracts.job_record import Job, Phase, Progress
from contracts.job_states import JobState
from contracts.job_timing import (
    DEFAULT_PUBLISH_SECONDS,
    DEFAULT_START_SECONDS,
    KEPT,
    JobTimings,
    Speed,
    publishes_after,
    queue_places,
    seconds_left,
)
from contracts.train_config import TrainConfig

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).isoformat()


def job(state: JobState, steps: int = 100, queued_ago: float = 0.0, **progress) -> Job:
    params = TrainConfig(steps=steps, batch_size=2, ngf=16, ndf=16, export_every=50)
    return Job(id=jobs.new_job_id(), state=state, dataset="demo", params=params, queued_at=ago(queued_ago),
               progress=Progress(total_steps=steps, **progress))  # fmt: skip


def test_versions_left_follow_the_schedule() -> None:
    params = TrainConfig(steps=100, export_every=30)
    assert [publishes_after(params, step, 100) for step in (0, 29, 30, 89, 90, 99, 100)] == [
        4,
        4,
        3,
        2,
        1,
        1,
        0,
    ]
    assert publishes_after(TrainConfig(steps=100, export_every=50), 0, 100) == 2, (
        "the last step is one of them"
    )
    assert publishes_after(TrainConfig(steps=100), 10, 100) == 1, (
        "export_every 0: only the last step publishes"
    )


def test_estimates_are_medians_of_the_newest_samples_or_defaults(tmp_path) -> None:
    timings = JobTimings(tmp_path)
    fresh = timings.estimates()
    assert (fresh.start_seconds, fresh.publish_seconds, fresh.learned) == (
        DEFAULT_START_SECONDS,
        DEFAULT_PUBLISH_SECONDS,
        False,
    )
    assert fresh.images_per_second(16) is None
    for seconds in (100.0, 10.0, 12.0, 11.0):
        timings.add(start_seconds=seconds, publish_seconds=seconds * 2)
    timings.add(speed=Speed(ngf=16, images_per_second=8.0))
    learned = timings.estimates()
    assert (learned.start_seconds, learned.publish_seconds, learned.learned) == (11.5, 23.0, True)
    assert learned.images_per_second(16) == 8.0 and learned.images_per_second(32) == 2.0, "scaled by width²"
    for _ in range(KEPT):
        timings.add(start_seconds=5.0)
    assert timings.read().start_seconds == [5.0] * KEPT, "only the newest samples count"
    timings.path.write_text("{not json")
    assert timings.estimates().start_seconds == DEFAULT_START_SECONDS, "a damaged file means the defaults"


def test_time_left_counts_start_up_steps_and_exports(tmp_path) -> None:
    timings = JobTimings(tmp_path)
    timings.add(start_seconds=35.0, publish_seconds=40.0, speed=Speed(ngf=16, images_per_second=20.0))
    estimates = timings.estimates()
    # 100 steps of 2 images at 20 images/s: 10 s of steps, two versions (steps 50 and 100), 35 s of start-up.
    assert seconds_left(job(JobState.QUEUED), estimates, NOW) == 35 + 10 + 2 * 40
    starting = job(JobState.RUNNING, phase=Phase.STARTING, phase_started_at=ago(5))
    assert seconds_left(starting, estimates, NOW) == 30 + 10 + 2 * 40
    training = job(JobState.RUNNING, step=60, images_per_second=10.0, phase=Phase.TRAINING, updated_at=ago(2))
    assert seconds_left(training, estimates, NOW) == 8 - 2 + 40, "its own speed; counted down since written"
    publishing = job(JobState.RUNNING, step=50, images_per_second=10.0, phase=Phase.PUBLISHING,
                     phase_started_at=ago(15))  # fmt: skip
    assert seconds_left(publishing, estimates, NOW) == 25 + 10 + 40, "the export under way, then the last one"
    late = job(JobState.RUNNING, step=100, phase=Phase.PUBLISHING, phase_started_at=ago(90))
    assert seconds_left(late, estimates, NOW) == 0, "an export slower than usual is not a negative time"
    assert seconds_left(job(JobState.SUCCEEDED, step=100), estimates, NOW) == 0
    assert seconds_left(job(JobState.QUEUED), JobTimings(tmp_path / "new").estimates(), NOW) is None, (
        "no speed measured here yet: unknown, not a guess"
    )


def test_queued_jobs_get_places_in_the_order_they_were_queued_and_waits(tmp_path) -> None:
    timings = JobTimings(tmp_path)
    timings.add(start_seconds=35.0, publish_seconds=40.0, speed=Speed(ngf=16, images_per_second=20.0))
    estimates = timings.estimates()
    running = job(JobState.RUNNING, step=50, images_per_second=20.0, phase=Phase.TRAINING, updated_at=ago(0))
    first, second = job(JobState.QUEUED, queued_ago=60), job(JobState.QUEUED, queued_ago=30)
    done = job(JobState.SUCCEEDED, step=100)
    places = queue_places([second, done, running, first], estimates, NOW)
    assert set(places) == {first.id, second.id}
    assert places[first.id].position == 1 and places[first.id].jobs_ahead == 1
    assert places[first.id].wait_seconds == 5 + 40, "the running job's steps and last export"
    assert places[second.id].position == 2 and places[second.id].jobs_ahead == 2
    assert places[second.id].wait_seconds == 45 + 35 + 10 + 80, "then the first one's whole run"
    alone = queue_places([first], estimates, NOW)[first.id]
    assert (alone.position, alone.jobs_ahead, alone.wait_seconds) == (1, 0, 0.0)
