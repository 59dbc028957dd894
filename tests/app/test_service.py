"""The service's other endpoints, in process: models, health, metrics, OpenAPI docs, CORS and the page's
framing headers."""

import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.app.conftest import ALLOWED_ORIGIN, InProcessApp, draw_sketch, encode, in_process_app, png_pixels


def test_models_lists_versions_with_manifests_and_the_active_one(colorize_app: InProcessApp) -> None:
    with colorize_app.client() as client:
        models = client.get("/models").json()
    assert models["active_version"] == 2
    assert [entry["version"] for entry in models["versions"]] == [2, 1], "newest first"
    newest = models["versions"][0]
    assert newest["active"] and newest["error"] is None
    assert newest["manifest"]["model"]["ngf"] == 8
    assert newest["manifest"]["signature"]["inputs"]["sketch"]["dtype"] == "uint8"


def test_health_and_readiness(colorize_app: InProcessApp) -> None:
    with colorize_app.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready", "model_version": 2}


def test_metrics_count_requests_by_route_and_status_and_show_the_active_version(
    colorize_app: InProcessApp,
) -> None:
    with colorize_app.client() as client:
        png_pixels(client.post("/colorize", files={"file": ("s.png", encode(draw_sketch()), "image/png")}))
        client.post("/colorize", content=b"", headers={"Content-Type": "image/png"})
        client.get("/models")
        client.get("/not-a-route-12345")
        text = client.get("/metrics").text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("s2c_http_requests_total", method="POST", route="/colorize", status="200") >= 1
    assert value("s2c_http_requests_total", method="POST", route="/colorize", status="400") >= 1
    assert value("s2c_http_request_duration_seconds_count", method="GET", route="/models", status="200") >= 1
    assert value("s2c_http_requests_total", method="GET", route="unmatched", status="404") >= 1
    assert not any("not-a-route" in str(labels) for _, labels in samples), "raw paths must not become labels"
    assert value("s2c_inference_batch_size_count") >= 1
    assert value("s2c_model_version") == 2


def test_methods_outside_the_standard_ones_share_one_metrics_label(colorize_app: InProcessApp) -> None:
    """The method is whatever a client sends: each odd one must not become a new metrics series."""
    with colorize_app.client() as client:
        for method in ("PURGE", "PROPFIND", "MKCOL"):
            assert client.request(method, "/models").status_code == 405
        text = client.get("/metrics").text
    methods = {
        sample.labels["method"]
        for family in text_string_to_metric_families(text)
        if family.name == "s2c_http_requests"
        for sample in family.samples
    }
    assert "other" in methods and methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "other"}, (
        methods
    )


def test_openapi_docs_describe_colorize(colorize_app: InProcessApp) -> None:
    with colorize_app.client() as client:
        docs = client.get("/docs")
        schema = client.get("/openapi.json").json()
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    colorize = schema["paths"]["/colorize"]["post"]
    assert "multipart/form-data" in colorize["requestBody"]["content"]
    assert "image/png" in colorize["requestBody"]["content"]
    assert {"200", "400", "413", "415", "503"} <= set(colorize["responses"])
    assert {"/models", "/healthz", "/readyz"} <= set(schema["paths"])


# What generated clients call each operation (FastAPI's default would be e.g. `colorize_colorize_post`).
OPERATION_IDS = {
    ("post", "/colorize"): "colorize",
    ("get", "/models"): "listModels",
    ("put", "/models/active"): "serveVersion",
    ("put", "/models/labels/{name}"): "setLabel",
    ("delete", "/models/labels/{name}"): "deleteLabel",
    ("delete", "/models/{version}"): "deleteVersion",
    ("get", "/models/{version}/sample.png"): "getVersionSample",
    ("get", "/models/tf-serving.config"): "getTfServingConfig",
    ("get", "/healthz"): "healthz",
    ("get", "/readyz"): "readyz",
    ("get", "/datasets"): "listDatasets",
    ("post", "/datasets"): "uploadDataset",
    ("get", "/datasets/{name}"): "getDataset",
    ("delete", "/datasets/{name}"): "deleteDataset",
    ("get", "/datasets/{name}/preview.png"): "getDatasetPreview",
    ("post", "/jobs"): "launchJob",
    ("get", "/jobs"): "listJobs",
    ("get", "/jobs/{job_id}"): "getJob",
    ("delete", "/jobs/{job_id}"): "deleteJob",
    ("post", "/jobs/{job_id}/cancel"): "cancelJob",
    ("post", "/jobs/{job_id}/resume"): "resumeJob",
    ("get", "/jobs/{job_id}/metrics"): "getJobMetrics",
    ("get", "/jobs/{job_id}/samples/latest.png"): "getLatestJobSample",
    ("post", "/batches"): "createBatch",
    ("get", "/batches"): "listBatches",
    ("get", "/batches/{batch_id}"): "getBatch",
    ("get", "/batches/{batch_id}/result.zip"): "getBatchResult",
    ("get", "/batches/{batch_id}/pages"): "listBatchPages",
    ("get", "/batches/{batch_id}/pages/{index}/result"): "getBatchPageResult",
    ("get", "/batches/{batch_id}/pages/{index}/original"): "getBatchPageOriginal",
    ("post", "/batches/{batch_id}/cancel"): "cancelBatch",
    ("delete", "/batches/{batch_id}"): "deleteBatch",
}
PNG_ROUTES = [
    ("post", "/colorize"),
    ("get", "/models/{version}/sample.png"),
    ("get", "/datasets/{name}/preview.png"),
    ("get", "/jobs/{job_id}/samples/latest.png"),
]


