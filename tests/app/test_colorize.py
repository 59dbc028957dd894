"""POST /colorize returns exactly what the published SavedModel computes, for every accepted format/mode."""

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import (
    DirectModels,
    InProcessApp,
    Server,
    draw_sketch,
    encode,
    png_pixels,
    run_server,
    wait_for_version,
)


def test_colorize_equals_the_direct_savedmodel_output_of_the_padded_input(
    server: Server, direct_models: DirectModels
) -> None:
    """Version 2 was trained and published by the model package in this test session (see conftest)."""
    sketch = encode(draw_sketch(320, 200, seed=11))  # not square: padded with white, not stretched
    with server.client() as client:
        response = client.post("/colorize?fill=soft", files={"file": ("sketch.png", sketch, "image/png")})
    pixels = png_pixels(response)
    version = int(response.headers["X-Model-Version"])
    assert version == 2, f"the newest published version should serve, got {version}"
    expected = direct_models.colorize(server.models_dir / "generator" / "2", sketch)
    # Within 1 level: a lone request may be served by the version's ONNX copy (model/onnx_engine.py).
    assert within_one_level(pixels, expected), (
        f"{np.count_nonzero(pixels != expected)} channel values differ from the SavedModel's own output"
    )


def within_one_level(pixels: np.ndarray, expected: np.ndarray) -> bool:
    return int(np.abs(pixels.astype(int) - expected.astype(int)).max()) <= 1


def _mode_image(mode: str) -> Image.Image:
    sketch = draw_sketch(300, 180, seed=5)
    if mode == "I;16":
        gray = np.asarray(sketch.convert("L"), dtype=np.uint16) * 257
        wide = Image.fromarray(gray)
        assert wide.mode == "I;16", wide.mode
        return wide
    if mode == "RGBA":
        transparent = Image.new("RGBA", sketch.size, (0, 0, 0, 0))
        return Image.composite(
            sketch.convert("RGBA"), transparent, sketch.convert("L").point(lambda v: 255 - v)
        )
    if mode == "LA":
        return sketch.convert("LA")
    if mode == "P":
        return sketch.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    return sketch.convert(mode)


ACCEPTED = [
    ("PNG", "RGB"), ("PNG", "1"), ("PNG", "L"), ("PNG", "LA"), ("PNG", "P"), ("PNG", "RGBA"), ("PNG", "I;16"),
    ("JPEG", "RGB"), ("JPEG", "L"), ("JPEG", "CMYK"),
    ("WEBP", "RGB"), ("WEBP", "RGBA"),
    ("BMP", "RGB"), ("BMP", "1"),
    ("GIF", "P"),
]  # fmt: skip


@pytest.mark.parametrize(("image_format", "mode"), ACCEPTED, ids=[f"{f}-{m}" for f, m in ACCEPTED])
def test_every_accepted_format_and_mode_is_colorized(
    server: Server, direct_models: DirectModels, image_format: str, mode: str
) -> None:
    data = encode(_mode_image(mode), image_format)
    with server.client() as client:
        response = client.post(
            "/colorize?fill=soft", content=data, headers={"Content-Type": f"image/{image_format.lower()}"}
        )
    pixels = png_pixels(response)
    expected = direct_models.colorize(
        server.models_dir / "generator" / response.headers["X-Model-Version"], data
    )
    assert within_one_level(pixels, expected), (
        f"{image_format} {mode}: output differs from the direct SavedModel call"
    )


def test_animated_gif_uses_the_first_frame(server: Server, direct_models: DirectModels) -> None:
    frames = [draw_sketch(200, 200, seed=seed).convert("P") for seed in (1, 2, 3)]
    animated = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    first_frame_only = encode(frames[0], "GIF")
    with server.client() as client:
        animated_pixels = png_pixels(
            client.post("/colorize", files={"file": ("a.gif", animated, "image/gif")})
        )
        first_pixels = png_pixels(
            client.post("/colorize", files={"file": ("f.gif", first_frame_only, "image/gif")})
        )
    assert np.array_equal(animated_pixels, first_pixels), "an animated GIF should be read as its first frame"


def test_version_query_pins_an_older_version(server: Server, direct_models: DirectModels) -> None:
    sketch = encode(draw_sketch(256, 256, seed=3))
    with server.client() as client:
        pinned = client.post(
            "/colorize",
            params={"version": 1, "fill": "soft"},
            content=sketch,
            headers={"Content-Type": "image/png"},
        )
        newest = client.post("/colorize?fill=soft", content=sketch, headers={"Content-Type": "image/png"})
        missing = client.post(
            "/colorize", params={"version": 99}, content=sketch, headers={"Content-Type": "image/png"}
        )
    assert pinned.headers.get("X-Model-Version") == "1", pinned.text[:300]
    assert newest.headers.get("X-Model-Version") == "2", newest.text[:300]
    pinned_pixels, newest_pixels = png_pixels(pinned), png_pixels(newest)
    assert np.array_equal(
        pinned_pixels, direct_models.colorize(server.models_dir / "generator" / "1", sketch)
    )
    assert not np.array_equal(pinned_pixels, newest_pixels), (
        "versions 1 and 2 are different random generators"
    )
    assert missing.status_code == 404 and "99" in missing.json()["detail"], missing.text


