"""The serving policy takes only what it can mean: `PUT /models/active` a JSON integer >= 1 or "latest" (not
`true`, which pydantic's lax mode read as 1, nor "2"), labels a JSON integer >= 1 under a name that does not read
as a version (`latest`, `v3`); and `GET /models/tf-serving.config?base_path=` cannot inject into the config
text. In process, on a data folder with versions 1 and 2 published (their files are enough for the policy:
the store failing to load them does not matter here); the CLI on the same folder obeys the same rules."""

from collections.abc import Iterator

import pytest
from google.protobuf import text_format
from typer.testing import CliRunner

from cli.main import cli as cli_app
from storage.serving_policy import read_policy
from tests.app.conftest import InProcessApp, in_process_app

TOKEN = "policy-token"


@pytest.fixture(scope="module")
def policy_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    data_dir = tmp_path_factory.mktemp("policy-requests") / "data"
    for version in (1, 2):
        version_dir = data_dir / "models" / "generator" / str(version)
        version_dir.mkdir(parents=True)
        (version_dir / "saved_model.pb").write_bytes(b"files enough to count as published")
        (version_dir / "manifest.json").write_text('{"job_id": null, "step": 0}')
    with in_process_app(data_dir, api_token=TOKEN) as running:
        yield running


@pytest.mark.parametrize("version", [True, False, "2", "1", 2.0, 0, -1, None, [2], {"v": 2}, "Latest"])
def test_pin_takes_only_a_json_integer_or_latest(policy_app: InProcessApp, version: object) -> None:
    models_dir = policy_app.services.settings.models_dir
    with policy_app.client() as client:
        assert client.put("/models/active", json={"version": "latest"}).status_code == 200
        response = client.put("/models/active", json={"version": version})
    assert response.status_code == 422, (
        f"{version!r} should be refused, got {response.status_code}: {response.text}"
    )
    detail = response.json()["detail"]
    assert detail.startswith("version: ") and "integer >= 1" in detail and '"latest"' in detail, detail
    assert read_policy(models_dir).served == "latest", "a refused pin changed the policy"


def test_pin_still_takes_a_number_and_latest(policy_app: InProcessApp) -> None:
    with policy_app.client() as client:
        pinned = client.put("/models/active", json={"version": 2})
        unknown = client.put("/models/active", json={"version": 9})
        back = client.put("/models/active", json={"version": "latest"})
    assert pinned.status_code == 200 and pinned.json()["served"] == 2, pinned.text
    assert unknown.status_code == 404 and "version 9 is not published" in unknown.json()["detail"], (
        unknown.text
    )
    assert back.status_code == 200 and back.json()["served"] == "latest", back.text


@pytest.mark.parametrize("version", [True, "2", 1.0, 0])
def test_a_label_takes_only_a_json_integer(policy_app: InProcessApp, version: object) -> None:
    with policy_app.client() as client:
        response = client.put("/models/labels/stable", json={"version": version})
    assert response.status_code == 422 and "integer >= 1" in response.json()["detail"], response.text
    assert "stable" not in read_policy(policy_app.services.settings.models_dir).labels


@pytest.mark.parametrize("name", ["latest", "LATEST", "Latest", "v1", "V2", "v10"])
def test_names_that_read_as_a_version_are_reserved(policy_app: InProcessApp, name: str, tmp_path) -> None:
    models_dir = policy_app.services.settings.models_dir
    with policy_app.client() as client:
        response = client.put(f"/models/labels/{name}", json={"version": 1})
    assert response.status_code == 422, f"label {name!r}: {response.status_code} {response.text}"
    assert "reserved" in response.json()["detail"] and name in response.json()["detail"], response.text
    assert name not in read_policy(models_dir).labels
    refused = CliRunner().invoke(cli_app, ["models", "label", name, "1", "--models-dir", str(models_dir)])
    assert refused.exit_code == 2 and "reserved" in refused.output, refused.output
    assert name not in read_policy(models_dir).labels


def test_ordinary_label_names_still_work(policy_app: InProcessApp) -> None:
    with policy_app.client() as client:
        for name in ("stable", "latest-good", "v2-candidate", "version2"):
            response = client.put(f"/models/labels/{name}", json={"version": 1})
            assert response.status_code == 200 and response.json()["labels"][name] == 1, response.text
            assert client.delete(f"/models/labels/{name}").status_code == 200


def test_the_cli_pin_refuses_what_the_api_refuses(policy_app: InProcessApp) -> None:
    models_dir = str(policy_app.services.settings.models_dir)
    refused = CliRunner().invoke(cli_app, ["models", "pin", "0", "--models-dir", models_dir])
    assert refused.exit_code == 2 and "integer >= 1" in refused.output, refused.output
    assert read_policy(models_dir).served == "latest"


@pytest.mark.parametrize(
    "base_path",
    [
        '/srv/a" } config { name: "evil" base_path: "/etc',  # a quote would end the string
        "/srv/back\\slash",
        "C:\\models\\",  # a trailing backslash would escape the closing quote
    ],
)
def test_a_base_path_is_escaped_into_the_config(policy_app: InProcessApp, base_path: str) -> None:
    with policy_app.client() as client:
        response = client.get("/models/tf-serving.config", params={"base_path": base_path})
        plain = client.get("/models/tf-serving.config", params={"base_path": "/srv/plain"}).text
    assert response.status_code == 200, response.text
    config = response.text
    escaped = base_path.replace("\\", "\\\\").replace('"', '\\"')
    assert f'    base_path: "{escaped}"\n' in config, config
    assert config.replace(escaped, "/srv/plain") == plain, f"the path changed more than its string:\n{config}"
    assert read_base_path(config) == base_path, "protobuf's text format reads back another path"


@pytest.mark.parametrize(
    "base_path", ['/srv/a\n  config { name: "evil" }', "/srv/a\rb", "/srv/\x00", "/srv/\x7f"]
)
def test_a_base_path_with_a_control_character_is_refused(policy_app: InProcessApp, base_path: str) -> None:
    with policy_app.client() as client:
        response = client.get("/models/tf-serving.config", params={"base_path": base_path})
    assert response.status_code == 422, f"{base_path!r}: {response.status_code} {response.text}"
    assert response.json()["detail"].startswith("base_path: "), response.text
    models_dir = str(policy_app.services.settings.models_dir)
    refused = CliRunner().invoke(
        cli_app, ["models", "tf-serving-config", "--base-path", base_path, "--models-dir", models_dir]
    )
    assert refused.exit_code == 2 and "control character" in refused.output, refused.output


def read_base_path(config: str) -> str:
    """The base_path line read by protobuf's own text-format tokenizer: one field, one string, nothing after."""
    line = next(line for line in config.splitlines() if line.strip().startswith("base_path:"))
    tokenizer = text_format.Tokenizer([line])
    assert tokenizer.ConsumeIdentifier() == "base_path"
    tokenizer.Consume(":")
    value = tokenizer.ConsumeString()
    assert tokenizer.AtEnd(), f"something follows the string on its line: {line}"
    return value
