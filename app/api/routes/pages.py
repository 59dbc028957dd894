"""Routes: the browser page. One static page (HTML, CSS, JS under app/web/) that talks to the JSON API."""

from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)

ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
NO_CACHE = {"Cache-Control": "no-cache"}


def _read_asset(name: str) -> str:
    return resources.files("app").joinpath("web", name).read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    """Draw or upload a sketch and colorize it; follow training jobs."""
    return HTMLResponse(_read_asset("index.html"), headers=NO_CACHE)


@router.get("/web/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"no asset named {name!r}")
    return Response(_read_asset(name), media_type=ASSETS[name], headers=NO_CACHE)


@router.get("/favicon.ico")
async def favicon() -> Response:
    """Browsers ask for it on every visit: the page's icon, not a 404 in the console."""
    return Response(_read_asset("favicon.svg"), media_type=ASSETS["favicon.svg"], headers=NO_CACHE)
