"""The serving policy and the quality gate (storage/serving_policy.py), on real published folders."""

import json

import pytest

from storage.serving_policy import (
    VersionInUse,
    change_policy,
    delete_version,
    gate,
    read_policy,
    served_version,
    tf_serving_config,
)
from storage.versions import list_versions
from tests.conftest import publish_tiny_generator


def publish(models_dir, l1: float, dataset: str = "shapes", promote: str = "auto") -> int:
    decision = gate(models_dir, dataset, {"l1": l1}, promote)  # what the trainer asks before publishing
    return publish_tiny_generator(models_dir, dataset=dataset, val={"l1": l1}, gate=decision)


def served(models_dir) -> int | None:
    version = served_version(list_versions(models_dir), read_policy(models_dir))
    return version.version if version else None


def test_a_worse_version_is_published_but_not_served(models_dir):
    assert publish(models_dir, 0.10) == 1 and served(models_dir) == 1
    assert publish(models_dir, 0.50) == 2
    assert served(models_dir) == 1, "a worse version must not replace a better one"
    rejected = list_versions(models_dir)[-1].manifest["gate"]
    assert rejected["passed"] is False and rejected["compared_with"] == 1 and "worse" in rejected["reason"]
    assert publish(models_dir, 0.1015) == 3 and served(models_dir) == 3, "within the tolerance is as good"
    assert publish(models_dir, 0.30, dataset="faces") == 4 and served(models_dir) == 3, "other dataset"
    assert publish(models_dir, 0.90, promote="always") == 5 and served(models_dir) == 5
    assert publish(models_dir, 0.01, promote="never") == 6 and served(models_dir) == 5


def test_pins_labels_and_back_to_latest(models_dir):
    for l1 in (0.2, 0.1, 0.5):
        publish(models_dir, l1)
    assert served(models_dir) == 2
    change_policy(models_dir, lambda policy: setattr(policy, "served", 3))
    assert served(models_dir) == 3, "a pin serves even a version the gate refused"
    change_policy(models_dir, lambda policy: policy.labels.update(stable=2, canary=3))
    stored = json.loads((models_dir / "serving_policy.json").read_text())
    assert stored == {"served": 3, "labels": {"canary": 3, "stable": 2}}
    change_policy(models_dir, lambda policy: setattr(policy, "served", "latest"))
    assert served(models_dir) == 2


def test_only_a_version_neither_served_nor_labelled_is_deleted(models_dir):
    for l1 in (0.2, 0.1, 0.5):
        publish(models_dir, l1)
    change_policy(models_dir, lambda policy: policy.labels.update(stable=1))
    with pytest.raises(VersionInUse, match="served"):
        delete_version(models_dir, 2)
    with pytest.raises(VersionInUse, match="labelled stable"):
        delete_version(models_dir, 1)
    with pytest.raises(FileNotFoundError):
        delete_version(models_dir, 9)
    delete_version(models_dir, 3)
    assert [version.version for version in list_versions(models_dir)] == [1, 2]
    assert not [entry for entry in (models_dir / "generator").iterdir() if entry.name.startswith(".deleting")]
    assert publish(models_dir, 0.05) == 4, "a deleted version's number is never reused"


def test_a_version_published_before_the_gate_existed_is_replaced_as_before(models_dir):
    assert publish_tiny_generator(models_dir) == 1  # no gate, no dataset in its manifest
    assert publish(models_dir, 0.4) == 2 and served(models_dir) == 2
    assert "before the quality gate" in list_versions(models_dir)[-1].manifest["gate"]["reason"]


def test_an_unreadable_policy_means_latest(models_dir):
    (models_dir / "serving_policy.json").write_text("{not json")
    assert read_policy(models_dir).served == "latest" and read_policy(models_dir).labels == {}


def test_the_tf_serving_config_names_the_served_and_labelled_versions():
    from storage.serving_policy import ServingPolicy

    text = tf_serving_config(ServingPolicy("latest", {"stable": 2}), served=5, base_path="/models/generator")
    assert "specific { versions: 2 versions: 5 }" in text
    assert 'version_labels { key: "stable" value: 2 }' in text and 'base_path: "/models/generator"' in text
    assert "latest { num_versions: 1 }" in tf_serving_config(ServingPolicy(), served=None, base_path="/m")
