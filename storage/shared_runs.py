"""Datasets and run folders in shared mode: the bucket's copy, pulled to and pushed from this host's data folder
(storage/shared.py).

A run folder's checkpoints go up with CheckpointManager's `checkpoint` index last, so the index in the bucket
only ever names checkpoints whose files are all there: a worker on another host that resumes the job pulls
the folder and restores the newest checkpoint the index names. The job system's own files (record, lease,
cancel flag) never travel: they live in Redis in this mode. No TensorFlow here.
"""

from pathlib import Path

from contracts.job_files import JobFiles
from storage.layout import IMAGE_SUFFIXES
from storage.run_folder import RunFolder
from storage.shared import SharedMode

CHECKPOINT_INDEX = "checkpoints/checkpoint"


def push_dataset(shared: SharedMode, dataset_dir: Path, source: Path | None = None) -> int:
    """Upload a dataset folder (`source`: its files from elsewhere, an import's staging folder) as
    `dataset_dir`; files the bucket already has at the same size are skipped. Returns the files sent."""
    folder = shared.relative(dataset_dir)
    return len(shared.store.upload_folder(source or dataset_dir, folder, changed_only=True))


def pull_dataset(shared: SharedMode, dataset_dir: Path) -> int:
    """Bring this host's copy of a dataset up to the bucket's; files fetched."""
    return len(shared.store.download_folder(shared.relative(dataset_dir), dataset_dir))


def dataset_counts(shared: SharedMode, dataset_dir: Path) -> dict[str, int] | None:
    """The bucket's pair images per split, as storage/layout.py's pair_files counts them; None: no dataset."""
    files = shared.store.list_files(shared.relative(dataset_dir))
    if not files:
        return None
    counts = {"train": 0, "val": 0}
    root = shared.relative(dataset_dir)
    for remote in files:
        split, _, name = remote.key[len(root) + 1 :].partition("/")
        if split in counts and "/" not in name and not name.startswith("."):
            counts[split] += Path(name).suffix.lower() in IMAGE_SUFFIXES
    return counts


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


def _job_system_files(run_dir: Path) -> list[str]:
    files = JobFiles(run_dir)
    return [path.relative_to(run_dir).as_posix() for path in (files.record, files.lease, files.cancel_flag)]


def push_run(shared: SharedMode, run_dir: Path) -> None:
    """Upload what the trainer wrote since the last push, the checkpoint index last; then remove the bucket's
    checkpoints CheckpointManager has deleted here (older than the ones it keeps)."""
    folder = shared.relative(run_dir)
    shared.store.upload_folder(
        run_dir, folder, last=[CHECKPOINT_INDEX], skip=_job_system_files(run_dir), changed_only=True
    )
    checkpoints = RunFolder(run_dir).checkpoints
    kept = {path.name for path in checkpoints.iterdir()} if checkpoints.is_dir() else set()
    stale = [
        remote.key
        for remote in shared.store.list_files(f"{folder}/checkpoints")
        if remote.key.rsplit("/", 1)[-1] not in kept
    ]
    shared.store.delete(stale)


def pull_run(shared: SharedMode, run_dir: Path) -> int:
    """Bring this host's copy of a run folder up to the bucket's (the checkpoint index last); files fetched."""
    folder = shared.relative(run_dir)
    remote = {item.key[len(folder) + 1 :] for item in shared.store.list_files(folder)}
    first = sorted(remote - {CHECKPOINT_INDEX, *_job_system_files(run_dir)})
    fetched = shared.store.download_folder(folder, run_dir, only=first)
    if CHECKPOINT_INDEX in remote:
        shared.store.download_file(f"{folder}/{CHECKPOINT_INDEX}", run_dir / CHECKPOINT_INDEX)
        fetched.append(CHECKPOINT_INDEX)
    return len(fetched)


def pull_run_outputs(shared: SharedMode, run_dir: Path) -> None:
    """What the API shows of a run trained on another host: its metrics and sample grids."""
    folder = shared.relative(run_dir)
    outputs = [
        item.key[len(folder) + 1 :]
        for item in shared.store.list_files(folder)
        if item.key.endswith("/metrics.jsonl") or "/samples/" in item.key
    ]
    shared.store.download_folder(folder, run_dir, only=outputs)
