"""Which published version is served: the serving policy, the quality gate, and safe deletion. No TensorFlow.

The policy is one small JSON file beside the versions, `<models_dir>/serving_policy.json`, written atomically
under the publish lock, so every API replica follows the same choice on its next poll:
`{"served": "latest" | <version>, "labels": {"stable": 3, ...}}`. "latest" serves the newest version that
passed the quality gate; a number pins that version. Labels name versions (TensorFlow Serving's
`version_labels`); `tf_serving_config` writes the same choice as a TF Serving model config.

Every change is one named operation (`pin`, `label`, `unlabel`, `delete_version`) that checks what it needs
("published", "not served", "no such label") under the same lock as it writes, the lock model/export.py
allocates version numbers under: a pin and a deletion of one version can never both succeed. Refusals are
typed exceptions (`PolicyError` subclasses); the API and the CLI turn them into statuses and messages.

The gate (decided when a version is published, recorded in its manifest as `gate`): a new version joins
"latest" only if nothing is served yet, or it comes from the same dataset as the served version and its
validation L1 is no worse than the served one's (within a small tolerance); a job's `promote` option can say
`always` or `never` instead. A version that did not pass is still published (and can be pinned), never
served silently. See docs/ARCHITECTURE.md.

In shared mode (storage/shared.py) the policy is the Redis key `s2c:policy`, changed by compare-and-set, and
the publish lock is a Redis lock; the checks and names are the same.
"""

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock
from pydantic import BaseModel

from storage.atomic import write_atomically
from storage.layout import DEMO_DATASET
from storage.shared import SharedMode, shared_mode
from storage.shared_versions import remove_version, shared_publish_lock
from storage.versions import ModelsDir, PublishedVersion, generator_dir, list_versions, read_version

POLICY_NAME = "serving_policy.json"
LOCK_NAME = ".publish.lock"  # the lock version numbers are allocated under (model/export.py)
LOCK_TIMEOUT_SECONDS = 30
# A new version may be this much worse (relative, plus absolute) in validation L1 and still pass: run-to-run
# noise on a small validation subset is about this large.
GATE_RELATIVE_TOLERANCE = 0.02
GATE_ABSOLUTE_TOLERANCE = 0.002
Promote = Literal["auto", "always", "never"]
Served = int | Literal["latest"]
# The page's label input carries the same text as its `pattern` (tests/app/test_page_patterns.py); the `-` is
# escaped because browsers compile `pattern` with the `v` flag, where a bare `-` in a class is a syntax error.
LABEL_PATTERN = r"[A-Za-z][A-Za-z0-9_\-]{0,63}"
# Names a new label may not take: they read as a version ("latest", "v3"), so `?version=latest` or a reader of
# GET /models could take the label for the policy's own choice or for that version number.
RESERVED_LABEL = re.compile(r"latest|v[0-9]+", re.IGNORECASE)


class GateDecision(BaseModel):
    """The quality gate's answer for a version about to be published: its manifest's `gate` and the job's."""

    passed: bool
    reason: str
    compared_with: int | None = None


class PolicyError(Exception):
    """A policy change or deletion that was refused; the message says why."""


class DamagedPolicy(PolicyError):
    """The policy file exists but cannot be read as a policy (edited by hand, a bad disk): nothing is changed,
    deleted or decided from a guess while it is so; readers keep the last good one they had."""

    def __init__(self, path: Path, problem: str):
        super().__init__(
            f"the serving policy {path.name} is damaged ({problem}): changes to it and deletions are refused "
            "until it is fixed by hand, or removed (then the newest version that passed the gate is served "
            "and there are no labels)"
        )


class VersionNotPublished(PolicyError):
    """No complete version with a readable manifest has this number (never published, or deleted)."""

    def __init__(self, version: int):
        super().__init__(f"generator version {version} is not published")
        self.version = version


class VersionInUse(PolicyError):
    """The version is served or labelled; the message says which."""


class LabelNotFound(PolicyError):
    def __init__(self, name: str):
        super().__init__(f"no label {name!r}")
        self.name = name


class InvalidLabel(PolicyError):
    def __init__(self, name: str):
        super().__init__(f"{name!r} is not a label: a letter, then letters, digits, '_' or '-'")
        self.name = name


