"""The lease: which worker may train a job right now.

A job runs only while its worker holds the lease file `runs/<job_id>/lease.json`, renewed by a heartbeat
thread every third of S2C_JOB_LEASE_SECONDS. The broker may deliver a job twice (a redelivery after Redis'
visibility timeout, a recovery re-enqueue racing a slow worker); the second delivery finds a live lease and
leaves. A worker that dies stops renewing, its lease expires, and the janitor gives the job to another worker.
A holder that could not renew in time considers itself lost and stops before anyone else can take over.
Clocks need not agree: a janitor judges expiry by watching the lease stop changing on its own monotonic
clock (LeaseWatch), then revokes it before re-queueing, and a revoked lease is dead for its holder too.

In shared mode (storage/shared.py) the lease is the Redis key `s2c:lease:<job_id>`, expiring on Redis' one
clock, and each acquisition takes a new fencing token (`s2c:lease:<job_id>:fence`, INCR): a holder writes to
the bucket only while the token is still its own (`Lease.still_fenced`), so a host that lost its lease (paused,
partitioned) cannot overwrite what its successor wrote.
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
from storage.shared import DELETE, KEEP, SharedMode, shared_mode
from storage.shared_runs import fence_key

# A holder gives up this share of the lease early, so it has stopped before the lease can be taken over.
SAFETY_SHARE = 0.2

logger = logging.getLogger("sketch2color.worker")


class LeaseLost(RuntimeError):
    """Our lease expired or was taken over: another worker may run the job now, so this one must stop."""


def read_lease(run_dir: Path) -> dict[str, Any] | None:
    try:
        shared = shared_mode()
        if shared is not None:
            stored = shared.get(_lease_key(run_dir))
            return None if stored is None else json.loads(stored)
        return json.loads(JobFiles(run_dir).lease.read_text())
    except (OSError, ValueError):
        return None


def _lease_key(run_dir: Path) -> str:
    return SharedMode.key("lease", Path(run_dir).name)


def _fence_key(run_dir: Path) -> str:
    return fence_key(Path(run_dir).name)


def lease_is_live(lease: dict[str, Any] | None, now: float | None = None) -> bool:
    """By this machine's wall clock; a lease revoked by a janitor is never live. In shared mode a lease that
    is there at all is live: Redis removes it when it expires, by its one clock."""
    if lease is None or lease.get("revoked"):
        return False
    if shared_mode() is not None:
        return True
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
    shared = shared_mode()
    if shared is not None:

        def revoke_unchanged(stored: bytes | None) -> tuple[bool, object]:
            current = None if stored is None else json.loads(stored)
            if current is None or current.get("revoked"):
                return True, DELETE
            if observed is None or current.get("renewed_at") != observed.get("renewed_at"):
                return False, KEEP
            return True, DELETE

        return shared.compare_and_set(_lease_key(run_dir), revoke_unchanged)
    files = JobFiles(run_dir)
    with FileLock(str(files.lease_lock), timeout=30):
        current = read_lease(run_dir)
        if current is None or current.get("revoked"):
            return True
        if observed is None or current.get("renewed_at") != observed.get("renewed_at"):
            return False
        write_atomically(files.lease, json.dumps({**current, "revoked": True}))
        return True


# KEYS: the lease, its fencing counter; ARGV: owner, the lease JSON (without its token), milliseconds to live.
# Returns {0, the holder's lease} when another owner holds it, else {the new token, the lease found before}.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['owner'] ~= ARGV[1] then return {0, current} end
local fence = redis.call('INCR', KEYS[2])
local lease = cjson.decode(ARGV[2])
lease['fence'] = fence
redis.call('SET', KEYS[1], cjson.encode(lease), 'PX', ARGV[3])
return {fence, current or false}
"""


