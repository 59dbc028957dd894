"""The `sketch2color` command line, end to end, as a user runs it."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SKETCH2COLOR = str(Path(sys.executable).with_name("sketch2color"))


def _run(*arguments, check=True):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(
        [SKETCH2COLOR, *map(str, arguments)], capture_output=True, text=True, env=environment, timeout=600
    )
    if check:
        assert completed.returncode == 0, (
            f"sketch2color {' '.join(map(str, arguments))} failed:\n{completed.stdout}\n{completed.stderr}"
        )
    return completed


def test_make_synthetic_then_train_then_colorize(tmp_path):
    dataset, run_dir, models = tmp_path / "demo", tmp_path / "run", tmp_path / "models"
    _run("make-synthetic", dataset, "--train", 8, "--val", 2, "--seed", 3)
    assert (
        len(list((dataset / "train").glob("*.png"))) == 8 and len(list((dataset / "val").glob("*.png"))) == 2
    )

    trained = _run("train", dataset, "--run-dir", run_dir, "--steps", 6, "--batch-size", 2, "--ngf", 8, "--ndf", 8,
                   "--checkpoint-every", 3, "--export-every", 6, "--log-every", 3, "--models-dir", models)  # fmt: skip
    assert "step 6/6" in trained.stdout and "img/s" in trained.stdout, trained.stdout
    assert (models / "generator" / "1" / "manifest.json").is_file()

    sketch = tmp_path / "sketch.png"
    Image.new("RGB", (300, 120), "white").save(sketch)
    for model in (models, models / "generator", models / "generator" / "1"):
        output = tmp_path / "out.png"
        _run("colorize", model, sketch, output)
        with Image.open(output) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (256, 256))
    full = tmp_path / "full.png"
    drawn = _run("colorize", models, sketch, full, "--size", "original")
    assert "(300x120, png)" in drawn.stdout, drawn.stdout
    with Image.open(full) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (300, 120))

    resumed = _run("train", dataset, "--run-dir", run_dir, "--steps", 9, "--batch-size", 2, "--ngf", 8, "--ndf", 8,
                   "--checkpoint-every", 3, "--log-every", 3)  # fmt: skip
    assert "step 9/9" in resumed.stdout and "step 3/9" not in resumed.stdout, (
        "resume should continue from step 6"
    )


def test_cli_errors_are_one_clear_line(tmp_path):
    missing_model = _run("colorize", tmp_path, tmp_path / "in.png", tmp_path / "out.png", check=False)
    assert missing_model.returncode == 2 and "no published generator" in missing_model.stderr
    bad_dataset = _run(
        "train", tmp_path / "nothing", "--run-dir", tmp_path / "run", "--steps", 1, check=False
    )
    assert bad_dataset.returncode == 2 and "missing folder" in bad_dataset.stderr
    no_length = _run("train", tmp_path, "--run-dir", tmp_path / "run", check=False)
    assert no_length.returncode == 2 and "exactly one of epochs or steps" in no_length.stderr


def test_prepare_turns_pictures_into_pairs(tmp_path):
    pictures = tmp_path / "pictures"
    (pictures / "nested").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(5):
        picture = np.full((90, 160, 3), 230, np.uint8)
        picture[20:70, 30 + index * 10 : 90 + index * 10] = rng.integers(0, 255, 3)
        Image.fromarray(picture).save(pictures / ("nested" if index % 2 else ".") / f"p{index}.jpg")
    (pictures / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    completed = _run("prepare", pictures, tmp_path / "mine", "--val-fraction", 0.2)
    assert "wrote 4 train and 1 val pairs" in completed.stdout and "skipped 1" in completed.stdout, (
        completed.stdout
    )
    with Image.open(next((tmp_path / "mine" / "train").glob("*.png"))) as pair:
        assert pair.size == (512, 256)
        sketch = np.asarray(pair)[:, 256:]
    assert (sketch == sketch[..., :1]).all(), "the sketch half is gray"
    assert (sketch > 200).mean() > 0.8 and (sketch < 100).any(), "the sketch is dark lines on white paper"


def test_models_commands_choose_what_is_served_on_the_data_folder(tmp_path):
    from storage.serving_policy import gate
    from tests.conftest import publish_tiny_generator

    models = tmp_path / "models"
    for seed, l1 in ((1, 0.1), (2, 0.6)):
        publish_tiny_generator(models, seed=seed, dataset="shapes", val={"l1": l1},
                               gate=gate(models, "shapes", {"l1": l1}))  # fmt: skip
    listed = _run("models", "list", "--models-dir", models).stdout
    assert "served: 1" in listed and "held back" in listed, listed
    _run("models", "promote", 2, "--models-dir", models)
    assert "pinned to 2; served: 2" in _run("models", "list", "--models-dir", models).stdout
    _run("models", "label", "stable", 1, "--models-dir", models)
    refused = _run("models", "delete", 1, "--models-dir", models, check=False)
    assert refused.returncode == 2 and "labelled stable" in refused.stderr, refused.stderr
    config = _run("models", "tf-serving-config", "--models-dir", models).stdout
    assert "specific { versions: 1 versions: 2 }" in config and 'key: "stable" value: 1' in config, config
    _run("models", "pin", "latest", "--models-dir", models)
    _run("models", "label", "stable", "--delete", "--models-dir", models)
    assert "served: 1" in _run("models", "list", "--models-dir", models).stdout
    _run("models", "delete", 2, "--models-dir", models)
    missing = _run("models", "pin", 2, "--models-dir", models, check=False)
    assert missing.returncode == 2 and "not published" in missing.stderr, missing.stderr


def test_help_is_plain_and_readable_at_80_columns():
    from typer.testing import CliRunner

    from cli.main import cli

    groups = ([], ["models"], ["remote"], ["datasets"], ["remote", "datasets"])
    for command in (*groups, ["train"], ["colorize"], ["remote", "colorize"], ["models", "delete"]):
        shown = CliRunner().invoke(cli, [*command, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
        assert shown.exit_code == 0, shown.output
        text = shown.output
        usage = text.splitlines()[0]
        # Arguments read as people write them (`colorize MODEL IN OUT`), not Typer's `{MODEL} {IN} {OUT}`.
        assert "{" not in usage and all(name.isupper() for name in re.findall(r"\b[A-Z_]{2,}\b", usage)), (
            usage
        )
        assert "<bool>" not in text and "…" not in text and "╭" not in text, text
        assert max(len(line) for line in text.splitlines()) <= 80, text
        listed = text.split("Commands:")[1].splitlines() if "Commands:" in text else []
        cut = [line for line in listed if line.endswith("...")]
        assert not cut, f"{' '.join(command) or 'sketch2color'}: summaries cut mid-phrase:\n" + "\n".join(cut)
    assert (
        "sketch2color colorize [OPTIONS] MODEL IN OUT"
        in CliRunner().invoke(cli, ["colorize", "--help"]).output
    )


def test_train_draws_a_progress_bar_on_a_terminal_and_plain_lines_elsewhere(tmp_path):
    import pty

    dataset = tmp_path / "demo"
    _run("make-synthetic", dataset, "--train", 4, "--val", 2)
    arguments = ["train", str(dataset), "--steps", "4", "--batch-size", "2", "--ngf", "4", "--ndf", "4",
                 "--checkpoint-every", "4", "--log-every", "1"]  # fmt: skip
    terminal, child_end = pty.openpty()
    child = subprocess.Popen([SKETCH2COLOR, *arguments, "--run-dir", str(tmp_path / "tty")], stdin=child_end,
                             stdout=child_end, stderr=child_end, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
    os.close(child_end)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    assert child.wait(timeout=300) == 0, shown.decode(errors="replace")
    text = shown.decode(errors="replace")
    assert "\r" in text and "[" + "#" * 24 + "] step 4/4" in text, text[-2000:]
    plain = _run(*arguments, "--run-dir", tmp_path / "pipe").stdout
    assert "\r" not in plain and "#" not in plain
    assert [line.split()[1] for line in plain.splitlines() if line.startswith("step ")] == [
        "1/4",
        "2/4",
        "3/4",
        "4/4",
    ]


def test_datasets_import_a_folder_of_pictures_and_refuse_a_hostile_zip(tmp_path):
    import zipfile

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for seed in range(5):
        Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(
            pictures / f"{seed}.jpg"
        )
    environment = {"S2C_DATA_DIR": str(tmp_path / "data")}
    # Plain pictures without --from-pictures: one line in this command's words, and nothing left behind.
    forgot = _run_with(environment, "datasets", "import", pictures, "holiday", check=False)
    assert forgot.returncode == 2 and "add --from-pictures" in forgot.stderr, forgot.stderr
    assert len(forgot.stderr.splitlines()) == 1 and "kind=" not in forgot.stderr, forgot.stderr
    assert "holiday" not in _run_with(environment, "datasets", "list").stdout
    done = _run_with(
        environment, "datasets", "import", pictures, "holiday", "--from-pictures", "--val-fraction", 0.2
    )
    assert "dataset holiday: 4 train and 1 val pairs" in done.stdout, done.stdout
    assert len(list((tmp_path / "data" / "datasets" / "holiday" / "train").glob("*.png"))) == 4
    assert "holiday" in _run_with(environment, "datasets", "list").stdout

    hostile = tmp_path / "hostile.zip"
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("../../etc/cron.d/x.png", b"x")
    refused = _run_with(environment, "datasets", "import", hostile, "evil", check=False)
    assert refused.returncode == 2 and "path traversal" in refused.stderr, refused.stderr
    assert not (tmp_path / "data" / "datasets" / "evil").exists()
    taken = _run_with(environment, "datasets", "import", pictures, "holiday", "--from-pictures", check=False)
    assert taken.returncode == 2 and "exists already" in taken.stderr
    assert "deleted dataset holiday" in _run_with(environment, "datasets", "delete", "holiday").stdout
    assert not (tmp_path / "data" / "datasets" / "holiday").exists()
    gone = _run_with(environment, "datasets", "delete", "holiday", check=False)
    assert gone.returncode == 2 and "no dataset 'holiday'" in gone.stderr, gone.stderr


def _run_with(environment, *arguments, check=True):
    completed = subprocess.run(
        [SKETCH2COLOR, *map(str, arguments)], capture_output=True, text=True, timeout=600,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("S2C_")}, "TF_CPP_MIN_LOG_LEVEL": "2",
             **environment},
    )  # fmt: skip
    if check:
        assert completed.returncode == 0, f"{arguments} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


def test_fill_regions_paints_the_hinted_shape_in_the_hint_color_at_both_sizes(tmp_path):
    from tests.app.conftest import publish_tiny_hint_generator
    from tests.cli.shapes import draw_shape_and_hint, hint_filled, inside_box

    models = tmp_path / "models"
    publish_tiny_hint_generator(models, seed=4)  # untrained: the hint color inside comes from the fill alone
    sketch, hints = draw_shape_and_hint(tmp_path)
    outputs = {}
    for size, fill in (("original", "regions"), ("256", "regions"), ("original", "soft")):
        outputs[size, fill] = tmp_path / f"{size}-{fill}.png"
        drawn = _run(
            "colorize", models, sketch, outputs[size, fill], "--hints", hints, "--size", size, "--fill", fill
        )
        assert "(tensorflow)" in drawn.stdout, drawn.stdout  # no ONNX copy: the SavedModel, on TensorFlow
        noise = [
            line for line in drawn.stderr.splitlines() if line.startswith(("I0000", "E0000", "WARNING: All"))
        ]
        assert not noise, "TensorFlow's start-up lines reach the terminal:\n" + "\n".join(noise)
    for size in ("original", "256"):
        share = hint_filled(inside_box(outputs[size, "regions"]))
        assert share == 1.0, f"--size {size} --fill regions: only {share:.0%} of the box has the hint color"
    soft = hint_filled(inside_box(outputs["original", "soft"]))
    assert soft < 0.9, f"--fill soft is the model's own colors, not a flat fill: {soft:.0%} in the hint color"


def test_a_bad_fill_value_is_refused_with_the_choices(tmp_path):
    refused = _run(
        "colorize", tmp_path, tmp_path / "in.png", tmp_path / "out.png", "--fill", "flat", check=False
    )
    assert refused.returncode == 2, refused.stderr
    assert "--fill" in refused.stderr and "regions" in refused.stderr and "soft" in refused.stderr, (
        refused.stderr
    )


def test_colorize_writes_the_layers_as_psd_with_format_or_as_ora_by_the_extension(tmp_path):
    from psd_tools import PSDImage

    from tests.app.conftest import publish_tiny_hint_generator
    from tests.layered import SIZE, assert_close, drawn_sketch, hint_dots, ora_structure, pixels

    models = tmp_path / "models"
    publish_tiny_hint_generator(models, seed=4)
    drawn_sketch().save(tmp_path / "sketch.png")
    hint_dots().save(tmp_path / "hints.png")
    sketch, hints = tmp_path / "sketch.png", tmp_path / "hints.png"
    options = ("--hints", hints, "--size", "original")
    done = _run("colorize", models, sketch, tmp_path / "layers.out", *options, "--format", "psd")
    assert "layers hints, lines, shading, flats" in done.stdout, done.stdout
    _run("colorize", models, sketch, tmp_path / "picture.png", *options)
    _run("colorize", models, sketch, tmp_path / "layers.ora", *options)  # the format from the extension

    document = PSDImage.open(tmp_path / "layers.out")
    assert [layer.name for layer in reversed(list(document))] == ["hints", "lines", "shading", "flats"]
    assert all(layer.size == SIZE for layer in document)
    picture = pixels(Image.open(tmp_path / "picture.png"))
    assert_close(pixels(document.topil()), picture, "the CLI's PSD against its PNG")
    layers, archive = ora_structure((tmp_path / "layers.ora").read_bytes())
    assert [layer["name"] for layer in layers] == ["hints", "lines", "shading", "flats"]
    assert_close(pixels(archive.read("mergedimage.png")), picture, "the CLI's ORA")


def test_a_bad_format_value_is_refused_with_the_choices(tmp_path):
    refused = _run(
        "colorize", tmp_path, tmp_path / "in.png", tmp_path / "out.png", "--format", "tiff", check=False
    )
    assert refused.returncode == 2 and "--format" in refused.stderr and "psd" in refused.stderr, (
        refused.stderr
    )


def test_colorize_runs_the_onnx_copy_without_tensorflow_and_draws_what_the_saved_model_does(tmp_path):
    """A one-off colorize of a version with an ONNX copy starts no TensorFlow (seconds instead of half a
    minute on a slow machine): here TensorFlow cannot even be imported, and the picture is the SavedModel's."""
    import keras

    from model.export import load_serving_function, publish_generator
    from model.imageio import load_hint_layers, load_sketch_and_original
    from model.networks import build_generator
    from tests.cli.shapes import draw_shape_and_hint
    from tests.conftest import TINY_WIDTH

    keras.utils.set_random_seed(5)
    models = tmp_path / "models"
    published = publish_generator(build_generator(TINY_WIDTH, hints=True), models, {}, onnx=True)
    assert (published.path / "model.onnx").is_file(), "the onnx extra is part of the test environment"
    sketch, hints = draw_shape_and_hint(tmp_path)
    blocked = tmp_path / "no-tensorflow"
    (blocked / "tensorflow").mkdir(parents=True)
    (blocked / "tensorflow" / "__init__.py").write_text(
        "raise ImportError('colorize must not load TensorFlow')"
    )
    output = tmp_path / "out.png"
    environment = {"PYTHONPATH": os.pathsep.join([str(blocked), os.environ.get("PYTHONPATH", "")])}
    done = _run_with(environment, "colorize", models, sketch, output, "--hints", hints, "--fill", "soft")
    assert f"with model {published.path} (onnxruntime)" in done.stdout and done.stderr == "", done

    square, _ = load_sketch_and_original(sketch)
    hint_layer, _ = load_hint_layers(hints, None)
    expected = load_serving_function(published.path)(square[np.newaxis], hint_layer[np.newaxis]).numpy()[0]
    got = np.asarray(Image.open(output).convert("RGB")).astype(int)
    agreement = (np.abs(got - expected.astype(int)) <= 1).mean()
    assert agreement >= 0.999, f"the ONNX copy's picture agrees with the SavedModel's on only {agreement:.2%}"
