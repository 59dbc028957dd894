"""`sketch2color remote ...`: drive a sketch2color server from another machine, without curl.

Standard library HTTP only (cli/api_client.py); the server's answers and errors are shown as they come.
"""

import io
import mimetypes
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import typer

from cli.api_client import ApiClient, decode, detail
from cli.choices import (
    FILL_HELP,
    FORMAT_HELP,
    LINES_HELP,
    SIZE_HELP,
    FileFormat,
    Fill,
    Lines,
    ResultSize,
    file_format,
)
from cli.errors import fail as _fail
from cli.schema_options import with_options_of
from contracts.train_config import TrainConfig

remote_cli = typer.Typer(
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Use a sketch2color server over HTTP: colorize, follow and launch jobs, choose the served model.",
)
Url = Annotated[str, typer.Option(envvar="S2C_URL", help="The server's address.")]
Token = Annotated[
    str | None,
    typer.Option(envvar="S2C_API_TOKEN", help="The server's API token, if it has one.", show_default=False),
]


def _call(client: ApiClient, method: str, path: str, body: Any = None) -> Any:
    try:
        status, answer = client.request(method, path, body=body, timeout=60)
    except OSError as error:
        _fail(f"cannot reach {client.base_url}: {error}")
    if status >= 400:
        _fail(f"{method} {path} answered {status}: {detail(answer)}")
    return answer


