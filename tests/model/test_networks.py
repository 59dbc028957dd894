import numpy as np
import pytest

from model.networks import build_discriminator, build_generator

# The pix2pix paper's widths. "batch" is the TensorFlow tutorial's variant, whose counts it publishes.
FULL_WIDTH_PARAMETERS = {
    "batch": (54_425_859, 2_770_433),
    "instance": (54_413_955, 2_768_641),
}


@pytest.mark.parametrize("norm", sorted(FULL_WIDTH_PARAMETERS))
def test_full_width_parameter_counts(norm):
    generator_count, discriminator_count = FULL_WIDTH_PARAMETERS[norm]
    assert build_generator(64, norm).count_params() == generator_count
    assert build_discriminator(64, norm).count_params() == discriminator_count


def test_output_shapes_and_ranges():
    generator, discriminator = build_generator(ngf=8), build_discriminator(ndf=8)
    sketches = np.random.default_rng(0).uniform(-1, 1, (2, 256, 256, 3)).astype("float32")
    images = generator(sketches, training=False).numpy()
    assert images.shape == (2, 256, 256, 3)
    assert images.min() >= -1.0 and images.max() <= 1.0, "tanh output must stay in [-1, 1]"
    assert discriminator([sketches, images], training=False).shape == (2, 30, 30, 1), (
        "70x70 PatchGAN gives 30x30"
    )


def test_inference_is_deterministic_and_batch_independent():
    generator = build_generator(ngf=8)
    sketches = np.random.default_rng(1).uniform(-1, 1, (4, 256, 256, 3)).astype("float32")
    batched = generator(sketches, training=False).numpy()
    alone = np.concatenate([generator(sketches[i : i + 1], training=False).numpy() for i in range(4)])
    np.testing.assert_allclose(batched, alone, atol=1e-5, err_msg="an image's output depends on its batch")
    np.testing.assert_array_equal(batched, generator(sketches, training=False).numpy())


@pytest.mark.parametrize(
    ("builder", "arguments", "message"),
    [
        (build_generator, {"ngf": 0}, "ngf must be a positive integer"),
        (build_discriminator, {"ndf": -4}, "ndf must be a positive integer"),
        (build_generator, {"ngf": 8, "norm": "layer"}, "unknown normalization 'layer'"),
    ],
)
def test_bad_network_options_are_refused(builder, arguments, message):
    with pytest.raises(ValueError, match=message):
        builder(**arguments)


def test_layers_start_from_different_weights_and_the_seed_decides_them():
    import keras

    keras.utils.set_random_seed(1)
    first = build_generator(ngf=8)
    keras.utils.set_random_seed(1)
    same_seed = build_generator(ngf=8)
    keras.utils.set_random_seed(2)
    other_seed = build_generator(ngf=8)
    kernels = [weight for weight in first.get_weights() if weight.ndim == 4]
    same_shape = [kernel for kernel in kernels if kernel.shape == (4, 4, 64, 64)]  # the 8 x ngf down blocks
    assert len(same_shape) > 1 and not np.array_equal(same_shape[0], same_shape[1]), "layers share a kernel"
    np.testing.assert_array_equal(kernels[0], same_seed.get_weights()[0], err_msg="same seed, other weights")
    assert not np.array_equal(kernels[0], other_seed.get_weights()[0]), "the seed does not change the weights"
