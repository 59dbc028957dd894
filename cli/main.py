"""The `sketch2color` command line. Heavy imports (TensorFlow, FastAPI, Celery) happen inside each command;
`train`'s options are generated from the one hyper-parameter schema (contracts/train_config.py)."""

import shutil
import sys
import warnings
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from cli.batch import batch
from cli.choices import (
    FileFormat,
    Fill,
    FillOption,
    FormatFromExtension,
    Lines,
    LinesOption,
    ResultPath,
    ResultSize,
    SizeOption,
    file_format,
)
from cli.command_groups import CommandGroup
from cli.datasets import datasets_cli
from cli.errors import fail as _fail
from cli.library_noise import drop_library_noise_from_stderr, quiet_library_loggers
from cli.models import models_cli
from cli.remote import remote_cli
from cli.schema_options import with_options_of
from contracts.job_record import Progress
from contracts.train_config import TrainConfig

cli = CommandGroup(
    name="sketch2color",
    help="Colorize black-and-white sketches with pix2pix, and train the models yourself.\n\n"
    "Start with `sketch2color up` (the page, the API and the workers) or `sketch2color COMMAND --help`.",
    add_completion=False,
    pretty_exceptions_enable=False,
)


class SyntheticColors(StrEnum):
    learnable = "learnable"
    random = "random"


@cli.command("make-synthetic")
def make_synthetic(
    out: Annotated[
        Path, typer.Argument(metavar="OUT", help="Dataset folder to write (train/ and val/ inside).")
    ],
    train: Annotated[int, typer.Option(min=1, help="Number of training pairs.")] = 400,
    val: Annotated[int, typer.Option(min=1, help="Number of validation pairs.")] = 40,
    seed: Annotated[int, typer.Option(help="Same seed, same pictures.")] = 0,
    colors: Annotated[
        SyntheticColors,
        typer.Option(
            help="learnable: each shape's color follows from its outline; random: only color hints can "
            "tell a model the colors (for training and checking hint models).",
        ),
    ] = SyntheticColors.learnable,
) -> None:
    """Draw a synthetic dataset of shapes.

    Pairs (color left, sketch right) of outlined, filled shapes, in train/ and val/.
    """
    from model.synthetic import make_synthetic_dataset

    counts = make_synthetic_dataset(out, train=train, val=val, seed=seed, colors=colors.value)
    typer.echo(f"wrote {counts['train']} train and {counts['val']} val pairs to {out}")


@cli.command()
def prepare(
    images_dir: Annotated[
        Path, typer.Argument(metavar="IMAGES", help="Folder of ordinary color images (searched recursively).")
    ],
    out: Annotated[Path, typer.Argument(metavar="OUT", help="Dataset folder to write.")],
    val_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of images kept for validation.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the train/val split.")] = 0,
) -> None:
    """Turn color pictures into a pair dataset.

    Each picture's line sketch is extracted with XDoG.
    """
    from model.sketchify import prepare_dataset

    try:
        counts = prepare_dataset(images_dir, out, val_fraction=val_fraction, seed=seed, progress=typer.echo)
    except ValueError as error:
        _fail(str(error))
    typer.echo(
        f"wrote {counts['train']} train and {counts['val']} val pairs to {out} (skipped {counts['skipped']})"
    )


def train(
    dataset: Annotated[Path, typer.Argument(metavar="DATASET", help="Dataset folder with train/ and val/.")],
    run_dir: Annotated[
        Path, typer.Option(help="Run folder: checkpoints, metrics, samples. Resumes if it has checkpoints.")
    ],
    models_dir: Annotated[
        Path | None, typer.Option(help="Publish generator versions to MODELS/generator/<version>/.")
    ] = None,
    **hyperparameters: Any,
) -> None:
    """Train pix2pix on a pair dataset.

    Checkpoints as it goes (a second run resumes) and publishes generator versions.
    """
    from contracts.train_config import TrainConfig, explain

    drop_library_noise_from_stderr()
    from model.train import train_pix2pix

    given = {name: value for name, value in hyperparameters.items() if value is not None}
    try:
        config = TrainConfig(**given)
    except ValidationError as error:
        _fail(explain(error).replace("_", "-") + " (see --help)")
    try:
        result = train_pix2pix(
            dataset,
            run_dir,
            config,
            models_dir=models_dir,
            on_progress=_print_progress,
        )
    except ValueError as error:
        _fail(str(error))
    typer.echo(f"{result.status} at step {result.step}; published versions: {result.versions or 'none'}")


cli.command()(with_options_of(TrainConfig, train))


