"""The job system's files inside a run folder `runs/<job_id>/`, beside the trainer's (storage/run_folder.py).

contracts/jobs.py keeps the record and the cancel flag, worker/leases.py the lease; both take the names from
here (docs/ARCHITECTURE.md, "The data folder").
"""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class JobFiles:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def record(self) -> Path:
        """The job record `job.json` (contracts/job_record.py)."""
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
