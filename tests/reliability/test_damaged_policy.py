"""A hand-damaged `serving_policy.json` (one trailing comma) used to read as "latest, no labels": serving
switched versions silently, labels vanished, and the next label change wrote over the pin and the labels for
good. Now the API keeps serving by the last good policy and says why in GET /models; changes and deletions are
refused (503, the file left as it was) until the file is fixed; the CLI says the same in one line. In process,
on real tiny generators."""

import json

from typer.testing import CliRunner

from cli.main import cli as cli_app
from tests.app.conftest import draw_sketch, encode, in_process_app
from tests.conftest import publish_tiny_generator
from tests.support import wait_until


def test_a_damaged_policy_keeps_the_last_good_one_in_force_and_refuses_changes(tmp_path):
    models_dir = tmp_path / "models"
    assert publish_tiny_generator(models_dir, seed=1) == 1
    assert publish_tiny_generator(models_dir, seed=2) == 2
    policy_file = models_dir / "serving_policy.json"
    policy_file.write_text(json.dumps({"served": 1, "labels": {"stable": 2}}))
    sketch = {"files": {"file": ("s.png", encode(draw_sketch()), "image/png")}}
    with in_process_app(tmp_path, serving=1) as running, running.client() as client:
        damaged = '{"served": 1, "labels": {"stable": 2},}'
        policy_file.write_text(damaged)
        store = running.services.model_store
        wait_until(lambda: store.problem is not None, 30, "the store to notice the damaged policy")
        models = client.get("/models").json()
        assert "damaged" in models["problem"] and "last good policy" in models["problem"], models["problem"]
        assert models["active_version"] == 1, "the pin stays in force: serving does not switch to version 2"
        assert models["policy"] == {"served": 1, "labels": {"stable": 2}}
        labelled = client.post("/colorize?version=stable&fill=soft", **sketch)
        assert labelled.status_code == 200 and labelled.headers["X-Model-Version"] == "2", labelled.text
        refused = {
            "label": client.put("/models/labels/canary", json={"version": 1}),
            "serve": client.put("/models/active", json={"version": 2}),
            "unlabel": client.delete("/models/labels/stable"),
            "delete": client.delete("/models/2"),
        }
        for name, response in refused.items():
            assert response.status_code == 503, f"{name}: {response.status_code} {response.text}"
            assert "is damaged" in response.json()["detail"], f"{name}: {response.text}"
        assert policy_file.read_text() == damaged, "nothing was written over the damaged file"
        assert (models_dir / "generator" / "2").is_dir(), "the labelled version was not deleted"
        listed = CliRunner().invoke(cli_app, ["models", "list", "--models-dir", str(models_dir)])
        assert listed.exit_code == 2 and "is damaged" in listed.output, listed.output
        policy_file.write_text(json.dumps({"served": 2, "labels": {"stable": 2}}))  # fixed by hand
        wait_until(lambda: store.problem is None, 30, "the store to read the fixed policy")
        wait_until(
            lambda: client.get("/models").json()["active_version"] == 2, 60, "the fixed pin to serve v2"
        )


def test_a_version_with_a_damaged_manifest_is_listed_with_its_error_not_dropped_silently(tmp_path):
    models_dir = tmp_path / "models"
    assert publish_tiny_generator(models_dir, seed=1) == 1
    assert publish_tiny_generator(models_dir, seed=2) == 2
    with in_process_app(tmp_path, serving=2) as running, running.client() as client:
        (models_dir / "generator" / "2" / "manifest.json").write_text('{"step": 3,')  # damaged by hand
        store = running.services.model_store
        wait_until(lambda: store.current is not None and store.current.version == 1, 60, "a fallback to 1")
        models = client.get("/models").json()
        assert [entry["version"] for entry in models["versions"]] == [1]
        assert len(models["damaged"]) == 1 and models["damaged"][0]["version"] == 2, models["damaged"]
        assert "manifest.json cannot be read" in models["damaged"][0]["error"], models["damaged"]