@remote_cli.command()
def colorize(
    input_image: Annotated[Path, typer.Argument(metavar="IN", help="The sketch.")],
    output_image: Annotated[
        Path, typer.Argument(metavar="OUT", help="Where to write the picture (PNG) or the layered file.")
    ],
    size: Annotated[ResultSize, typer.Option(help=SIZE_HELP)] = ResultSize.square,
    lines: Annotated[Lines, typer.Option(help=LINES_HELP)] = Lines.keep,
    fill: Annotated[Fill, typer.Option(help=FILL_HELP)] = Fill.regions,
    hints: Annotated[
        Path | None,
        typer.Option(
            help="Color hints: an RGBA PNG over the sketch (best its size), transparent except where a color "
            "is painted; the version must accept hints (remote models says which)."
        ),
    ] = None,
    version: Annotated[str | None, typer.Option(help="A version number or label (default: served).")] = None,
    output_format: Annotated[
        FileFormat | None, typer.Option("--format", help=FORMAT_HELP, show_default=False)
    ] = None,
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """Colorize a sketch on the server (POST /colorize, the sketch and any hints as multipart fields); the
    picture, or its layers as a PSD, OpenRaster or zip file."""
    files = []
    for field, path in (("file", input_image), ("hints", hints)):
        if path is None:
            continue
        if not path.is_file():
            _fail(f"no file {path}")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        files.append((field, path.name, path.read_bytes(), content_type))
    chosen_format = file_format(output_format, output_image)
    query = {"size": size.value, "lines": lines.value, "fill": fill.value, "format": chosen_format.value}
    if version:
        query["version"] = version
    client = ApiClient(url, token)
    try:
        status, headers, body = client.post_files(f"/colorize?{urlencode(query)}", files)
    except OSError as error:
        _fail(f"cannot reach {url}: {error}")
    if status != 200:
        _fail(f"POST /colorize answered {status}: {detail(decode(body))}")
    output_image.write_bytes(body)
    size_header = {name.lower(): value for name, value in headers.items()}
    typer.echo(
        f"wrote {output_image} ({size_header.get('x-image-size', '?')}, {chosen_format.value}) with model "
        f"version {size_header.get('x-model-version', '?')}"
    )


@remote_cli.command()
def jobs(url: Url = "http://127.0.0.1:8000", token: Token = None) -> None:
    """The server's jobs, newest first."""
    for job in _call(ApiClient(url, token), "GET", "/jobs"):
        progress = job.get("progress") or {}
        typer.echo(
            f"{job['id']}  {job['state']:<10} {job['dataset']:<12} step {progress.get('step')}/"
            f"{progress.get('total_steps')}  version {progress.get('version') or '-'}"
        )


def launch(
    dataset: Annotated[str, typer.Argument(metavar="DATASET", help="A dataset name on the server.")],
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
    **hyperparameters: Any,
) -> None:
    """Launch a training job on the server (the same options as `sketch2color train`)."""
    body = {
        "dataset": dataset,
        **{name: value for name, value in hyperparameters.items() if value is not None},
    }
    job = _call(ApiClient(url, token), "POST", "/jobs", body)
    typer.echo(f"launched job {job['id']} ({job['state']})")


remote_cli.command()(with_options_of(TrainConfig, launch))


@remote_cli.command()
def cancel(job_id: Annotated[str, typer.Argument(metavar="JOB")], url: Url = "http://127.0.0.1:8000",
           token: Token = None) -> None:  # fmt: skip
    """Cancel a job (it checkpoints first)."""
    job = _call(ApiClient(url, token), "POST", f"/jobs/{job_id}/cancel")
    typer.echo(f"job {job['id']} is {job['state']}")


@remote_cli.command()
def models(url: Url = "http://127.0.0.1:8000", token: Token = None) -> None:
    """The server's published versions and which one it serves."""
    answer = _call(ApiClient(url, token), "GET", "/models")
    typer.echo(f"policy: {answer['policy']['served']}; served: {answer['active_version']}")
    for version in answer["versions"]:
        gate = version.get("gate") or {}
        l1 = (version.get("val") or {}).get("l1")
        typer.echo(
            f"{version['version']:>5}  {'served' if version['active'] else '      '}  "
            f"val_l1 {l1 if l1 is not None else '-'}  {'held back' if gate and not gate['passed'] else ''}"
            f"  {', '.join(version.get('labels') or [])}"
        )


@remote_cli.command()
def serve(
    version: Annotated[str, typer.Argument(metavar="VERSION", help="A version number, or latest.")],
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """Choose the served version on the server (pin it, or `latest`)."""
    chosen: int | str = int(version) if version.isdigit() else version
    policy = _call(ApiClient(url, token), "PUT", "/models/active", {"version": chosen})
    typer.echo(f"the server serves {policy['served']}")


PAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


def chapter_archive(in_dir: Path) -> tuple[bytes, int]:
    """The folder's images (pages, and `NAME.hints.png` hint layers) zipped by their paths under it."""
    buffer = io.BytesIO()
    pages = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # images do not compress
        for path in sorted(in_dir.rglob("*")):
            relative = path.relative_to(in_dir)
            if not path.is_file() or any(part.startswith(".") for part in relative.parts):
                continue
            if path.suffix.lower() in PAGE_SUFFIXES:
                archive.write(path, relative.as_posix())
                pages += not path.name.lower().endswith(".hints.png")
    return buffer.getvalue(), pages


@remote_cli.command()
def batch(
    in_dir: Annotated[
        Path, typer.Argument(metavar="IN_DIR", help="A folder of pages (NAME.hints.png: hints).")
    ],
    out_dir: Annotated[Path, typer.Argument(metavar="OUT_DIR", help="Where the colored pages go.")],
    size: Annotated[ResultSize, typer.Option(help=SIZE_HELP)] = ResultSize.original,
    lines: Annotated[Lines, typer.Option(help=LINES_HELP)] = Lines.keep,
    fill: Annotated[Fill, typer.Option(help=FILL_HELP)] = Fill.regions,
    version: Annotated[str | None, typer.Option(help="A version number or label (default: served).")] = None,
    output_format: Annotated[FileFormat, typer.Option("--format", help=FORMAT_HELP)] = FileFormat.png,
    poll_seconds: Annotated[float, typer.Option(help="How often to ask for progress.")] = 1.0,
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """Colorize a chapter on the server's workers (POST /batches): upload the folder's pages, follow with a
    progress bar, download the colored pages into OUT_DIR (by their names under IN_DIR); failed pages are
    listed with why, and the exit status is 1 when any failed."""
    if not in_dir.is_dir():
        _fail(f"no folder {in_dir}")
    archive, pages = chapter_archive(in_dir)
    if not pages:
        _fail(f"no pages ({', '.join(PAGE_SUFFIXES)}) under {in_dir}")
    query = {"size": size.value, "lines": lines.value, "fill": fill.value, "format": output_format.value}
    if version:
        query["version"] = version
    client = ApiClient(url, token)
    try:
        status, _, body = client.post_files(
            f"/batches?{urlencode(query)}",
            [("files", "chapter.zip", archive, "application/zip")],
            timeout=600,
        )
    except OSError as error:
        _fail(f"cannot reach {url}: {error}")
    if status != 202:
        _fail(f"POST /batches answered {status}: {detail(decode(body))}")
    record = decode(body)
    typer.echo(f"batch {record['id']}: {record['pages_total']} pages with model version {record['version']}")
    record = _follow(client, record, poll_seconds)
    written = _download(client, record["id"], out_dir)
    typer.echo(f"{record['state']}: wrote {written} pages to {out_dir}")
    for failure in record["failures"]:
        typer.echo(f"failed: {failure['name']}: {failure['reason']}", err=True)
    if record["state"] != "done" or record["failures"]:
        raise typer.Exit(1)


def _follow(client: ApiClient, record: dict[str, Any], poll_seconds: float) -> dict[str, Any]:
    """Poll the batch until it is final, with a progress bar of pages done or failed."""
    shown = 0
    with typer.progressbar(length=record["pages_total"], label="pages") as bar:
        while True:
            finished = record["pages_done"] + record["pages_failed"]
            bar.update(finished - shown)
            shown = finished
            if record["state"] in ("done", "failed", "cancelled"):
                return record
            time.sleep(poll_seconds)
            record = _call(client, "GET", f"/batches/{record['id']}")


def _download(client: ApiClient, batch_id: str, out_dir: Path) -> int:
    """Stream result.zip to a temporary file, then unpack it under `out_dir` (never outside it)."""
    request = urllib.request.Request(
        f"{client.base_url}/batches/{batch_id}/result.zip",
        headers={"Authorization": f"Bearer {client.token}"} if client.token else {},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as spool:
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                shutil.copyfileobj(response, spool, 1 << 20)
        except urllib.error.HTTPError as error:
            _fail(f"GET /batches/{batch_id}/result.zip answered {error.code}: {detail(decode(error.read()))}")
        except OSError as error:
            _fail(f"cannot download the results: {error}")
        spool.seek(0)
        root = out_dir.resolve()
        with zipfile.ZipFile(spool) as results:
            for name in results.namelist():
                target = (out_dir / name).resolve()
                if not target.is_relative_to(root):
                    _fail(f"the server sent a page named {name!r}, outside {out_dir}")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(results.read(name))
            return len(results.namelist())