class ReservedLabel(InvalidLabel):
    """A name that reads as a version (`latest`, `v3`): a new label may not take it."""

    def __init__(self, name: str):
        PolicyError.__init__(
            self, f"{name!r} is reserved: it reads as a version; choose a name such as stable"
        )
        self.name = name


class InvalidVersion(PolicyError):
    """Not a version a policy can name: a JSON integer >= 1 (not `true`, not `"2"`), or "latest" where allowed."""


class InvalidBasePath(ValueError):
    """A TF Serving base path that a text-proto string cannot hold (a line break or another control character)."""


@dataclass
class ServingPolicy:
    served: Served = "latest"
    labels: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"served": self.served, "labels": dict(sorted(self.labels.items()))}


def policy_path(models_dir: ModelsDir) -> Path:
    return Path(models_dir) / POLICY_NAME


def read_policy(models_dir: ModelsDir) -> ServingPolicy:
    """The stored policy; "latest" and no labels when there is none. Raises DamagedPolicy when the file is
    there but is not a valid policy: a guess would silently switch the served version and drop labels."""
    path = policy_path(models_dir)
    shared = shared_mode()
    try:
        if shared is not None:
            stored = shared.get(_policy_key())
            if stored is None:
                return ServingPolicy()
            text = stored.decode()
        else:
            text = path.read_text()
    except FileNotFoundError:
        return ServingPolicy()
    except (OSError, UnicodeDecodeError) as error:
        raise DamagedPolicy(path, f"unreadable: {type(error).__name__}") from None
    return _parse_policy(path, text)


def _policy_key() -> str:
    return SharedMode.key("policy")


def _parse_policy(path: Path, text: str) -> ServingPolicy:
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise DamagedPolicy(path, f"not JSON: {error}") from None
    if not isinstance(raw, dict) or set(raw) - {"served", "labels"}:
        raise DamagedPolicy(path, 'not an object with just "served" and "labels"')
    served = raw.get("served", "latest")
    if served != "latest" and not (type(served) is int and served >= 1):
        raise DamagedPolicy(path, f'"served" is {served!r}, not "latest" or a version number')
    labels = raw.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(name, str) and re.fullmatch(LABEL_PATTERN, name) and type(version) is int and version >= 1
        for name, version in labels.items()
    ):
        raise DamagedPolicy(path, '"labels" must map label names to version numbers')
    return ServingPolicy(served, dict(labels))


@contextmanager
def publish_lock(models_dir: ModelsDir, wait_seconds: float = LOCK_TIMEOUT_SECONDS) -> Iterator[Path]:
    """Hold the publish lock; yields the generator folder. No version appears or goes while it is held."""
    shared = shared_mode()
    if shared is not None:
        with shared_publish_lock(shared, models_dir, wait_seconds) as directory:
            yield directory
        return
    directory = generator_dir(models_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory / LOCK_NAME), timeout=wait_seconds):
        yield directory


def _change_policy(models_dir: ModelsDir, change: Callable[[ServingPolicy], None]) -> ServingPolicy:
    """Read, check and change, and write the policy, all under the publish lock; returns the new policy.

    `change` runs under the lock, so what it checks (a version is published, a label exists) still holds
    when the policy is written; it raises a `PolicyError` to refuse, leaving the file as it was.
    """
    with publish_lock(models_dir):
        shared = shared_mode()
        if shared is not None:

            def change_stored(stored: bytes | None) -> tuple[ServingPolicy, str]:
                policy = (
                    _parse_policy(policy_path(models_dir), stored.decode()) if stored else ServingPolicy()
                )
                change(policy)
                return policy, json.dumps(policy.to_json(), indent=2)

            return shared.compare_and_set(_policy_key(), change_stored)
        policy = read_policy(models_dir)
        change(policy)
        write_atomically(policy_path(models_dir), json.dumps(policy.to_json(), indent=2), durable=True)
    return policy


def _require_published(models_dir: ModelsDir, version: int) -> None:
    if read_version(models_dir, version) is None:
        raise VersionNotPublished(version)


def check_version_number(value: Any) -> int:
    """`value` if it is an integer >= 1; raises InvalidVersion for anything else (a bool, a string, a float)."""
    if type(value) is int and value >= 1:  # `type`, not isinstance: True is an int, and would name version 1
        return value
    raise InvalidVersion(f"give a published version number (an integer >= 1), not {_shown(value)}")


