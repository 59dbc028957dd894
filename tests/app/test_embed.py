"""The embeddable widget's files, in process: served to any origin with a revalidated and a versioned URL, small,
loadable without a build step; and the JS client's generated types still match the API's OpenAPI document."""

import gzip
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.app.conftest import ALLOWED_ORIGIN, InProcessApp, Server, draw_sketch
from tests.support import REPO_ROOT

EMBED_DIR = REPO_ROOT / "app" / "embed"
CLIENT_DIR = REPO_ROOT / "clients" / "js"
ENTRY = "/embed/sketch2color.js"
GZIPPED_LIMIT = 40 * 1024
NODE_TIMEOUT_SECONDS = 120


def node_tool(name: str) -> Path:
    tool = CLIENT_DIR / "node_modules" / ".bin" / name
    assert tool.exists(), (
        f"{tool.relative_to(REPO_ROOT)} is missing: run `npm ci` in clients/js (./test.sh does it; it needs "
        "Debian's nodejs and npm)"
    )
    return tool


def test_the_widget_is_served_to_any_origin_revalidated_at_its_plain_url(colorize_app: InProcessApp) -> None:
    with colorize_app.client() as client:
        plain = client.get(ENTRY, headers={"Origin": "http://any-site.example"})
        allowed = client.get(ENTRY, headers={"Origin": ALLOWED_ORIGIN})
        assert plain.status_code == 200, plain.text
        unchanged = client.get(ENTRY, headers={"If-None-Match": plain.headers["etag"]})
    assert plain.headers["content-type"].startswith("text/javascript"), plain.headers
    assert plain.content == (EMBED_DIR / "sketch2color.js").read_bytes()
    assert plain.headers["access-control-allow-origin"] == "*", (
        "a module script from another origin loads only with CORS: the widget must load on any site"
    )
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN, allowed.headers
    assert plain.headers["cache-control"] == "no-cache", "the plain URL is always the current build"
    assert unchanged.status_code == 304 and not unchanged.content, (unchanged.status_code, unchanged.headers)


def test_the_versioned_url_is_cached_for_a_year_and_keeps_its_imports_in_the_same_build(
    colorize_app: InProcessApp,
) -> None:
    with colorize_app.client() as client:
        plain = client.get(ENTRY)
        link = re.fullmatch(
            r'<(/embed/([0-9a-f]{16})/sketch2color\.js)>; rel="canonical"', plain.headers["link"]
        )
        assert link, f"the plain answer names its versioned URL in Link: {plain.headers.get('link')!r}"
        versioned_url, digest = link.groups()
        versioned = client.get(versioned_url)
        imported = client.get(f"/embed/{digest}/client.js")
        old = client.get("/embed/0123456789abcdef/sketch2color.js", follow_redirects=False)
        missing = [client.get(path) for path in ("/embed/app.js", f"/embed/{digest}/index.html")]
        escape = client.get("/embed/..%2Fweb%2Fapp.js")
    assert versioned.status_code == 200 and versioned.content == plain.content
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable", versioned.headers
    assert versioned.headers["access-control-allow-origin"] == "*"
    assert imported.status_code == 200 and imported.content == (EMBED_DIR / "client.js").read_bytes()
    assert imported.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert old.status_code == 307 and old.headers["location"] == versioned_url, (
        "a page that kept an old build's URL gets the current build"
    )
    assert old.headers["cache-control"] == "no-cache"
    for answer in missing:
        assert answer.status_code == 404 and "sketch2color.js" in answer.json()["detail"], answer.text
    assert escape.status_code == 404, "only the files of app/embed/ are served"


def test_the_bundle_stays_under_40_kb_gzipped_and_needs_no_build_step() -> None:
    files = {path.name: path.read_bytes() for path in EMBED_DIR.glob("*.js")}
    assert set(files) == {"sketch2color.js", "client.js"}, sorted(files)
    gzipped = sum(len(gzip.compress(body, compresslevel=9)) for body in files.values())
    assert gzipped < GZIPPED_LIMIT, (
        f"the widget and its client are {gzipped} bytes gzipped, over {GZIPPED_LIMIT}"
    )
    for name, body in files.items():
        imports = re.findall(r'(?:import|export)\s[^;]*?\sfrom\s+"([^"]+)"', body.decode())
        for target in imports:
            assert target.startswith("./") and target[2:] in files, (
                f"{name} imports {target!r}: a browser resolves only relative imports of files served beside it"
            )


def test_the_npm_package_ships_the_served_files_at_one_version() -> None:
    package = json.loads((CLIENT_DIR / "package.json").read_text())
    lock = json.loads((CLIENT_DIR / "package-lock.json").read_text())
    client_source = (EMBED_DIR / "client.js").read_text()
    assert f'CLIENT_VERSION = "{package["version"]}"' in client_source, "package.json and client.js disagree"
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"], (
        "run npm install: stale lock"
    )
    for dependency, version in package["devDependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (
            f"{dependency} must be pinned exactly, not {version!r}"
        )
    for entry in package["exports"].values():
        if "default" in entry:
            assert (EMBED_DIR / Path(entry["default"]).name).exists(), entry
        assert (CLIENT_DIR / entry["types"]).exists(), entry