def test_openapi_gives_generated_clients_readable_names_and_binary_files(colorize_app: InProcessApp) -> None:
    with colorize_app.client() as client:
        schema = client.get("/openapi.json").json()
    operations = {
        (method, path): operation
        for path, entry in schema["paths"].items()
        for method, operation in entry.items()
    }
    ids = {key: operation["operationId"] for key, operation in operations.items()}
    assert ids == OPERATION_IDS, f"operation ids: {ids}"
    assert len(set(ids.values())) == len(ids), f"duplicate operation ids: {sorted(ids.values())}"
    not_camel = [name for name in ids.values() if not re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", name)]
    assert not not_camel, f"not camelCase: {not_camel}"
    binary = {"schema": {"type": "string", "format": "binary"}}
    for key in PNG_ROUTES:
        content = operations[key]["responses"]["200"]["content"]
        layered = ("image/vnd.adobe.photoshop", "image/openraster", "application/zip")
        media_types = ("image/png", *layered) if key == ("post", "/colorize") else ("image/png",)
        assert content == dict.fromkeys(media_types, binary), (key, content)
    config = operations[("get", "/models/tf-serving.config")]["responses"]["200"]["content"]
    assert config == {"text/plain": {"schema": {"type": "string"}}}, config


def test_openapi_documents_every_status_with_typed_schemas_and_the_token(colorize_app: InProcessApp) -> None:
    with colorize_app.client() as client:
        schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer", "an Authorize button"
    wanted = {
        ("post", "/jobs"): {"202", "400", "401", "404", "413", "422", "503"},
        ("get", "/jobs"): {"200", "401", "503"},
        ("get", "/jobs/{job_id}"): {"200", "401", "404", "503"},
        ("post", "/jobs/{job_id}/cancel"): {"202", "401", "404", "409", "503"},
        ("post", "/jobs/{job_id}/resume"): {"202", "401", "404", "409", "503"},
        ("delete", "/jobs/{job_id}"): {"200", "401", "404", "409"},
        ("get", "/jobs/{job_id}/metrics"): {"200", "401", "404"},
        ("put", "/models/active"): {"200", "401", "404", "422"},
        ("delete", "/models/{version}"): {"200", "401", "404", "409"},
        ("post", "/colorize"): {"200", "400", "404", "413", "415", "422", "503"},
        ("post", "/batches"): {"202", "401", "404", "413", "415", "422", "503", "507"},
        ("post", "/batches/{batch_id}/cancel"): {"202", "401", "404", "409"},
        ("delete", "/batches/{batch_id}"): {"200", "401", "404", "409"},
        ("get", "/batches/{batch_id}/pages/{index}/result"): {"200", "401", "404", "422"},
        ("get", "/batches/{batch_id}/pages/{index}/original"): {"200", "401", "404", "422"},
    }
    for (method, path), statuses in wanted.items():
        operation = schema["paths"][path][method]
        assert statuses <= set(operation["responses"]), f"{method} {path}: {sorted(operation['responses'])}"
        for status in statuses - {"200", "202"}:
            content = operation["responses"][status]["content"]["application/json"]["schema"]
            assert content == {"$ref": "#/components/schemas/ErrorDetail"}, (method, path, status, content)
    record = schema["components"]["schemas"]["Job"]
    assert {"state", "progress", "params", "attempts"} <= set(record["properties"])
    assert record["properties"]["state"] == {"$ref": "#/components/schemas/JobState"}
    states = schema["components"]["schemas"]["JobState"]["enum"]
    assert states == ["queued", "running", "cancelling", "succeeded", "failed", "cancelled"], states
    blobs = [
        name
        for name, entry in schema["components"]["schemas"].items()
        if entry.get("additionalProperties") is True
    ]
    assert not [name for name in blobs if name.startswith(("Job", "Progress", "Attempt", "Metrics"))], blobs
    assert "HTTPBearer" in str(schema["paths"]["/jobs"]["get"].get("security")), (
        "job routes declare the token"
    )
    batch = schema["components"]["schemas"]["Batch"]
    assert {"state", "version", "pages_total", "pages_done", "pages_failed", "failures"} <= set(
        batch["properties"]
    )
    batch_states = schema["components"]["schemas"]["BatchState"]["enum"]
    assert batch_states == ["queued", "running", "done", "failed", "cancelled"], batch_states
    assert "HTTPBearer" in str(schema["paths"]["/batches"]["post"].get("security")), (
        "batch routes need the token"
    )


def test_every_422_has_the_one_error_shape(colorize_app: InProcessApp) -> None:
    with colorize_app.client() as client:
        answers = [
            client.post("/colorize?version=abc%20def", content=b"x", headers={"Content-Type": "image/png"}),
            client.post("/colorize?size=huge", content=b"x", headers={"Content-Type": "image/png"}),
            client.get("/jobs?limit=many"),
            client.post("/jobs", json={"dataset": "shapes", "steps": 0}),
        ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert isinstance(answer.json()["detail"], str), answer.text


def test_cors_allows_the_configured_origin_only(colorize_app: InProcessApp) -> None:
    preflight_headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    with colorize_app.client() as client:
        allowed = client.options("/colorize", headers={"Origin": ALLOWED_ORIGIN, **preflight_headers})
        refused = client.options("/colorize", headers={"Origin": "http://evil.example", **preflight_headers})
        simple = client.post(
            "/colorize",
            content=encode(draw_sketch()),
            headers={"Origin": ALLOWED_ORIGIN, "Content-Type": "image/png"},
        )
        error = client.post(
            "/colorize", content=b"", headers={"Origin": ALLOWED_ORIGIN, "Content-Type": "image/png"}
        )
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-model-version" in simple.headers["access-control-expose-headers"].lower(), (
        "a browser page must be able to read X-Model-Version"
    )
    assert error.status_code == 400 and error.headers["access-control-allow-origin"] == ALLOWED_ORIGIN, (
        "error responses need CORS headers too, or a browser cannot read their detail"
    )


def test_the_page_may_be_framed_by_its_own_origin_only(colorize_app: InProcessApp) -> None:
    """The page deletes models and launches training: by default no other site may frame it (clickjacking)."""
    with colorize_app.client() as client:
        page = client.get("/")
        docs = client.get("/docs")
    assert page.status_code == 200, page.text
    assert page.headers.get("content-security-policy") == "frame-ancestors 'self'", page.headers
    assert page.headers.get("x-frame-options") == "SAMEORIGIN", page.headers
    assert "x-frame-options" not in docs.headers, "only the page is covered; the API answers are unchanged"


@pytest.mark.parametrize(
    ("frame_ancestors", "expected"),
    [
        ("*", {}),
        ("", {}),
        ("'none'", {"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"}),
        ("self", {"Content-Security-Policy": "frame-ancestors 'self'", "X-Frame-Options": "SAMEORIGIN"}),
        (
            "'self'  https://portal.example",
            {"Content-Security-Policy": "frame-ancestors 'self' https://portal.example"},
        ),
    ],
)
def test_s2c_frame_ancestors_sets_who_may_frame_the_page(frame_ancestors: str, expected: dict) -> None:
    from app.api.routes.pages import frame_headers

    assert frame_headers(frame_ancestors) == expected


def test_frame_ancestors_star_sends_no_framing_headers(tmp_path: Path) -> None:
    with in_process_app(tmp_path / "data", frame_ancestors="*") as running, running.client() as client:
        page = client.get("/")
    assert page.status_code == 200, page.text
    assert "content-security-policy" not in page.headers and "x-frame-options" not in page.headers, (
        page.headers
    )
