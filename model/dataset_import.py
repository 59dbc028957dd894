"""Turning an uploaded zip archive (or a folder) into a pair dataset, safely. No TensorFlow in the checks.

Two steps. `inspect_archive` reads only the archive's directory, fast enough to answer the upload at once:
it refuses path traversal (`../`, absolute paths), symbolic links, nested archives, files that are not
images, duplicate names, and zip bombs (too many files, too many bytes, absurd compression ratios), saying
which entry and why. `import_archive` then decodes every image (Pillow's pixel guard first), checks pairs or
makes them from pictures with the project's XDoG sketch extraction, and writes the pair layout into a staging
folder; bytes are counted while they are read, so an entry that lies about its size is caught too.
"""

import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from PIL import Image

from model.imageio import BadImage, ImageTooLarge, open_image, to_rgb
from model.sketchify import SOURCE_SUFFIXES, center_square, sketchify
from model.synthetic import PAIR_HEIGHT, make_pair_image
from model.zip_safety import BadArchive, NotAZipArchive, checked_entries, compression_problem

__all__ = [
    "BadArchive",
    "ImportLimits",
    "ImportOptions",
    "NotAZipArchive",
    "import_archive",
    "inspect_archive",
    "zip_folder",
]

ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst")
UNPACK_CHUNK = 1 << 20
Kind = Literal["pairs", "pictures"]


# How POST /datasets names the choice of plain pictures; the CLI says it in its own words (--from-pictures).
PICTURES_HINT = "for plain pictures use kind=pictures"


@dataclass(frozen=True)
class ImportLimits:
    max_files: int = 50_000
    max_unpacked_bytes: int = 16 * 1024**3
    max_pixels: int = 40_000_000


@dataclass(frozen=True)
class ImportOptions:
    kind: Kind = "pairs"
    sketch_side: Literal["right", "left"] = "right"
    val_fraction: float = 0.05
    seed: int = 0
    oversize: Literal["skip", "fail"] = "skip"
    size: int = PAIR_HEIGHT  # pictures: the side of each half of a made pair


@dataclass
class ArchivePlan:
    """Which entry goes to which split (None: split by the seed), checked but not yet decoded."""

    entries: list[tuple[zipfile.ZipInfo, str | None]]
    unpacked_bytes: int


@dataclass
class ImportReport:
    counts: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0})
    skipped: list[str] = field(default_factory=list)


def inspect_archive(archive: Path, limits: ImportLimits) -> ArchivePlan:
    """Check the archive's directory; raise BadArchive naming the first problem."""
    infos = checked_entries(archive, limits.max_files, "S2C_MAX_DATASET_FILES")
    files = []
    for info in infos:
        name = info.filename
        path = PurePosixPath(name)
        suffix = path.suffix.lower()
        if suffix in ARCHIVE_SUFFIXES:
            raise BadArchive(f"{name!r}: archives inside the archive are not allowed; unpack it first")
        if suffix not in SOURCE_SUFFIXES:
            raise BadArchive(f"{name!r}: not an image (accepted: {', '.join(SOURCE_SUFFIXES)})")
        if (bomb := compression_problem(info)) is not None:
            raise BadArchive(bomb)
        files.append(info)
    if not files:
        raise BadArchive("the archive holds no images")
    if len(files) > limits.max_files:
        raise BadArchive(f"{len(files)} files, over the limit of {limits.max_files} (S2C_MAX_DATASET_FILES)")
    unpacked = sum(info.file_size for info in files)
    if unpacked > limits.max_unpacked_bytes:
        raise BadArchive(
            f"{unpacked} bytes unpacked, over the limit of {limits.max_unpacked_bytes} "
            "(S2C_MAX_DATASET_UNPACKED_BYTES): a zip bomb, or split it"
        )
    return ArchivePlan(_splits(files), unpacked)


