"""What kill -9 leaves behind is cleaned once nothing can be writing it (worker start, then the janitor)."""

import json
import os
import time
from pathlib import Path

from contracts import jobs
from contracts.job_states import JobState
from contracts.settings import Settings
from contracts.train_config import TrainConfig
from worker.janitor import Janitor
from worker.leases import Lease


def aged(path: Path, seconds: float = 7200) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_leftovers_go_and_live_work_stays(tmp_path: Path):
    settings = Settings(data_dir=tmp_path)
    idle, held = jobs.new_job_id(), jobs.new_job_id()
    for job_id, state in ((idle, "failed"), (held, "running")):
        run_dir = settings.runs_dir / job_id
        jobs.create_record(run_dir, jobs.new_record(job_id, "demo", TrainConfig(steps=4), 4))
        jobs.update_record(run_dir, lambda record, state=state: setattr(record, "state", JobState(state)))
        (run_dir / "checkpoints" / "ckpt-5_temp").mkdir(parents=True)
        (run_dir / "checkpoints" / "ckpt-4.index").write_text("kept")
    assert Lease(settings.runs_dir / held, "w:1:x", 30).acquire()[0]
    aged_record_temp = settings.runs_dir / idle / f".job.json.{'0' * 32}.tmp"
    aged_record_temp.write_text("{")
    aged(aged_record_temp)
    versions = settings.models_dir / "generator"
    (versions / "1").mkdir(parents=True)
    stale, fresh = aged(_mkdir(versions / ".tmp-stale")), _mkdir(versions / ".tmp-fresh")
    doomed = _mkdir(versions / ".deleting-3-abc")
    aged(doomed)
    staging = aged(_mkdir(settings.datasets_dir / ".importing-gone"))
    importing = aged(_mkdir(settings.datasets_dir / ".importing-busy"))
    (settings.datasets_dir / ".imports").mkdir()
    (settings.datasets_dir / ".imports" / "busy.json").write_text(
        json.dumps({"name": "busy", "state": "importing"})
    )

    Janitor(None, settings, "janitor@test").clean_leftovers()

    assert not (settings.runs_dir / idle / "checkpoints" / "ckpt-5_temp").exists()
    assert (settings.runs_dir / idle / "checkpoints" / "ckpt-4.index").exists(), "complete checkpoints stay"
    assert not aged_record_temp.exists()
    assert (settings.runs_dir / held / "checkpoints" / "ckpt-5_temp").exists(), "a held job may be writing it"
    assert not stale.exists() and not doomed.exists() and not staging.exists()
    assert fresh.exists(), "a publish may be in progress"
    assert importing.exists(), "an import in progress keeps its staging folder"
    assert (versions / "1").exists()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
