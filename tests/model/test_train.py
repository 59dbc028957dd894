import json

import numpy as np
import pytest
import tensorflow as tf

from contracts.job_record import Progress
from model.schedule import AUTO_LOG_SECONDS, Action, training_schedule
from model.train import Pix2PixTrainer, TrainConfig, train_pix2pix
from storage.serving_policy import GateDecision
from storage.versions import read_version

TINY = {"batch_size": 4, "ngf": 8, "ndf": 8, "log_every": 5, "onnx": False}  # ONNX: tests/model/test_onnx.py


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _mean_saturation(images, mask=None):
    hsv = tf.image.rgb_to_hsv((tf.convert_to_tensor(images) + 1.0) / 2.0).numpy()
    saturation = hsv[..., 1]
    return float(saturation[mask].mean() if mask is not None else saturation.mean())


def test_a_small_model_learns_to_color_synthetic_sketches(synthetic_dataset, tmp_path):
    # Measured on a 2-core CPU: val L1 0.89 before training, 0.105 after 300 steps (0.12 after 200); saturation
    # inside the shapes 0.69 (0.40 after 200; truth 0.72, sketch 0). The bounds below leave room for seeds and
    # machines.
    trainer = Pix2PixTrainer(
        synthetic_dataset, tmp_path / "run", TrainConfig(steps=300, checkpoint_every=300, **TINY)
    )
    before = trainer.evaluate()["l1"]
    result = trainer.fit()
    assert result.val is not None
    after = result.val.l1
    assert result.status == "finished" and result.step == 300
    assert after < 0.35 * before, (
        f"val L1 should fall below 35% in 300 steps: before {before:.3f}, after {after:.3f}"
    )

    outputs = trainer.generator(trainer.generator_input(trainer._val_sketches), training=False)
    truth_saturation = tf.image.rgb_to_hsv((trainer._val_targets + 1.0) / 2.0).numpy()[..., 1]
    shapes = truth_saturation > 0.3  # inside the colored shapes
    sketch_saturation = _mean_saturation(trainer._val_sketches)
    output_saturation = _mean_saturation(outputs, shapes)
    assert sketch_saturation < 0.01, "synthetic sketches are black on white"
    assert output_saturation > 0.25, (
        f"outputs inside shapes should be colored, saturation {output_saturation:.3f}"
    )


def test_resume_continues_step_counter_losses_and_optimizer_state(synthetic_dataset, tmp_path):
    run_dir = tmp_path / "run"
    first = Pix2PixTrainer(synthetic_dataset, run_dir, TrainConfig(steps=10, checkpoint_every=5, **TINY))
    first_result = first.fit()
    assert first_result.step == 10
    saved_optimizer = [variable.numpy().copy() for variable in first.generator_optimizer.variables]
    saved_val = first.evaluate()

    second = Pix2PixTrainer(synthetic_dataset, run_dir, TrainConfig(steps=20, checkpoint_every=5, **TINY))
    assert second.resumed_from_step == 10
    assert int(second.generator_optimizer.iterations.numpy()) == 10, "optimizer step count was not restored"
    for saved, restored in zip(saved_optimizer, second.generator_optimizer.variables, strict=True):
        np.testing.assert_array_equal(
            saved, restored.numpy(), err_msg=f"optimizer variable {restored.name} re-initialized"
        )
    assert second.evaluate() == pytest.approx(saved_val), "the generator did not come back as it was saved"

    result = second.fit()
    steps = [record["step"] for record in _metrics(run_dir)]
    assert steps == [5, 10, 15, 20], f"step counter should continue from 10, logged {steps}"
    assert result.step == 20 and int(second.generator_optimizer.iterations.numpy()) == 20


