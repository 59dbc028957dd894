"""What a training step owes: a typed schedule of periodic actions, one entry per action. No TensorFlow.

The loop (model/train.py) asks the schedule after every step which actions are due, and makes a log point
whenever any is; a new periodic action ("evaluate every N steps", say) is one more `Entry` in
`training_schedule` and one more branch where the trainer runs its actions.
"""

from dataclasses import dataclass, field
from enum import Enum

from contracts.train_config import TrainConfig

__all__ = ["AUTO_LOG_SECONDS", "WRITES", "Action", "Entry", "Schedule", "training_schedule"]

# With the default log_every, a log point comes at least this often (and at the first step of a session), so a
# short or slow run still shows progress early.
AUTO_LOG_SECONDS = 5.0


class Action(Enum):
    """What a step can owe. Any of them makes the step a log point (its losses into metrics.jsonl)."""

    LOG = "log"
    EVALUATE = "evaluate"  # score the generator on the fixed validation subset
    PUBLISH = "publish"  # a new generator version (before the checkpoint: see Pix2PixTrainer._log_point)
    CHECKPOINT = "checkpoint"  # and a sample grid


WRITES = frozenset({Action.PUBLISH, Action.CHECKPOINT})  # the actions that write (after `before_write()`)


@dataclass(frozen=True)
class Entry:
    """One periodic action: due every `every` steps (0: not by count), on the last step if `at_last_step`, and
    (with `after_seconds`) on a session's first step and once that long has passed since the last log point.
    `needs` are the actions it brings along (a version is published with its validation scores)."""

    action: Action
    every: int = 0
    at_last_step: bool = True
    after_seconds: float | None = None
    needs: frozenset[Action] = field(default_factory=frozenset)

    def is_due(self, step: int, total_steps: int, first_step: int, seconds_since_point: float) -> bool:
        if self.every > 0 and step % self.every == 0:
            return True
        if self.at_last_step and step == total_steps:
            return True
        return self.after_seconds is not None and (
            step == first_step or seconds_since_point >= self.after_seconds
        )


@dataclass(frozen=True)
class Schedule:
    """The entries of one training session (`first_step` is the first step it trains)."""

    entries: tuple[Entry, ...]
    total_steps: int
    first_step: int = 1

    def due(self, step: int, seconds_since_point: float = 0.0) -> frozenset[Action]:
        """The actions due at `step`, with what they need; empty: no log point at this step."""
        due: set[Action] = set()
        for entry in self.entries:
            if entry.is_due(step, self.total_steps, self.first_step, seconds_since_point):
                due |= {entry.action, *entry.needs}
        return frozenset(due)


def training_schedule(
    config: TrainConfig, total_steps: int, resumed_from_step: int = 0, publishing: bool = False
) -> Schedule:
    """The trainer's schedule: log points, checkpoints (with scores and a sample grid) and, when `publishing`,
    versions; the last step owes all of them. An explicit log_every is kept exactly; by default about 100 log
    points per run, plus the time rule of AUTO_LOG_SECONDS."""
    scored = frozenset({Action.EVALUATE})
    entries = [
        Entry(
            Action.LOG,
            every=config.log_every or max(1, total_steps // 100),
            after_seconds=AUTO_LOG_SECONDS if config.log_every is None else None,
        ),
        Entry(Action.CHECKPOINT, every=config.checkpoint_every, needs=scored),
    ]
    if publishing:
        entries.append(Entry(Action.PUBLISH, every=config.export_every, needs=scored))
    return Schedule(tuple(entries), total_steps, first_step=resumed_from_step + 1)
