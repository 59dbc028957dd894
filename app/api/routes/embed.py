"""Routes: the embeddable widget, `<sketch-colorizer>`, and its client, as ES modules any site can load with one
script tag (app/embed/; the same files make the npm package clients/js).

Two URLs per file. `/embed/sketch2color.js` is always the current build: browsers revalidate it on every load
(a 304 while it is unchanged). `/embed/<digest>/sketch2color.js`, the digest naming the build's content (the
unversioned answer's `Link` header gives it), never changes and is cached for a year; its relative import
`./client.js` stays inside the same build. An old digest redirects to the current build, so a page that kept
one still works after an upgrade. The scripts are public code: every origin may load them (the API calls they
make are what S2C_CORS_ORIGINS governs).
"""

import hashlib
from importlib import resources

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

router = APIRouter(include_in_schema=False)

ENTRY = "sketch2color.js"
MEDIA_TYPE = "text/javascript; charset=utf-8"
REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
# Public code for any page: module scripts are fetched with CORS, and pages with COEP need CORP.
SHARED = {
    "Access-Control-Allow-Origin": "*",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "X-Content-Type-Options": "nosniff",
}


def embed_files() -> dict[str, bytes]:
    """The served files by name: only the .js files of app/embed/, never a path built from a request."""
    folder = resources.files("app").joinpath("embed")
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith(".js")
    }


def build_digest(files: dict[str, bytes]) -> str:
    """A name for this build's content: it changes whenever any file does."""
    hasher = hashlib.sha256()
    for name in sorted(files):
        hasher.update(name.encode() + b"\0" + files[name] + b"\0")
    return hasher.hexdigest()[:16]


def _file(name: str, files: dict[str, bytes]) -> bytes:
    if name not in files:
        raise HTTPException(404, f"no embed script named {name!r}; the widget is /embed/{ENTRY}")
    return files[name]


@router.get("/embed/{name}")
async def current_script(name: str, request: Request) -> Response:
    """The current build, revalidated on every load (ETag)."""
    files = embed_files()
    body = _file(name, files)
    digest = build_digest(files)
    headers = {
        **SHARED,
        "Cache-Control": REVALIDATE,
        "ETag": f'"{digest}"',
        "Link": f'</embed/{digest}/{name}>; rel="canonical"',
    }
    if f'"{digest}"' in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=MEDIA_TYPE, headers=headers)


@router.get("/embed/{digest}/{name}")
async def versioned_script(digest: str, name: str) -> Response:
    """One build, cached for a year; an old build's URL redirects to the current one."""
    files = embed_files()
    body = _file(name, files)
    current = build_digest(files)
    if digest != current:
        return RedirectResponse(
            f"/embed/{current}/{name}", status_code=307, headers={**SHARED, "Cache-Control": REVALIDATE}
        )
    return Response(body, media_type=MEDIA_TYPE, headers={**SHARED, "Cache-Control": IMMUTABLE})
