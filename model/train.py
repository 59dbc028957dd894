"""The pix2pix training loop: resumable, checkpointed, publishing generator versions as it goes.

Objective (pix2pix): generator = GAN cross-entropy + lambda x L1; discriminator = half the sum of its real and
fake cross-entropies. Adam 2e-4, beta1 0.5 for both nets. One compiled step (optionally XLA) under a
tf.distribute strategy: MirroredStrategy across several GPUs, the default strategy otherwise, and mixed
precision by itself on GPUs. A run folder that has checkpoints is continued from the newest one.
"""

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from model.data import list_pairs, make_dataset
from model.export import publish_generator
from model.networks import IMAGE_SIZE, NORMS, build_discriminator, build_generator
from model.samples import sample_grid, write_png_atomically, write_progress_gif

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
# What must match for a run folder's checkpoints to fit the networks being built.
ARCHITECTURE_FIELDS = ("ngf", "ndf", "norm")


@dataclass
class TrainConfig:
    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 1
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    lambda_l1: float = 100.0
    ngf: int = 64
    ndf: int = 64
    norm: str = "instance"
    lr_decay_fraction: float = 0.0
    checkpoint_every: int = 500
    export_every: int = 0
    log_every: int = 100
    keep_checkpoints: int = 3
    val_samples: int = 8
    shuffle_buffer: int = 400
    seed: int = 0
    xla: bool = False
    sketch_side: str = "right"
    precision: str = "auto"

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("give exactly one of epochs or steps")
        positive = (
            "batch_size",
            "ngf",
            "ndf",
            "checkpoint_every",
            "log_every",
            "keep_checkpoints",
            "val_samples",
        )
        for name in positive + (("epochs",) if self.epochs is not None else ("steps",)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.export_every < 0:
            raise ValueError(f"export_every must be >= 0 (0 = only at the end), got {self.export_every}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.beta_1 < 1:
            raise ValueError(f"beta_1 must be in [0, 1), got {self.beta_1}")
        if self.lambda_l1 < 0:
            raise ValueError(f"lambda_l1 must be >= 0, got {self.lambda_l1}")
        if not 0 <= self.lr_decay_fraction <= 1:
            raise ValueError(f"lr_decay_fraction must be in [0, 1], got {self.lr_decay_fraction}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.sketch_side not in ("right", "left"):
            raise ValueError(f"sketch_side must be 'right' or 'left', got {self.sketch_side!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def total_steps(self, train_size: int) -> int:
        if self.steps is not None:
            return self.steps
        return math.ceil(self.epochs * train_size / self.batch_size)


@dataclass
class TrainResult:
    status: str  # "finished" or "stopped"
    step: int
    epoch: int
    versions: list[int] = field(default_factory=list)
    val: dict[str, float] = field(default_factory=dict)


class ConstantThenLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate, then linear decay to zero over the last `decay_steps` (pix2pix's n_epochs_decay)."""

    def __init__(self, initial_learning_rate: float, total_steps: int, decay_steps: int):
        self.initial_learning_rate = initial_learning_rate
        self.total_steps = total_steps
        self.decay_steps = decay_steps

    def __call__(self, step):
        if self.decay_steps <= 0:
            return tf.constant(self.initial_learning_rate, tf.float32)
        decay_start = float(self.total_steps - self.decay_steps)
        progress = tf.clip_by_value(
            (tf.cast(step, tf.float32) - decay_start) / float(self.decay_steps), 0.0, 1.0
        )
        return self.initial_learning_rate * (1.0 - progress)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "decay_steps": self.decay_steps,
        }


def choose_strategy() -> tf.distribute.Strategy:
    """All GPUs of this machine when it has several, else the default (single device) strategy."""
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def choose_precision(requested: str) -> str:
    if requested != "auto":
        return requested
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "float32"


def generator_loss(fake_logits, fake, target, lambda_l1: float) -> dict[str, tf.Tensor]:
    """Per-example losses: fool the discriminator, and stay close to the truth in L1."""
    gan = tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(fake_logits), logits=fake_logits),
        axis=[1, 2, 3],
    )
    l1 = tf.reduce_mean(tf.abs(target - tf.cast(fake, tf.float32)), axis=[1, 2, 3])
    return {"gen_gan": gan, "gen_l1": l1, "gen_total": gan + lambda_l1 * l1}


def discriminator_loss(real_logits, fake_logits) -> tf.Tensor:
    """Per-example loss, halved as in the paper so D learns at a pace matched to G."""
    real = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(real_logits), logits=real_logits)
    fake = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake_logits), logits=fake_logits)
    return 0.5 * tf.reduce_mean(real + fake, axis=[1, 2, 3])


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
        self.run_dir = Path(run_dir)
        self.config = config
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self.job_id = job_id
        self.train_size = len(list_pairs(self.dataset_dir, "train"))
        list_pairs(self.dataset_dir, "val")
        self.total_steps = config.total_steps(self.train_size)
        self.global_batch = config.batch_size
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._check_run_config()

        keras.utils.set_random_seed(config.seed)
        self.precision = choose_precision(config.precision)
        keras.mixed_precision.set_global_policy(self.precision)
        self.strategy = choose_strategy()
        with self.strategy.scope():
            self.generator = build_generator(config.ngf, config.norm)
            self.discriminator = build_discriminator(config.ndf, config.norm)
            decay_steps = round(self.total_steps * config.lr_decay_fraction)
            self.generator_optimizer = self._make_optimizer(decay_steps)
            self.discriminator_optimizer = self._make_optimizer(decay_steps)
            self.generator_optimizer.build(self.generator.trainable_variables)
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        keras.mixed_precision.set_global_policy("float32")

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
            directory=str(self.run_dir / "checkpoints"),
            max_to_keep=config.keep_checkpoints,
            step_counter=self.step,
            checkpoint_name="ckpt",
        )
        self.resumed_from_step = self._restore()
        self._export_copy: keras.Model | None = None
        self._summary_writer = tf.summary.create_file_writer(str(self.run_dir / "tb"))
        self._val_sketches, self._val_targets = next(
            iter(
                make_dataset(
                    self.dataset_dir,
                    "val",
                    config.val_samples,
                    training=False,
                    sketch_side=config.sketch_side,
                    limit=config.val_samples,
                )
            )
        )
        self.train_step = self._build_step()

    # ---- setup -------------------------------------------------------------------------------------------
    def _make_optimizer(self, decay_steps: int) -> keras.optimizers.Optimizer:
        schedule = ConstantThenLinearDecay(self.config.learning_rate, self.total_steps, decay_steps)
        optimizer = keras.optimizers.Adam(learning_rate=schedule, beta_1=self.config.beta_1)
        if self.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    def _check_run_config(self) -> None:
        """A run folder keeps the config it was started with; resuming with other network shapes is refused."""
        saved_path = self.run_dir / "train_config.json"
        current = {**asdict(self.config), "dataset": str(self.dataset_dir)}
        if saved_path.is_file() and (self.run_dir / "checkpoints").is_dir():
            saved = json.loads(saved_path.read_text())
            changed = [name for name in ARCHITECTURE_FIELDS if saved.get(name) != current[name]]
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

        def replica_step(sketch, target):
            with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
                fake = self.generator(sketch, training=True)
                real_logits = tf.cast(self.discriminator([sketch, target], training=True), tf.float32)
                fake_logits = tf.cast(self.discriminator([sketch, fake], training=True), tf.float32)
                generator_losses = generator_loss(fake_logits, fake, target, config.lambda_l1)
                discriminator_losses = discriminator_loss(real_logits, fake_logits)
                generator_objective = tf.nn.compute_average_loss(
                    generator_losses["gen_total"], global_batch_size=global_batch
                )
                discriminator_objective = tf.nn.compute_average_loss(
                    discriminator_losses, global_batch_size=global_batch
                )
                scaled_generator = self.generator_optimizer.scale_loss(generator_objective)
                scaled_discriminator = self.discriminator_optimizer.scale_loss(discriminator_objective)
            generator_gradients = generator_tape.gradient(
                scaled_generator, self.generator.trainable_variables
            )
            discriminator_gradients = discriminator_tape.gradient(
                scaled_discriminator, self.discriminator.trainable_variables
            )
            self.generator_optimizer.apply_gradients(
                zip(generator_gradients, self.generator.trainable_variables, strict=True)
            )
            self.discriminator_optimizer.apply_gradients(
                zip(discriminator_gradients, self.discriminator.trainable_variables, strict=True)
            )
            return {
                "gen_gan": tf.nn.compute_average_loss(
                    generator_losses["gen_gan"], global_batch_size=global_batch
                ),
                "gen_l1": tf.nn.compute_average_loss(
                    generator_losses["gen_l1"], global_batch_size=global_batch
                ),
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
    def evaluate(self) -> dict[str, float]:
        """L1 (in [-1, 1] units), PSNR and SSIM of the generator in inference mode on the fixed val subset."""
        outputs = tf.cast(self.generator(self._val_sketches, training=False), tf.float32)
        predicted, truth = (outputs + 1.0) / 2.0, (self._val_targets + 1.0) / 2.0
        return {
            "l1": float(tf.reduce_mean(tf.abs(outputs - self._val_targets))),
            "psnr": float(tf.reduce_mean(tf.image.psnr(predicted, truth, max_val=1.0))),
            "ssim": float(tf.reduce_mean(tf.image.ssim(predicted, truth, max_val=1.0))),
        }

    def write_sample_grid(self, epoch: int, rows: int = 4) -> Path:
        outputs = self.generator(self._val_sketches[:rows], training=False)
        grid = sample_grid(self._val_sketches[:rows], outputs, self._val_targets[:rows])
        path = self.run_dir / "samples" / f"epoch_{epoch:04d}.png"
        write_png_atomically(grid, path)
        with self._summary_writer.as_default(step=int(self.step.numpy())):
            tf.summary.image("samples/sketch_output_truth", grid[None], max_outputs=1)
        return path

    def publish(self, val: dict[str, float]) -> int | None:
        if self.models_dir is None:
            return None
        manifest = {
            "job_id": self.job_id,
            "step": int(self.step.numpy()),
            "epoch": int(self.epoch.numpy()),
            "model": {
                "ngf": self.config.ngf,
                "ndf": self.config.ndf,
                "norm": self.config.norm,
                "image_size": IMAGE_SIZE,
            },
            "val": val,
        }
        return publish_generator(self._generator_for_export(), self.models_dir, manifest).version

    def _generator_for_export(self) -> keras.Model:
        """The generator itself, or a float32 single-device copy when training used mixed precision or GPUs."""
        if self.precision == "float32" and self.strategy.num_replicas_in_sync == 1:
            return self.generator
        if self._export_copy is None:
            self._export_copy = build_generator(self.config.ngf, self.config.norm)
        self._export_copy.set_weights(self.generator.get_weights())
        return self._export_copy

    def _epoch_at(self, step: int) -> int:
        return math.ceil(step * self.global_batch / self.train_size)

    # ---- the loop ----------------------------------------------------------------------------------------
    def fit(
        self,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        before_write: Callable[[], None] | None = None,
    ) -> TrainResult:
        """Train to the configured length, or until `should_stop()` (checked before every step) says so.

        `before_write()` runs before every checkpoint and publish; raising there (say, because the caller lost
        its claim on the run) stops training without writing anything.
        """
        before_write = before_write or (lambda: None)
        config = self.config
        dataset = make_dataset(
            self.dataset_dir, "train", self.global_batch, training=True, shuffle_buffer=config.shuffle_buffer,
            sketch_side=config.sketch_side, seed=config.seed + int(self.step.numpy()),
        )  # fmt: skip
        batches = iter(self.strategy.experimental_distribute_dataset(dataset))
        step = int(self.step.numpy())
        versions: list[int] = []
        latest_val: dict[str, float] = {}
        last_saved_step = step if self.manager.latest_checkpoint else -1
        pending_losses: list[dict[str, tf.Tensor]] = []
        interval_start, interval_steps, images_per_second = time.perf_counter(), 0, 0.0
        status = "finished"

        while step < self.total_steps:
            if should_stop is not None and should_stop():
                status = "stopped"
                break
            pending_losses.append(self.train_step(next(batches)))
            step += 1
            interval_steps += 1
            self.epoch.assign(self._epoch_at(step))
            if step == self.resumed_from_step + 1:  # leave tracing and compilation out of the speed figure
                interval_start, interval_steps = time.perf_counter(), 0
            is_last = step == self.total_steps
            is_log = step % config.log_every == 0 or is_last
            is_checkpoint = step % config.checkpoint_every == 0 or is_last
            is_export = self.models_dir is not None and (
                is_last or (config.export_every > 0 and step % config.export_every == 0)
            )
            if not (is_log or is_checkpoint or is_export):
                continue
            losses = {
                name: float(tf.reduce_mean([entry[name] for entry in pending_losses]))
                for name in pending_losses[-1]
            }
            pending_losses.clear()
            elapsed = time.perf_counter() - interval_start
            if interval_steps and elapsed > 0:
                images_per_second = interval_steps * self.global_batch / elapsed
            record: dict[str, Any] = {
                "step": step,
                "epoch": self._epoch_at(step),
                **losses,
                "imgs_per_s": round(images_per_second, 3),
            }
            if is_checkpoint or is_export:
                latest_val = self.evaluate()
                record.update({f"val_{name}": value for name, value in latest_val.items()})
            # Publish before checkpointing: a run killed in between redoes the export on resume, whereas a
            # checkpoint saved first would let the resumed run skip the export (and finish with no model).
            if is_export or is_checkpoint:
                before_write()
            if is_export:
                versions.append(self.publish(latest_val))
                record["version"] = versions[-1]
            if is_checkpoint:
                self.manager.save(checkpoint_number=step)
                last_saved_step = step
                self.write_sample_grid(self._epoch_at(step))
            self._log(record)
            if on_progress is not None:
                on_progress(self._progress(record, latest_val, versions, images_per_second))
            interval_start, interval_steps = time.perf_counter(), 0

        if status == "stopped" and step != last_saved_step:
            before_write()
            self.manager.save(checkpoint_number=step)
            record = {"step": step, "epoch": self._epoch_at(step), "event": "stopped"}
            self._log(record)
        if status == "finished":
            write_progress_gif(self.run_dir / "samples")
        self._summary_writer.flush()
        return TrainResult(status, step, self._epoch_at(step), versions, latest_val)

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as metrics_file:
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
        }


def train_pix2pix(
    dataset_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    config: TrainConfig,
    models_dir: str | os.PathLike | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    job_id: str | None = None,
) -> TrainResult:
    """Train (or continue training) in `run_dir`; publish versions to `models_dir` if given."""
    trainer = Pix2PixTrainer(dataset_dir, run_dir, config, models_dir=models_dir, job_id=job_id)
    return trainer.fit(on_progress=on_progress, should_stop=should_stop)