def test_stop_flag_checkpoints_then_returns_and_pruning_keeps_the_newest(synthetic_dataset, tmp_path):
    run_dir = tmp_path / "run"
    calls = {"count": 0}

    def stop_after_seven_steps():
        calls["count"] += 1
        return calls["count"] > 7

    config = TrainConfig(steps=100, checkpoint_every=2, keep_checkpoints=2, **TINY)
    result = train_pix2pix(synthetic_dataset, run_dir, config, should_stop=stop_after_seven_steps)
    assert (result.status, result.step) == ("stopped", 7)
    kept = sorted(path.name for path in (run_dir / "checkpoints").glob("ckpt-*.index"))
    assert kept == ["ckpt-6.index", "ckpt-7.index"], f"expected the 2 newest checkpoints, found {kept}"
    assert Pix2PixTrainer(synthetic_dataset, run_dir, config).resumed_from_step == 7


def test_run_folder_refuses_other_network_shapes(synthetic_dataset, tmp_path):
    train_pix2pix(synthetic_dataset, tmp_path / "run", TrainConfig(steps=1, checkpoint_every=1, **TINY))
    with pytest.raises(ValueError, match=r"checkpoints of other networks \(ngf 8 -> 16\)"):
        Pix2PixTrainer(synthetic_dataset, tmp_path / "run", TrainConfig(steps=2, **{**TINY, "ngf": 16}))


def test_progress_reports_the_design_fields_and_publishes_versions(synthetic_dataset, tmp_path, models_dir):
    reports = []
    config = TrainConfig(steps=10, checkpoint_every=5, export_every=5, **TINY)
    result = train_pix2pix(
        synthetic_dataset,
        tmp_path / "run",
        config,
        models_dir=models_dir,
        on_progress=reports.append,
        job_id="job-1",
    )
    assert result.versions == [1, 2]
    last = reports[-1]
    assert isinstance(last, Progress) and last.val is not None and last.losses is not None, last
    assert (last.step, last.total_steps, last.version, last.eta_seconds) == (10, 10, 2, 0)
    assert last.images_per_second is not None and last.images_per_second > 0, last
    # A hint model (the default) is scored without hints and with 10 fixed hints per validation image.
    scores = last.val.model_dump(exclude_none=True)
    assert set(scores) == {"l1", "psnr", "ssim", "l1_hints10", "psnr_hints10", "ssim_hints10"}
    manifest = json.loads((models_dir / "generator" / "2" / "manifest.json").read_text())
    assert (manifest["job_id"], manifest["step"], manifest["model"]["ngf"]) == ("job-1", 10, 8)
    assert manifest["dataset"] == synthetic_dataset.name and manifest["gate"]["passed"] in (True, False)
    assert manifest["hints"] is True and manifest["model"]["hints"] is True
    assert manifest["hints_signature"]["signature"] == "colorize_with_hints"
    assert manifest["val"] == scores
    assert last.gate == GateDecision(**manifest["gate"]), "the job's progress says what the gate decided"
    assert (models_dir / "generator" / "2" / "sample.png").is_file(), "a sample thumbnail beside the model"
    assert (tmp_path / "run" / "samples" / "progress.gif").is_file()
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*")), "no TensorBoard events written"


def test_a_first_model_on_a_new_dataset_is_compared_with_the_served_one_on_its_own_split(
    tmp_path, models_dir
):
    """A demo version never blocks a user's first model; a version from another user dataset is scored on the
    new job's validation split, so the comparison is on equal terms (and says so)."""
    from model.synthetic import make_synthetic_dataset

    datasets = {}
    for name, seed in (("demo", 1), ("pics", 2), ("faces", 3)):
        datasets[name] = tmp_path / "datasets" / name
        make_synthetic_dataset(datasets[name], train=8, val=4, seed=seed)
    config = TrainConfig(steps=2, checkpoint_every=2, **TINY)
    train_pix2pix(datasets["demo"], tmp_path / "demo-run", config, models_dir=models_dir)
    user = Pix2PixTrainer(datasets["pics"], tmp_path / "pics-run", config, models_dir=models_dir)
    user.fit()
    assert user.last_gate is not None and user.last_gate.passed, user.last_gate
    assert "demo" in user.last_gate.reason
    other = Pix2PixTrainer(datasets["faces"], tmp_path / "faces-run", config, models_dir=models_dir)
    other.fit()
    assert other.last_gate is not None and other.last_gate.compared_with == 2, other.last_gate
    assert "on dataset 'faces'" in other.last_gate.reason, other.last_gate
    served_l1 = other.score_on_validation(read_version(models_dir, 2))
    assert served_l1 is not None and 0 < served_l1 < 2
    assert f"{served_l1:.4f}" in other.last_gate.reason, (served_l1, other.last_gate.reason)


