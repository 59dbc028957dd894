"""`sketch2color remote ...`: drive a sketch2color server from another machine, without curl.

Standard library HTTP only (cli/api_client.py); the server's answers and errors are shown as they come.
"""

import mimetypes
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
