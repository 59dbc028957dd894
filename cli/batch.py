"""`sketch2color batch MODELS_DIR IN_DIR OUT_DIR`: colorize a chapter here, pages batched through the generator.

The same steps as the batch workers (model/page_result.py): pages read as POST /colorize reads them, eight at a
time through one generator call, each result file written as /colorize writes it. A bad page fails alone.
"""

from pathlib import Path, PurePosixPath
from typing import Annotated

import typer

from cli.choices import (
    FileFormat,
    Fill,
    FillOption,
    FormatOption,
    Lines,
    LinesOption,
    ResultSize,
    SizeOption,
)
from cli.errors import fail as _fail

PAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
HINTS_SUFFIX = ".hints.png"
PAGES_PER_CALL = 8


def chapter_pages(in_dir: Path) -> list[tuple[Path, Path | None]]:
    """The folder's pages (by path) with the hint layer beside each, when there is one."""
    pages = []
    for path in sorted(in_dir.rglob("*")):
        relative = path.relative_to(in_dir)
        hidden = any(part.startswith(".") for part in relative.parts)
        if hidden or not path.is_file() or path.name.lower().endswith(HINTS_SUFFIX):
            continue
        if path.suffix.lower() in PAGE_SUFFIXES:
            hints = path.with_name(path.stem + HINTS_SUFFIX)
            pages.append((path, hints if hints.is_file() else None))
    return pages


def batch(
    models_dir: Annotated[
        Path, typer.Argument(metavar="MODELS_DIR", help="A models folder (newest version).")
    ],
    in_dir: Annotated[
        Path, typer.Argument(metavar="IN_DIR", help="A folder of pages (NAME.hints.png: hints).")
    ],
    out_dir: Annotated[Path, typer.Argument(metavar="OUT_DIR", help="Where the colored pages go.")],
    size: SizeOption = ResultSize.original,
    lines: LinesOption = Lines.keep,
    fill: FillOption = Fill.regions,
    output_format: FormatOption = FileFormat.png,
) -> None:
    """Colorize a chapter's pages here, in batches.

    Every page of IN_DIR (NAME.hints.png: its hints) with a published generator, into OUT_DIR by the same
    names; failed pages are listed with why, and the exit status is 1 when any failed.
    """
    from contracts.settings import Settings
    from model.export import load_serving_function
    from model.page_result import colorize_pages, decode_page, result_file
    from storage.versions import resolve_model_path

    if not in_dir.is_dir():
        _fail(f"no folder {in_dir}")
    pages = chapter_pages(in_dir)
    if not pages:
        _fail(f"no pages ({', '.join(PAGE_SUFFIXES)}) under {in_dir}")
    try:
        version_path = resolve_model_path(models_dir)
    except FileNotFoundError as error:
        _fail(str(error))
    settings = Settings()
    serving_function = load_serving_function(version_path)

    def predict(sketches, hints):
        return serving_function(sketches, hints).numpy()

    failures: list[str] = []
    done = 0
    with typer.progressbar(length=len(pages), label="pages") as bar:
        for start in range(0, len(pages), PAGES_PER_CALL):
            chunk, decoded = pages[start : start + PAGES_PER_CALL], []
            for path, hints in chunk:
                try:
                    read = decode_page(path, hints, size.value, fill.value, output_format.value,
                                       serving_function.accepts_hints, settings.max_pixels)  # fmt: skip
                    decoded.append((path, read))
                except Exception as error:
                    failures.append(f"{path.relative_to(in_dir)}: {error}")
            for (path, read), colorized in zip(
                decoded, colorize_pages([r for _, r in decoded], predict), strict=True
            ):
                body, _ = result_file(size.value, output_format.value, colorized, read.sketch, read.original,
                                      lines.value, fill.value, read.hints, read.full_hints, settings.fill_gap)  # fmt: skip
                target = out_dir / PurePosixPath(path.relative_to(in_dir).as_posix()).with_suffix(
                    f".{output_format.value}"
                )
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body)
                done += 1
            bar.update(len(chunk))
    typer.echo(f"wrote {done} pages to {out_dir} with {version_path}")
    for failure in failures:
        typer.echo(f"failed: {failure}", err=True)
    if failures:
        raise typer.Exit(1)
