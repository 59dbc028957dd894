"""The pix2pix training loop: resumable, checkpointed, publishing generator versions as it goes.

One compiled step (optionally XLA) under a tf.distribute strategy: MirroredStrategy across several GPUs, the
default strategy otherwise, and mixed precision by itself on GPUs. A run folder that has checkpoints is
continued from the newest one. The hyper-parameters are contracts/train_config.py, the objective model/losses.py,
the run folder's file names storage/run_folder.py.
"""

import io
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from PIL import Image

from contracts.job_record import Progress
from contracts.train_config import ARCHITECTURE_BEFORE_FIELD, ARCHITECTURE_FIELDS, TrainConfig
from model.data import list_pairs, make_dataset
from model.export import publish_generator
from model.hints import empty_hint_maps, validation_hint_maps
from model.losses import ConstantThenLinearDecay, discriminator_loss, generator_loss
from model.networks import IMAGE_SIZE, build_discriminator, build_generator
from model.samples import sample_grid, write_png_atomically, write_progress_gif
from storage.run_folder import RunFolder
from storage.serving_policy import gate

__all__ = ["Pix2PixTrainer", "TrainConfig", "TrainResult", "train_pix2pix"]
AUTO_LOG_SECONDS = 5.0


@dataclass
class TrainResult:
    status: str  # "finished" or "stopped"
    step: int
    epoch: int
    versions: list[int] = field(default_factory=list)
    val: dict[str, float] = field(default_factory=dict)


@dataclass
class SpeedMeter:
    """Images per second over the steps since the last log point (tracing and compilation left out)."""

    batch_size: int
    started: float = field(default_factory=time.perf_counter)
    steps: int = 0
    images_per_second: float = 0.0

    def restart(self) -> None:
        self.started, self.steps = time.perf_counter(), 0

    def measure(self) -> float:
        elapsed = time.perf_counter() - self.started
        if self.steps and elapsed > 0:
            self.images_per_second = self.steps * self.batch_size / elapsed
        return self.images_per_second


def choose_strategy() -> tf.distribute.Strategy:
    """All GPUs of this machine when it has several, else the default (single device) strategy."""
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


# bfloat16 matrix units: on such CPUs mixed_bfloat16 trains faster from width 32 up, with the same loss curves,
# and slower at tiny widths (bench/RESULTS.md: 1.30x float32's images/s at width 32, 1.45-1.63x at 64).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
BF16_MIN_WIDTH = 32


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def choose_precision(requested: str, width: int = 64) -> str:
    """`auto`: mixed_float16 on GPUs, mixed_bfloat16 on CPUs with bfloat16 units at width >= 32, else float32."""
    if requested != "auto":
        return requested
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if width >= BF16_MIN_WIDTH and cpu_has_bf16() else "float32"