def test_learning_rate_decays_linearly_to_zero_over_the_last_part():
    from model.losses import ConstantThenLinearDecay

    schedule = ConstantThenLinearDecay(2e-4, total_steps=100, decay_steps=50)
    assert [round(float(schedule(step)), 8) for step in (0, 50, 75, 100)] == [2e-4, 2e-4, 1e-4, 0.0]


def test_mixed_precision_trains_resumes_and_publishes_float32(synthetic_dataset, tmp_path, models_dir):
    # GPUs select mixed_float16 by themselves; float16 kernels crawl on CPUs, so the test runs the same policy
    # plumbing in bfloat16 (mixed_float16 differs only by Keras' LossScaleOptimizer wrapper).
    config = TrainConfig(steps=2, checkpoint_every=2, precision="mixed_bfloat16", **TINY)
    train_pix2pix(synthetic_dataset, tmp_path / "run", config, models_dir=models_dir)
    resumed = Pix2PixTrainer(
        synthetic_dataset,
        tmp_path / "run",
        TrainConfig(**{**config.__dict__, "steps": 4}),
        models_dir=models_dir,
    )
    assert resumed.resumed_from_step == 2 and resumed.generator.compute_dtype == "bfloat16"
    assert resumed.fit().versions == [2]
    reader = tf.train.load_checkpoint(str(models_dir / "generator" / "2" / "variables" / "variables"))
    dtypes = {dtype for name, dtype in reader.get_variable_to_dtype_map().items() if "generator" in name}
    assert dtypes == {tf.float32}, f"published generators must be float32, found {dtypes}"
    assert tf.keras.mixed_precision.global_policy().name == "float32", (
        "training must not leave a global policy behind"
    )


def test_a_run_that_dies_while_publishing_publishes_when_resumed(synthetic_dataset, tmp_path, models_dir):
    unwritable = tmp_path / "a-file-not-a-folder"
    unwritable.write_text("")
    config = TrainConfig(steps=4, checkpoint_every=2, **TINY)
    with pytest.raises(OSError):
        train_pix2pix(synthetic_dataset, tmp_path / "run", config, models_dir=unwritable)
    kept = sorted(path.name for path in (tmp_path / "run" / "checkpoints").glob("ckpt-*.index"))
    assert kept == ["ckpt-2.index"], f"the final step must not be checkpointed before its export: {kept}"
    result = train_pix2pix(synthetic_dataset, tmp_path / "run", config, models_dir=models_dir)
    assert (result.step, result.versions) == (4, [1]), "the resumed run must publish the final model"


def test_before_write_can_stop_training_before_anything_is_written(synthetic_dataset, tmp_path, models_dir):
    class ClaimLost(Exception):
        pass

    def refuse() -> None:
        raise ClaimLost

    trainer = Pix2PixTrainer(
        synthetic_dataset,
        tmp_path / "run",
        TrainConfig(steps=4, checkpoint_every=2, **TINY),
        models_dir=models_dir,
    )
    with pytest.raises(ClaimLost):
        trainer.fit(before_write=refuse)
    assert not list((tmp_path / "run" / "checkpoints").glob("ckpt-*")), (
        "a checkpoint was written after the refusal"
    )
    assert not (models_dir / "generator").exists(), "a version was published after the refusal"


