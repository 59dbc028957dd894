"""The pix2pix training loop: resumable, checkpointed, publishing generator versions as it goes.

One compiled step (model/train_step.py, optionally XLA) under a tf.distribute strategy: MirroredStrategy across
several GPUs, the default strategy otherwise, and mixed precision by itself on GPUs (model/devices.py). A run
folder that has checkpoints is continued from the newest one. What each step owes (a log point, scores, a
version, a checkpoint) is model/schedule.py, how a log point is written model/metrics_log.py. The
hyper-parameters are contracts/train_config.py, the objective model/losses.py, the run folder storage/run_folder.py.
"""

import io
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf
from PIL import Image

from contracts.job_record import Losses, MetricsPoint, Phase, Progress, RunEvent, ValMetrics
from contracts.train_config import ARCHITECTURE_BEFORE_FIELD, ARCHITECTURE_FIELDS, TrainConfig
from model.data import list_pairs, make_dataset
from model.devices import choose_precision, choose_strategy
from model.export import load_serving_function, publish_generator
from model.hints import empty_hint_maps, validation_hint_maps
from model.losses import ConstantThenLinearDecay
from model.metrics_log import MetricsLog, PendingLosses, SpeedMeter
from model.networks import IMAGE_SIZE, build_discriminator, build_generator
from model.samples import sample_grid, write_png_atomically, write_progress_gif
from model.schedule import WRITES, Action, training_schedule
from model.train_step import TrainStep, build_train_step
from storage.run_folder import RunFolder
from storage.serving_policy import GateDecision, gate
from storage.versions import PublishedVersion

logger = logging.getLogger("sketch2color.train")

__all__ = ["Pix2PixTrainer", "TrainConfig", "TrainResult", "train_pix2pix"]
ProgressCallback = Callable[[Progress], None]
# Told when the trainer changes what it does: TRAINING once the session's first step is done (start-up is over),
# PUBLISHING before a version is scored and exported, TRAINING again after it is published; with the step.
PhaseCallback = Callable[[Phase, int], None]


@dataclass
class TrainResult:
    status: str  # "finished" or "stopped"
    step: int
    epoch: int
    versions: list[int] = field(default_factory=list)
    val: ValMetrics | None = None  # the newest scores of this fit()


