"""`sketch2color datasets ...`: import a zip or a folder as a dataset on the data folder directly.

The same checks and import as `POST /datasets` (model/dataset_import.py, worker/imports.py), run here.
"""

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from cli.command_groups import CommandGroup
from cli.errors import fail as _fail
from cli.shared_options import DatasetSource, FromPictures, SketchSide, SplitSeed, ValFraction

datasets_cli = CommandGroup(
    help="Import, list and delete local datasets.\n\nIn the data folder ($S2C_DATA_DIR), without the API.",
)


@datasets_cli.command("import")
def import_dataset(
    source: DatasetSource,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The dataset's name under datasets/.")],
    from_pictures: FromPictures = False,
    sketch_side: SketchSide = "right",
    val_fraction: ValFraction = 0.05,
    seed: SplitSeed = 0,
    oversize: Annotated[str, typer.Option(help="Images over S2C_MAX_PIXELS: skip or fail.")] = "skip",
) -> None:
    """Import a zip or folder as dataset NAME.

    Pairs (color left, sketch right; in train/ and val/, or flat), or with --from-pictures plain color pictures.
    """
    from contracts import datasets
    from contracts.settings import get_settings
    from model.dataset_import import PICTURES_HINT, BadArchive, ImportLimits, inspect_archive, zip_folder
    from worker.imports import run_import

    settings = get_settings()
    if not source.exists():
        _fail(f"no such file or folder: {source}")
    options = {"kind": "pictures" if from_pictures else "pairs", "sketch_side": sketch_side,
               "val_fraction": val_fraction, "seed": seed, "oversize": oversize}  # fmt: skip
    try:
        datasets.new_import(settings.datasets_dir, name, options, archive_bytes=0)
    except (datasets.BadDatasetName, datasets.DatasetExists) as error:
        _fail(str(error))
    archive = datasets.archive_path(settings.datasets_dir, name)
    try:
        if source.is_dir():
            with tempfile.TemporaryDirectory() as scratch:
                shutil.move(zip_folder(source, Path(scratch) / "folder.zip"), archive)
        else:
            shutil.copyfile(source, archive)
        limits = ImportLimits(
            settings.max_dataset_files, settings.max_dataset_unpacked_bytes, settings.max_pixels
        )
        inspect_archive(archive, limits)
    except (BadArchive, OSError) as error:
        datasets.delete_dataset(settings.datasets_dir, name)
        _fail(f"{source}: {error}")
    # The importer's log line would say the reason a second time: here it is said once, below.
    logging.getLogger("sketch2color.worker").addHandler(logging.NullHandler())
    result = run_import(settings, name)
    if result["state"] != "ready":
        datasets.delete_dataset(settings.datasets_dir, name)  # nothing left behind: the name is free again
        reason = str(result.get("error")).replace(PICTURES_HINT, "for plain pictures add --from-pictures")
        _fail(f"cannot import {source}: {reason}")
    record = datasets.read_import(settings.datasets_dir, name) or {}
    skipped = record.get("skipped") or []
    typer.echo(
        f"dataset {name}: {result['counts']['train']} train and {result['counts']['val']} val pairs in "
        f"{settings.datasets_dir / name}"
        + (f" (skipped {len(skipped)}: {', '.join(skipped[:5])})" if skipped else "")
    )


@datasets_cli.command("list")
def list_datasets() -> None:
    """List datasets with their pair counts.

    Also imports that failed (through the API) and why; `datasets delete NAME` removes one.
    """
    from contracts import datasets
    from contracts.settings import get_settings

    folder = get_settings().datasets_dir
    for entry in datasets.list_datasets(folder):
        typer.echo(f"{entry['name']:<24} {entry['train']:>7} train {entry['val']:>6} val")
    imports = datasets.imports_dir(folder)
    for record_path in sorted(imports.glob("*.json")) if imports.is_dir() else []:
        record = datasets.read_import(folder, record_path.stem)
        if record and record["state"] == "failed":
            typer.echo(f"{record['name']:<24} failed: {record['error']}")


@datasets_cli.command("delete")
def delete_dataset(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A dataset, or a failed import.")],
) -> None:
    """Delete a dataset or a failed import.

    Refused while a job that is not finished trains on it, or while it is being imported.
    """
    from contracts import datasets, jobs
    from contracts.settings import get_settings

    settings = get_settings()
    folder = settings.datasets_dir
    try:
        datasets.check_dataset_name(name)
    except datasets.BadDatasetName as error:
        _fail(str(error))
    record = datasets.fail_if_abandoned(folder, name)
    if not (folder / name).is_dir() and record is None:
        _fail(f"no dataset {name!r} in {folder} (see `sketch2color datasets list`)")
    if record is not None and record["state"] == "importing":
        _fail(f"dataset {name!r} is being imported; wait for it to finish")
    users = [job.id for job in jobs.list_records(settings.runs_dir)
             if job.dataset == name and job.state not in jobs.FINAL_STATES]  # fmt: skip
    if users:
        _fail(f"dataset {name!r} is used by job {users[0]}; cancel it first")
    datasets.delete_dataset(folder, name)
    typer.echo(f"deleted dataset {name}")