def _splits(files: list[zipfile.ZipInfo]) -> list[tuple[zipfile.ZipInfo, str | None]]:
    """`train/` and `val/` folders (at the top or under one folder) decide the split; else none is given."""
    planned: list[tuple[zipfile.ZipInfo, str | None]] = []
    seen: dict[tuple[str | None, str], str] = {}
    for info in files:
        parts = PurePosixPath(info.filename).parts
        split = next((part for part in parts[:-1] if part in ("train", "val")), None)
        key = (split, PurePosixPath(parts[-1]).stem.lower())
        if key in seen:
            raise BadArchive(f"{info.filename!r} and {seen[key]!r} have the same name; names must be unique")
        seen[key] = info.filename
        planned.append((info, split))
    splits = {split for _, split in planned}
    if None in splits and len(splits) > 1:
        raise BadArchive("some images are in train/ or val/ and some are not: use both folders, or neither")
    if splits and None not in splits and splits != {"train", "val"}:
        raise BadArchive(
            f"found only {', '.join(sorted(s for s in splits if s))}/: give both train/ and val/"
        )
    return planned


def import_archive(
    archive: Path,
    staging: Path,
    options: ImportOptions,
    limits: ImportLimits,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Write the archive's pairs into `staging/{train,val}`; raise BadArchive (which file, why) on failure."""
    plan = inspect_archive(archive, limits)
    entries = _assign_splits(plan.entries, options)
    report = ImportReport()
    budget = limits.max_unpacked_bytes
    spool = staging / ".entry"  # one entry at a time on disk: Pillow reads its header and pixels from there
    try:
        with zipfile.ZipFile(archive) as zipped:
            for done, (info, split) in enumerate(entries, start=1):
                budget -= _unpack_entry(zipped, info, spool, min(budget, info.file_size))
                if _import_one(spool, info.filename, staging / split, options, limits, report):
                    report.counts[split] += 1
                if progress is not None:
                    progress(done, len(entries))
    finally:
        spool.unlink(missing_ok=True)
    if not report.counts.get("train") or not report.counts.get("val"):
        raise BadArchive(f"too few usable images: {report.counts} (need pairs in both train and val)")
    return report


def _unpack_entry(zipped: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, allowed: int) -> int:
    """Copy one entry to `path` in chunks, never more than `allowed` bytes (memory stays one chunk, however
    large the entry); its size. More bytes than its header says, or than the budget left, is a zip bomb."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zipped.open(info) as source, open(path, "wb") as target:
        while chunk := source.read(min(UNPACK_CHUNK, allowed - written + 1)):
            written += len(chunk)
            if written > allowed:
                raise BadArchive(f"{info.filename!r}: more bytes than its header says (a zip bomb)")
            target.write(chunk)
    return written


def _assign_splits(entries, options: ImportOptions) -> list[tuple[zipfile.ZipInfo, str]]:
    if all(split is not None for _, split in entries):
        return [(info, split) for info, split in entries]
    ordered = sorted((info for info, _ in entries), key=lambda info: info.filename)
    random.Random(options.seed).shuffle(ordered)
    val_count = min(len(ordered) - 1, max(1, round(len(ordered) * options.val_fraction)))
    if val_count < 1:
        raise BadArchive("need at least 2 images: one for train, one for val")
    return [(info, "val" if index < val_count else "train") for index, info in enumerate(ordered)]


def _import_one(data: Path, name: str, folder: Path, options, limits, report: ImportReport) -> bool:
    """Write one pair; False when the image was skipped (over the pixel limit, with oversize=skip)."""
    try:
        image = to_rgb(open_image(data, max_pixels=limits.max_pixels))
    except ImageTooLarge as error:
        if options.oversize == "fail":
            raise BadArchive(f"{name!r}: {error}") from None
        report.skipped.append(name)
        return False
    except BadImage as error:
        raise BadArchive(f"{name!r}: {error}") from None
    if options.kind == "pictures":
        color = center_square(image, options.size)
        pair = make_pair_image(color, sketchify(color))
    else:
        width, height = image.size
        if width != 2 * height:
            raise BadArchive(
                f"{name!r}: {width}x{height} is not a pair (twice as wide as tall: color left, sketch right); "
                + PICTURES_HINT
            )
        pair = image if options.sketch_side == "right" else _swap_halves(image)
    folder.mkdir(parents=True, exist_ok=True)
    pair.save(folder / f"{PurePosixPath(name).stem}.png", format="PNG")
    return True


def _swap_halves(image: Image.Image) -> Image.Image:
    half = image.width // 2
    return make_pair_image(
        image.crop((half, 0, image.width, image.height)), image.crop((0, 0, half, image.height))
    )


def zip_folder(folder: Path, archive: Path) -> Path:
    """Pack a folder of images (or of train/ and val/) the way an upload arrives, for the CLI's import."""
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(folder).as_posix())
    return archive
