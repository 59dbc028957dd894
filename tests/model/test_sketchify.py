import numpy as np
from PIL import Image, ImageDraw

from model.sketchify import sketchify


def test_xdog_draws_dark_lines_at_edges_and_leaves_flat_areas_white():
    picture = Image.new("RGB", (128, 128), (200, 220, 250))
    ImageDraw.Draw(picture).rectangle((32, 32, 96, 96), fill=(200, 30, 30))
    sketch = np.asarray(sketchify(picture).convert("L"))
    assert sketch.shape == (128, 128)
    assert sketch[5:25, 5:25].min() > 240 and sketch[45:85, 45:85].min() > 240, "flat areas must stay white"
    assert sketch[30:35, 40:90].min() < 80, "the rectangle's edge must be drawn as a dark line"
