"""An S3-compatible bucket as the shared copy of the data folder's artifacts (docs/ARCHITECTURE.md, "Shared
storage").

Each host keeps its own data folder as a cache; folders are mirrored to and from `s3://bucket/prefix/<the same
relative path>`. S3 has no rename, so a folder counts as complete once its completion marker (a version's
`manifest.json`, a checkpoint folder's `checkpoint` index) is there: `upload_folder` writes the markers last and
readers look for them first. boto3 retries transient failures (a restarting server) with backoff.
"""

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# A restarting store answers again within seconds; standard mode retries connection errors and 5xx with backoff.
RETRIES = Config(retries={"max_attempts": 12, "mode": "standard"}, connect_timeout=5, read_timeout=60)


class BadStorageUrl(ValueError):
    pass


@dataclass(frozen=True)
class RemoteFile:
    key: str  # relative to the store's prefix
    size: int


class ObjectStore:
    """One bucket and prefix; keys given to and returned by its methods are relative to the prefix."""

    def __init__(self, url: str, endpoint_url: str | None = None):
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise BadStorageUrl(f"S2C_STORAGE_URL must look like s3://bucket/prefix, not {url!r}")
        self.url = url
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None, config=RETRIES)

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _relative(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    # ---- single objects ----------------------------------------------------------------------------------
    def put_bytes(self, relative: str, content: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(relative), Body=content)

    def upload_file(self, local: Path, relative: str) -> None:
        self.client.upload_file(str(local), self.bucket, self._key(relative))

    def get_bytes(self, relative: str) -> bytes | None:
        """The object's content, or None when there is none."""
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=self._key(relative))["Body"].read())
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    def delete(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys at most
            chunk = [{"Key": self._key(key)} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})

    # ---- folders -----------------------------------------------------------------------------------------
    def delete_folder(self, folder: str) -> None:
        """Every object under `folder/`."""
        self.delete(remote.key for remote in self.list_files(folder))

    def list_files(self, folder: str) -> list[RemoteFile]:
        """Every object under `folder/` (recursively), sorted by key."""
        found = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(folder.rstrip("/") + "/")):
            for item in page.get("Contents", []):
                found.append(RemoteFile(self._relative(item["Key"]), int(item["Size"])))
        return sorted(found, key=lambda remote: remote.key)

    def subfolders(self, folder: str) -> list[str]:
        """The names of the folders directly under `folder/`."""
        names = []
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=self._key(folder.rstrip("/") + "/"), Delimiter="/"
        )
        for page in pages:
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"].rstrip("/").rsplit("/", 1)[-1])
        return sorted(names)

    def upload_folder(
        self,
        local: Path,
        folder: str,
        last: Iterable[str] = (),
        skip: Iterable[str] = (),
        changed_only: bool = False,
    ) -> list[str]:
        """Upload every file under `local` to `folder/`, the relative paths in `last` after all others (the
        completion markers). `skip`: relative paths left out. `changed_only`: files whose size the bucket
        already has are not sent again (checkpoint shards and samples never change once written). Returns the
        uploaded relative paths."""
        last, skip = list(last), set(skip)
        known = {remote.key: remote.size for remote in self.list_files(folder)} if changed_only else {}
        files = sorted(
            path.relative_to(local).as_posix()
            for path in local.rglob("*")
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(local).parts)
        )
        ordered = [name for name in files if name not in last and name not in skip]
        ordered += [name for name in last if name in files and name not in skip]
        sent = []
        for name in ordered:
            source = local / name
            key = f"{folder}/{name}"
            if name not in last and known.get(key) == source.stat().st_size:
                continue
            self.upload_file(source, key)
            sent.append(name)
        return sent

    def download_file(self, relative: str, target: Path) -> None:
        """Into a temporary file beside `target`, then renamed: a reader never sees half a file."""
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        os.close(handle)
        try:
            self.client.download_file(self.bucket, self._key(relative), temporary)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def download_folder(self, folder: str, local: Path, only: Iterable[str] | None = None) -> list[str]:
        """Download the files under `folder/` that `local` lacks or holds at another size (`only`: just these
        relative paths). Returns the relative paths downloaded."""
        wanted = set(only) if only is not None else None
        fetched = []
        for remote in self.list_files(folder):
            name = remote.key[len(folder.rstrip("/")) + 1 :]
            if wanted is not None and name not in wanted:
                continue
            target = local / name
            if target.is_file() and target.stat().st_size == remote.size:
                continue
            self.download_file(remote.key, target)
            fetched.append(name)
        return fetched