@dataclass
class FitState:
    """What one fit() has produced so far, for its progress reports and its result."""

    versions: list[int] = field(default_factory=list)
    val: ValMetrics | None = None
    gate: GateDecision | None = None


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
        self._last_point_at = time.monotonic()
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
        self.schedule = training_schedule(
            config, self.total_steps, self.resumed_from_step, publishing=self.models_dir is not None
        )
        self._export_copy: keras.Model | None = None
        self._before_commit: Callable[[], None] = lambda: None
        self._on_phase: PhaseCallback = lambda phase, step: None
        self.last_gate: GateDecision | None = None
        self.metrics = MetricsLog(self.run)
        self._val_sketches, self._val_targets = self._validation_batch()
        # Hint models are scored without hints and with a fixed set of hints per validation image.
        self._val_hints = validation_hint_maps(self._val_targets) if config.hints else None
        self.train_step: TrainStep = build_train_step(
            self.generator, self.discriminator, self.generator_optimizer, self.discriminator_optimizer,
            strategy=self.strategy, step_counter=self.step, config=config, global_batch=self.global_batch,
        )  # fmt: skip

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
        self.metrics.image("samples/sketch_output_truth", grid, step=int(self.step.numpy()))
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
            gate=lambda: self._checked_gate(models_dir, val),
            extra_files={"sample.png": buffer.getvalue()},
            onnx=self.config.onnx,
        )
        decision = published.manifest.get("gate")
        self.last_gate = GateDecision(**decision) if decision is not None else None
        return published.version

    def _checked_gate(self, models_dir: Path, val: dict[str, float]) -> GateDecision:
        """The gate, asked under the publish lock right before the version is committed: the caller's check
        comes first, so a worker that lost its claim meanwhile commits nothing."""
        self._before_commit()
        return gate(models_dir, self.dataset_dir.name, val, self.config.promote, self.score_on_validation)

    def score_on_validation(self, version: PublishedVersion) -> float | None:
        """The validation L1 of another published version (from another dataset) on this job's fixed
        validation subset, plain sketches as for our own `l1`, so the gate compares the two on equal terms."""
        try:
            colorize = load_serving_function(version.path)
        except Exception as error:  # its files are at fault, not this job: the gate then keeps it served
            logger.warning("could not score version %d on this validation split: %r", version.version, error)
            return None
        sketches = tf.cast(tf.round((self._val_sketches + 1.0) * 127.5), tf.uint8)
        outputs = tf.cast(colorize(sketches), tf.float32) / 127.5 - 1.0
        return float(tf.reduce_mean(tf.abs(outputs - self._val_targets)))

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
        on_progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        before_write: Callable[[], None] | None = None,
        on_phase: PhaseCallback | None = None,
        after_checkpoint: Callable[[], None] | None = None,
    ) -> TrainResult:
        """Train to the configured length, or until `should_stop()` (checked before every step) says so.

        `before_write()` runs before every checkpoint and publish; raising there (say, because the caller lost
        its claim on the run) stops training without writing anything; it runs again right before a version is
        committed. `on_phase` hears of start-up's end and of every version's export (PhaseCallback).
        `after_checkpoint()` runs after every checkpoint (shared mode copies the run folder to the bucket).
        """
        before_write = before_write or (lambda: None)
        after_checkpoint = after_checkpoint or (lambda: None)
        self._before_commit = before_write
        self._on_phase = on_phase or (lambda phase, step: None)
        batches = self._training_batches()
        step = int(self.step.numpy())
        last_saved_step = step if self.manager.latest_checkpoint else -1
        state = FitState()
        losses = PendingLosses()
        speed = SpeedMeter(self.global_batch)
        status = "finished"
        while step < self.total_steps:
            if should_stop is not None and should_stop():
                status = "stopped"
                break
            losses.add(self.train_step(next(batches)))
            step += 1
            speed.steps += 1
            self.epoch.assign(self._epoch_at(step))
            if step == self.resumed_from_step + 1:  # leave tracing and compilation out of the speed figure
                speed.restart()
                self._on_phase(Phase.TRAINING, step)
            due = self.schedule.due(step, time.monotonic() - self._last_point_at)
            if not due:
                continue
            point = self._log_point(step, due, losses.mean(), speed.measure(), state, before_write)
            if Action.CHECKPOINT in due:
                last_saved_step = step
                self.metrics.flush()
                after_checkpoint()
            if on_progress is not None:
                on_progress(self._progress(point, speed.images_per_second, state))
            speed.restart()

        if status == "stopped" and step != last_saved_step:
            before_write()
            self.manager.save(checkpoint_number=step)
            self.metrics.write(RunEvent(step=step, epoch=self._epoch_at(step), event="stopped"))
            self.metrics.flush()
            after_checkpoint()
        if status == "finished":
            write_progress_gif(self.run.samples)
        self.metrics.flush()
        return TrainResult(status, step, self._epoch_at(step), state.versions, state.val)

    def _training_batches(self):
        """The shuffled, jittered training pairs, reseeded by the step so a resumed run sees new orders."""
        config = self.config
        dataset = make_dataset(
            self.dataset_dir, "train", self.global_batch, training=True, shuffle_buffer=config.shuffle_buffer,
            sketch_side=config.sketch_side, seed=config.seed + int(self.step.numpy()), hints=config.hints,
        )  # fmt: skip
        return iter(self.strategy.experimental_distribute_dataset(dataset))

    def _log_point(
        self,
        step: int,
        due: frozenset[Action],
        losses: Losses,
        images_per_second: float,
        state: FitState,
        before_write: Callable[[], None],
    ) -> MetricsPoint:
        """Score, publish and checkpoint as due (into `state`), then write the point to the metrics."""
        scores: dict[str, float] = {}
        if Action.PUBLISH in due:  # scoring the version is part of publishing it
            self._on_phase(Phase.PUBLISHING, step)
        if Action.EVALUATE in due:
            state.val = ValMetrics(**self.evaluate())
            scores = {f"val_{name}": value for name, value in state.val.model_dump(exclude_none=True).items()}
        if due & WRITES:
            before_write()
        # Publish before checkpointing: a run killed in between redoes the export on resume, whereas a
        # checkpoint saved first would let the resumed run skip the export (and finish with no model).
        version = None
        if Action.PUBLISH in due:
            assert state.val is not None, "a version is published with its scores"
            version = self.publish(state.val.model_dump(exclude_none=True))
            assert version is not None  # publishing is scheduled only with a models folder
            state.versions.append(version)
            state.gate = self.last_gate
            self._on_phase(Phase.TRAINING, step)
        if Action.CHECKPOINT in due:
            self.manager.save(checkpoint_number=step)
            self.write_sample_grid(self._epoch_at(step))
        point = MetricsPoint(
            step=step,
            epoch=self._epoch_at(step),
            **losses.model_dump(),
            imgs_per_s=round(images_per_second, 3),
            **scores,
            version=version,
        )
        self.metrics.write(point)
        self._last_point_at = time.monotonic()
        return point

    def _progress(self, point: MetricsPoint, images_per_second: float, state: FitState) -> Progress:
        steps_per_second = images_per_second / self.global_batch if images_per_second else 0.0
        return Progress(
            epoch=point.epoch,
            step=point.step,
            total_steps=self.total_steps,
            images_per_second=images_per_second,
            eta_seconds=(self.total_steps - point.step) / steps_per_second if steps_per_second else None,
            losses=Losses(gen_gan=point.gen_gan, gen_l1=point.gen_l1, disc=point.disc),
            val=state.val,
            version=state.versions[-1] if state.versions else None,
            gate=state.gate,
        )


def train_pix2pix(
    dataset_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    config: TrainConfig,
    models_dir: str | os.PathLike | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    job_id: str | None = None,
) -> TrainResult:
    """Train (or continue training) in `run_dir`; publish versions to `models_dir` if given."""
    trainer = Pix2PixTrainer(dataset_dir, run_dir, config, models_dir=models_dir, job_id=job_id)
    return trainer.fit(on_progress=on_progress, should_stop=should_stop)
