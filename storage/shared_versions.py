"""Published versions in shared mode: the bucket's `models/generator/<n>/` is the truth, each host's
`<models_dir>/generator/<n>/` a verified copy (storage/shared.py).

A version is uploaded file by file with its `manifest.json` last: a host that sees the manifest finds every
other file already there (S3 reads after writes are consistent). Numbers come from Redis' INCR, so two hosts
publishing at once never share one, and never below what the bucket already holds (Redis may have lost its
data). No TensorFlow here: the API's poller and the CLI use it.
"""

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from botocore.exceptions import ClientError

from storage.shared import KEEP, SharedMode
from storage.versions import MANIFEST, ModelsDir, generator_dir, is_complete, numbered_versions

logger = logging.getLogger("sketch2color.storage")
COUNTER_OBJECT = ".last_version"  # the bucket's copy of the last number, should Redis lose its data
FROM_BUCKET = ".from-bucket"  # in a local copy: it mirrors the bucket (only such copies are ever removed)
LOCK_EXPIRES_SECONDS = 600  # a publisher that died holding the publish lock frees it after this long


def _remote_folder(shared: SharedMode, models_dir: ModelsDir) -> str:
    return shared.relative(generator_dir(models_dir))


@contextmanager
def shared_publish_lock(shared: SharedMode, models_dir: ModelsDir, wait_seconds: float) -> Iterator[Path]:
    """The publish lock in Redis (redis-py's Lock), with this host's copy brought up to date with the bucket
    inside it, so what the holder checks (the versions, the policy) is what every host sees."""
    lock = shared.redis.lock(
        shared.key("lock", "publish"), timeout=LOCK_EXPIRES_SECONDS, blocking_timeout=wait_seconds
    )
    if not lock.acquire():
        raise TimeoutError(f"the publish lock in Redis was not free within {wait_seconds:.0f} s")
    try:
        sync_versions(shared, models_dir)
        yield generator_dir(models_dir)
    finally:
        try:
            lock.release()
        except Exception:  # expired meanwhile (a very slow holder): nothing left to release
            logger.warning("the publish lock had expired before it was released")


def next_version_number(shared: SharedMode, models_dir: ModelsDir) -> int:
    """A number never handed out before, by any host."""
    folder = _remote_folder(shared, models_dir)
    numbers = [int(name) for name in shared.store.subfolders(folder) if name.isdigit()]
    recorded = shared.store.get_bytes(f"{folder}/{COUNTER_OBJECT}")
    local = generator_dir(models_dir)  # this host's versions from before shared mode count too
    here = (local / COUNTER_OBJECT).read_text().strip() if (local / COUNTER_OBJECT).is_file() else ""
    floor = max([0, *numbers, int(recorded or 0), *numbered_versions(local), int(here or 0)])
    key = shared.key("versions", "last")
    # Redis without the counter (a new or restored server) starts from what the bucket holds.
    shared.compare_and_set(key, lambda stored: (None, floor if int(stored or 0) < floor else KEEP))
    return int(shared.redis.incr(key))


def upload_version(shared: SharedMode, staging: Path, models_dir: ModelsDir, version: int) -> None:
    """Every file of the version but its manifest (it stays invisible until `commit_version`)."""
    shared.store.upload_folder(staging, f"{_remote_folder(shared, models_dir)}/{version}", skip=[MANIFEST])


def commit_version(shared: SharedMode, staging: Path, models_dir: ModelsDir, version: int) -> None:
    """The manifest, last: from now on every host sees the version. Called under the publish lock."""
    folder = _remote_folder(shared, models_dir)
    shared.store.upload_file(staging / MANIFEST, f"{folder}/{version}/{MANIFEST}")
    recorded = int(shared.store.get_bytes(f"{folder}/{COUNTER_OBJECT}") or 0)
    shared.store.put_bytes(f"{folder}/{COUNTER_OBJECT}", str(max(recorded, version)).encode())
    (staging / FROM_BUCKET).touch()


def place_version(staging: Path, target: Path) -> None:
    """Rename a complete copy into place; another process of this host may have copied it first (fine)."""
    try:
        os.rename(staging, target)
    except OSError:
        if not is_complete(target):
            raise
        if not (target / FROM_BUCKET).is_file():
            raise FileExistsError(
                f"{target} holds another model of that number, from before shared mode"
            ) from None
        shutil.rmtree(staging, ignore_errors=True)


def remove_version(shared: SharedMode, models_dir: ModelsDir, version: int) -> None:
    """The manifest first (the version disappears for every host at once), then its other files."""
    folder = f"{_remote_folder(shared, models_dir)}/{version}"
    shared.store.delete([f"{folder}/{MANIFEST}"])
    shared.store.delete_folder(folder)


def sync_versions(shared: SharedMode, models_dir: ModelsDir) -> list[int]:
    """Copy the bucket's complete versions this host lacks (each verified, then renamed into place) and drop
    local ones the bucket no longer has. Returns the numbers downloaded."""
    folder = _remote_folder(shared, models_dir)
    local = generator_dir(models_dir)
    remote_files: dict[int, dict[str, int]] = {}
    for remote in shared.store.list_files(folder):
        folder_name, _, name = remote.key[len(folder) + 1 :].partition("/")
        if folder_name.isdigit() and name:
            remote_files.setdefault(int(folder_name), {})[name] = remote.size
    complete = {number: files for number, files in remote_files.items() if MANIFEST in files}
    fetched = []
    for number, files in sorted(complete.items()):
        if is_complete(local / str(number)):
            continue
        try:
            _download_version(shared, f"{folder}/{number}", files, local, number)
        except ClientError as error:  # deleted on another host while we copied it: gone, nothing to copy
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                raise
            logger.info("version %d went from the bucket while it was being copied", number)
            continue
        fetched.append(number)
    for number in set(numbered_versions(local)) - set(complete):
        copy = local / str(number)
        if not (copy / FROM_BUCKET).is_file():
            logger.warning(
                "version %d is in this host's models folder but not in the bucket: not shared", number
            )
            continue
        if shared.store.get_bytes(f"{folder}/{number}/{MANIFEST}") is not None:
            continue  # committed after our listing
        doomed = local / f".deleting-{number}-{uuid.uuid4().hex}"
        try:
            os.rename(copy, doomed)  # deleted on another host
        except FileNotFoundError:
            continue  # removed here meanwhile
        shutil.rmtree(doomed, ignore_errors=True)
    return fetched


def _download_version(
    shared: SharedMode, remote: str, files: dict[str, int], local: Path, number: int
) -> None:
    staging = local / f".tmp-{uuid.uuid4().hex}"
    try:
        for name in sorted(files):
            shared.store.download_file(f"{remote}/{name}", staging / name)
        for name, size in files.items():
            if (staging / name).stat().st_size != size:
                raise OSError(f"version {number}: {name} came down at another size than the bucket lists")
        (staging / FROM_BUCKET).touch()
        target = local / str(number)
        if target.exists() and not is_complete(target):  # an incomplete leftover of an earlier try
            shutil.rmtree(target)
        place_version(staging, target)
        logger.info("version %d copied from the bucket", number)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
