"""Which published version is served: the serving policy, the quality gate, and safe deletion. No TensorFlow.

The policy is one small JSON file beside the versions, `<models_dir>/serving_policy.json`, written atomically
under the publish lock, so every API replica follows the same choice on its next poll:
`{"served": "latest" | <version>, "labels": {"stable": 3, ...}}`. "latest" serves the newest version that
passed the quality gate; a number pins that version. Labels name versions (TensorFlow Serving's
`version_labels`); `tf_serving_config` writes the same choice as a TF Serving model config.

The gate (decided when a version is published, recorded in its manifest as `gate`): a new version joins
"latest" only if nothing is served yet, or it comes from the same dataset as the served version and its
validation L1 is no worse than the served one's (within a small tolerance); a job's `promote` option can say
`always` or `never` instead. A version that did not pass is still published (and can be pinned), never
served silently.
"""

import json
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock
from pydantic import BaseModel

from storage.atomic import write_atomically
from storage.versions import PublishedVersion, generator_dir, list_versions

POLICY_NAME = "serving_policy.json"
LOCK_NAME = ".publish.lock"  # the lock version numbers are allocated under (model/export.py)
# A new version may be this much worse (relative, plus absolute) in validation L1 and still pass: run-to-run
# noise on a small validation subset is about this large.
GATE_RELATIVE_TOLERANCE = 0.02
GATE_ABSOLUTE_TOLERANCE = 0.002
Promote = Literal["auto", "always", "never"]
LABEL_PATTERN = r"[A-Za-z][A-Za-z0-9_-]{0,63}"


class GateDecision(BaseModel):
    """The quality gate's answer for a version about to be published: its manifest's `gate` and the job's."""

    passed: bool
    reason: str
    compared_with: int | None = None


class VersionInUse(Exception):
    """The version is served or labelled; the message says which."""


@dataclass
class ServingPolicy:
    served: int | Literal["latest"] = "latest"
    labels: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"served": self.served, "labels": dict(sorted(self.labels.items()))}


def policy_path(models_dir: str | os.PathLike) -> Path:
    return Path(models_dir) / POLICY_NAME


def read_policy(models_dir: str | os.PathLike) -> ServingPolicy:
    """The stored policy; "latest" and no labels when there is none (or it is unreadable)."""
    try:
        raw = json.loads(policy_path(models_dir).read_text())
        served = raw.get("served", "latest")
        if served != "latest" and not (isinstance(served, int) and served > 0):
            served = "latest"
        labels = {str(name): int(version) for name, version in (raw.get("labels") or {}).items()}
        return ServingPolicy(served, labels)
    except (OSError, ValueError, TypeError, AttributeError):
        return ServingPolicy()


def change_policy(models_dir: str | os.PathLike, change: Callable[[ServingPolicy], None]) -> ServingPolicy:
    """Read, change and write the policy under the publish lock; returns the new policy."""
    directory = generator_dir(models_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory / LOCK_NAME), timeout=30):
        policy = read_policy(models_dir)
        change(policy)
        write_atomically(policy_path(models_dir), json.dumps(policy.to_json(), indent=2), durable=True)
    return policy


def passed_gate(version: PublishedVersion) -> bool:
    """Versions published before the gate existed count as passed."""
    return bool((version.manifest.get("gate") or {}).get("passed", True))


def served_version(versions: Sequence[PublishedVersion], policy: ServingPolicy) -> PublishedVersion | None:
    """The version the policy serves: the pinned one, or the newest that passed the gate."""
    if policy.served != "latest":
        return next((version for version in versions if version.version == policy.served), None)
    passing = [version for version in versions if passed_gate(version)]
    return passing[-1] if passing else None


def gate(
    models_dir: str | os.PathLike, dataset: str | None, val: dict[str, float], promote: Promote = "auto"
) -> dict[str, Any]:
    """Whether a version about to be published may be served; `{"passed", "reason", "compared_with"}`."""
    if promote == "always":
        return {"passed": True, "reason": "promote=always", "compared_with": None}
    if promote == "never":
        return {"passed": False, "reason": "promote=never: published, not served", "compared_with": None}
    served = served_version(list_versions(models_dir), read_policy(models_dir))
    if served is None:
        return {"passed": True, "reason": "nothing was served yet", "compared_with": None}
    theirs, ours = (served.manifest.get("val") or {}).get("l1"), val.get("l1")
    compared = served.version
    if "gate" not in served.manifest:
        reason = f"served version {compared} was published before the quality gate existed"
        return {"passed": True, "reason": reason, "compared_with": compared}
    if served.manifest.get("dataset") != dataset:
        reason = (
            f"version {compared} is served and comes from dataset {served.manifest.get('dataset')!r}, this one "
            f"from {dataset!r}: not comparable, so not served (pin it to serve it)"
        )
        return {"passed": False, "reason": reason, "compared_with": compared}
    if theirs is None or ours is None:
        return {"passed": True, "reason": "no validation L1 to compare", "compared_with": compared}
    limit = theirs * (1 + GATE_RELATIVE_TOLERANCE) + GATE_ABSOLUTE_TOLERANCE
    if ours <= limit:
        return {
            "passed": True,
            "reason": f"validation L1 {ours:.4f} is no worse than served version {compared}'s {theirs:.4f}",
            "compared_with": compared,
        }
    reason = (
        f"validation L1 {ours:.4f} is worse than served version {compared}'s {theirs:.4f}: published, not "
        "served (pin it to serve it anyway)"
    )
    return {"passed": False, "reason": reason, "compared_with": compared}


def labels_of(policy: ServingPolicy, version: int) -> list[str]:
    return sorted(name for name, labelled in policy.labels.items() if labelled == version)


def delete_version(models_dir: str | os.PathLike, version: int) -> None:
    """Remove a version that is neither served nor labelled: renamed away first (a loader never sees it half
    gone), then deleted. Raises FileNotFoundError or VersionInUse."""
    directory = generator_dir(models_dir)
    with FileLock(str(directory / LOCK_NAME), timeout=30):
        versions = list_versions(models_dir)
        if not any(published.version == version for published in versions):
            raise FileNotFoundError(f"generator version {version} is not published")
        policy = read_policy(models_dir)
        served = served_version(versions, policy)
        if served is not None and served.version == version:
            raise VersionInUse(f"version {version} is the served version; serve another one first")
        if labels_of(policy, version):
            raise VersionInUse(f"version {version} is labelled {', '.join(labels_of(policy, version))}")
        doomed = directory / f".deleting-{version}-{uuid.uuid4().hex}"
        os.rename(directory / str(version), doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def tf_serving_config(
    policy: ServingPolicy, served: int | None, base_path: str, name: str = "generator"
) -> str:
    """The same choice as a TensorFlow Serving model config (text protobuf, for `--model_config_file`).

    TF Serving's own "latest" knows nothing of our gate, so the config names versions: the served one and the
    labelled ones, with the labels (a client asks for `version_label: "stable"`, or the only unlabelled one).
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
        f'    name: "{name}"\n    base_path: "{base_path}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ {version_policy} }}\n{labels}  }}\n}}\n"
    )
