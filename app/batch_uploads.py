"""A chapter's upload turned into stored pages: a zip of pages, or several uploaded files, each page optionally
with its hint layer beside it (`NAME.hints.png` next to `NAME.png`).

A zip's directory is checked before a byte is unpacked, as a dataset's is (model/zip_safety.py: traversal,
links, encryption, too many entries, bombs); entries are then copied one at a time, counted as they are read,
so an entry that lies about its size is caught. A file that is not an image does not refuse the upload: it
becomes a failed page, named, with the reason (a bad page fails alone). Pages are stored by index under
`pages/`, never under a name a client chose.
"""

import shutil
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from contracts.batches import Page, PageFailure
from model.zip_safety import BadArchive, checked_entries, compression_problem, ignored

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
HINTS_SUFFIX = ".hints.png"
COPY_CHUNK = 1 << 20


class OverBudget(Exception):
    """The pages would take more disk than the batches' budget has left (S2C_BATCH_DISK_BUDGET_BYTES)."""


@dataclass
class StoredPages:
    pages: list[Page] = field(default_factory=list)
    refused: list[PageFailure] = field(default_factory=list)
    stored_bytes: int = 0


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its name as the client gave it, and how to read it."""

    name: str
    size: int
    open: "OpenEntry"


class OpenEntry:
    def __init__(self, source: zipfile.ZipFile | BinaryIO, info: zipfile.ZipInfo | None = None):
        self.source, self.info = source, info

    def __call__(self) -> BinaryIO:
        if isinstance(self.source, zipfile.ZipFile):
            assert self.info is not None
            return self.source.open(self.info)  # type: ignore[return-value]
        self.source.seek(0)
        return self.source


def zip_uploads(zipped: zipfile.ZipFile, archive: Path, max_pages: int) -> list[Upload]:
    """The zip's files after its directory's checks (BadArchive names the first problem)."""
    infos = checked_entries(archive, 2 * max_pages, "S2C_MAX_BATCH_PAGES")
    for info in infos:
        if (bomb := compression_problem(info)) is not None:
            raise BadArchive(bomb)
    by_name = {info.filename: info for info in zipped.infolist()}
    return [
        Upload(info.filename, info.file_size, OpenEntry(zipped, by_name[info.filename])) for info in infos
    ]


def file_uploads(files: Iterable[tuple[str, int, BinaryIO]]) -> list[Upload]:
    """Uploaded files by their base names (a browser may send a folder's path; no path is ever used)."""
    uploads = []
    for name, size, stream in files:
        base = PurePosixPath(name.replace("\\", "/")).name
        if not base or ignored(PurePosixPath(base)):
            continue
        uploads.append(Upload(base, size, OpenEntry(stream)))
    return uploads


def store_pages(uploads: list[Upload], pages_folder: Path, max_pages: int, budget_left: int) -> StoredPages:
    """Copy the pages and their hint layers under `pages_folder`; not-images become refused pages."""
    pages_folder.mkdir(parents=True, exist_ok=True)
    names = {upload.name for upload in uploads}
    if len(names) != len(uploads):
        raise BadArchive("two files have the same name; names must be unique")
    hints = {upload.name[: -len(HINTS_SUFFIX)]: upload for upload in uploads if _is_hints(upload.name)}
    stems = {
        str(PurePosixPath(upload.name).with_suffix("")) for upload in uploads if not _is_hints(upload.name)
    }
    stored = StoredPages()
    for stem, layer in sorted(hints.items()):
        if stem not in stems:
            stored.refused.append(
                PageFailure(name=layer.name, reason=f"a hint layer without its page {stem}.png")
            )
    candidates = sorted((upload for upload in uploads if not _is_hints(upload.name)), key=lambda u: u.name)
    total = len(candidates) + len(stored.refused)
    if total > max_pages:
        raise BadArchive(f"{total} pages, over the limit of {max_pages} (S2C_MAX_BATCH_PAGES)")
    declared = sum(upload.size for upload in uploads)
    if declared > budget_left:
        raise OverBudget(f"the pages unpack to {declared} bytes, more than the {budget_left} left")
    for upload in candidates:
        index = len(stored.pages) + len(stored.refused)
        suffix = PurePosixPath(upload.name).suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            reason = (
                f"not an image (accepted: {', '.join(IMAGE_SUFFIXES)}; hint layers as NAME{HINTS_SUFFIX})"
            )
            stored.refused.append(PageFailure(name=upload.name, reason=reason))
            continue
        page_file = f"{index:05d}{suffix}"
        stored.stored_bytes += _copy(upload, pages_folder / page_file)
        page = Page(index=index, name=upload.name, file=page_file)
        hint_layer = hints.get(str(PurePosixPath(upload.name).with_suffix("")))
        if hint_layer is not None:
            page.hints = f"{index:05d}{HINTS_SUFFIX}"
            stored.stored_bytes += _copy(hint_layer, pages_folder / page.hints)
        stored.pages.append(page)
    if not stored.pages:
        raise BadArchive(
            f"no pages: send images ({', '.join(IMAGE_SUFFIXES)}), in a zip or as `files` fields"
        )
    return stored


def _is_hints(name: str) -> bool:
    return name.lower().endswith(HINTS_SUFFIX)


def _copy(upload: Upload, destination: Path) -> int:
    """Copy at most the declared size: an entry that holds more than its directory says is a bomb."""
    copied = 0
    with upload.open() as source, open(destination, "wb") as target:
        while chunk := source.read(COPY_CHUNK):
            copied += len(chunk)
            if copied > upload.size:
                raise BadArchive(f"{upload.name!r}: holds more bytes than its directory says ({upload.size})")
            target.write(chunk)
    return copied


def copy_stream(source: BinaryIO, destination: Path) -> int:
    source.seek(0)
    with open(destination, "wb") as target:
        shutil.copyfileobj(source, target, COPY_CHUNK)
    return destination.stat().st_size
