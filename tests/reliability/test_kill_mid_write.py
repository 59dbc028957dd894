"""kill -9 of the worker in the middle of a checkpoint write, and in the middle of a publish: the half-written
files are never read, the job resumes from the newest complete checkpoint on another worker and publishes."""

import json
import signal
import time
from pathlib import Path

import pytest

from tests.support import JobSystem


def kill_when(system: JobSystem, worker, appears, what: str, timeout: float = 120.0) -> str:
    """SIGKILL `worker` the moment `appears()` names a path (polled every few milliseconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = appears()
        if found:
            worker.stop(signal.SIGKILL)
            return found
        time.sleep(0.002)
    raise AssertionError(f"never caught the worker {what}\n{system.diagnostics()}")


@pytest.mark.parametrize("moment", ["checkpoint", "publish"])
def test_kill_mid_write_loses_only_the_unfinished_write(tmp_path: Path, moment: str):
    system = JobSystem(tmp_path, broker_url=None)
    try:
        system.start_api()
        victim = system.start_worker("victim")
        # Versions at steps 10, 20, 30 and checkpoints every 5: the kill comes at step 10 (the publish, or the
        # second checkpoint), and the resumed run still publishes three versions of its own.
        job = system.launch(steps=30, checkpoint_every=5, export_every=10, keep_checkpoints=5)
        run_dir, versions = system.run_dir(job["id"]), system.data_dir / "models" / "generator"
        system.wait_for_job(
            job["id"],
            lambda record: (
                record["state"] == "running" and record["attempts"][0]["worker"].startswith("victim")
            ),
            "running on the victim",
        )
        # The rescuer starts (loads TensorFlow) while the victim trains; it takes the job only once the
        # victim's lease has expired, as a worker started after the kill would.
        rescuer = system.start_worker("rescuer", wait=False)

        def writing() -> str | None:
            if moment == "checkpoint":  # the second or a later one: a first is on CheckpointManager's list
                registered = system.checkpoint_step(job["id"]) if run_dir.exists() else 0
                temporary = list((run_dir / "checkpoints").glob("*_temp*")) if registered else []
                return str(temporary[0]) if temporary else None
            staging = list(versions.glob(".tmp-*")) if versions.exists() else []
            return str(staging[0]) if staging else None

        caught = kill_when(system, victim, writing, f"writing a {moment}")
        # A checkpoint is complete once CheckpointManager has listed it (after its files are in place): files of a
        # newer one whose listing the kill cut off are an unfinished write, never read.
        newest_complete = system.checkpoint_step(job["id"])
        files_before = sorted(p.name for p in (run_dir / "checkpoints").glob("ckpt-*.index"))
        published_before = (
            sorted(p.name for p in versions.iterdir() if p.name.isdigit()) if versions.exists() else []
        )
        for number in published_before:  # every listed version is whole
            assert json.loads((versions / number / "manifest.json").read_text())["version"] == int(number)

        system.wait_ready(rescuer)
        final = system.wait_for_job(
            job["id"], lambda record: record["state"] in ("succeeded", "failed"), "end", 240
        )
        assert final["state"] == "succeeded", system.diagnostics(final)
        lost, again = final["attempts"][0], final["attempts"][-1]
        assert lost["outcome"] == "worker lost" and again["outcome"] == "succeeded", final["attempts"]
        if moment == "checkpoint":
            assert newest_complete >= 5, f"no checkpoint was complete before the kill: {files_before}"
        assert again["resumed_from_step"] == newest_complete, (caught, newest_complete, files_before, again)
        published = sorted(int(p.name) for p in versions.iterdir() if p.name.isdigit())
        assert final["progress"]["version"] == published[-1] and len(published) >= 3, published
        for number in published:
            assert (versions / str(number) / "saved_model.pb").is_file() and (
                versions / str(number) / "manifest.json"
            ).is_file()
    finally:
        system.close()
