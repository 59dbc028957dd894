"""A full disk during checkpointing: the job fails saying so, its older checkpoint stays, the API stays fully
functional (never a 500), no temporary files pile up, and once space returns the job resumes and finishes.

The whole job system (API and worker) runs inside its own user and mount namespace (`unshare`), on a small
tmpfs the test mounts there: a real full disk, with no privileges needed and nothing outside touched.
"""

import json
import os
import shutil
import subprocess
import sys

from tests.support import REPO_ROOT

DRIVER = r"""
import json, os, subprocess, sys, time
from pathlib import Path
root = Path(sys.argv[1])
root.mkdir(parents=True, exist_ok=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(root)], check=True)
from tests.support import JobSystem, wait_until
system = JobSystem(root, broker_url=None)
report = {}
try:
    worker = system.start_worker("solo", wait=False)  # loads TensorFlow while the API starts
    system.start_api()
    system.wait_ready(worker)
    free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
    filler = root / "filler"
    filler.write_bytes(b"\0" * max(0, free - 17 * 1024 * 1024))  # room for one checkpoint, not two
    job = system.launch(steps=20, checkpoint_every=10, keep_checkpoints=1, export_every=0)
    failed = system.wait_for_job(job["id"], lambda r: r["state"] in ("failed", "succeeded"), "an end", 240)
    run_dir = system.run_dir(job["id"])
    report["state"], report["error"] = failed["state"], failed["error"]
    report["checkpoints"] = sorted(p.name for p in (run_dir / "checkpoints").glob("ckpt-*.index"))
    report["temporary_files"] = [p.name for p in run_dir.glob(".*.tmp")]
    with system.client() as client:
        report["list_status"] = client.get("/jobs").status_code
        other = client.post("/jobs", json={"dataset": "demo", "steps": 2, "batch_size": 2, "ngf": 8, "ndf": 8})
        report["launch_status"] = other.status_code
        if other.status_code == 202:
            report["cancel_status"] = client.post(f"/jobs/{other.json()['id']}/cancel").status_code
        filler.unlink()  # space returns
        report["resume_status"] = client.post(f"/jobs/{job['id']}/resume").status_code
    done = system.wait_for_job(job["id"], lambda r: r["state"] in ("failed", "succeeded"), "an end", 240)
    report["after_resume"] = done["state"]
    report["resumed_from_step"] = done["attempts"][-1]["resumed_from_step"]
    report["final_step"] = done["progress"]["step"]
except BaseException as error:
    report["crash"] = repr(error)[-3000:]
finally:
    system.close()
    subprocess.run(["umount", "-l", str(root)])
print("REPORT " + json.dumps(report))
"""


def test_a_full_disk_fails_the_job_clearly_and_it_resumes_when_space_returns(tmp_path):
    unshare = shutil.which("unshare")
    assert unshare, "the test needs util-linux's unshare (Debian package util-linux)"
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.run(
        [unshare, "--map-root-user", "--mount", sys.executable, "-c", DRIVER, str(tmp_path / "small-disk")],
        capture_output=True, text=True, timeout=900, cwd=REPO_ROOT, env=environment,
    )  # fmt: skip
    lines = [line for line in child.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, (
        f"the driver printed no report (exit {child.returncode}):\n{child.stdout[-3000:]}\n{child.stderr[-3000:]}"
    )
    report = json.loads(lines[-1].removeprefix("REPORT "))
    assert "crash" not in report, report["crash"]
    assert report["state"] == "failed" and "disk full while writing" in report["error"], report
    assert "resume" in report["error"], "the error says what to do"
    assert report["checkpoints"] == ["ckpt-10.index"], f"the older checkpoint stays: {report}"
    assert report["temporary_files"] == [], report
    assert report["list_status"] == 200 and report["launch_status"] in (202, 507), report
    assert report.get("cancel_status", 202) == 202, report
    assert report["resume_status"] == 202, report
    assert (report["after_resume"], report["resumed_from_step"], report["final_step"]) == (
        "succeeded",
        10,
        20,
    ), report
