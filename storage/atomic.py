"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every file that another process reads while it may be rewritten (job records, leases, manifests, sample
grids) is written through here: a hidden temporary file beside the target, then one rename.
"""

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def temporary_beside(path: Path, suffix: str = ".tmp") -> Path:
    """A hidden, unique name in the target's folder (a rename within one file system is atomic)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{suffix}")


def write_atomically(path: Path, text: str, durable: bool = False) -> None:
    """Replace `path` with `text`; `durable` also survives a power cut (fsync before the rename)."""
    write_with(path, lambda file: file.write(text.encode()), durable=durable)


def write_with(
    path: Path, write: Callable[[BinaryIO], object], durable: bool = False, suffix: str = ".tmp"
) -> None:
    """Replace `path` with what `write(file)` writes; a failure leaves the old file and no temporary."""
    temporary = temporary_beside(path, suffix)
    try:
        with open(temporary, "wb") as file:
            write(file)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
