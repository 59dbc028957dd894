"""The lease: which worker may train a job right now.

A job runs only while its worker holds the lease file `runs/<job_id>/lease.json`, renewed by a heartbeat
thread every third of S2C_JOB_LEASE_SECONDS. The broker may deliver a job twice (a redelivery after Redis'
visibility timeout, a recovery re-enqueue racing a slow worker); the second delivery finds a live lease and
leaves. A worker that dies stops renewing, its lease expires, and the janitor gives the job to another worker.
A holder that could not renew in time considers itself lost and stops before anyone else can take over.
Clocks need not agree: a janitor judges expiry by watching the lease stop changing on its own monotonic
clock (LeaseWatch), then revokes it before re-queueing, and a revoked lease is dead for its holder too.
"""

import errno
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from contracts.job_files import JobFiles
from storage.atomic import write_atomically

# A holder gives up this share of the lease early, so it has stopped before the lease can be taken over.
SAFETY_SHARE = 0.2

logger = logging.getLogger("sketch2color.worker")


class LeaseLost(RuntimeError):
    """Our lease expired or was taken over: another worker may run the job now, so this one must stop."""


def read_lease(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads(JobFiles(run_dir).lease.read_text())
    except (OSError, ValueError):
        return None


def lease_is_live(lease: dict[str, Any] | None, now: float | None = None) -> bool:
    """By this machine's wall clock; a lease revoked by a janitor is never live."""
    if lease is None or lease.get("revoked"):
        return False
    return float(lease.get("expires_at", 0)) > (time.time() if now is None else now)


class LeaseWatch:
    """Judges expiry the clock-skew-safe way: by watching a lease stop changing, on this process's own
    monotonic clock. A lease whose `renewed_at` has not moved for longer than its length (both numbers come
    from the holder, so their difference is a duration, whatever the holder's clock says) has expired."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[Any, float]] = {}

    def expired(self, run_dir: Path, lease: dict[str, Any] | None) -> bool:
        if lease is None or lease.get("revoked"):
            return True
        key, now = str(run_dir), time.monotonic()
        stamp = lease.get("renewed_at")
        seen = self._seen.get(key)
        if seen is None or seen[0] != stamp:
            self._seen[key] = (stamp, now)
            return False
        length = float(lease.get("expires_at", 0)) - float(lease.get("renewed_at", 0))
        return now - seen[1] > length

    def forget(self, run_dir: Path) -> None:
        self._seen.pop(str(run_dir), None)


def revoke(run_dir: Path, observed: dict[str, Any] | None) -> bool:
    """Mark the lease dead for everyone (the fence against a holder whose clock disagrees), unless it changed
    since it was observed. True if the lease is now revoked or gone."""
    files = JobFiles(run_dir)
    with FileLock(str(files.lease_lock), timeout=30):
        current = read_lease(run_dir)
        if current is None or current.get("revoked"):
            return True
        if observed is None or current.get("renewed_at") != observed.get("renewed_at"):
            return False
        write_atomically(files.lease, json.dumps({**current, "revoked": True}))
        return True


class Lease:
    """One worker's claim on one job's run folder."""

    def __init__(self, run_dir: Path, owner: str, seconds: float):
        self.run_dir = Path(run_dir)
        self.owner = owner
        self.seconds = seconds
        self.valid_until = 0.0
        self.files = JobFiles(self.run_dir)
        self._lock = FileLock(str(self.files.lease_lock), timeout=30)

    def acquire(self) -> tuple[bool, dict[str, Any] | None]:
        """Take the lease unless another owner holds a live one. Returns (taken, the lease found before)."""
        with self._lock:
            previous = read_lease(self.run_dir)
            if previous is not None and lease_is_live(previous) and previous.get("owner") != self.owner:
                return False, previous
            self._write(acquired_at=time.time())
            return True, previous

    def renew(self) -> bool:
        """Extend our lease; False if it is no longer ours (expired, taken over, or removed).

        An expired lease stays lost even when nobody has taken it yet: the janitor may already have re-queued
        the job, and a late heartbeat must not let this worker train beside the next one.
        """
        with self._lock:
            current = read_lease(self.run_dir)
            if current is None or current.get("owner") != self.owner or current.get("revoked"):
                return False
            if time.monotonic() > self.valid_until + SAFETY_SHARE * self.seconds:
                return False  # too late by our own clock: the lease may be judged expired elsewhere
            self._write(acquired_at=current.get("acquired_at", time.time()))
            return True

    def release(self) -> None:
        with self._lock:
            current = read_lease(self.run_dir)
            if current is not None and current.get("owner") == self.owner:
                self.files.lease.unlink(missing_ok=True)
        self.valid_until = 0.0

    def check(self) -> None:
        """Raise LeaseLost once our lease is (almost) expired: called before every training step."""
        if time.monotonic() > self.valid_until:
            raise LeaseLost(f"lease of {self.run_dir.name} not renewed in time by {self.owner}")

    def _write(self, acquired_at: float) -> None:
        now = time.time()
        expires_at = now + self.seconds
        lease = {"owner": self.owner, "acquired_at": acquired_at, "renewed_at": now, "expires_at": expires_at}
        write_atomically(self.files.lease, json.dumps(lease))
        # Our own deadline runs on the monotonic clock, immune to this machine's wall-clock jumps.
        self.valid_until = time.monotonic() + (1 - SAFETY_SHARE) * self.seconds


class Heartbeat(threading.Thread):
    """Renews a lease every third of its length until stopped; notes when the lease was lost."""

    def __init__(self, lease: Lease):
        super().__init__(name=f"lease-heartbeat-{lease.run_dir.name[:8]}", daemon=True)
        self.lease = lease
        self.lost = threading.Event()
        self.disk_full: OSError | None = None  # renewing failed for lack of disk space
        self._stopped = threading.Event()

    def run(self) -> None:
        interval = self.lease.seconds / 3
        while not self._stopped.wait(interval):
            try:
                renewed = self.lease.renew()
                self.disk_full = None
            except OSError as error:
                if error.errno == errno.ENOSPC:
                    self.disk_full = error  # the job fails saying so, instead of losing its lease in silence
                logger.exception("could not renew the lease of job %s", self.lease.run_dir.name)
                continue
            except Exception:  # a slow lock must not kill the heartbeat: retry next beat
                logger.exception("could not renew the lease of job %s", self.lease.run_dir.name)
                continue
            if not renewed:
                logger.error("job %s: lease expired or taken over; stopping", self.lease.run_dir.name)
                self.lost.set()
                return

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=5)
