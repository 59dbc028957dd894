"""The serving policy and the quality gate (storage/serving_policy.py), on real published folders."""

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from storage.serving_policy import (
    DamagedPolicy,
    GateDecision,
    InvalidLabel,
    LabelNotFound,
    PolicyError,
    ServingPolicy,
    VersionInUse,
    VersionNotPublished,
    delete_version,
    gate,
    label,
    pin,
    read_policy,
    served_version,
    tf_serving_config,
    unlabel,
)
from storage.versions import MANIFEST, generator_dir, list_versions, read_version
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
    assert set(rejected) == {"passed", "reason", "compared_with"}, (
        "the manifest stores the decision as before"
    )
    assert rejected["passed"] is False and rejected["compared_with"] == 1 and "worse" in rejected["reason"]
    assert publish(models_dir, 0.1015) == 3 and served(models_dir) == 3, "within the tolerance is as good"
    assert publish(models_dir, 0.30, dataset="faces") == 4 and served(models_dir) == 3, "other dataset"
    assert publish(models_dir, 0.90, promote="always") == 5 and served(models_dir) == 5
    assert publish(models_dir, 0.01, promote="never") == 6 and served(models_dir) == 5


def test_a_version_from_another_dataset_is_compared_on_its_own_validation_split(models_dir):
    """The served version is scored on the candidate's own validation split (the trainer's scorer); a
    served demo version never holds a user's model back; no scorer means no comparison, so not served."""
    assert publish(models_dir, 0.05, dataset="demo") == 1 and served(models_dir) == 1
    decision = gate(models_dir, "pics", {"l1": 0.40})
    assert decision.passed and "demo" in decision.reason, decision
    assert publish(models_dir, 0.40, dataset="pics") == 2 and served(models_dir) == 2, (
        "a user's model is served"
    )
    scored: list[int] = []

    def served_scores(l1: float):
        def score(version) -> float:
            scored.append(version.version)
            return l1

        return score

    better = gate(models_dir, "faces", {"l1": 0.30}, score_on_ours=served_scores(0.35))
    assert better.passed and "on dataset 'faces'" in better.reason and scored == [2], better
    worse = gate(models_dir, "faces", {"l1": 0.30}, score_on_ours=served_scores(0.20))
    assert not worse.passed and "worse than served version 2's 0.2000" in worse.reason, worse
    unscored = gate(models_dir, "faces", {"l1": 0.01}, score_on_ours=lambda version: None)
    assert not unscored.passed and "could not be scored" in unscored.reason, unscored


def test_the_gate_answers_with_a_typed_decision(models_dir):
    decision = gate(models_dir, "shapes", {"l1": 0.3})
    assert decision == GateDecision(passed=True, reason="nothing was served yet", compared_with=None)
    assert gate(models_dir, "shapes", {"l1": 0.3}, "never").passed is False


def test_pins_labels_and_back_to_latest(models_dir):
    for l1 in (0.2, 0.1, 0.5):
        publish(models_dir, l1)
    assert served(models_dir) == 2
    assert pin(models_dir, 3).served == 3
    assert served(models_dir) == 3, "a pin serves even a version the gate refused"
    label(models_dir, "stable", 2)
    assert label(models_dir, "canary", 3).labels == {"stable": 2, "canary": 3}
    stored = json.loads((models_dir / "serving_policy.json").read_text())
    assert stored == {"served": 3, "labels": {"canary": 3, "stable": 2}}
    assert unlabel(models_dir, "canary").labels == {"stable": 2}
    pin(models_dir, "latest")
    assert served(models_dir) == 2


def test_refused_changes_say_why_and_leave_the_policy_as_it_was(models_dir):
    write_version_folder(models_dir, 1)
    label(models_dir, "stable", 1)
    before = (models_dir / "serving_policy.json").read_text()
    with pytest.raises(VersionNotPublished, match="generator version 7 is not published"):
        pin(models_dir, 7)
    with pytest.raises(VersionNotPublished):
        label(models_dir, "canary", 7)
    with pytest.raises(LabelNotFound, match="no label 'canary'"):
        unlabel(models_dir, "canary")
    with pytest.raises(InvalidLabel, match="is not a label"):
        label(models_dir, "bad name", 1)
    (generator_dir(models_dir) / "1" / MANIFEST).write_text("{half a manifest")
    with pytest.raises(VersionNotPublished):
        pin(models_dir, 1)  # a version whose manifest cannot be read is not published
    assert (models_dir / "serving_policy.json").read_text() == before


def test_only_a_version_neither_served_nor_labelled_is_deleted(models_dir):
    for l1 in (0.2, 0.1, 0.5):
        publish(models_dir, l1)
    label(models_dir, "stable", 1)
    with pytest.raises(VersionInUse, match="served"):
        delete_version(models_dir, 2)
    with pytest.raises(VersionInUse, match="labelled stable"):
        delete_version(models_dir, 1)
    with pytest.raises(VersionNotPublished, match="generator version 9 is not published"):
        delete_version(models_dir, 9)
    delete_version(models_dir, 3)
    assert [version.version for version in list_versions(models_dir)] == [1, 2]
    assert not [entry for entry in (models_dir / "generator").iterdir() if entry.name.startswith(".deleting")]
    with pytest.raises(VersionNotPublished):
        pin(models_dir, 3)
    assert publish(models_dir, 0.05) == 4, "a deleted version's number is never reused"