class Lease:
    """One worker's claim on one job's run folder."""

    def __init__(self, run_dir: Path, owner: str, seconds: float):
        self.run_dir = Path(run_dir)
        self.owner = owner
        self.seconds = seconds
        self.valid_until = 0.0
        self.fence: int | None = None  # shared mode: this acquisition's fencing token
        self.files = JobFiles(self.run_dir)
        self._lock = FileLock(str(self.files.lease_lock), timeout=30)
        self.shared = shared_mode()

    def acquire(self) -> tuple[bool, dict[str, Any] | None]:
        """Take the lease unless another owner holds a live one. Returns (taken, the lease found before)."""
        if self.shared is not None:
            return self._acquire_shared(self.shared)
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
        if self.shared is not None:
            return self._renew_shared(self.shared)
        with self._lock:
            current = read_lease(self.run_dir)
            if current is None or current.get("owner") != self.owner or current.get("revoked"):
                return False
            if time.monotonic() > self.valid_until + SAFETY_SHARE * self.seconds:
                return False  # too late by our own clock: the lease may be judged expired elsewhere
            self._write(acquired_at=current.get("acquired_at", time.time()))
            return True

    def release(self) -> None:
        if self.shared is not None:
            self.shared.compare_and_set(
                _lease_key(self.run_dir), lambda stored: (None, DELETE if self._ours(stored) else KEEP)
            )
        else:
            with self._lock:
                current = read_lease(self.run_dir)
                if current is not None and current.get("owner") == self.owner:
                    self.files.lease.unlink(missing_ok=True)
        self.valid_until = 0.0

    def check(self) -> None:
        """Raise LeaseLost once our lease is (almost) expired: called before every training step."""
        if time.monotonic() > self.valid_until:
            raise LeaseLost(f"lease of {self.run_dir.name} not renewed in time by {self.owner}")

    def still_fenced(self) -> bool:
        """Shared mode: whether our fencing token is still the newest, checked right before a write to the
        bucket; always True with a shared folder (the file lease and `check` do the fencing there)."""
        if self.shared is None:
            return True
        newest = self.shared.get(_fence_key(self.run_dir))
        return newest is not None and int(newest) == self.fence

    def _lease_json(self, acquired_at: float) -> str:
        now = time.time()
        lease = {
            "owner": self.owner,
            "acquired_at": acquired_at,
            "renewed_at": now,
            "expires_at": now + self.seconds,
        }
        if self.fence is not None:
            lease["fence"] = self.fence
        return json.dumps(lease)

    def _write(self, acquired_at: float) -> None:
        write_atomically(self.files.lease, self._lease_json(acquired_at))
        self._started_valid_period()

    def _started_valid_period(self) -> None:
        # Our own deadline runs on the monotonic clock, immune to this machine's wall-clock jumps.
        self.valid_until = time.monotonic() + (1 - SAFETY_SHARE) * self.seconds

    # ---- shared mode: the lease in Redis, expiring on Redis' clock -----------------------------------------
    def _ours(self, stored: bytes | None) -> bool:
        current = None if stored is None else json.loads(stored)
        return (
            current is not None and current.get("owner") == self.owner and current.get("fence") == self.fence
        )

    def _acquire_shared(self, shared: SharedMode) -> tuple[bool, dict[str, Any] | None]:
        """One Lua script: check the holder, take the next fencing token, write the lease. A delivery that
        loses the race takes no token, so the winner's token stays the newest."""
        started = time.monotonic()
        script = shared.redis.register_script(_ACQUIRE)
        keys = [_lease_key(self.run_dir), _fence_key(self.run_dir)]
        fence, previous = script(
            keys=keys, args=[self.owner, self._lease_json(time.time()), self._expire_ms()]
        )
        previous_lease = json.loads(previous) if previous else None
        if int(fence) == 0:
            return False, previous_lease
        self.fence = int(fence)
        self.valid_until = started + (1 - SAFETY_SHARE) * self.seconds
        return True, previous_lease

    def _renew_shared(self, shared: SharedMode) -> bool:
        started = time.monotonic()
        if started > self.valid_until + SAFETY_SHARE * self.seconds:
            return False  # too late by our own clock: Redis may have expired it already

        def extend(stored: bytes | None) -> tuple[bool, object]:
            if not self._ours(stored):
                return False, KEEP
            return True, self._lease_json(
                acquired_at=json.loads(stored or b"{}").get("acquired_at", time.time())
            )

        renewed = shared.compare_and_set(_lease_key(self.run_dir), extend, expire_ms=self._expire_ms())
        if renewed:
            self.valid_until = started + (1 - SAFETY_SHARE) * self.seconds
        return renewed

    def _expire_ms(self) -> int:
        return max(1, int(self.seconds * 1000))


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
