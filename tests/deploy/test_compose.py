"""docker-compose.yml: it validates, and what it runs, sets and mounts matches the code it deploys."""

import re
from urllib.parse import urlsplit

import yaml

from tests.deploy.conftest import (
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    SHARED_COMPOSE_FILE,
    check_cli_command,
    cli_option_default,
    copy_compose_project,
    parse_duration,
    run_compose_config,
    settings_env_names,
)

APP_SERVICES = ("api", "worker", "importer")


def _environment(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):  # KEY=VALUE list form
        environment = dict(item.split("=", 1) for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def _volume_mounts(service: dict) -> dict[str, str]:
    """target -> source of a service's volumes, short (`src:dst[:mode]`) or long form."""
    mounts = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source"), volume["target"]
        mounts[target] = source
    return mounts


def _healthcheck_text(service: dict) -> str:
    test = (service.get("healthcheck") or {}).get("test") or []
    return " ".join(test) if isinstance(test, list) else str(test)


def test_compose_file_validates(compose_config):
    assert set(compose_config["services"]) >= {"redis", "api", "worker"}, compose_config["services"].keys()


def test_compose_refuses_to_start_without_an_api_token(tmp_path):
    project = copy_compose_project(tmp_path / "no-token", token=None)
    assert "S2C_API_TOKEN=\n" in (project / ".env").read_text(), ".env.example should leave the token empty"
    result = run_compose_config(project)
    assert result.returncode != 0, "docker-compose config accepted an .env without S2C_API_TOKEN"
    assert "S2C_API_TOKEN" in result.stderr, result.stderr


def test_every_s2c_name_is_a_setting(compose_config):
    known = settings_env_names()
    for name in APP_SERVICES:
        unknown = {
            key for key in _environment(compose_config["services"][name]) if key.startswith("S2C_")
        } - known
        assert not unknown, f"service {name} sets {sorted(unknown)}, which app/core/config.py does not read"
    referenced = set(re.findall(r"\$\{?(S2C_[A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    assert not referenced - known, (
        f"docker-compose.yml refers to unknown settings {sorted(referenced - known)}"
    )


def test_env_example_names_are_settings_or_compose_variables():
    compose_text = COMPOSE_FILE.read_text()
    names = re.findall(r"(?m)^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text())
    assert "S2C_API_TOKEN" in names
    known = settings_env_names()
    for name in names:
        if name.startswith("S2C_"):
            assert name in known, f".env.example sets {name}, which app/core/config.py does not read"
        else:
            assert re.search(rf"\$\{{{name}\b", compose_text), (
                f".env.example sets {name}, unused by docker-compose.yml"
            )


def test_services_run_commands_that_exist_in_the_cli(compose_config):
    for name in APP_SERVICES:
        command = compose_config["services"][name].get("command")
        assert isinstance(command, list), f"service {name} should run an explicit command, got {command!r}"
        check_cli_command(command)
    assert compose_config["services"]["worker"]["command"][:2] == ["sketch2color", "worker"]
    assert compose_config["services"]["importer"]["command"] == [
        "sketch2color",
        "worker",
        "--queues",
        "datasets",
    ]
    assert compose_config["services"]["api"]["command"][:2] == ["sketch2color", "serve"]


def test_api_port_matches_cli_dockerfile_and_healthchecks(compose_config):
    api = compose_config["services"]["api"]
    command = api["command"]
    port = (
        int(command[command.index("--port") + 1])
        if "--port" in command
        else cli_option_default("serve", "port")
    )
    assert port == cli_option_default("serve", "port") == 8000, "the API port should be serve's default, 8000"
    assert command[command.index("--host") + 1] == "0.0.0.0", (
        "inside a container the API must listen on 0.0.0.0"
    )
    targets = {
        int(entry["target"]) if isinstance(entry, dict) else int(str(entry).split(":")[-1])
        for entry in api["ports"]
    }
    published = {int(entry["published"]) for entry in api["ports"] if isinstance(entry, dict)}
    assert targets == {port}, f"api publishes container ports {targets}, but the API listens on {port}"
    assert published == {8000}, f"api should be published on host port 8000 by default, got {published}"
    health = _healthcheck_text(api)
    assert re.search(rf"127\.0\.0\.1:{port}/(healthz|readyz)", health), f"api healthcheck: {health!r}"
    dockerfile = DOCKERFILE.read_text()
    assert f"EXPOSE {port}" in dockerfile and f"127.0.0.1:{port}/healthz" in dockerfile


def test_data_volume_is_shared_at_the_data_dir(compose_config):
    volumes = compose_config.get("volumes") or {}
    for name in APP_SERVICES:
        service = compose_config["services"][name]
        data_dir = _environment(service).get("S2C_DATA_DIR")
        assert data_dir == "/data", (
            f"{name}: S2C_DATA_DIR should be /data (docs/ARCHITECTURE.md), got {data_dir!r}"
        )
        mounts = _volume_mounts(service)
        assert data_dir in mounts, f"{name} does not mount anything at S2C_DATA_DIR={data_dir}: {mounts}"
        assert mounts[data_dir] in volumes, (
            f"{name}: {data_dir} should be a named volume, got {mounts[data_dir]!r}"
        )
    sources = {_volume_mounts(compose_config["services"][name])["/data"] for name in APP_SERVICES}
    assert len(sources) == 1, f"api and worker must share one data volume, got {sources}"
    assert "ENV" in DOCKERFILE.read_text() and "S2C_DATA_DIR=/data" in DOCKERFILE.read_text()


def test_both_app_services_use_the_bundled_redis_and_the_env_file(compose_config, compose_raw):
    redis_port = 6379
    for name in APP_SERVICES:
        service = compose_config["services"][name]
        broker = urlsplit(_environment(service)["S2C_BROKER_URL"])
        assert (broker.scheme, broker.hostname, broker.port or redis_port) == (
            "redis",
            "redis",
            redis_port,
        ), broker
        raw_env_file = compose_raw["services"][name].get("env_file") or compose_raw["x-sketch2color"].get(
            "env_file"
        )
        assert raw_env_file == ".env" or raw_env_file == [".env"], (
            f"{name} should read .env, got {raw_env_file!r}"
        )
        depends = service.get("depends_on") or {}
        assert "redis" in depends, f"{name} should start after redis"
        assert isinstance(depends, dict) and depends["redis"].get("condition") == "service_healthy"
    assert _environment(compose_config["services"]["api"])["S2C_API_TOKEN"] == "test-token"


def test_redis_is_persistent_with_aof_and_healthcheck(compose_config):
    redis = compose_config["services"]["redis"]
    command = redis["command"] if isinstance(redis["command"], list) else redis["command"].split()
    assert command[command.index("--appendonly") + 1] == "yes", f"redis should run with AOF on: {command}"
    assert "/data" in _volume_mounts(redis), "redis should keep /data (its AOF) on a volume"
    assert _volume_mounts(redis)["/data"] in (compose_config.get("volumes") or {})
    assert "redis-cli" in _healthcheck_text(redis) and "ping" in _healthcheck_text(redis)
    assert re.fullmatch(r"redis:\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?", redis["image"]), (
        f"pin the redis image: {redis['image']}"
    )


def test_worker_reserves_an_nvidia_gpu_and_may_checkpoint_on_stop(compose_config):
    worker = compose_config["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        device.get("driver") == "nvidia" and "gpu" in device.get("capabilities", []) for device in devices
    ), devices
    assert parse_duration(worker.get("stop_grace_period", "10s")) >= 300, (
        "give the worker minutes to checkpoint"
    )
    health = worker.get("healthcheck") or {}
    assert (
        health.get("disable") is True
        or health.get("test") in (["NONE"], "NONE")
        or "celery" in _healthcheck_text(worker)
    ), f"the image's HTTP healthcheck cannot pass in the worker; override it: {health}"
    assert "ports" not in worker, "the worker serves nothing"


def test_api_and_worker_build_the_same_image(compose_config):
    api, worker = compose_config["services"]["api"], compose_config["services"]["worker"]
    assert api["image"] == worker["image"], (api["image"], worker["image"])
    for service in (api, worker):
        assert service["build"]["dockerfile"] == "Dockerfile.gpu"


def test_the_shared_override_runs_the_app_on_the_bundled_store_without_the_shared_volume(tmp_path):
    project = copy_compose_project(tmp_path / "shared", token="test-token")
    result = run_compose_config(project, overrides=(SHARED_COMPOSE_FILE.name,), profiles=("shared",))
    assert result.returncode == 0, f"docker-compose config rejected the shared override:\n{result.stderr}"
    services = yaml.safe_load(result.stdout)["services"]
    assert {"minio", "minio-bucket"} <= set(services), services.keys()
    known = settings_env_names()
    caches = set()
    for name in APP_SERVICES:
        environment = _environment(services[name])
        assert environment["S2C_STORAGE_URL"] == "s3://sketch2color/sketch2color", (name, environment)
        assert environment["S2C_S3_ENDPOINT_URL"] == "http://minio:9000", (name, environment)
        assert environment["S2C_BROKER_URL"].startswith("redis://"), "shared mode coordinates in Redis"
        assert {key for key in environment if key.startswith("S2C_")} <= known
        mounts = _volume_mounts(services[name])
        assert "s2c-data" not in mounts.values(), f"{name} still mounts the shared volume: {mounts}"
        caches.add(mounts["/data"])
    assert len(caches) == len(APP_SERVICES), f"each service has its own cache: {caches}"
    bucket_command = " ".join(services["minio-bucket"]["entrypoint"])
    assert "store/sketch2color" in bucket_command, "the bucket made is the one S2C_STORAGE_URL names"


def test_without_the_profile_and_override_nothing_of_shared_mode_runs(compose_config):
    for name in ("minio", "minio-bucket"):
        assert compose_config["services"][name].get("profiles") == ["shared"], name
    for name in APP_SERVICES:
        assert not _environment(compose_config["services"][name]).get("S2C_STORAGE_URL")
