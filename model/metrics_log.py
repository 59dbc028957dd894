"""A run's log points: the losses averaged between points, the training speed, and where points are written.

Each point is one line of the run folder's metrics.jsonl (contracts/job_record.py `MetricsPoint`, or a
`RunEvent` such as "stopped") and the same numbers as TensorBoard scalars.
"""

import json
import time
from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf

from contracts.job_record import Losses, MetricsPoint, RunEvent
from storage.run_folder import RunFolder

__all__ = ["MetricsLog", "PendingLosses", "SpeedMeter"]

NOT_SCALARS = ("step", "epoch", "event", "version")  # the keys of a line that are no TensorBoard scalar


@dataclass
class SpeedMeter:
    """Images per second over the steps since the last log point (tracing and compilation left out)."""

    batch_size: int
    started: float = field(default_factory=time.perf_counter)
    steps: int = 0
    images_per_second: float = 0.0

    def restart(self) -> None:
        self.started, self.steps = time.perf_counter(), 0

    def measure(self) -> float:
        elapsed = time.perf_counter() - self.started
        if self.steps and elapsed > 0:
            self.images_per_second = self.steps * self.batch_size / elapsed
        return self.images_per_second


@dataclass
class PendingLosses:
    """The train step's named losses since the last log point, kept as tensors (reading one waits for the
    device) until the point averages them."""

    steps: list[dict[str, tf.Tensor]] = field(default_factory=list)

    def add(self, losses: dict[str, tf.Tensor]) -> None:
        self.steps.append(losses)

    def mean(self) -> Losses:
        """Their averages, and a fresh start."""
        means = {
            name: float(tf.reduce_mean([losses[name] for losses in self.steps])) for name in self.steps[-1]
        }
        self.steps.clear()
        return Losses(**means)


class MetricsLog:
    """metrics.jsonl and the TensorBoard event files of one run folder."""

    def __init__(self, run: RunFolder):
        self.path = run.metrics
        self.writer = tf.summary.create_file_writer(str(run.tensorboard))

    def write(self, entry: MetricsPoint | RunEvent) -> None:
        line = json_line(entry)
        with open(self.path, "a") as metrics_file:
            metrics_file.write(json.dumps(line) + "\n")
        with self.writer.as_default(step=entry.step):
            for name, value in line.items():
                if name not in NOT_SCALARS and isinstance(value, float | int):
                    tf.summary.scalar(name, value)

    def image(self, name: str, image: Any, step: int) -> None:
        """One image (height, width, channels; uint8) as a TensorBoard image summary."""
        with self.writer.as_default(step=step):
            tf.summary.image(name, image[None], max_outputs=1)

    def flush(self) -> None:
        self.writer.flush()


def json_line(entry: MetricsPoint | RunEvent) -> dict[str, Any]:
    """The keys a line has always had: none for what is unset, and `version` last (after the extra hint
    scores `val_*_hints10`, which MetricsPoint keeps as extra keys)."""
    line = entry.model_dump(exclude_none=True)
    if "version" in line:
        line["version"] = line.pop("version")
    return line
