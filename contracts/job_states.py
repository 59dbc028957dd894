"""A job's states and the one table of the changes between them (docs/ARCHITECTURE.md, "Jobs").

```
queued --(a worker takes it)--> running --(trainer ends)--> succeeded | failed | cancelled
queued --(cancel, or a cancel seen as a worker takes it)--> cancelled
running --(cancel)--> cancelling --(checkpointed, its worker lost, or its last step done)--> cancelled
cancelling --(the trainer failed before it saw the cancel)--> failed
running | cancelling --(worker shuts down: checkpointed, handed back)--> queued (a cancel flag then ends it)
running --(its lease expires)--> queued
running --(a worker takes it again after its worker was lost)--> running
cancelled | failed --(resume)--> queued
```
A new state is one member here plus its row in TRANSITIONS; mypy then finds every `match` that misses it.
"""

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED}),
    JobState.RUNNING: frozenset(
        {
            JobState.RUNNING,
            JobState.CANCELLING,
            JobState.QUEUED,
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.CANCELLED,
        }
    ),
    # Never cancelling -> succeeded: a cancel that comes after the last step ends the job cancelled (its
    # published versions stay), so no record says succeeded with a cancel requested.
    JobState.CANCELLING: frozenset({JobState.CANCELLED, JobState.FAILED, JobState.QUEUED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
}

FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
# States in which a worker holds (or should hold) the job's lease.
WORKING_STATES = frozenset({JobState.RUNNING, JobState.CANCELLING})
RESUMABLE_STATES = frozenset(state for state in FINAL_STATES if JobState.QUEUED in TRANSITIONS[state])


class WrongState(Exception):
    """The job is not in a state that allows this; the message says which it is in."""


def check_transition(job_id: str, current: JobState, wanted: JobState) -> None:
    """Raise WrongState unless TRANSITIONS allows `current -> wanted`."""
    if wanted not in TRANSITIONS[current]:
        raise WrongState(f"job {job_id} is {current.value}; it cannot become {wanted.value}")