def check_served(value: Any) -> Served:
    """`value` if it is "latest" or an integer >= 1; raises InvalidVersion for anything else."""
    if value == "latest" or (type(value) is int and value >= 1):
        return value  # type: ignore[no-any-return]
    raise InvalidVersion(
        f'give a published version number (an integer >= 1) or "latest", not {_shown(value)}'
    )


def _shown(value: Any) -> str:
    try:
        shown = json.dumps(value)
    except (TypeError, ValueError):
        shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def pin(models_dir: ModelsDir, served: Served) -> ServingPolicy:
    """Serve this published version (even one the gate held back), or "latest": the newest that passed it.
    Raises InvalidVersion or VersionNotPublished."""
    check_served(served)

    def change(policy: ServingPolicy) -> None:
        if served != "latest":
            _require_published(models_dir, served)
        policy.served = served

    return _change_policy(models_dir, change)


def check_label_name(name: str) -> None:
    """Raises InvalidLabel unless `name` matches LABEL_PATTERN (any label, even a reserved one, can be removed)."""
    if not re.fullmatch(LABEL_PATTERN, name):
        raise InvalidLabel(name)


def check_new_label_name(name: str) -> None:
    """Raises InvalidLabel unless `name` can name a label being set: LABEL_PATTERN, and not reserved."""
    check_label_name(name)
    if RESERVED_LABEL.fullmatch(name):
        raise ReservedLabel(name)


def label(models_dir: ModelsDir, name: str, version: int) -> ServingPolicy:
    """Point a label at a published version (moving it if it named another). Raises InvalidLabel (ReservedLabel
    for a name such as `latest`), InvalidVersion or VersionNotPublished."""
    check_new_label_name(name)
    check_version_number(version)

    def change(policy: ServingPolicy) -> None:
        _require_published(models_dir, version)
        policy.labels[name] = version

    return _change_policy(models_dir, change)


def unlabel(models_dir: ModelsDir, name: str) -> ServingPolicy:
    """Remove a label (its version stays). Raises InvalidLabel or LabelNotFound."""
    check_label_name(name)

    def change(policy: ServingPolicy) -> None:
        if policy.labels.pop(name, None) is None:
            raise LabelNotFound(name)

    return _change_policy(models_dir, change)


def passed_gate(version: PublishedVersion) -> bool:
    """Versions published before the gate existed count as passed."""
    return bool((version.manifest.get("gate") or {}).get("passed", True))


def served_version(versions: Sequence[PublishedVersion], policy: ServingPolicy) -> PublishedVersion | None:
    """The version the policy serves: the pinned one, or the newest that passed the gate."""
    if policy.served != "latest":
        return next((version for version in versions if version.version == policy.served), None)
    passing = [version for version in versions if passed_gate(version)]
    return passing[-1] if passing else None


ScoreOnOurs = Callable[[PublishedVersion], float | None]


