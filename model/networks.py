"""The pix2pix networks: a U-Net 256 generator and a 70x70 PatchGAN discriminator.

Read top to bottom like the paper's figure. Widths scale with `ngf` / `ndf` (64 = the paper) so that tests and
CPU demos can train small models with the same code.

Normalization (see docs/TRAINING.md): `instance` (default) normalizes each image on its own, so an image's output never
depends on the rest of its batch and training and serving compute the same thing. The 1x1 bottleneck gets no
normalization there: instance-normalizing a single pixel would set it to a constant. `batch` is the TensorFlow
tutorial's batch normalization, kept selectable for comparison.
"""

from typing import Literal

import keras
import numpy as np
from keras import layers

from storage.layout import IMAGE_SIZE

HINT_CHANNELS = 4  # hint RGB times mask, then the mask (model/hints.py)
Norm = Literal["instance", "batch"]
NORMS: tuple[str, ...] = ("instance", "batch")


def _initializer() -> keras.initializers.Initializer:
    """N(0, 0.02) as in the paper. A fresh one per layer: a shared Keras initializer fixes its seed when created,
    so every layer of the same shape would start with the same kernel, whatever the global seed."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _normalization(norm: Norm) -> layers.Layer:
    if norm == "instance":
        return layers.GroupNormalization(groups=-1, epsilon=1e-5)
    if norm == "batch":
        return layers.BatchNormalization()
    raise ValueError(f"unknown normalization {norm!r}: choose one of {', '.join(NORMS)}")


def downsample(filters: int, norm: Norm | None) -> keras.Sequential:
    """Conv 4x4 stride 2 -> [norm] -> LeakyReLU(0.2): halves the image."""
    block = keras.Sequential()
    block.add(
        layers.Conv2D(
            filters, 4, strides=2, padding="same", kernel_initializer=_initializer(), use_bias=False
        )
    )
    if norm is not None:
        block.add(_normalization(norm))
    block.add(layers.LeakyReLU(negative_slope=0.2))
    return block


def upsample(filters: int, norm: Norm, dropout: bool) -> keras.Sequential:
    """Transposed conv 4x4 stride 2 -> norm -> [dropout 0.5] -> ReLU: doubles the image."""
    block = keras.Sequential()
    block.add(
        layers.Conv2DTranspose(
            filters, 4, strides=2, padding="same", kernel_initializer=_initializer(), use_bias=False
        )
    )
    block.add(_normalization(norm))
    if dropout:
        block.add(layers.Dropout(0.5))
    block.add(layers.ReLU())
    return block


def build_generator(ngf: int = 64, norm: Norm = "instance", hints: bool = False) -> keras.Model:
    """U-Net 256: 8 downsampling blocks to a 1x1 bottleneck, 7 upsampling blocks with skips, tanh output.

    With `hints`, the input has 4 more channels after the sketch's 3: the color hint map (model/hints.py).
    """
    _check_width("ngf", ngf)
    _normalization(norm)  # fail early on an unknown name
    bottleneck_norm: Norm | None = None if norm == "instance" else norm
    channels = 3 + (HINT_CHANNELS if hints else 0)
    sketch = layers.Input(
        shape=[IMAGE_SIZE, IMAGE_SIZE, channels], name="sketch_and_hints" if hints else "sketch"
    )

    down_stack = [
        downsample(ngf, None),  # 128
        downsample(ngf * 2, norm),  # 64
        downsample(ngf * 4, norm),  # 32
        downsample(ngf * 8, norm),  # 16
        downsample(ngf * 8, norm),  # 8
        downsample(ngf * 8, norm),  # 4
        downsample(ngf * 8, norm),  # 2
        downsample(ngf * 8, bottleneck_norm),  # 1
    ]
    up_stack = [
        upsample(ngf * 8, norm, dropout=True),  # 2
        upsample(ngf * 8, norm, dropout=True),  # 4
        upsample(ngf * 8, norm, dropout=True),  # 8
        upsample(ngf * 8, norm, dropout=False),  # 16
        upsample(ngf * 4, norm, dropout=False),  # 32
        upsample(ngf * 2, norm, dropout=False),  # 64
        upsample(ngf, norm, dropout=False),  # 128
    ]
    to_image = layers.Conv2DTranspose(3, 4, strides=2, padding="same", kernel_initializer=_initializer())

    x = sketch
    skips = []
    for down in down_stack:
        x = down(x)
        skips.append(x)
    for up, skip in zip(up_stack, reversed(skips[:-1]), strict=True):
        x = up(x)
        x = layers.Concatenate()([x, skip])
    x = to_image(x)
    if hints:
        x = _hint_shortcut(x, sketch[..., 3:])
    # float32 output even under a mixed-precision policy, so tanh and the losses stay exact.
    image = layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model(inputs=sketch, outputs=image, name="generator")


def _hint_shortcut(image, hint_map):
    """Where there is a hint, a learned 1x1 correction of the output from the hint's color; nowhere else.

    It starts by giving a hint pixel exactly the hint's color (the pre-tanh value of that color replaces the
    output's): in training a hint is the true color under it, so this is where training would go anyway, and
    even a briefly trained model answers a stroke at once. Spreading the color into the region under the
    stroke is what the U-Net itself learns."""
    colors, mask = hint_map[..., :3], hint_map[..., 3:]
    wanted = keras.ops.arctanh(keras.ops.clip(colors, -0.995, 0.995))
    correction_layer = layers.Conv2D(3, 1, name="hint_shortcut")
    correction = correction_layer(layers.Concatenate()([image, wanted]))
    kernel = np.zeros((1, 1, 6, 3), np.float32)
    kernel[0, 0, :3, :3] = -np.eye(3)  # minus the output ...
    kernel[0, 0, 3:, :3] = np.eye(3)  # ... plus the hint's color
    correction_layer.set_weights([kernel, np.zeros(3, np.float32)])
    return image + keras.ops.cast(mask, correction.dtype) * correction


def build_discriminator(ndf: int = 64, norm: Norm = "instance") -> keras.Model:
    """70x70 PatchGAN on the (sketch, image) pair: a 30x30 grid of real/fake logits."""
    _check_width("ndf", ndf)
    sketch = layers.Input(shape=[IMAGE_SIZE, IMAGE_SIZE, 3], name="sketch")
    image = layers.Input(shape=[IMAGE_SIZE, IMAGE_SIZE, 3], name="image")

    x = layers.Concatenate()([sketch, image])  # 256 x 256 x 6
    x = downsample(ndf, None)(x)  # 128
    x = downsample(ndf * 2, norm)(x)  # 64
    x = downsample(ndf * 4, norm)(x)  # 32
    x = layers.ZeroPadding2D()(x)  # 34
    x = layers.Conv2D(ndf * 8, 4, strides=1, kernel_initializer=_initializer(), use_bias=False)(x)  # 31
    x = _normalization(norm)(x)
    x = layers.LeakyReLU(negative_slope=0.2)(x)
    x = layers.ZeroPadding2D()(x)  # 33
    logits = layers.Conv2D(
        1, 4, strides=1, kernel_initializer=_initializer(), dtype="float32", name="logits"
    )(x)
    return keras.Model(inputs=[sketch, image], outputs=logits, name="discriminator")


def _check_width(name: str, width: int) -> None:
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"{name} must be a positive integer, got {width!r}")
