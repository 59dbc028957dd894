"""The first hour: the demo job's first published version colors the demo's own validation shapes.

This is the model a new user meets after `./start.sh`: trained exactly as `up` launches it (cli/demo.py's job
request on the synthetic demo dataset), published, loaded back as the API loads it, and scored inside each
validation shape against the color of its kind.
"""

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from cli.demo import DemoConfig
from contracts.train_config import TrainConfig
from model.export import load_serving_function
from model.synthetic import (
    OUTLINE_WIDTH,
    draw_pair_with_shapes,
    draw_shape,
    make_synthetic_dataset,
    pair_rng,
)
from model.train import Pix2PixTrainer
from storage.versions import read_version

MAX_ERROR = 30  # mean absolute error inside the shapes, in levels of 255 (the bar)
MARGIN = 3  # pixels kept clear of the outline on top of its width: the line's antialiased edge is not a fill


def _interior(shape, size: int) -> np.ndarray:
    """Where the shape's fill shows, clear of its outline."""
    image = Image.new("L", (size, size), 0)
    draw_shape(ImageDraw.Draw(image), shape, fill=1)
    return ndimage.distance_transform_edt(np.asarray(image)) > OUTLINE_WIDTH + MARGIN


def test_the_demo_jobs_first_version_colors_its_validation_shapes(tmp_path):
    demo = DemoConfig()
    dataset = tmp_path / "datasets" / "demo"
    make_synthetic_dataset(dataset, train=demo.train_pairs, val=demo.val_pairs, seed=0)
    request = {name: value for name, value in demo.job_request().items() if name != "dataset"}
    # The ONNX copy is the same network (tests/model/test_onnx.py); leaving it out saves the conversion.
    trainer = Pix2PixTrainer(
        dataset, tmp_path / "run", TrainConfig(**request, onnx=False), tmp_path / "models"
    )
    result = trainer.fit()
    assert result.versions, "the demo job published no version"

    first = read_version(tmp_path / "models", result.versions[0])
    assert first is not None
    colorize = load_serving_function(first.path)
    errors: dict[str, list[float]] = {}
    for index in range(demo.val_pairs):
        _, sketch, shapes = draw_pair_with_shapes(pair_rng(0, "val", index))
        output = np.asarray(colorize(np.asarray(sketch)[None])[0]).astype(np.int16)
        for shape in shapes:
            inside = _interior(shape, sketch.width)
            error = np.abs(output[inside] - np.array(shape.fill, np.int16)).mean()
            errors.setdefault(shape.kind, []).append(float(error))
    by_kind = {kind: round(float(np.mean(values)), 1) for kind, values in sorted(errors.items())}
    mean_error = float(np.mean([value for values in errors.values() for value in values]))
    assert mean_error <= MAX_ERROR, (
        f"version {first.version} (step {first.manifest['step']}) colors the demo's validation shapes "
        f"{mean_error:.1f} levels off on average (at most {MAX_ERROR}); by kind: {by_kind}"
    )