def _print_progress(progress: Progress) -> None:
    """On a terminal, one line redrawn in place with a bar; into a file or pipe, one plain line per log point."""
    step, total = progress.step, progress.total_steps
    parts = [f"step {step}/{total}", f"epoch {progress.epoch}"]
    if progress.images_per_second:
        parts.append(f"{progress.images_per_second:.1f} img/s")
    if progress.eta_seconds is not None:
        parts.append(f"eta {_duration(progress.eta_seconds)}")
    if progress.losses is not None:
        losses = progress.losses
        parts.append(f"gen_gan {losses.gen_gan:.3f} gen_l1 {losses.gen_l1:.4f} disc {losses.disc:.3f}")
    if progress.val is not None:
        parts.append(f"val_l1 {progress.val.l1:.4f} psnr {progress.val.psnr:.2f}")
    line = " ".join(parts)
    if not sys.stdout.isatty():
        typer.echo(line)
        return
    width = 24
    filled = round(width * step / total) if total else 0
    bar = "[" + "#" * filled + "." * (width - filled) + "]"
    end = "\n" if total is None or step >= total else ""
    typer.echo(f"\r\x1b[2K{bar} {line}"[: shutil.get_terminal_size().columns + 8] + end, nl=False)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


@cli.command()
def colorize(
    model: Annotated[
        Path,
        typer.Argument(
            metavar="MODEL", help="A version folder, a models folder or models/generator (newest)."
        ),
    ],
    input_image: Annotated[
        Path, typer.Argument(metavar="IN", help="Sketch image (PNG, JPEG, WebP, BMP, GIF).")
    ],
    output_image: ResultPath,
    size: SizeOption = ResultSize.square,
    lines: LinesOption = Lines.keep,
    fill: FillOption = Fill.regions,
    hints: Annotated[
        Path | None,
        typer.Option(
            help="Color hints: an RGBA PNG over the sketch (best its size), transparent except where a color "
            "is painted; needs a version trained with hints."
        ),
    ] = None,
    output_format: FormatFromExtension = None,
) -> None:
    """Colorize one sketch with a published version.

    Optionally steered by color hints; writes the picture, or its layers as a PSD, OpenRaster or zip file.
    Runs the version's ONNX copy when it has one (no TensorFlow start-up), else its SavedModel.
    """
    import numpy as np

    from contracts.settings import Settings
    from model.fullsize import full_size_result, square_result
    from model.imageio import BadImage, load_hint_layers, load_sketch_and_original
    from model.layer_files import layered_file
    from model.layers import full_size_layers, square_layers
    from storage.versions import resolve_model_path

    try:
        gap = Settings().fill_gap
    except ValidationError as error:
        _fail(f"bad S2C_* setting: {error}")
    chosen_format = file_format(output_format, output_image)
    layered = chosen_format is not FileFormat.png
    # Hints at the sketch's size too where the full-size fill reads which regions they touch, or a layer
    # shows them.
    full_size = size is ResultSize.original and (fill is Fill.regions or layered)
    try:
        version_path = resolve_model_path(model)
        sketch, original = load_sketch_and_original(input_image)
    except (FileNotFoundError, BadImage) as error:
        _fail(str(error))
    hint_layer, full_hints = None, None
    if hints is not None:
        try:
            hint_layer, full_hints = load_hint_layers(hints, original.size if full_size else None)
        except (FileNotFoundError, BadImage) as error:
            _fail(f"{hints}: {error}")
    colorize_version, accepts_hints, engine = _load_version(version_path)
    if hint_layer is not None and not accepts_hints:
        _fail(f"version {version_path.name} was trained without color hints; leave out --hints")
    batch_hints = hint_layer[np.newaxis] if hint_layer is not None else None
    colorized = np.asarray(colorize_version(sketch[np.newaxis], batch_hints))[0]
    full = size is ResultSize.original
    if layered:
        if full:
            stack = full_size_layers(colorized, original, lines.value, fill.value, full_hints, gap)
        else:
            stack = square_layers(colorized, sketch, lines.value, fill.value, hint_layer, gap)
        output_image.write_bytes(layered_file(stack, chosen_format.value))
        width, height = stack.size
        what = f"{chosen_format.value}, layers {', '.join(layer.name for layer in stack.layers)}"
    else:
        if full:
            result = full_size_result(colorized, original, lines.value, fill.value, full_hints, gap)
        else:
            result = square_result(colorized, sketch, lines.value, fill.value, hint_layer, gap)
        result.save(output_image, format="PNG")
        width, height = result.size
        what = "png"
    typer.echo(f"wrote {output_image} ({width}x{height}, {what}) with model {version_path} ({engine})")


def _load_version(version_path: Path) -> tuple[Callable[..., Any], bool, str]:
    """(colorize(sketches, hints), whether it takes hints, the engine's name): the version's ONNX copy when it
    has one (no TensorFlow start-up), else its SavedModel on TensorFlow."""
    from model.onnx_engine import load_onnx_colorizer

    onnx = load_onnx_colorizer(version_path)
    if onnx is not None:
        return onnx, onnx.accepts_hints, "onnxruntime"
    drop_library_noise_from_stderr()
    from model.export import load_serving_function

    serving_function = load_serving_function(version_path)

    def colorize(sketches: Any, hints: Any = None) -> Any:
        return serving_function(sketches, hints).numpy()

    return colorize, serving_function.accepts_hints, "tensorflow"


