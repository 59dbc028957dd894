"""`sketch2color remote datasets ...`: list, upload and delete the server's datasets (GET/POST/DELETE
/datasets), as `sketch2color datasets ...` does on a local data folder."""

import tempfile
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from cli.api_client import ApiClient, decode, detail
from cli.command_groups import CommandGroup
from cli.errors import fail
from cli.remote_options import DEFAULT_URL, Token, Url, call
from cli.shared_options import DatasetSource, FromPictures, SketchSide, SplitSeed, ValFraction

POLL_SECONDS = 1.0

remote_datasets_cli = CommandGroup(
    help="List, upload and delete the server's datasets.",
)


@remote_datasets_cli.command("list")
def list_datasets(url: Url = DEFAULT_URL, token: Token = None) -> None:
    """List the server's datasets with their pair counts.

    Also imports still running or failed.
    """
    for entry in call(ApiClient(url, token), "GET", "/datasets"):
        state = entry.get("state") or "ready"
        counts = f"{entry['train']:>7} train {entry['val']:>6} val" if state == "ready" else state
        typer.echo(f"{entry['name']:<24} {counts}")


@remote_datasets_cli.command("upload")
def upload(
    source: DatasetSource,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The dataset's name on the server.")],
    from_pictures: FromPictures = False,
    sketch_side: SketchSide = "right",
    val_fraction: ValFraction = 0.05,
    seed: SplitSeed = 0,
    oversize: Annotated[
        str, typer.Option(help="Images over the server's pixel limit: skip or fail.")
    ] = "skip",
    wait: Annotated[bool, typer.Option(help="Wait until the server has imported it.")] = True,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Upload a zip or folder as dataset NAME on the server.

    The same choices as `sketch2color datasets import`; a failed import is removed, so the name stays free.
    """
    from model.dataset_import import PICTURES_HINT, zip_folder

    if not source.exists():
        fail(f"no such file or folder: {source}")
    fields = {"name": name, "kind": "pictures" if from_pictures else "pairs", "sketch_side": sketch_side,
              "val_fraction": str(val_fraction), "seed": str(seed), "oversize": oversize}  # fmt: skip
    client = ApiClient(url, token)
    with tempfile.TemporaryDirectory() as scratch:
        archive = zip_folder(source, Path(scratch) / f"{name}.zip") if source.is_dir() else source
        try:
            status, _, body = client.post_files(
                "/datasets", [("archive", archive.name, archive.read_bytes(), "application/zip")],
                timeout=600, fields=fields,
            )  # fmt: skip
        except OSError as error:
            fail(f"cannot reach {url}: {error}")
    if status != 202:
        fail(f"POST /datasets answered {status}: {_own_words(detail(decode(body)), PICTURES_HINT)}")
    if not wait:
        typer.echo(f"uploaded {source} as dataset {name}; `remote datasets list` shows when it is ready")
        return
    record = _wait_for_import(client, name)
    if record["state"] != "ready":
        reason = (record.get("import") or {}).get("error")
        client.request("DELETE", f"/datasets/{quote(name, safe='')}")  # the name is free again
        fail(f"the server could not import {source}: {_own_words(str(reason), PICTURES_HINT)}")
    typer.echo(f"dataset {name}: {record['train']} train and {record['val']} val pairs on the server")


def _wait_for_import(client: ApiClient, name: str) -> dict:
    path = f"/datasets/{quote(name, safe='')}"
    while True:
        record = call(client, "GET", path)
        if record["state"] != "importing":
            return record
        time.sleep(POLL_SECONDS)


def _own_words(reason: str, pictures_hint: str) -> str:
    """The server names the choice of plain pictures as its form field does; here it is this command's flag."""
    return reason.replace(pictures_hint, "for plain pictures add --from-pictures")


@remote_datasets_cli.command("delete")
def delete(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A dataset, or a failed import.")],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Delete a dataset or a failed import on the server.

    Refused while a job trains on it or it is being imported.
    """
    call(ApiClient(url, token), "DELETE", f"/datasets/{quote(name, safe='')}")
    typer.echo(f"deleted dataset {name}")
