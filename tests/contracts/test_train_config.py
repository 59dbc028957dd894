"""One hyper-parameter schema: the trainer's config, the API's launch body and the CLI's options are the same
fields with the same help text, so they cannot drift apart."""

import re

import pytest
import typer
from typer.testing import CliRunner

from contracts.train_config import TrainConfig

RUNNER = CliRunner()


def test_the_launch_body_is_the_trainer_config_plus_a_dataset():
    from app.api.routes.jobs import LAUNCH_BODY, JobLaunch

    schema = LAUNCH_BODY["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == set(TrainConfig.model_fields) | {"dataset"}
    for name, field in TrainConfig.model_fields.items():
        assert schema["properties"][name].get("description") == field.description, name
    assert schema.get("additionalProperties") is False, "unknown launch fields must be refused"
    assert schema["oneOf"] == [{"required": ["epochs"]}, {"required": ["steps"]}], "exactly one length"
    assert issubclass(JobLaunch, TrainConfig)


def test_every_trainer_parameter_is_a_cli_option_with_its_help():
    from cli.main import cli

    command = typer.main.get_command(cli).commands["train"]
    options = {parameter.name: parameter for parameter in command.params}
    for name, field in TrainConfig.model_fields.items():
        assert name in options, f"`sketch2color train` has no --{name.replace('_', '-')}"
        assert f"--{name.replace('_', '-')}" in options[name].opts
        assert field.description in options[name].help, (name, options[name].help)
        default = options[name].default
        default = getattr(default, "value", default)
        assert default == field.default, f"--{name}: CLI default {default!r}, trainer's {field.default!r}"


def test_the_cli_refuses_what_the_api_refuses(tmp_path):
    from cli.main import cli

    result = RUNNER.invoke(cli, ["train", str(tmp_path), "--run-dir", str(tmp_path / "run"), "--steps", "5",
                                 "--learning-rate", "0"])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert re.search(r"learning-rate: Input should be greater than 0", result.output), result.output
    result = RUNNER.invoke(
        cli, ["train", str(tmp_path), "--run-dir", str(tmp_path / "run"), "--norm", "group"]
    )
    assert result.exit_code == 2 and "group" in result.output, result.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one of epochs or steps"),
        ({"steps": 10, "epochs": 2}, "exactly one of epochs or steps"),
        ({"steps": 0}, "steps\n  Input should be greater than or equal to 1"),
        ({"steps": 5, "batch_size": 0}, "batch_size\n  Input should be greater than or equal to 1"),
        (
            {"steps": 5, "lr_decay_fraction": 1.5},
            "lr_decay_fraction\n  Input should be less than or equal to 1",
        ),
        ({"steps": 5, "norm": "group"}, "norm\n  Input should be 'instance' or 'batch'"),
        ({"steps": 5, "precision": "fp8"}, "precision\n  Input should be"),
        ({"steps": 5, "stepz": 1}, "stepz\n  Extra inputs are not permitted"),
    ],
)
def test_bad_config_is_refused(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**options)


def test_epochs_become_steps_in_one_place():
    assert TrainConfig(epochs=3, batch_size=4).total_steps(10) == 8  # ceil(3 * 10 / 4)
    assert TrainConfig(steps=7).total_steps(10) == 7
    assert TrainConfig(steps=7, lr=1e-3).learning_rate == 1e-3, "the API's alias `lr` is accepted"


def test_auto_precision_uses_bfloat16_units_only_where_they_win(tmp_path):
    from model.devices import choose_precision, cpu_has_bf16

    with_bf16 = tmp_path / "bf16"
    with_bf16.write_text("processor : 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile\n")
    without = tmp_path / "plain"
    without.write_text("processor : 0\nflags\t\t: fpu sse2 avx2\n")
    assert cpu_has_bf16(with_bf16) and not cpu_has_bf16(without) and not cpu_has_bf16(tmp_path / "missing")
    assert (
        choose_precision("float32", 64) == "float32"
        and choose_precision("mixed_bfloat16", 8) == "mixed_bfloat16"
    )
    assert choose_precision("auto", 8) == "float32", "tiny widths train faster in float32"
    expected = "mixed_bfloat16" if cpu_has_bf16() else "float32"
    assert choose_precision("auto", 64) == expected
