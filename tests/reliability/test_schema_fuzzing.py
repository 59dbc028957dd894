"""Schemathesis against our own OpenAPI, with and without the token: no server error, and every answer's status,
content type, headers and body are what the schema documents. Seeded and bounded, loopback only."""

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import publish_tiny_generator
from tests.support import child_environment, start_uvicorn, wait_until

TOKEN = "fuzz-token"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance," \
         "response_headers_conformance"  # fmt: skip


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    publish_tiny_generator(data_dir / "models", seed=1)
    api, base_url = start_uvicorn(child_environment(data_dir, api_token=TOKEN), data_dir.parent)
    try:
        wait_until(lambda: httpx.get(f"{base_url}/readyz").status_code == 200, 120, "the API to be ready")
        yield base_url
    finally:
        api.stop()


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
def test_no_server_error_and_no_schema_violation(api: str, with_token: bool, tmp_path: Path) -> None:
    runner = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    header = f"Authorization: Bearer {TOKEN}" if with_token else "X-No-Token: 1"
    command = [runner, "run", f"{api}/openapi.json", "--checks", CHECKS, "--max-examples", "25", "--seed", "7",
               "--request-timeout", "30", "-H", header, "--no-color"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, f"schemathesis found failures:\n{report}"
    assert " passed" in report and "failed" not in report.split("Test cases:")[-1], report