def test_xla_compiled_step_trains(synthetic_dataset, tmp_path):
    reports = []
    config = TrainConfig(steps=3, checkpoint_every=3, xla=True, **{**TINY, "log_every": 1})
    result = train_pix2pix(synthetic_dataset, tmp_path / "run", config, on_progress=reports.append)
    assert result.step == 3 and [report.step for report in reports] == [1, 2, 3]
    losses = [report.losses.model_dump() for report in reports if report.losses is not None]
    assert len(losses) == 3 and all(np.isfinite(list(named.values())).all() for named in losses), reports


def test_default_logging_gives_the_first_step_and_about_a_hundred_points(synthetic_dataset, tmp_path):
    config = TrainConfig(steps=300, batch_size=1, ngf=4, ndf=4, checkpoint_every=300)
    reports = []
    train_pix2pix(synthetic_dataset, tmp_path / "run", config, on_progress=reports.append)
    steps = [report.step for report in reports]
    assert steps[0] == 1, f"the first point comes at once, got {steps[:3]}"
    assert {3, 6, 297, 300} <= set(steps), "every total_steps // 100 steps"
    assert 100 <= len(steps) <= 101 + 300 // 3, len(steps)


def test_metrics_lines_keep_their_keys_and_publish_comes_before_the_checkpoint(
    synthetic_dataset, tmp_path, models_dir
):
    config = TrainConfig(steps=6, checkpoint_every=4, export_every=3, **{**TINY, "log_every": 2})
    train_pix2pix(synthetic_dataset, tmp_path / "run", config, models_dir=models_dir)
    losses = ["step", "epoch", "gen_gan", "gen_l1", "disc", "imgs_per_s"]
    scores = [f"val_{name}{kind}" for kind in ("", "_hints10") for name in ("l1", "psnr", "ssim")]
    keys = [list(point) for point in _metrics(tmp_path / "run")]
    assert keys == [
        losses,  # step 2
        losses + scores + ["version"],  # 3: published (scored), no null keys for what is not there
        losses + scores,  # 4: checkpointed (scored)
        losses + scores + ["version"],  # 6: the last step owes all
    ], keys


def _due_steps(schedule, steps, seconds_since_point=0.0):
    return {
        action.value: [step for step in steps if action in schedule.due(step, seconds_since_point)]
        for action in Action
    }


def test_schedule_says_what_each_step_owes():
    config = TrainConfig(steps=12, checkpoint_every=5, export_every=4, log_every=3)
    due = _due_steps(training_schedule(config, total_steps=12, publishing=True), range(1, 13))
    assert due == {
        "log": [3, 6, 9, 12],
        "evaluate": [4, 5, 8, 10, 12],  # whatever publishes or checkpoints is scored first
        "publish": [4, 8, 12],
        "checkpoint": [5, 10, 12],
    }, due
    unpublished = _due_steps(training_schedule(config, total_steps=12), range(1, 13))
    assert unpublished["publish"] == [] and unpublished["evaluate"] == [5, 10, 12], unpublished
    only_at_the_end = TrainConfig(steps=12, checkpoint_every=100, log_every=100)
    assert _due_steps(training_schedule(only_at_the_end, 12, publishing=True), range(1, 13)) == {
        "log": [12],
        "evaluate": [12],
        "publish": [12],
        "checkpoint": [12],
    }


def test_default_logging_comes_at_a_sessions_first_step_and_after_a_quiet_while():
    config = TrainConfig(steps=1000, checkpoint_every=500)  # log_every by default: every 10 steps
    schedule = training_schedule(config, total_steps=1000, resumed_from_step=200)
    assert schedule.due(201) == {Action.LOG}, "a resumed session shows progress at once"
    assert schedule.due(202) == frozenset() and schedule.due(210) == {Action.LOG}
    assert schedule.due(202, seconds_since_point=AUTO_LOG_SECONDS) == {Action.LOG}, "a slow run still logs"
    explicit = training_schedule(TrainConfig(steps=1000, log_every=50), 1000, resumed_from_step=200)
    assert explicit.due(201) == frozenset() and explicit.due(202, seconds_since_point=60.0) == frozenset(), (
        "an explicit log_every is kept exactly"
    )
