"""The served version's files vanishing or changing on disk is noticed within a poll: the server switches to
what is still published, or reloads the new content under the same number."""

import shutil
from pathlib import Path

import numpy as np

from tests.app.conftest import DirectModels, draw_sketch, encode, png_pixels, run_server, wait_for_version
from tests.conftest import publish_tiny_generator
from tests.support import wait_until

SKETCH = encode(draw_sketch(seed=31))


def colorize(server) -> tuple[int, np.ndarray]:
    with server.client() as client:
        response = client.post("/colorize?fill=soft", files={"file": ("s.png", SKETCH, "image/png")})
    return int(response.headers["X-Model-Version"]), png_pixels(response)


def test_a_deleted_served_version_is_replaced_and_new_files_under_its_number_are_loaded(tmp_path: Path):
    data_dir = tmp_path / "data"
    models = data_dir / "models"
    for seed in (1, 2, 3):
        publish_tiny_generator(models, seed=seed)
    direct = DirectModels()
    with run_server(data_dir) as server:
        wait_for_version(server, 3)
        shutil.rmtree(models / "generator" / "3")  # deleted behind the server's back
        wait_until(lambda: colorize(server)[0] == 2, 30, "the server to notice that version 3 is gone")
        listed = server.client().get("/models").json()
        assert listed["active_version"] == 2 and [v["version"] for v in listed["versions"]] == [2, 1], listed

        # Another generator's files copied in under the served number 2 (an out-of-band publish).
        shutil.copytree(models / "generator" / "1", tmp_path / "replacement")
        shutil.rmtree(models / "generator" / "2")
        shutil.copytree(tmp_path / "replacement", models / "generator" / "2")
        expected = direct.colorize(models / "generator" / "2", SKETCH)
        wait_until(
            lambda: np.array_equal(colorize(server)[1], expected), 30, "the new weights under version 2"
        )
        assert colorize(server)[0] == 2
