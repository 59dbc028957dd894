"""Datasets and run folders in shared mode: the bucket's copy, pulled to and pushed from this host's data folder
(storage/shared.py).

A run folder's checkpoints go up into the attempt's own folder (named by its fencing token), and then the Redis
pointer `s2c:job:<id>:checkpoints` = {attempt, CheckpointManager's index text} is set, by a Lua script that
does so only for the holder of the newest token: a worker on another host that resumes the job pulls that
attempt's files the index names and restores the newest. The job system's own files (record, lease,
cancel flag) are never in the run folder in this mode: they live in Redis. No TensorFlow here.
"""

import json
import re
import shutil
from pathlib import Path

from storage.atomic import write_atomically
from storage.layout import IMAGE_SUFFIXES
from storage.shared import SharedMode

DATASET_COMPLETE = ".complete"  # written after every other file of a dataset
CHECKPOINTS = "checkpoints"
CHECKPOINT_INDEX = "checkpoints/checkpoint"
# KEYS: the run's checkpoint pointer, the lease's fencing counter; ARGV: the writer's token, the new pointer.
_POINT_IF_FENCED = """
if tonumber(redis.call('GET', KEYS[2])) ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


def push_dataset(shared: SharedMode, dataset_dir: Path, source: Path | None = None) -> int:
    """Make the bucket's copy of a dataset exactly `source`'s files (default: `dataset_dir`), its completion
    marker last: the marker goes first, so no host trains on it while it changes; files the bucket already has
    at the same size are not sent again, files the source lacks are removed. Returns the files sent."""
    folder = shared.relative(dataset_dir)
    shared.store.delete([f"{folder}/{DATASET_COMPLETE}"])
    source = source or dataset_dir
    sent = shared.store.upload_folder(source, folder, changed_only=True)
    present = {path.relative_to(source).as_posix() for path in source.rglob("*") if path.is_file()}
    extra = [
        remote.key
        for remote in shared.store.list_files(folder)
        if remote.key[len(folder) + 1 :] not in present
    ]
    shared.store.delete(extra)
    shared.store.put_bytes(f"{folder}/{DATASET_COMPLETE}", b"")
    return len(sent)


def pull_dataset(shared: SharedMode, dataset_dir: Path) -> int:
    """Make this host's copy of a dataset the bucket's: missing or changed files fetched, extra ones removed.
    Returns the files fetched."""
    folder = shared.relative(dataset_dir)
    fetched = shared.store.download_folder(folder, dataset_dir)
    wanted = {remote.key[len(folder) + 1 :] for remote in shared.store.list_files(folder)}
    for path in list(dataset_dir.rglob("*")) if dataset_dir.is_dir() else []:
        if path.is_file() and path.relative_to(dataset_dir).as_posix() not in wanted:
            path.unlink()
    return len(fetched)


def dataset_counts(shared: SharedMode, dataset_dir: Path) -> dict[str, int] | None:
    """The bucket's pair images per split, as storage/layout.py's pair_files counts them; None: no complete
    dataset (none, or one still being uploaded)."""
    root = shared.relative(dataset_dir)
    files = shared.store.list_files(root)
    if f"{root}/{DATASET_COMPLETE}" not in {remote.key for remote in files}:
        return None
    counts = {"train": 0, "val": 0}
    for remote in files:
        split, _, name = remote.key[len(root) + 1 :].partition("/")
        if split in counts and "/" not in name and not name.startswith("."):
            counts[split] += Path(name).suffix.lower() in IMAGE_SUFFIXES
    return counts


def remove_dataset(shared: SharedMode, dataset_dir: Path) -> None:
    """Its completion marker first (no host trains on it or lists it from then on), then its files."""
    root = shared.relative(dataset_dir)
    shared.store.delete([f"{root}/{DATASET_COMPLETE}"])
    shared.store.delete_folder(root)


def pull_first_pairs(shared: SharedMode, dataset_dir: Path, count: int) -> None:
    """The first `count` pairs of val/, then train/ (as a preview shows them), into this host's copy."""
    root = shared.relative(dataset_dir)
    wanted: list[str] = []
    for split in ("val", "train"):
        names = sorted(
            remote.key[len(root) + 1 :]
            for remote in shared.store.list_files(f"{root}/{split}")
            if Path(remote.key).suffix.lower() in IMAGE_SUFFIXES and not Path(remote.key).name.startswith(".")
        )
        wanted += names[: count - len(wanted)]
    shared.store.download_folder(root, dataset_dir, only=wanted)


