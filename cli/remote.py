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
from urllib.parse import quote, urlencode

import typer

from cli.api_client import ApiClient, decode, detail
from cli.choices import (
    FileFormat,
    Fill,
    FillOption,
    FormatFromExtension,
    FormatOption,
    Lines,
    LinesOption,
    ResultPath,
    ResultSize,
    SizeOption,
    file_format,
)
from cli.command_groups import CommandGroup
from cli.errors import fail as _fail
from cli.remote_datasets import remote_datasets_cli
from cli.remote_options import DEFAULT_URL, Token, Url, call, number
from cli.schema_options import with_options_of
from cli.shared_options import DeleteLabel, LabelName, LabelVersion
from contracts.train_config import TrainConfig

remote_cli = CommandGroup(
    help="Use a sketch2color server over HTTP.\n\n"
    "Colorize, upload datasets, launch and follow jobs, choose the served version.",
)


@remote_cli.command()
def colorize(
    input_image: Annotated[Path, typer.Argument(metavar="IN", help="The sketch.")],
    output_image: ResultPath,
    size: SizeOption = ResultSize.square,
    lines: LinesOption = Lines.keep,
    fill: FillOption = Fill.regions,
    hints: Annotated[
        Path | None,
        typer.Option(
            help="Color hints: an RGBA PNG over the sketch (best its size), transparent except where a color "
            "is painted; the version must accept hints (remote models says which)."
        ),
    ] = None,
    version: Annotated[str | None, typer.Option(help="A version number or label (default: served).")] = None,
    output_format: FormatFromExtension = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Colorize a sketch on the server.

    POST /colorize with the sketch and any hints; writes the picture, or its layers as a PSD, OpenRaster or
    zip file.
    """
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
def jobs(url: Url = DEFAULT_URL, token: Token = None) -> None:
    """List the server's jobs, newest first."""
    for job in call(ApiClient(url, token), "GET", "/jobs"):
        progress = job.get("progress") or {}
        typer.echo(
            f"{job['id']}  {job['state']:<10} {job['dataset']:<12} step {progress.get('step')}/"
            f"{progress.get('total_steps')}  version {progress.get('version') or '-'}"
        )


def launch(
    dataset: Annotated[str, typer.Argument(metavar="DATASET", help="A dataset name on the server.")],
    url: Url = DEFAULT_URL,
    token: Token = None,
    **hyperparameters: Any,
) -> None:
    """Launch a training job on the server.

    The same options as `sketch2color train`.
    """
    body = {
        "dataset": dataset,
        **{name: value for name, value in hyperparameters.items() if value is not None},
    }
    job = call(ApiClient(url, token), "POST", "/jobs", body)
    typer.echo(f"launched job {job['id']} ({job['state']})")


remote_cli.command()(with_options_of(TrainConfig, launch))


@remote_cli.command()
def cancel(job_id: Annotated[str, typer.Argument(metavar="JOB")], url: Url = DEFAULT_URL,
           token: Token = None) -> None:  # fmt: skip
    """Cancel a job (it checkpoints first)."""
    job = call(ApiClient(url, token), "POST", f"/jobs/{job_id}/cancel")
    typer.echo(f"job {job['id']} is {job['state']}")


@remote_cli.command()
def resume(job_id: Annotated[str, typer.Argument(metavar="JOB")], url: Url = DEFAULT_URL,
           token: Token = None) -> None:  # fmt: skip
    """Resume a cancelled or failed job.

    It continues from its newest checkpoint, with the same step counter.
    """
    job = call(ApiClient(url, token), "POST", f"/jobs/{job_id}/resume")
    typer.echo(f"job {job['id']} is {job['state']}; it continues from its newest checkpoint")


@remote_cli.command()
def metrics(job_id: Annotated[str, typer.Argument(metavar="JOB")], url: Url = DEFAULT_URL,
            token: Token = None) -> None:  # fmt: skip
    """Show a job's losses and validation scores.

    One line per logged step; a published version and events (resumed, stopped) are marked.
    """
    answer = call(ApiClient(url, token), "GET", f"/jobs/{job_id}/metrics")
    lines = [(point["step"], _metrics_line(point)) for point in answer["metrics"]]
    lines += [(event["step"], f"{event['step']:>7}  {event['event']}") for event in answer["events"]]
    if not lines:
        typer.echo(f"job {job_id} has logged no step yet")
        return
    typer.echo(f"{'step':>7}  {'gen_gan':>7} {'gen_l1':>7} {'disc':>7} {'img/s':>6}  {'val_l1':>7} "
               f"{'psnr':>6} {'ssim':>6}")  # fmt: skip
    for _, line in sorted(lines, key=lambda entry: entry[0]):
        typer.echo(line)


def _metrics_line(point: dict[str, Any]) -> str:
    published = f"  published version {point['version']}" if point.get("version") else ""
    return (
        f"{point['step']:>7}  {number(point.get('gen_gan'), 3):>7} {number(point.get('gen_l1'), 4):>7} "
        f"{number(point.get('disc'), 3):>7} {number(point.get('imgs_per_s'), 1):>6}  "
        f"{number(point.get('val_l1'), 4):>7} {number(point.get('val_psnr'), 2):>6} "
        f"{number(point.get('val_ssim'), 3):>6}{published}"
    )


@remote_cli.command()
def models(url: Url = DEFAULT_URL, token: Token = None) -> None:
    """List the server's published versions and which one it serves."""
    answer = call(ApiClient(url, token), "GET", "/models")
    typer.echo(f"policy: {answer['policy']['served']}; served: {answer['active_version']}")
    for version in answer["versions"]:
        gate = version.get("gate") or {}
        val = version.get("val") or {}
        marks = [
            "served" if version["active"] else "",
            ("gate passed" if gate.get("passed") else "held back") if gate else "",
            "hints" if version.get("hints") else "",
            ", ".join(f"label {label}" for label in version.get("labels") or []),
        ]
        typer.echo(
            f"{version['version']:>5}  {version.get('dataset') or '-':<12} val_l1 {number(val.get('l1'), 4)}  "
            f"psnr {number(val.get('psnr'), 2)}  " + "; ".join(mark for mark in marks if mark)
        )


@remote_cli.command()
def serve(
    version: Annotated[str, typer.Argument(metavar="VERSION", help="A version number, or latest.")],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Choose the served version on the server.

    Pin a version number, or `latest` (the newest that passed the quality gate).
    """
    chosen: int | str = int(version) if version.isdigit() else version
    policy = call(ApiClient(url, token), "PUT", "/models/active", {"version": chosen})
    typer.echo(f"the server serves {policy['served']}")


@remote_cli.command()
def label(
    name: LabelName,
    version: LabelVersion = None,
    delete: DeleteLabel = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Point a label at a version on the server, or remove it.

    `remote colorize --version LABEL` (POST /colorize?version=LABEL) then uses it.
    """
    client = ApiClient(url, token)
    if delete:
        call(client, "DELETE", f"/models/labels/{quote(name, safe='')}")
        typer.echo(f"removed label {name}")
        return
    if version is None:
        _fail("give the version the label names, or --delete")
    call(client, "PUT", f"/models/labels/{quote(name, safe='')}", {"version": version})
    typer.echo(f"label {name} -> version {version}")


remote_cli.add_typer(remote_datasets_cli, name="datasets")


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
    size: SizeOption = ResultSize.original,
    lines: LinesOption = Lines.keep,
    fill: FillOption = Fill.regions,
    version: Annotated[str | None, typer.Option(help="A version number or label (default: served).")] = None,
    output_format: FormatOption = FileFormat.png,
    poll_seconds: Annotated[float, typer.Option(help="How often to ask for progress.")] = 1.0,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Colorize a chapter on the server's workers.

    POST /batches: upload the folder's pages, follow with a progress bar, download the colored pages into
    OUT_DIR (by their names under IN_DIR); failed pages are listed with why, and the exit status is 1 when
    any failed.
    """
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
            record = call(client, "GET", f"/batches/{record['id']}")


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
