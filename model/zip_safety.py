"""Reading an uploaded zip's directory safely, before a byte of it is unpacked: shared by dataset uploads
(model/dataset_import.py) and chapter uploads (POST /batches). No TensorFlow, no Pillow.

`checked_entries` refuses a directory of far too many entries (from the end record alone), entries without a
usable name, encrypted entries, absolute or Windows-style paths, path traversal (`..`) and symbolic links,
naming the entry; it returns the file entries, leaving out folders and hidden files (macOS forks and the
like). What a file may be (an image, not an archive) is the caller's rule.
"""

import os
import stat
import struct
import zipfile
from pathlib import Path, PurePosixPath

MAX_COMPRESSION_RATIO = 200  # images barely compress; a far higher ratio is a bomb
MAX_NAME_BYTES = 1024
END_RECORD_SEARCH = 22 + 65535  # the end record and the longest comment it may carry


class BadArchive(ValueError):
    """The archive cannot be used; the message names the entry and the reason."""


class NotAZipArchive(BadArchive):
    """The file is not a zip at all (the wrong kind of file, not a zip we refuse)."""


def ignored(path: PurePosixPath) -> bool:
    """macOS resource forks and hidden files come along in zips made by hand: not content, not an error."""
    return path.parts[0] == "__MACOSX" or any(part.startswith(".") for part in path.parts)


def compression_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry's compression ratio says it is a bomb, or None."""
    if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
        return f"{info.filename!r}: compressed {info.file_size / info.compress_size:.0f}:1, a zip bomb"
    return None


def checked_entries(archive: Path, max_files: int, files_setting: str) -> list[zipfile.ZipInfo]:
    """The archive's file entries once its directory passes the checks above; raise BadArchive naming the
    first problem (NotAZipArchive when it is no zip at all)."""
    _check_entry_count(archive, max_files, files_setting)
    try:
        zipped = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise NotAZipArchive(f"not a zip archive: {error}") from None
    except Exception as error:  # a fuzzed directory: bad UTF-8 names, bad sizes, unknown features
        raise BadArchive(f"cannot read the zip's directory: {type(error).__name__}: {error}") from None
    with zipped:
        infos = zipped.infolist()
    files = []
    for info in infos:
        name = info.filename
        _check_entry(info)
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or "\\" in name:
            raise BadArchive(f"{name!r}: absolute or Windows-style path; entries must be relative")
        path = PurePosixPath(name)
        if ".." in path.parts:
            raise BadArchive(f"{name!r}: path traversal ('..') is not allowed")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise BadArchive(f"{name!r}: symbolic links are not allowed")
        if info.is_dir() or ignored(path):
            continue
        files.append(info)
    return files


def _check_entry_count(archive: Path, max_files: int, files_setting: str) -> None:
    """Refuse a directory of far too many entries from its end record alone: zipfile would first build an
    object for every entry (a 55 MB directory of a million entries: 90 s of CPU and 500 MB). Folders and
    macOS forks are entries too, hence the allowance over the file limit."""
    entries = _declared_entries(archive)
    allowed = 2 * max_files + 1000
    if entries is not None and entries > allowed:
        raise BadArchive(f"{entries} entries, far over the limit of {max_files} files ({files_setting})")


def _declared_entries(archive: Path) -> int | None:
    """The entry count the zip's end record declares (zip64 too), or None where there is no end record
    (ZipFile then says what is wrong)."""
    try:
        with open(archive, "rb") as stream:
            size = stream.seek(0, os.SEEK_END)
            tail_start = max(0, size - END_RECORD_SEARCH)
            stream.seek(tail_start)
            tail = stream.read()
            at = tail.rfind(b"PK\x05\x06")
            if at < 0 or len(tail) < at + 22:
                return None
            (entries,) = struct.unpack("<H", tail[at + 10 : at + 12])
            if entries != 0xFFFF or at < 20 or tail[at - 20 : at - 16] != b"PK\x06\x07":
                return int(entries)
            (zip64_end,) = struct.unpack("<Q", tail[at - 12 : at - 4])  # the zip64 locator's pointer
            stream.seek(zip64_end)
            record = stream.read(56)
            return int(struct.unpack("<Q", record[32:40])[0]) if record[:4] == b"PK\x06\x06" else None
    except (OSError, struct.error):
        return None


def _check_entry(info: zipfile.ZipInfo) -> None:
    """What no entry can be: a name that is empty, `.`, holds a NUL byte or is too long for a file system;
    a password-protected entry (it could not be read later)."""
    name = info.filename
    if not name.strip("/") or name.strip("/") == "." or "\x00" in name:
        raise BadArchive(f"{name!r}: an entry needs a file name (not empty, not '.', no NUL byte)")
    if len(name.encode()) > MAX_NAME_BYTES or any(len(part.encode()) > 255 for part in name.split("/")):
        raise BadArchive(f"{name[:80]!r}...: the entry's name is too long for a file system")
    if info.flag_bits & 0x1:
        raise BadArchive(
            f"{name!r}: encrypted (password-protected) entries cannot be read; zip it without one"
        )