def push_run(shared: SharedMode, run_dir: Path, fence: int) -> None:
    """Upload what the trainer wrote since the last push. Checkpoints go into this attempt's own folder
    `checkpoints/<fence>/`, its index last, and become the run's checkpoints only when Redis' pointer
    `s2c:job:<id>:checkpoints` is set to `fence`, which a Lua script does only while `fence` is the lease's
    newest token. A worker that lost its lease therefore never changes what the next one resumes from: it can
    only write into its own, abandoned folder. Raises PermissionError when the token is no longer the newest.
    """
    folder = shared.relative(run_dir)
    remote = {item.key[len(folder) + 1 :]: item.size for item in shared.store.list_files(folder)}
    local_checkpoints = run_dir / CHECKPOINTS
    for path in sorted(run_dir.rglob("*")):
        name = path.relative_to(run_dir).as_posix()
        if not path.is_file() or any(part.startswith(".") for part in name.split("/")):
            continue
        if name.startswith(f"{CHECKPOINTS}/"):
            if name == CHECKPOINT_INDEX:
                continue  # last, below
            name = f"{CHECKPOINTS}/{fence}/{path.relative_to(local_checkpoints).as_posix()}"
        if remote.get(name) == path.stat().st_size:
            continue  # a shard in our own folder, a sample grid: written once; metrics and logs only grow
        shared.store.upload_file(path, f"{folder}/{name}")
    index = run_dir / CHECKPOINT_INDEX
    if not index.is_file():
        return
    # The index itself goes into the pointer: a worker that lost the job may still write files into its
    # folder, never what the pointer says (nor any checkpoint it names: each step's files are written once).
    pointer = json.dumps({"attempt": fence, "index": index.read_text()})
    script = shared.redis.register_script(_POINT_IF_FENCED)
    if not script(keys=[checkpoints_key(run_dir.name), fence_key(run_dir.name)], args=[fence, pointer]):
        raise PermissionError(f"run {run_dir.name}: another worker holds it now (a newer fencing token)")
    named = indexed_checkpoints(index.read_bytes())
    shared.store.delete(f"{folder}/{name}" for name in remote if _stale(name, fence, named))


def _stale(name: str, fence: int, named: set[str]) -> bool:
    """A checkpoint file of an attempt before ours, or one CheckpointManager dropped from ours; a later
    attempt's folder (a successor may be writing there already) is never ours to delete."""
    parts = name.split("/")
    if parts[0] != CHECKPOINTS:
        return False
    if len(parts) < 3 or not parts[1].isdigit():
        return True
    attempt = int(parts[1])
    if attempt != fence:
        return attempt < fence
    return _checkpoint_of(name) not in named


def pull_run(shared: SharedMode, run_dir: Path) -> int:
    """Bring this host's copy of a run folder up to the bucket's: its outputs, and the checkpoints of the
    attempt Redis' pointer names (the index last, into this host's `checkpoints/`). Returns the files fetched."""
    folder = shared.relative(run_dir)
    outputs = [
        item.key[len(folder) + 1 :]
        for item in shared.store.list_files(folder)
        if not item.key[len(folder) + 1 :].startswith(f"{CHECKPOINTS}/")
    ]
    fetched = shared.store.download_folder(folder, run_dir, only=outputs)
    # The pointer is the truth: whatever checkpoints this host kept may be a fenced-off attempt's.
    shutil.rmtree(run_dir / CHECKPOINTS, ignore_errors=True)
    stored = shared.get(checkpoints_key(run_dir.name))
    if stored is None:
        return len(fetched)
    pointer = json.loads(stored)
    attempt = f"{folder}/{CHECKPOINTS}/{int(pointer['attempt'])}"
    named = indexed_checkpoints(pointer["index"].encode())
    shards = [item.key[len(attempt) + 1 :] for item in shared.store.list_files(attempt)]
    fetched += shared.store.download_folder(
        attempt, run_dir / CHECKPOINTS, only=[name for name in shards if _checkpoint_of(name) in named]
    )
    write_atomically(run_dir / CHECKPOINT_INDEX, pointer["index"])
    return len(fetched) + 1


def checkpoints_key(job_id: str) -> str:
    return SharedMode.key("job", job_id, "checkpoints")


def fence_key(job_id: str) -> str:
    """The lease's fencing counter (worker/leases.py increments it)."""
    return SharedMode.key("lease", job_id, "fence")


def indexed_checkpoints(index: bytes | None) -> set[str]:
    """The checkpoint names ("ckpt-1000") a CheckpointManager `checkpoint` index lists."""
    text = index.decode(errors="replace") if index else ""
    return {Path(path).name for path in re.findall(r'checkpoint_paths?:\s*"([^"]+)"', text)}


def _checkpoint_of(name: str) -> str:
    """checkpoints/ckpt-1000.data-00000-of-00001 -> ckpt-1000"""
    return Path(name).name.split(".", 1)[0]


def pull_run_outputs(shared: SharedMode, run_dir: Path) -> None:
    """What the API shows of a run trained on another host: its metrics and sample grids. A local file at
    least as long as the bucket's is kept: on a host that also trains the run, it is the newer one."""
    folder = shared.relative(run_dir)
    for item in shared.store.list_files(folder):
        name = item.key[len(folder) + 1 :]
        if name != "metrics.jsonl" and not name.startswith("samples/"):
            continue
        local = run_dir / name
        if not local.is_file() or local.stat().st_size < item.size:
            shared.store.download_file(item.key, local)