def _full_size(response) -> np.ndarray:
    assert response.status_code == 200, f"{response.status_code}: {response.text[:300]}"
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.mode) == ("PNG", "RGB")
    assert response.headers["X-Image-Size"] == f"{image.width}x{image.height}"
    return np.asarray(image)


FULL_SIZE_CASES = [
    ("PNG", "RGB", (640, 240)), ("PNG", "RGB", (200, 520)), ("JPEG", "RGB", (500, 300)),
    ("JPEG", "L", (260, 700)), ("PNG", "RGBA", (420, 180)), ("PNG", "LA", (150, 390)),
]  # fmt: skip


@pytest.mark.parametrize(("image_format", "mode", "size"), FULL_SIZE_CASES, ids=str)
def test_size_original_returns_the_sketch_s_own_size_with_its_lines_kept(
    server: Server, image_format: str, mode: str, size: tuple[int, int]
) -> None:
    drawing = draw_sketch(*size, seed=sum(size))
    if mode == "RGBA":  # lines on a transparent sheet: transparency reads as white paper
        sheet = Image.new("RGBA", size, (0, 0, 0, 0))
        drawing = Image.composite(
            drawing.convert("RGBA"), sheet, drawing.convert("L").point(lambda v: 255 - v)
        )
    else:
        drawing = drawing.convert(mode)
    data = encode(drawing, image_format, **({"quality": 95} if image_format == "JPEG" else {}))
    with server.client() as client:
        kept = _full_size(client.post("/colorize?size=original", files={"file": ("s", data, "image/png")}))
        plain = _full_size(
            client.post("/colorize?size=original&lines=none", files={"file": ("s", data, "image/png")})
        )
    assert kept.shape == plain.shape == (size[1], size[0], 3)
    sketch = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
    paper = np.where(sketch[..., 3:] == 0, 255, sketch[..., :3]).astype(int)  # transparent = white
    dark = paper.mean(axis=2) < 100
    assert dark.sum() > 200, "the drawing should have dark lines"
    assert (kept[dark].astype(int) <= paper[dark] + 1).all(), "lines=keep drew a line lighter than the sketch"
    assert kept[dark].mean() < plain[dark].mean() - 5, "lines=none should not carry the sketch's lines"


def test_square_sketch_s_256_result_is_the_model_s_output_of_a_plain_resize(server: Server) -> None:
    """Unchanged from before size=original existed: a square sketch is just resized (bicubic) to 256x256."""
    from model.export import load_serving_function

    square = draw_sketch(400, 400, seed=3)
    with server.client() as client:
        response = client.post("/colorize?fill=soft", files={"file": ("s.png", encode(square), "image/png")})
    pixels = png_pixels(response)
    assert response.headers["X-Image-Size"] == "256x256"
    model_input = np.asarray(square.resize((256, 256), Image.Resampling.BICUBIC))[np.newaxis]
    serve = load_serving_function(server.models_dir / "generator" / response.headers["X-Model-Version"])
    assert within_one_level(pixels, serve(model_input).numpy()[0])


@pytest.mark.parametrize(
    "query", ["size=512", "size=", "lines=bold", "size=original&lines=thin", "fill=flat", "fill="]
)
def test_bad_size_fill_or_lines_is_a_422_in_the_one_error_shape(
    colorize_app: InProcessApp, query: str
) -> None:
    with colorize_app.client() as client:
        response = client.post(
            f"/colorize?{query}", files={"file": ("s.png", encode(draw_sketch()), "image/png")}
        )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    bad_parameter = query.split("&")[-1].split("=")[0]
    assert isinstance(detail, str) and bad_parameter in detail, detail


def test_the_served_version_says_which_engine_serves_a_batch_of_one(server: Server) -> None:
    """Version 2 was published with an ONNX copy (the trainer's default); the store weighed it at load."""
    versions = {
        entry["version"]: entry for entry in httpx.get(f"{server.base_url}/models").json()["versions"]
    }
    engine = versions[2]["engine"]
    assert engine["batch_1"] in ("onnxruntime", "tensorflow") and engine["reason"], engine
    assert engine["onnx_ms"] is not None and engine["tensorflow_ms"] is not None, engine
    assert (engine["batch_1"] == "onnxruntime") == (engine["onnx_ms"] < engine["tensorflow_ms"]), engine
    assert (server.models_dir / "generator" / "2" / "model.onnx").is_file()


def test_a_broken_onnx_copy_only_means_tensorflow_serves(tmp_path) -> None:
    from model.export import publish_generator
    from model.networks import build_generator

    data_dir = tmp_path / "data"
    published = publish_generator(build_generator(8), data_dir / "models", {"job_id": None})  # replaced:
    (published.path / "model.onnx").write_bytes(b"\x00 not a graph")  # no conversion needed
    with run_server(data_dir) as running:
        wait_for_version(running, 1)
        entry = httpx.get(f"{running.base_url}/models").json()["versions"][0]
        assert entry["engine"]["batch_1"] == "tensorflow" and "does not run" in entry["engine"]["reason"]
        response = httpx.post(
            f"{running.base_url}/colorize", files={"file": ("s.png", encode(draw_sketch()), "image/png")}
        )
        assert response.status_code == 200, response.text
