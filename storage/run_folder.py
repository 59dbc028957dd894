"""The run folder `runs/<job_id>/`: one object that names the files a training run writes.

The trainer writes these and the API reads them; both take the names from here, so a file is renamed in one
place. The job system's own files beside them (record, lease, cancel flag) are named by contracts/job_files.py.
Plain paths, no TensorFlow (docs/ARCHITECTURE.md, "The data folder").
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
