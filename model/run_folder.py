"""The run folder `runs/<job_id>/`: one object that names every file of a training run.

The trainer writes these, the worker keeps its record and lease beside them, and the API reads them; all of
them take the names from here, so a file is renamed in one place. Plain paths, no TensorFlow.
"""

from dataclasses import dataclass
from pathlib import Path

from storage.layout import sample_grids


@dataclass(frozen=True)
class RunFolder:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def name(self) -> str:
        return self.root.name

    # ---- written by the trainer (model/) ---------------------------------------------------------------
    @property
    def config(self) -> Path:
        """The hyper-parameters the run was started with (resuming with other network shapes is refused)."""
        return self.root / "train_config.json"

    @property
    def checkpoints(self) -> Path:
        """tf.train.CheckpointManager's folder: ckpt-<step> files and its `checkpoint` index."""
        return self.root / "checkpoints"

    @property
    def checkpoint_index(self) -> Path:
        return self.checkpoints / "checkpoint"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    @property
    def metrics(self) -> Path:
        """One JSON object per line: a log point (step, losses, val_*) or an event (`"event": ...`)."""
        return self.root / "metrics.jsonl"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    def sample_grid(self, epoch: int) -> Path:
        return self.samples / f"epoch_{epoch:04d}.png"

    def sample_grids(self) -> list[Path]:
        """The sample grids, oldest epoch first."""
        return sample_grids(self.samples)

    @property
    def progress_gif(self) -> Path:
        return self.samples / "progress.gif"

    # ---- kept by the job system (contracts/ and worker/) -------------------------------------------------
    @property
    def record(self) -> Path:
        """The job record `job.json` (contracts/jobs.py)."""
        return self.root / "job.json"

    @property
    def record_lock(self) -> Path:
        return self.root / ".job.lock"

    @property
    def cancel_flag(self) -> Path:
        """Present once a cancel was requested: the trainer looks for it before every step."""
        return self.root / "cancel"

    @property
    def lease(self) -> Path:
        """Which worker may train the job right now (worker/leases.py)."""
        return self.root / "lease.json"

    @property
    def lease_lock(self) -> Path:
        return self.root / ".lease.lock"

    @property
    def reserve(self) -> Path:
        """A little disk space set aside: freed to record a failure when the disk is full."""
        return self.root / ".reserve"