def test_the_generated_types_match_the_live_openapi_document(
    colorize_app: InProcessApp, tmp_path: Path
) -> None:
    """Regenerate types/schema.d.ts from the app's own OpenAPI document: any difference means the API changed
    and the client's types did not follow (`npm run generate` in clients/js, against a running server)."""
    with colorize_app.client() as client:
        document = client.get("/openapi.json")
    assert document.status_code == 200, document.text
    (tmp_path / "openapi.json").write_bytes(document.content)
    generated = tmp_path / "schema.d.ts"
    run = subprocess.run(
        [str(node_tool("openapi-typescript")), str(tmp_path / "openapi.json"), "--output", str(generated)],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
    )
    assert run.returncode == 0, f"openapi-typescript failed:\n{run.stdout}\n{run.stderr}"
    committed = CLIENT_DIR / "types" / "schema.d.ts"
    if generated.read_text() != committed.read_text():
        difference = subprocess.run(
            ["diff", "-u", str(committed), str(generated)], capture_output=True, text=True
        ).stdout
        pytest.fail(
            "clients/js/types/schema.d.ts is out of date with the API: regenerate it with "
            f"`OPENAPI=<server>/openapi.json npm run generate` in clients/js\n{difference[:4000]}"
        )


def test_the_client_types_compile_against_the_generated_schema() -> None:
    """tsc over the hand-written .d.ts files and code written against them (clients/js/test/usage.ts): a renamed
    schema, field or parameter breaks the compile."""
    run = subprocess.run(
        [str(node_tool("tsc")), "--project", "tsconfig.json"],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
    )
    assert run.returncode == 0, f"the client's types do not compile:\n{run.stdout}\n{run.stderr}"


def test_cors_preflight_allows_the_token_header_for_the_configured_origin_only(
    colorize_app: InProcessApp,
) -> None:
    """The widget's `token` attribute sends Authorization, which browsers ask about first (a preflight)."""
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    with colorize_app.client() as client:
        allowed = client.options("/colorize", headers={"Origin": ALLOWED_ORIGIN, **preflight})
        refused = client.options("/colorize", headers={"Origin": "http://other.example", **preflight})
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower(), allowed.headers
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers, (
        refused.headers
    )


NODE_CLIENT_SCRIPT = """
import { readFileSync } from "node:fs";
import { ApiError, NetworkError, Sketch2ColorError, createClient } from "%(client)s";

const client = createClient({ baseUrl: process.argv[2] });
const sketch = readFileSync(process.argv[3]);
const result = await client.colorize(sketch, { size: "original", fill: "soft", version: "1" });
const models = await client.listModels();
const errors = [];
for (const call of [
  () => client.colorize(sketch, { version: "99" }),
  () => client.colorize(new Uint8Array([1, 2, 3])),
  () => createClient({ baseUrl: "http://127.0.0.1:9" }).listModels(),
]) {
  try {
    await call();
    errors.push(null);
  } catch (error) {
    errors.push({ name: error.name, status: error.status, detail: error.detail, base: error instanceof Sketch2ColorError,
                  api: error instanceof ApiError, network: error instanceof NetworkError });
  }
}
console.log(JSON.stringify({ version: result.version, size: result.size, type: result.blob.type,
  bytes: result.blob.size, served: models.active_version, errors }));
"""


def test_the_client_colorizes_from_node_and_throws_the_apis_detail(server: Server, tmp_path: Path) -> None:
    """The same client.js in Node against a real server: results with their headers read, and each failure an
    exception of its own class carrying the API's detail."""
    script = tmp_path / "call.mjs"
    script.write_text(NODE_CLIENT_SCRIPT % {"client": (EMBED_DIR / "client.js").as_uri()})
    sketch = tmp_path / "sketch.png"
    draw_sketch(300, 200).save(sketch)
    run = subprocess.run(
        ["node", str(script), server.base_url, str(sketch)],
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
    )
    assert run.returncode == 0, f"the client failed in Node:\n{run.stdout}\n{run.stderr}"
    answer = json.loads(run.stdout)
    assert answer["version"] == 1 and answer["size"] == {"width": 300, "height": 200}, answer
    assert answer["type"] == "image/png" and answer["bytes"] > 0 and answer["served"] == 2, answer
    not_published, not_an_image, no_server = answer["errors"]
    assert not_published["api"] and not_published["status"] == 404 and "99" in not_published["detail"], answer
    assert not_an_image["name"] == "ApiError" and not_an_image["status"] == 415, not_an_image
    assert not_an_image["detail"] and not_an_image["base"], not_an_image
    assert no_server["network"] and no_server["name"] == "NetworkError" and no_server["base"], no_server