def gate(
    models_dir: ModelsDir,
    dataset: str | None,
    val: dict[str, float],
    promote: Promote = "auto",
    score_on_ours: ScoreOnOurs | None = None,
) -> GateDecision:
    """Whether a version about to be published may be served (the trainer asks under the publish lock).

    Versions from one dataset compare by their recorded validation L1. A served version from another dataset
    is scored on this version's own validation split by `score_on_ours` (the trainer's), and compared there;
    a served demo version never blocks a user's model.
    """
    if promote == "always":
        return GateDecision(passed=True, reason="promote=always")
    if promote == "never":
        return GateDecision(passed=False, reason="promote=never: published, not served")
    try:
        policy = read_policy(models_dir)
    except DamagedPolicy as error:
        return GateDecision(passed=False, reason=f"{error}: published, not served")
    served = served_version(list_versions(models_dir), policy)
    if served is None:
        return GateDecision(passed=True, reason="nothing was served yet")
    theirs, ours = (served.manifest.get("val") or {}).get("l1"), val.get("l1")
    compared = served.version
    where = ""
    if "gate" not in served.manifest:
        reason = f"served version {compared} was published before the quality gate existed"
        return GateDecision(passed=True, reason=reason, compared_with=compared)
    served_dataset = served.manifest.get("dataset")
    if served_dataset != dataset:
        if served_dataset == DEMO_DATASET:
            reason = (
                f"served version {compared} is the demo's; a demo version never holds a user's model back"
            )
            return GateDecision(passed=True, reason=reason, compared_with=compared)
        theirs = score_on_ours(served) if score_on_ours is not None else None
        if theirs is None:
            reason = (
                f"version {compared} is served and comes from dataset {served_dataset!r}, this one from "
                f"{dataset!r}, and it could not be scored on this one's validation split: not served (pin "
                "it to serve it)"
            )
            return GateDecision(passed=False, reason=reason, compared_with=compared)
        where = f" on dataset {dataset!r}'s validation split"
    if theirs is None or ours is None:
        return GateDecision(passed=True, reason="no validation L1 to compare", compared_with=compared)
    limit = theirs * (1 + GATE_RELATIVE_TOLERANCE) + GATE_ABSOLUTE_TOLERANCE
    if ours <= limit:
        reason = f"validation L1 {ours:.4f} is no worse than served version {compared}'s {theirs:.4f}{where}"
        return GateDecision(passed=True, reason=reason, compared_with=compared)
    reason = (
        f"validation L1 {ours:.4f} is worse than served version {compared}'s {theirs:.4f}{where}: published, "
        "not served (pin it to serve it anyway)"
    )
    return GateDecision(passed=False, reason=reason, compared_with=compared)


def labels_of(policy: ServingPolicy, version: int) -> list[str]:
    return sorted(name for name, labelled in policy.labels.items() if labelled == version)


def delete_version(models_dir: ModelsDir, version: int) -> None:
    """Remove a version that is neither served nor labelled: renamed away under the publish lock (a loader
    never sees it half gone, a pin never names it afterwards), then deleted. Raises VersionNotPublished or
    VersionInUse."""
    with publish_lock(models_dir) as directory:
        _require_published(models_dir, version)
        policy = read_policy(models_dir)
        served = served_version(list_versions(models_dir), policy)
        if served is not None and served.version == version:
            raise VersionInUse(f"version {version} is the served version; serve another one first")
        if labels_of(policy, version):
            raise VersionInUse(f"version {version} is labelled {', '.join(labels_of(policy, version))}")
        shared = shared_mode()
        if shared is not None:
            remove_version(shared, models_dir, version)
        doomed = directory / f".deleting-{version}-{uuid.uuid4().hex}"
        try:
            os.rename(directory / str(version), doomed)
        except FileNotFoundError:
            if shared is None:
                raise
            return  # this host's poll removed its copy first (the bucket's was gone)
    shutil.rmtree(doomed, ignore_errors=True)


def tf_serving_config(
    policy: ServingPolicy, served: int | None, base_path: str, name: str = "generator"
) -> str:
    """The same choice as a TensorFlow Serving model config (text protobuf, for `--model_config_file`).

    TF Serving's own "latest" knows nothing of our gate, so the config names versions: the served one and the
    labelled ones, with the labels (a client asks for `version_label: "stable"`, or the only unlabelled one).
    `base_path` is escaped as a text-proto string; one with a control character raises InvalidBasePath.
    """
    versions = sorted({*policy.labels.values(), *([served] if served is not None else [])})
    if versions:
        version_policy = "specific { " + " ".join(f"versions: {number}" for number in versions) + " }"
    else:
        version_policy = "latest { num_versions: 1 }"
    labels = "".join(
        f'    version_labels {{ key: "{label}" value: {version} }}\n'
        for label, version in sorted(policy.labels.items())
    )
    return (
        "model_config_list {\n  config {\n"
        f'    name: "{name}"\n    base_path: "{_proto_string(base_path)}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ {version_policy} }}\n{labels}  }}\n}}\n"
    )


def _proto_string(value: str) -> str:
    """`value` inside a text-proto double-quoted string: backslash and quote escaped; a line break or another
    control character could end the string or the line, so it is refused (InvalidBasePath), never passed on."""
    bad = next((character for character in value if ord(character) < 0x20 or ord(character) == 0x7F), None)
    if bad is not None:
        raise InvalidBasePath(f"base_path: a path cannot hold a control character such as {bad!r}")
    return value.replace("\\", "\\\\").replace('"', '\\"')
