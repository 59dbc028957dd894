"""The demo bootstrap of `sketch2color up`: with no generator published yet, make a small synthetic dataset and
launch a short training job through the API, then follow it until the API serves its first version.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.api_client import ApiClient, detail
from contracts.job_states import FINAL_STATES, JobState
from contracts.settings import Settings
from storage.layout import DEMO_DATASET, pair_files
from storage.shared import shared_mode
from storage.shared_runs import push_dataset
from storage.versions import latest_version

ACTIVE_STATES = frozenset(JobState) - FINAL_STATES  # states read from the job contract, not spelled here
PROGRESS_SECONDS = 30.0


FIRST_VERSION_STEPS = 600


@dataclass(frozen=True)
class DemoConfig:
    """The demo job launched when no generator exists: small enough to train on a laptop CPU in minutes."""

    enabled: bool = True
    steps: int = 600
    width: int = 16
    batch_size: int = 4
    # Five times the paper's rate: with it the narrow U-Net tells the demo's shapes apart within 600 steps
    # (measured: mean error inside the validation shapes 10-37 levels at step 500, 8-12 at step 600, over
    # three seeds; at the paper's 2e-4 still 50-73 at step 400).
    learning_rate: float = 1e-3
    train_pairs: int = 400
    val_pairs: int = 16

    def __post_init__(self) -> None:
        for name in ("steps", "width", "batch_size", "train_pairs", "val_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"demo {name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}"
                )

    def job_request(self) -> dict[str, Any]:
        """The POST /jobs body: the first version is published once it colors the demo's shapes (step 600),
        then every 600 steps and at the end; a version that paints every shape one color would teach a new
        user nothing."""
        return {
            "dataset": DEMO_DATASET,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "ngf": self.width,
            "ndf": self.width,
            "checkpoint_every": min(50, self.steps),
            "export_every": min(FIRST_VERSION_STEPS, self.steps),
            "log_every": min(10, self.steps),  # progress and loss curves on the page every 10 steps
        }


class DemoBootstrap:
    """Launches the demo job when needed and reports on it; `following` says whether there is more to say."""

    def __init__(self, config: "DemoConfig", settings: Settings, api: ApiClient, echo: Callable[[str], None]):
        self.demo = config
        self.settings = settings
        self.api = api
        self.echo = echo
        self.demo_job_id: str | None = None
        self.waiting_for_model = False  # a demo version was published; say when the API has loaded it
        self.model_announced = False
        self._last_report: tuple = (None, None, None)  # state, version, step of the last progress line
        self._last_report_at = 0.0

    @property
    def following(self) -> bool:
        return bool(self.demo_job_id or self.waiting_for_model)

    def ensure(self) -> None:
        """Launch the demo job unless a generator exists, the demo is off, or a demo job is on its way."""
        if not self.demo.enabled:
            return
        version = published_version(self.settings.models_dir)
        if version is not None:
            self.echo(f"generator version {version} is published; no demo job needed")
            return
        status, jobs = self.api.request("GET", "/jobs")
        if status != 200:
            self.echo(f"warning: GET /jobs answered {status} ({detail(jobs)}); not launching the demo job")
            return
        for job in _job_list(jobs):
            if job.get("dataset") == DEMO_DATASET and job.get("state") in ACTIVE_STATES:
                self.demo_job_id = str(job.get("id"))
                self.echo(
                    f"demo job {self.demo_job_id} is {job['state']}; /colorize answers once it publishes"
                )
                return
        dataset_dir = self.settings.datasets_dir / DEMO_DATASET
        if not _has_pairs(dataset_dir):
            from model.synthetic import make_synthetic_dataset

            counts = make_synthetic_dataset(
                dataset_dir, train=self.demo.train_pairs, val=self.demo.val_pairs, seed=0
            )
            self.echo(
                f"made the synthetic demo dataset in {dataset_dir}: "
                f"{counts['train']} train and {counts['val']} val pairs"
            )
        shared = shared_mode()
        if shared is not None:  # shared mode: the job trains on the bucket's copy, on whichever host
            push_dataset(shared, dataset_dir)
        status, job = self.api.request("POST", "/jobs", body=self.demo.job_request())
        if status not in (200, 201, 202) or not isinstance(job, dict):
            self.echo(f"warning: could not launch the demo job: POST /jobs answered {status} ({detail(job)})")
            return
        self.demo_job_id = str(job.get("id"))
        self.echo(
            f"no generator published yet: launched demo job {self.demo_job_id} "
            f"({self.demo.steps} steps on the synthetic '{DEMO_DATASET}' dataset); "
            f"/colorize answers once its first version is published (follow it at {self.api.base_url}/)"
        )

    def follow(self) -> None:
        """Print the demo job's state when it changes (its step every PROGRESS_SECONDS while it runs), and
        say so once the API has loaded a generator."""
        if self.demo_job_id:
            try:
                status, job = self.api.request("GET", f"/jobs/{self.demo_job_id}", timeout=5)
            except OSError:
                return
            if status != 200 or not isinstance(job, dict):
                return
            state, progress = job.get("state"), job.get("progress") or {}
            step, total = progress.get("step"), progress.get("total_steps")
            changed = (state, progress.get("version")) != self._last_report[:2]
            moved = (
                step != self._last_report[2] and time.monotonic() - self._last_report_at >= PROGRESS_SECONDS
            )
            if changed or moved:
                self._last_report = (state, progress.get("version"), step)
                self._last_report_at = time.monotonic()
                steps = f" step {step}/{total}" if step is not None and total else ""
                version = f", published version {progress['version']}" if progress.get("version") else ""
                error = f": {job['error']}" if job.get("error") else ""
                self.echo(f"demo job {state}{steps}{version}{error}")
            if (progress.get("version") or state == JobState.SUCCEEDED) and not self.model_announced:
                self.waiting_for_model = True
            if state not in ACTIVE_STATES:
                self.demo_job_id = None
        if self.waiting_for_model:
            try:
                ready = self.api.request("GET", "/readyz", timeout=5)[0] == 200
            except OSError:
                ready = False
            if ready:
                self.waiting_for_model, self.model_announced = False, True
                self.echo(f"a generator is loaded: {self.api.base_url}/ colorizes sketches now")


def published_version(models_dir: Path) -> int | None:
    """The newest complete generator version, or None (a file-system read: no TensorFlow in the launcher)."""
    latest = latest_version(models_dir)
    return latest.version if latest else None


def _has_pairs(dataset_dir: Path) -> bool:
    return all(pair_files(dataset_dir / split) for split in ("train", "val"))


def _job_list(payload: Any) -> list[dict]:
    """GET /jobs answers a plain list of job records."""
    return [job for job in payload if isinstance(job, dict)] if isinstance(payload, list) else []