class Pix2PixTrainer:
    """Owns the networks, optimizers, checkpoints and run-folder outputs of one training run."""

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        run_dir: str | os.PathLike,
        config: TrainConfig,
        models_dir: str | os.PathLike | None = None,
        job_id: str | None = None,
    ):
        self.dataset_dir = Path(dataset_dir)
        self.run = RunFolder(Path(run_dir))
        self.run_dir = self.run.root
        self.config = config
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self.job_id = job_id
        self.train_size = len(list_pairs(self.dataset_dir, "train"))
        list_pairs(self.dataset_dir, "val")
        self.total_steps = config.total_steps(self.train_size)
        # An explicit log_every is kept exactly; by default about 100 points per run, plus the first step and
        # a point at least every AUTO_LOG_SECONDS, so a short or slow run still shows progress early.
        self.log_every = config.log_every or max(1, self.total_steps // 100)
        self.log_by_time = config.log_every is None
        self._last_log_at = time.monotonic()
        self.global_batch = config.batch_size
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._check_run_config()

        keras.utils.set_random_seed(config.seed)
        self.precision = choose_precision(config.precision, min(config.ngf, config.ndf))
        self.strategy = choose_strategy()
        self._build_networks()
        self.checkpoint = tf.train.Checkpoint(
            generator=self.generator,
            discriminator=self.discriminator,
            generator_optimizer=self.generator_optimizer,
            discriminator_optimizer=self.discriminator_optimizer,
            step=self.step,
            epoch=self.epoch,
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint,
            directory=str(self.run.checkpoints),
            max_to_keep=config.keep_checkpoints,
            step_counter=self.step,
            checkpoint_name="ckpt",
        )
        self.resumed_from_step = self._restore()
        self._export_copy: keras.Model | None = None
        self.last_gate: dict[str, Any] | None = None
        self._summary_writer = tf.summary.create_file_writer(str(self.run.tensorboard))
        self._val_sketches, self._val_targets = self._validation_batch()
        # Hint models are scored without hints and with a fixed set of hints per validation image.
        self._val_hints = validation_hint_maps(self._val_targets) if config.hints else None
        self.train_step = self._build_step()

    # ---- setup -------------------------------------------------------------------------------------------
    def _build_networks(self) -> None:
        """Networks, optimizers and counters under the strategy, in the run's precision (set only meanwhile)."""
        config = self.config
        keras.mixed_precision.set_global_policy(self.precision)
        try:
            with self.strategy.scope():
                self.generator = build_generator(config.ngf, config.norm, hints=config.hints)
                self.discriminator = build_discriminator(config.ndf, config.norm)
                decay_steps = round(self.total_steps * config.lr_decay_fraction)
                self.generator_optimizer = self._make_optimizer(decay_steps)
                self.discriminator_optimizer = self._make_optimizer(decay_steps)
                self.generator_optimizer.build(self.generator.trainable_variables)
                self.discriminator_optimizer.build(self.discriminator.trainable_variables)
                self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
                self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        finally:
            keras.mixed_precision.set_global_policy("float32")

    def _validation_batch(self) -> tuple[tf.Tensor, tf.Tensor]:
        """The fixed val subset every evaluation and sample grid uses."""
        config = self.config
        dataset = make_dataset(
            self.dataset_dir, "val", config.val_samples, training=False,
            sketch_side=config.sketch_side, limit=config.val_samples,
        )  # fmt: skip
        return next(iter(dataset))

    def _make_optimizer(self, decay_steps: int) -> keras.optimizers.Optimizer:
        schedule = ConstantThenLinearDecay(self.config.learning_rate, self.total_steps, decay_steps)
        optimizer = keras.optimizers.Adam(learning_rate=schedule, beta_1=self.config.beta_1)
        if self.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    def _check_run_config(self) -> None:
        """A run folder keeps the config it was started with; resuming with other network shapes is refused."""
        saved_path = self.run.config
        current = {**self.config.model_dump(), "dataset": str(self.dataset_dir)}
        if saved_path.is_file() and self.run.checkpoints.is_dir():
            saved = json.loads(saved_path.read_text())
            changed = [
                name
                for name in ARCHITECTURE_FIELDS
                if saved.get(name, ARCHITECTURE_BEFORE_FIELD.get(name)) != current[name]
            ]
            if changed:
                details = ", ".join(f"{name} {saved.get(name)!r} -> {current[name]!r}" for name in changed)
                raise ValueError(f"run folder {self.run_dir} holds checkpoints of other networks ({details})")
        saved_path.write_text(json.dumps(current, indent=2))

    def _restore(self) -> int:
        latest = self.manager.latest_checkpoint
        if latest is None:
            return 0
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        return int(self.step.numpy())

    def _build_step(self):
        config = self.config
        global_batch = self.global_batch

        def average(per_example: tf.Tensor) -> tf.Tensor:
            return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)

        def replica_step(generator_input, target):
            sketch = generator_input[..., :3]  # the discriminator judges (sketch, image) pairs, hints aside
            with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
                fake = self.generator(generator_input, training=True)
                real_logits = tf.cast(self.discriminator([sketch, target], training=True), tf.float32)
                fake_logits = tf.cast(self.discriminator([sketch, fake], training=True), tf.float32)
                generator_losses = generator_loss(fake_logits, fake, target, config.lambda_l1)
                generator_objective = average(generator_losses["gen_total"])
                discriminator_objective = average(discriminator_loss(real_logits, fake_logits))
                scaled_generator = self.generator_optimizer.scale_loss(generator_objective)
                scaled_discriminator = self.discriminator_optimizer.scale_loss(discriminator_objective)
            for tape, loss, network, optimizer in (
                (generator_tape, scaled_generator, self.generator, self.generator_optimizer),
                (discriminator_tape, scaled_discriminator, self.discriminator, self.discriminator_optimizer),
            ):
                gradients = tape.gradient(loss, network.trainable_variables)
                optimizer.apply_gradients(zip(gradients, network.trainable_variables, strict=True))
            return {
                "gen_gan": average(generator_losses["gen_gan"]),
                "gen_l1": average(generator_losses["gen_l1"]),
                "disc": discriminator_objective,
            }

        compiled_replica_step = tf.function(replica_step, jit_compile=config.xla or None)

        @tf.function
        def distributed_step(batch):
            per_replica = self.strategy.run(compiled_replica_step, args=batch)
            losses = {
                name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in per_replica.items()
            }
            self.step.assign_add(1)
            return losses

        return distributed_step

    # ---- evaluation and outputs --------------------------------------------------------------------------
    def generator_input(self, sketches: tf.Tensor, hint_maps: tf.Tensor | None = None) -> tf.Tensor:
        """What the generator reads: the sketches, plus the hint maps (none given: no hints) for a hint model."""
        if not self.config.hints:
            return sketches
        if hint_maps is None:
            hint_maps = empty_hint_maps(sketches)
        return tf.concat([sketches, hint_maps], axis=-1)

    def evaluate(self) -> dict[str, float]:
        """L1 (in [-1, 1] units), PSNR and SSIM of the generator in inference mode on the fixed val subset;
        for a hint model also with its fixed 10 hints per image (`l1_hints10`, ...)."""
        scores = self._scores(self.generator_input(self._val_sketches), "")
        if self._val_hints is not None:
            scores |= self._scores(self.generator_input(self._val_sketches, self._val_hints), "_hints10")
        return scores

    def _scores(self, generator_input: tf.Tensor, suffix: str) -> dict[str, float]:
        outputs = tf.cast(self.generator(generator_input, training=False), tf.float32)
        predicted, truth = (outputs + 1.0) / 2.0, (self._val_targets + 1.0) / 2.0
        return {
            f"l1{suffix}": float(tf.reduce_mean(tf.abs(outputs - self._val_targets))),
            f"psnr{suffix}": float(tf.reduce_mean(tf.image.psnr(predicted, truth, max_val=1.0))),
            f"ssim{suffix}": float(tf.reduce_mean(tf.image.ssim(predicted, truth, max_val=1.0))),
        }

    def write_sample_grid(self, epoch: int, rows: int = 4) -> Path:
        outputs = self.generator(self.generator_input(self._val_sketches[:rows]), training=False)
        grid = sample_grid(self._val_sketches[:rows], outputs, self._val_targets[:rows])
        path = self.run.sample_grid(epoch)
        write_png_atomically(grid, path)
        with self._summary_writer.as_default(step=int(self.step.numpy())):
            tf.summary.image("samples/sketch_output_truth", grid[None], max_outputs=1)
        return path

    def publish(self, val: dict[str, float]) -> int | None:
        """Publish the generator as the next version, with its gate decision and a sample thumbnail."""
        if self.models_dir is None:
            return None
        models_dir = self.models_dir
        manifest = {
            "job_id": self.job_id,
            "dataset": self.dataset_dir.name,
            "step": int(self.step.numpy()),
            "epoch": int(self.epoch.numpy()),
            "model": {
                "ngf": self.config.ngf,
                "ndf": self.config.ndf,
                "norm": self.config.norm,
                "hints": self.config.hints,
                "image_size": IMAGE_SIZE,
            },
            "val": val,
        }
        outputs = self.generator(self.generator_input(self._val_sketches[:1]), training=False)
        thumbnail = sample_grid(self._val_sketches[:1], outputs, self._val_targets[:1])
        buffer = io.BytesIO()
        Image.fromarray(thumbnail).save(buffer, format="PNG")
        published = publish_generator(
            self._generator_for_export(),
            models_dir,
            manifest,
            gate=lambda: gate(models_dir, self.dataset_dir.name, val, self.config.promote),
            extra_files={"sample.png": buffer.getvalue()},
            onnx=self.config.onnx,
        )
        self.last_gate = published.manifest.get("gate")
        return published.version

    def _generator_for_export(self) -> keras.Model:
        """The generator itself, or a float32 single-device copy when training used mixed precision or GPUs."""
        if self.precision == "float32" and self.strategy.num_replicas_in_sync == 1:
            return self.generator
        if self._export_copy is None:
            self._export_copy = build_generator(self.config.ngf, self.config.norm, hints=self.config.hints)
        self._export_copy.set_weights(self.generator.get_weights())
        return self._export_copy

    def _epoch_at(self, step: int) -> int:
        return math.ceil(step * self.global_batch / self.train_size)

    # ---- the loop ----------------------------------------------------------------------------------------
    def fit(
        self,
        on_progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        before_write: Callable[[], None] | None = None,
    ) -> TrainResult:
        """Train to the configured length, or until `should_stop()` (checked before every step) says so.

        `before_write()` runs before every checkpoint and publish; raising there (say, because the caller lost
        its claim on the run) stops training without writing anything.
        """
        before_write = before_write or (lambda: None)
        batches = self._training_batches()
        step = int(self.step.numpy())
        last_saved_step = step if self.manager.latest_checkpoint else -1
        versions: list[int] = []
        latest_val: dict[str, float] = {}
        pending_losses: list[dict[str, tf.Tensor]] = []
        speed = SpeedMeter(self.global_batch)
        status = "finished"
        while step < self.total_steps:
            if should_stop is not None and should_stop():
                status = "stopped"
                break
            pending_losses.append(self.train_step(next(batches)))
            step += 1
            speed.steps += 1
            self.epoch.assign(self._epoch_at(step))
            if step == self.resumed_from_step + 1:  # leave tracing and compilation out of the speed figure
                speed.restart()
            due = self._due(step)
            if not due:
                continue
            record, latest_val = self._log_point(
                step, due, pending_losses, speed, before_write, versions, latest_val
            )
            if "checkpoint" in due:
                last_saved_step = step
            if on_progress is not None:
                on_progress(
                    Progress.model_validate(
                        self._progress(record, latest_val, versions, speed.images_per_second)
                    )
                )
            speed.restart()

        if status == "stopped" and step != last_saved_step:
            before_write()
            self.manager.save(checkpoint_number=step)
            self._log({"step": step, "epoch": self._epoch_at(step), "event": "stopped"})
        if status == "finished":
            write_progress_gif(self.run.samples)
        self._summary_writer.flush()
        return TrainResult(status, step, self._epoch_at(step), versions, latest_val)

    def _training_batches(self):
        """The shuffled, jittered training pairs, reseeded by the step so a resumed run sees new orders."""
        config = self.config
        dataset = make_dataset(
            self.dataset_dir, "train", self.global_batch, training=True, shuffle_buffer=config.shuffle_buffer,
            sketch_side=config.sketch_side, seed=config.seed + int(self.step.numpy()), hints=config.hints,
        )  # fmt: skip
        return iter(self.strategy.experimental_distribute_dataset(dataset))

    def _due(self, step: int) -> set[str]:
        """What this step owes: a log point, a checkpoint, an export (the last step owes all it can)."""
        config = self.config
        is_last = step == self.total_steps
        due = set()
        if step % self.log_every == 0 or is_last:
            due.add("log")
        elif self.log_by_time and (
            step == self.resumed_from_step + 1 or time.monotonic() - self._last_log_at >= AUTO_LOG_SECONDS
        ):
            due.add("log")
        if step % config.checkpoint_every == 0 or is_last:
            due.add("checkpoint")
        if self.models_dir is not None and (
            is_last or (config.export_every > 0 and step % config.export_every == 0)
        ):
            due.add("export")
        return due

    def _log_point(self, step, due, pending_losses, speed, before_write, versions, latest_val):
        """Average the pending losses, then score, publish and checkpoint as due; returns (record, val)."""
        losses = {
            name: float(tf.reduce_mean([entry[name] for entry in pending_losses]))
            for name in pending_losses[-1]
        }
        pending_losses.clear()
        record: dict[str, Any] = {
            "step": step,
            "epoch": self._epoch_at(step),
            **losses,
            "imgs_per_s": round(speed.measure(), 3),
        }
        if due & {"checkpoint", "export"}:
            latest_val = self.evaluate()
            record.update({f"val_{name}": value for name, value in latest_val.items()})
            before_write()
        # Publish before checkpointing: a run killed in between redoes the export on resume, whereas a
        # checkpoint saved first would let the resumed run skip the export (and finish with no model).
        if "export" in due:
            version = self.publish(latest_val)
            assert version is not None  # "export" is due only with a models folder
            versions.append(version)
            record["version"] = version
        if "checkpoint" in due:
            self.manager.save(checkpoint_number=step)
            self.write_sample_grid(self._epoch_at(step))
        self._log(record)
        self._last_log_at = time.monotonic()
        return record, latest_val

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.run.metrics, "a") as metrics_file:
            metrics_file.write(json.dumps(record) + "\n")
        with self._summary_writer.as_default(step=record["step"]):
            for name, value in record.items():
                if name not in ("step", "epoch", "event", "version") and isinstance(value, float | int):
                    tf.summary.scalar(name, value)

    def _progress(self, record, val, versions, images_per_second) -> dict[str, Any]:
        step = record["step"]
        steps_per_second = images_per_second / self.global_batch if images_per_second else 0.0
        return {
            "epoch": record["epoch"],
            "step": step,
            "total_steps": self.total_steps,
            "images_per_second": images_per_second,
            "eta_seconds": (self.total_steps - step) / steps_per_second if steps_per_second else None,
            "losses": {name: record[name] for name in ("gen_gan", "gen_l1", "disc")},
            "val": dict(val) if val else None,
            "version": versions[-1] if versions else None,
            "gate": self.last_gate if versions else None,
        }


def train_pix2pix(
    dataset_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    config: TrainConfig,
    models_dir: str | os.PathLike | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    job_id: str | None = None,
) -> TrainResult:
    """Train (or continue training) in `run_dir`; publish versions to `models_dir` if given."""
    trainer = Pix2PixTrainer(dataset_dir, run_dir, config, models_dir=models_dir, job_id=job_id)
    return trainer.fit(on_progress=on_progress, should_stop=should_stop)
