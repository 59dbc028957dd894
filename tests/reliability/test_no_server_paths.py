"""What a client or a log reader sees holds no server secrets: a version's load error (GET /models, the 503 for
`POST /colorize?version=N`) names files relative to the data folder, never by their absolute path; the access
log shows a request's path without its query string (a token sent as `?token=` stays out of the log). In
process: the app over real services on a data folder whose version 1 cannot be loaded."""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.conftest import InProcessApp, draw_sketch, encode, in_process_app
from tests.support import wait_until

SKETCH = encode(draw_sketch(seed=25))


@pytest.fixture(scope="module")
def broken_version_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """Version 1 is complete on disk (a SavedModel file and a manifest) but its SavedModel is not one."""
    data_dir = tmp_path_factory.mktemp("server-paths") / "data"
    version_dir = data_dir / "models" / "generator" / "1"
    version_dir.mkdir(parents=True)
    (version_dir / "saved_model.pb").write_bytes(b"not a SavedModel")
    (version_dir / "manifest.json").write_text('{"job_id": null, "step": 0}')
    with in_process_app(data_dir) as running:
        store = running.services.model_store
        wait_until(lambda: 1 in store.failures, 60, lambda: f"version 1 to fail to load: {store.describe()}")
        yield running


def absolute_roots(data_dir: Path) -> list[str]:
    return [str(data_dir.absolute()), str(data_dir.resolve()), str(data_dir.parent.resolve())]


def test_a_load_error_names_files_relative_to_the_data_folder(broken_version_app: InProcessApp) -> None:
    data_dir = broken_version_app.data_dir
    with broken_version_app.client() as client:
        listed = client.get("/models")
        refused = client.post("/colorize?version=1", files={"file": ("s.png", SKETCH, "image/png")})
    assert listed.status_code == 200, listed.text
    error = listed.json()["versions"][0]["error"]
    assert error and "models/generator/1/saved_model.pb" in error, (
        f"the error should name the file: {error!r}"
    )
    assert refused.status_code == 503, refused.text
    detail = refused.json()["detail"]
    assert "models/generator/1/saved_model.pb" in detail, detail
    for public in (error, detail):
        leaked = [root for root in absolute_roots(data_dir) if root in public]
        assert not leaked, f"a public error holds the server's absolute path {leaked}: {public!r}"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_access_log_leaves_query_strings_out(broken_version_app: InProcessApp) -> None:
    """The app (created by the fixture, as uvicorn's factory creates it) filters uvicorn's access logger; a line
    is logged here the way uvicorn logs each request (its h11 and httptools protocols: client, method, path
    with query, HTTP version, status)."""
    access = logging.getLogger("uvicorn.access")
    lines = Lines()
    access.addHandler(lines)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        line = '%s - "%s %s HTTP/%s" %d'
        access.info(line, "127.0.0.1:50000", "POST", "/colorize?version=1&token=s3cret-token", "1.1", 401)
        access.info(line, "127.0.0.1:50001", "DELETE", "/models/7", "1.1", 404)
    finally:
        access.removeHandler(lines)
        access.setLevel(level)
    assert len(lines.lines) == 2, lines.lines
    redacted, plain = lines.lines
    assert "s3cret-token" not in redacted and "version=1" not in redacted, f"the query was logged: {redacted}"
    assert '"POST /colorize?' in redacted and "401" in redacted, (
        f"the path and status should stay: {redacted}"
    )
    assert plain == '127.0.0.1:50001 - "DELETE /models/7 HTTP/1.1" 404', plain
