"""`sketch2color models ...`: the serving policy on the data folder directly, for a machine without the API.

The same file the API changes (storage/serving_policy.py), so a running API follows within one poll.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from cli.command_groups import CommandGroup
from cli.errors import fail as _fail
from cli.shared_options import DeleteLabel, LabelName, LabelVersion

if TYPE_CHECKING:
    from storage.serving_policy import ServingPolicy

models_cli = CommandGroup(
    help="Choose the served version in the data folder.\n\n"
    "List published versions and choose which one is served, on the data folder directly.",
)

ModelsDir = Annotated[
    Path | None, typer.Option(help="The models folder (default: $S2C_DATA_DIR/models).", show_default=False)
]


def _models_dir(models_dir: Path | None) -> Path:
    if models_dir is not None:
        return models_dir
    from contracts.settings import get_settings

    return get_settings().models_dir


@models_cli.command("list")
def list_models(models_dir: ModelsDir = None) -> None:
    """List published versions and which one is served.

    Each with its metrics, quality gate decision and labels.
    """
    from storage.serving_policy import labels_of, served_version
    from storage.versions import list_versions

    folder = _models_dir(models_dir)
    versions = list_versions(folder)
    policy = _read_policy(folder)
    served = served_version(versions, policy)
    choice = (
        "latest (newest that passed the gate)" if policy.served == "latest" else f"pinned to {policy.served}"
    )
    typer.echo(f"policy: {choice}; served: {served.version if served else 'none'}")
    for published in reversed(versions):
        manifest = published.manifest
        val = manifest.get("val") or {}
        gate = manifest.get("gate") or {}
        marks = [
            "served" if served and served.version == published.version else "",
            ("gate passed" if gate.get("passed") else "held back") if gate else "",
            ", ".join(f"label {label}" for label in labels_of(policy, published.version)),
        ]
        l1 = f"val_l1 {val['l1']:.4f}" if "l1" in val else "val_l1 -"
        typer.echo(
            f"{published.version:>5}  {manifest.get('created', '?')}  {manifest.get('dataset') or '-':<12} {l1}  "
            + "; ".join(mark for mark in marks if mark)
        )


@models_cli.command()
def pin(
    version: Annotated[
        str, typer.Argument(metavar="VERSION", help="A published version number, or `latest`.")
    ],
    models_dir: ModelsDir = None,
) -> None:
    """Serve this version, or `latest`.

    `latest`: the newest version that passed the quality gate.
    """
    from storage.serving_policy import DamagedPolicy, InvalidVersion, VersionNotPublished, pin

    folder = _models_dir(models_dir)
    if version != "latest" and not (version.isascii() and version.isdigit()):
        _fail(f"give a version number or `latest`, not {version!r}")
    chosen: int | Literal["latest"] = "latest" if version == "latest" else int(version)
    try:
        pin(folder, chosen)
    except VersionNotPublished as error:
        _fail(f"{error} in {folder} (see `sketch2color models list`)")
    except (InvalidVersion, DamagedPolicy) as error:  # 0: the same rule as PUT /models/active
        _fail(str(error))
    typer.echo(
        f"serving {'the newest version that passed the gate' if chosen == 'latest' else f'version {chosen}'}"
    )


@models_cli.command()
def promote(
    version: Annotated[int, typer.Argument(metavar="VERSION", help="A published version number.")],
    models_dir: ModelsDir = None,
) -> None:
    """Serve a version the quality gate held back.

    The same as `pin VERSION`.
    """
    pin(str(version), models_dir)


@models_cli.command()
def label(
    name: LabelName,
    version: LabelVersion = None,
    delete: DeleteLabel = False,
    models_dir: ModelsDir = None,
) -> None:
    """Point a label at a version, or remove it.

    `POST /colorize?version=LABEL` uses it; --delete removes it. Names that read as a version (`latest`,
    `v3`) are reserved for new labels, as in PUT /models/labels/NAME.
    """
    from storage.serving_policy import (
        DamagedPolicy,
        InvalidLabel,
        InvalidVersion,
        LabelNotFound,
        VersionNotPublished,
        check_label_name,
        check_new_label_name,
        unlabel,
    )
    from storage.serving_policy import label as set_label

    folder = _models_dir(models_dir)
    try:
        (check_label_name if delete else check_new_label_name)(name)  # an old reserved label can still go
    except InvalidLabel as error:
        _fail(str(error))
    if delete:
        try:
            unlabel(folder, name)
        except LabelNotFound:
            pass  # already gone: what was asked for holds
        except DamagedPolicy as error:
            _fail(str(error))
        typer.echo(f"removed label {name}")
        return
    if version is None:
        _fail("give the version the label names, or --delete")
    try:
        set_label(folder, name, version)
    except VersionNotPublished as error:
        _fail(f"{error} in {folder} (see `sketch2color models list`)")
    except (InvalidVersion, DamagedPolicy) as error:
        _fail(str(error))
    typer.echo(f"label {name} -> version {version}")


@models_cli.command()
def delete(
    version: Annotated[int, typer.Argument(metavar="VERSION", help="A published version number.")],
    models_dir: ModelsDir = None,
) -> None:
    """Delete a version that is not served or labelled."""
    from storage.serving_policy import PolicyError, delete_version

    try:
        delete_version(_models_dir(models_dir), version)
    except PolicyError as error:
        _fail(str(error))
    typer.echo(f"deleted version {version}")


@models_cli.command("tf-serving-config")
def tf_serving_config_command(
    base_path: Annotated[
        str, typer.Option(help="The models/generator folder as TF Serving sees it.")
    ] = "/models/generator",
    models_dir: ModelsDir = None,
) -> None:
    """Print the choice as a TF Serving model config.

    For TensorFlow Serving's --model_config_file.
    """
    from storage.serving_policy import InvalidBasePath, served_version, tf_serving_config
    from storage.versions import list_versions

    folder = _models_dir(models_dir)
    policy = _read_policy(folder)
    served = served_version(list_versions(folder), policy)
    try:
        config = tf_serving_config(policy, served.version if served else None, base_path)
    except InvalidBasePath as error:
        _fail(str(error))
    typer.echo(config, nl=False)


def _read_policy(folder: Path) -> "ServingPolicy":
    """The serving policy, or one clear line when its file is damaged."""
    from storage.serving_policy import DamagedPolicy, read_policy

    try:
        return read_policy(folder)
    except DamagedPolicy as error:
        _fail(str(error))
