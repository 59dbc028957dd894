"""Shared mode: hosts that share nothing but Redis and an object store (docs/ARCHITECTURE.md, "Shared storage").

With S2C_STORAGE_URL=s3://bucket/prefix (and a Redis broker) the bucket holds the artifacts (datasets,
checkpoints, published versions) and Redis the coordination (job records, leases with fencing tokens, version
numbers, the serving policy, the publish lock). Each host's data folder is then only a cache. Without it
(the default) the data folder is shared and coordinated by file locks, as before; `shared_mode()` is None and
no code path changes.

The Redis keys, all under `s2c:` (the contract; docs/ARCHITECTURE.md lists them with the bucket layout):
  s2c:job:<id>             a job record (contracts/job_record.py's JSON), changed by WATCH/MULTI compare-and-set
  s2c:jobs                 sorted set of job ids by creation time
  s2c:job:<id>:cancel      present once a cancel was requested
  s2c:lease:<id>           the lease JSON, expiring on Redis' clock (PX); carries its fencing token
  s2c:lease:<id>:fence     the fencing token, incremented on every acquisition (never reused)
  s2c:versions:last        the last version number handed out (INCR: never reused)
  s2c:policy               the serving policy JSON, changed by compare-and-set
  s2c:lock:publish         redis-py's lock around a version's commit, a policy change, a deletion
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar, cast

import redis
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.object_store import ObjectStore

KEY_PREFIX = "s2c:"
DELETE = object()  # what a compare-and-set change returns to delete the key
KEEP = object()  # ... to leave it as it is
Result = TypeVar("Result")


class SharedModeMisconfigured(ValueError):
    pass


class StorageSettings(BaseSettings):
    """The settings that say where the data is: the base of contracts/settings.py's Settings (which adds the
    rest), declared here so that storage/ reads them without importing the layers above it."""

    model_config = SettingsConfigDict(env_prefix="S2C_", extra="ignore")

    data_dir: Path = Path("./data")
    broker_url: str | None = None
    # s3://bucket/prefix: artifacts in an object store and coordination in Redis, so hosts share no folder
    # (this module); the data folder is then each host's cache. Unset: the data folder is shared.
    storage_url: str | None = None
    s3_endpoint_url: str | None = None  # an S3-compatible server (MinIO); unset: AWS (credentials: AWS_*)


@dataclass(frozen=True)
class SharedMode:
    store: ObjectStore
    redis: redis.Redis
    data_dir: Path

    def relative(self, path: Path) -> str:
        """A path under the data folder as the bucket's relative key ("runs/<id>/checkpoints")."""
        return Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(self.data_dir))).as_posix()

    @staticmethod
    def key(*parts: str) -> str:
        return KEY_PREFIX + ":".join(parts)

    def get(self, key: str) -> bytes | None:
        return cast(bytes | None, self.redis.get(key))

    def now(self) -> float:
        """Redis' own clock, in seconds: what heartbeats of different hosts are dated and judged by, so that
        hosts whose clocks disagree never judge a live worker dead."""
        seconds, microseconds = cast(tuple[int, int], self.redis.time())
        return seconds + microseconds / 1e6

    def members(self, key: str) -> list[str]:
        """A sorted set's members, lowest score first."""
        return [member.decode() for member in cast(list[bytes], self.redis.zrange(key, 0, -1))]

    def compare_and_set(
        self, key: str, change: Callable[[bytes | None], tuple[Result, object]], expire_ms: int | None = None
    ) -> Result:
        """`change(stored)` returns (outcome, new value: text, DELETE or KEEP); the value is written (expiring
        after `expire_ms`) only if the key did not change since it was read (WATCH/MULTI), else `change` runs
        again on the newer value. Raising in `change` writes nothing."""
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    outcome, value = change(cast(bytes | None, pipe.get(key)))
                    pipe.multi()
                    if value is DELETE:
                        pipe.delete(key)
                    elif value is not KEEP:
                        pipe.set(key, value, px=expire_ms)  # type: ignore[arg-type]
                    pipe.execute()
                    return outcome
                except redis.WatchError:
                    continue  # another host wrote it between our read and our write


def shared_mode_for(settings: StorageSettings) -> SharedMode | None:
    if not settings.storage_url:
        return None
    broker = settings.broker_url or ""
    if not broker.startswith(("redis://", "rediss://", "unix://")):
        raise SharedModeMisconfigured(
            "S2C_STORAGE_URL needs a Redis broker (S2C_BROKER_URL=redis://...): Redis holds the job records, "
            "leases and version numbers the hosts share"
        )
    client = redis.Redis.from_url(
        broker, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30
    )
    return SharedMode(ObjectStore(settings.storage_url, settings.s3_endpoint_url), client, settings.data_dir)


@lru_cache
def shared_mode() -> SharedMode | None:
    """This process's shared mode, from its settings (S2C_* variables); None: the shared data folder."""
    return shared_mode_for(StorageSettings())
