"""Routes: the browser page. One static page (HTML, CSS, JS modules under app/web/) that talks to the JSON API."""

from importlib import resources
from pathlib import PurePosixPath

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from app.api.deps import SettingsDep

router = APIRouter(include_in_schema=False)

# Served by suffix: module scripts run only when served as JavaScript. index.html is served at "/" only.
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
NO_CACHE = {"Cache-Control": "no-cache"}


def _web_folder() -> resources.abc.Traversable:
    return resources.files("app").joinpath("web")


def _read_asset(name: str) -> str:
    return _web_folder().joinpath(name).read_text(encoding="utf-8")


def _asset_names() -> set[str]:
    """The files of app/web/ that /web/{name} serves: only names listed there, never a path built from the request."""
    return {
        entry.name
        for entry in _web_folder().iterdir()
        if entry.is_file() and PurePosixPath(entry.name).suffix in MEDIA_TYPES
    }


@router.get("/", response_class=HTMLResponse)
async def index(settings: SettingsDep) -> HTMLResponse:
    """Draw or upload a sketch and colorize it; follow training jobs."""
    return HTMLResponse(
        _read_asset("index.html"), headers={**NO_CACHE, **frame_headers(settings.frame_ancestors)}
    )


# CSP keywords are quoted; a shell or an env file easily strips the quotes (S2C_FRAME_ANCESTORS='self').
KEYWORDS = {"self": "'self'", "none": "'none'"}


def frame_headers(frame_ancestors: str) -> dict[str, str]:
    """Who may frame the page (S2C_FRAME_ANCESTORS, CSP `frame-ancestors` sources; "*" or empty: anyone, no
    header). The page can delete models and launch training, so by default only its own origin may frame it;
    X-Frame-Options says the same to older browsers where it can ('self', 'none')."""
    sources = " ".join(KEYWORDS.get(source.lower(), source) for source in frame_ancestors.split())
    if sources in ("", "*"):
        return {}
    headers = {"Content-Security-Policy": f"frame-ancestors {sources}"}
    legacy = {"'self'": "SAMEORIGIN", "'none'": "DENY"}.get(sources.lower())
    if legacy is not None:
        headers["X-Frame-Options"] = legacy
    return headers


@router.get("/web/{name}")
async def asset(name: str) -> Response:
    if name not in _asset_names():
        raise HTTPException(404, f"no asset named {name!r}")
    media_type = MEDIA_TYPES[PurePosixPath(name).suffix]
    return Response(_read_asset(name), media_type=media_type, headers=NO_CACHE)


@router.get("/favicon.ico")
async def favicon() -> Response:
    """Browsers ask for it on every visit: the page's icon, not a 404 in the console."""
    return Response(_read_asset("favicon.svg"), media_type=MEDIA_TYPES[".svg"], headers=NO_CACHE)