@cli.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    log_level: Annotated[
        str, typer.Option(help="info, or debug to also log every successful GET (the page's polling).")
    ] = "info",
) -> None:
    """Run the HTTP API.

    Settings come from S2C_* environment variables.
    """
    import uvicorn

    from cli.exposure import exposure_warning
    from contracts.settings import Settings

    try:
        warning = exposure_warning(host, Settings().api_token)
    except ValidationError:  # bad settings: the app's start-up says which, below
        warning = None
    if warning is not None:
        typer.echo(warning, err=True)

    if log_level.lower() != "debug":
        drop_library_noise_from_stderr()
    # lifespan="on": a failure at start-up (say, an unreadable data folder) stops the server instead of
    # leaving it running without a model store.
    uvicorn.run("app.main:create_app", factory=True, host=host, port=port, log_level=log_level, lifespan="on")


@cli.command()
def up(
    host: Annotated[
        str, typer.Option(help="Address the API listens on (0.0.0.0: reachable from other machines).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    demo: Annotated[
        bool, typer.Option(help="With no generator published yet, train a small demo one.")
    ] = True,
    demo_steps: Annotated[int, typer.Option(min=1, help="Training steps of the demo job.")] = 600,
    demo_width: Annotated[
        int, typer.Option(min=1, help="Generator and discriminator width of the demo job.")
    ] = 16,
    demo_batch_size: Annotated[int, typer.Option(min=1)] = 4,
    demo_train: Annotated[
        int, typer.Option(min=1, help="Training pairs of the synthetic demo dataset.")
    ] = 400,
    demo_val: Annotated[
        int, typer.Option(min=1, help="Validation pairs of the synthetic demo dataset.")
    ] = 16,
    startup_timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the API to answer.")
    ] = 180.0,
    stop_timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for each part to stop before killing it.")
    ] = 600.0,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", help="Show everything: libraries' start-up lines and polling requests."),
    ] = False,
) -> None:
    """Run the whole system here: API, workers, importer.

    The API, a training worker, a dataset importer and a worker for chapters' pages (S2C_* settings); one
    that dies is restarted on its own; Ctrl-C stops them all.
    """
    from cli.demo import DemoConfig
    from cli.supervisor import Launcher
    from contracts.settings import get_settings

    demo_config = DemoConfig(
        enabled=demo, steps=demo_steps, width=demo_width, batch_size=demo_batch_size,
        train_pairs=demo_train, val_pairs=demo_val,
    )  # fmt: skip
    launcher = Launcher(
        get_settings(), host=host, port=port, demo=demo_config,
        startup_timeout=startup_timeout, stop_timeout=stop_timeout, echo=typer.echo, verbose=verbose,
    )  # fmt: skip
    raise typer.Exit(code=launcher.run())


@cli.command()
def worker(
    hostname: Annotated[str | None, typer.Option(help="Worker name, e.g. gpu0@%h.")] = None,
    loglevel: Annotated[
        str, typer.Option(help="debug (also libraries' lines), info, warning or error.")
    ] = "info",
    queues: Annotated[
        str,
        typer.Option(
            help="Comma-separated: training (GPU jobs), batches (chapters' pages) and/or datasets (imports of "
            "uploaded datasets; CPU only)."
        ),
    ] = "training",
    quiet: Annotated[
        bool,
        typer.Option("--quiet", help="Only job lines, warnings and errors: no Celery banner or chatter."),
    ] = False,
) -> None:
    """Run a training, chapter or dataset-import worker.

    Celery on one queue or several, one task at a time (S2C_* settings).

    Queue `training` runs training jobs, queue `batches` chapters' pages (POST /batches), queue `datasets`
    imports uploaded datasets (no TensorFlow needed).
    """
    from celery.exceptions import SecurityWarning

    from contracts.queue import BATCHES_QUEUE, DATASETS_QUEUE, TRAINING_QUEUE
    from worker.celery_app import app

    known = {TRAINING_QUEUE, BATCHES_QUEUE, DATASETS_QUEUE}
    if not set(queues.split(",")) <= known:
        _fail(f"--queues takes {', '.join(sorted(known))} (comma-separated), not {queues!r}")
    if loglevel.lower() != "debug":
        drop_library_noise_from_stderr()
        quiet_library_loggers(("celery", "kombu") if quiet else ())
    if quiet:
        # Celery's eight-line warning about root, in every worker; `up` says it once where it matters.
        warnings.filterwarnings("ignore", category=SecurityWarning)
    arguments = ["--quiet"] if quiet else []
    arguments += ["worker", "--pool", "solo", "--concurrency", "1", "--prefetch-multiplier", "1"]
    arguments += ["--queues", queues, "--loglevel", loglevel, "--without-mingle", "--without-gossip"]
    if hostname:
        arguments += ["--hostname", hostname]
    app.worker_main(arguments)


cli.command()(batch)
cli.add_typer(models_cli, name="models")
cli.add_typer(remote_cli, name="remote")
cli.add_typer(datasets_cli, name="datasets")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
