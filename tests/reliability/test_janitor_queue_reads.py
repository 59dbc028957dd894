"""A janitor sweep reads the broker's queue once, however many jobs are queued (reliability row 16), and still
re-queues exactly the queued job whose message was lost, on the second sweep that misses it."""

from pathlib import Path

import pytest
import redis

from contracts import jobs
from contracts.queue import TRAINING_QUEUE, create_celery_app, enqueue_job
from contracts.settings import Settings
from contracts.train_config import TrainConfig
from tests.support import start_redis_server
from worker.janitor import Janitor

QUEUED_JOBS = 30
LOST_EVENT = "queue message lost; queued again"


def queue_jobs(settings: Settings, count: int) -> list[str]:
    app = create_celery_app(settings)
    job_ids = [jobs.new_job_id() for _ in range(count)]
    for job_id in job_ids:
        jobs.create_record(
            settings.runs_dir / job_id, jobs.new_record(job_id, "demo", TrainConfig(steps=4), 4)
        )
        enqueue_job(app, job_id)
    return job_ids


def lost_events(settings: Settings, job_id: str) -> int:
    record = jobs.read_record(settings.runs_dir / job_id)
    assert record is not None and record.state == "queued", record
    return sum(event.event == LOST_EVENT for event in record.events)


@pytest.fixture
def private_redis(tmp_path: Path):
    server, port = start_redis_server(tmp_path)
    try:
        yield port
    finally:
        server.stop()


def test_a_sweep_over_many_queued_jobs_reads_the_redis_queue_once(tmp_path: Path, private_redis: int):
    settings = Settings(data_dir=tmp_path / "data", broker_url=f"redis://127.0.0.1:{private_redis}/0")
    job_ids = queue_jobs(settings, QUEUED_JOBS)
    client = redis.Redis(port=private_redis)
    janitor = Janitor(create_celery_app(settings), settings, "janitor@test")
    janitor.sweep()  # the first sweep also cleans leftovers
    client.config_resetstat()

    janitor.sweep()

    calls = {
        name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()
    }
    assert calls.get("lrange", 0) == 1 and calls.get("hvals", 0) == 1, (
        f"one sweep over {QUEUED_JOBS} queued jobs should read the queue list and the unacked hash once each; "
        f"the broker counted {calls}"
    )
    assert all(lost_events(settings, job_id) == 0 for job_id in job_ids), "every message is there"

    victim = job_ids[7]
    message = next(item for item in client.lrange(TRAINING_QUEUE, 0, -1) if victim.encode() in item)
    assert client.lrem(TRAINING_QUEUE, 1, message) == 1
    janitor.sweep()
    assert lost_events(settings, victim) == 0, "missing once: the API may be about to send it"
    janitor.sweep()
    assert lost_events(settings, victim) == 1, "missing on two sweeps in a row: queued again"
    assert sum(victim.encode() in item for item in client.lrange(TRAINING_QUEUE, 0, -1)) == 1
    janitor.sweep()
    assert [lost_events(settings, job_id) for job_id in job_ids] == [
        int(job_id == victim) for job_id in job_ids
    ]


def test_the_embedded_broker_re_queues_only_the_job_whose_message_was_lost(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data")
    job_ids = queue_jobs(settings, 5)
    victim = job_ids[2]
    queue_folder = settings.data_dir / "broker" / "queue"
    [message] = [path for path in queue_folder.iterdir() if victim.encode() in path.read_bytes()]
    message.unlink()
    janitor = Janitor(create_celery_app(settings), settings, "janitor@test")

    janitor.sweep()
    assert lost_events(settings, victim) == 0, "missing once: the API may be about to send it"
    janitor.sweep()
    assert [lost_events(settings, job_id) for job_id in job_ids] == [
        int(job_id == victim) for job_id in job_ids
    ]
    assert sum(victim.encode() in path.read_bytes() for path in queue_folder.iterdir()) == 1, "sent again"
