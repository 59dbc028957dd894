"""The pix2pix objective and learning-rate schedule.

Generator: GAN sigmoid cross-entropy + lambda x L1. Discriminator: half the sum of its real and fake
cross-entropies. Losses are per example, so a distribution strategy can average them over the global batch.
"""

from typing import Any

import keras
import tensorflow as tf


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
