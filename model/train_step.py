"""The compiled pix2pix training step: one generator and one discriminator update, returning named losses.

Compiled once per run (optionally with XLA) and run on every replica of the strategy; each replica averages
its losses over the global batch, so the reduced sum is the global mean.
"""

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from contracts.train_config import TrainConfig
from model.losses import discriminator_loss, generator_loss

__all__ = ["TrainStep", "build_train_step"]

# A batch of (generator input, target) in, the step's `gen_gan`, `gen_l1` and `disc` losses out.
TrainStep = Callable[[Any], dict[str, tf.Tensor]]


def build_train_step(
    generator: keras.Model,
    discriminator: keras.Model,
    generator_optimizer: keras.optimizers.Optimizer,
    discriminator_optimizer: keras.optimizers.Optimizer,
    *,
    strategy: tf.distribute.Strategy,
    step_counter: tf.Variable,
    config: TrainConfig,
    global_batch: int,
) -> TrainStep:
    """The distributed step; it also counts itself in `step_counter` (the checkpointed step)."""

    def average(per_example: tf.Tensor) -> tf.Tensor:
        return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)

    def replica_step(generator_input, target):
        sketch = generator_input[..., :3]  # the discriminator judges (sketch, image) pairs, hints aside
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            fake = generator(generator_input, training=True)
            real_logits = tf.cast(discriminator([sketch, target], training=True), tf.float32)
            fake_logits = tf.cast(discriminator([sketch, fake], training=True), tf.float32)
            generator_losses = generator_loss(fake_logits, fake, target, config.lambda_l1)
            generator_objective = average(generator_losses["gen_total"])
            discriminator_objective = average(discriminator_loss(real_logits, fake_logits))
            scaled_generator = generator_optimizer.scale_loss(generator_objective)
            scaled_discriminator = discriminator_optimizer.scale_loss(discriminator_objective)
        for tape, loss, network, optimizer in (
            (generator_tape, scaled_generator, generator, generator_optimizer),
            (discriminator_tape, scaled_discriminator, discriminator, discriminator_optimizer),
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
        per_replica = strategy.run(compiled_replica_step, args=batch)
        losses = {
            name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for name, value in per_replica.items()
        }
        step_counter.assign_add(1)
        return losses

    return distributed_step