def write_version_folder(models_dir: Path, number: int) -> None:
    """A version as storage sees one (a SavedModel file and a readable manifest): storage reads only the
    layout, so the race below can run many rounds without TensorFlow."""
    path = generator_dir(models_dir) / str(number)
    path.mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"")
    (path / MANIFEST).write_text(json.dumps({"version": number}))


def race_pin_and_delete(models_dir: Path, version: int) -> dict[str, str]:
    """Start `pin` and `delete_version` of one version at the same moment; "won" or the refusal's name."""
    start = threading.Barrier(2, timeout=30)
    outcomes: dict[str, str] = {}

    def attempt(name: str, operation: Callable[[], object]) -> None:
        start.wait()
        try:
            operation()
            outcomes[name] = "won"
        except PolicyError as error:
            outcomes[name] = type(error).__name__

    threads = [
        threading.Thread(target=attempt, args=("pin", lambda: pin(models_dir, version))),
        threading.Thread(target=attempt, args=("delete", lambda: delete_version(models_dir, version))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), f"version {version}: an operation still runs after 60 s"
    assert set(outcomes) == {"pin", "delete"}, f"version {version}: an operation failed otherwise: {outcomes}"
    return outcomes


def test_a_pin_and_a_deletion_of_one_version_never_both_win(models_dir):
    """Both decide under the publish lock: either the pin wins (the deletion is refused, the version is
    served) or the deletion wins (the pin is refused, the version is gone), never a pin of a deleted one."""
    rounds = 40
    for number in (*range(1, rounds + 1), 1000):  # 1000 is the newest: served under "latest"
        write_version_folder(models_dir, number)
    for version in range(1, rounds + 1):
        outcomes = race_pin_and_delete(models_dir, version)
        assert list(outcomes.values()).count("won") == 1, f"version {version}: {outcomes}"
        policy, published = read_policy(models_dir), read_version(models_dir, version) is not None
        if outcomes["pin"] == "won":
            assert outcomes["delete"] == "VersionInUse" and published and policy.served == version, outcomes
        else:
            assert outcomes["pin"] == "VersionNotPublished" and not published, outcomes
            assert policy.served != version, f"version {version}: the policy pins a deleted version"


def test_a_version_published_before_the_gate_existed_is_replaced_as_before(models_dir):
    assert publish_tiny_generator(models_dir) == 1  # no gate, no dataset in its manifest
    assert publish(models_dir, 0.4) == 2 and served(models_dir) == 2
    assert "before the quality gate" in list_versions(models_dir)[-1].manifest["gate"]["reason"]


def test_a_damaged_policy_is_refused_not_guessed_and_nothing_is_written_over_it(models_dir):
    """A hand-edited policy with a trailing comma used to read as "latest, no labels": serving switched
    silently and the next label change wrote over the pin and the labels for good."""
    assert read_policy(models_dir) == ServingPolicy(), "no file: latest, no labels"
    for number in (1, 2):
        write_version_folder(models_dir, number)
    path = models_dir / "serving_policy.json"
    damaged = {
        "a trailing comma": '{"served": 1, "labels": {"stable": 2},}',
        "served is a string": '{"served": "2", "labels": {}}',
        "a label to a non-version": '{"served": 1, "labels": {"stable": "two"}}',
        "not an object": "[1, 2]",
    }
    for name, text in damaged.items():
        path.write_text(text)
        with pytest.raises(DamagedPolicy, match="is damaged"):
            read_policy(models_dir)
        for change in (lambda: label(models_dir, "canary", 1), lambda: pin(models_dir, 2),
                       lambda: unlabel(models_dir, "stable"), lambda: delete_version(models_dir, 2)):  # fmt: skip
            with pytest.raises(DamagedPolicy):
                change()
        assert path.read_text() == text, f"{name}: the damaged file must stay as it was"
        decision = gate(models_dir, "shapes", {"l1": 0.1})
        assert not decision.passed and "damaged" in decision.reason, (name, decision)
    assert read_version(models_dir, 2) is not None, "a version the damaged policy may protect is not deleted"
    path.write_text('{"served": 1, "labels": {"stable": 2}}')
    assert read_policy(models_dir) == ServingPolicy(1, {"stable": 2}), "fixed by hand: read again"


def test_the_tf_serving_config_names_the_served_and_labelled_versions():
    from storage.serving_policy import ServingPolicy

    text = tf_serving_config(ServingPolicy("latest", {"stable": 2}), served=5, base_path="/models/generator")
    assert "specific { versions: 2 versions: 5 }" in text
    assert 'version_labels { key: "stable" value: 2 }' in text and 'base_path: "/models/generator"' in text
    assert "latest { num_versions: 1 }" in tf_serving_config(ServingPolicy(), served=None, base_path="/m")
