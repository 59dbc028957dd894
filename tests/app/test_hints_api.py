"""POST /colorize's `hints` field on the shared server: version 2 is a hint model (trained with the default
`hints: true`), version 1 a plain one. Answers are checked against the published SavedModel called directly.
Refusals and the schema are checked in process (`colorize_app`: the same two kinds of versions)."""

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw

from model.export import load_serving_function
from model.imageio import load_hints, load_sketch
from tests.app.conftest import (
    InProcessApp,
    Server,
    draw_sketch,
    encode,
    form_body,
    png_pixels,
    run_server,
    wait_for_version,
)
from tests.conftest import publish_tiny_generator
from tests.support import wait_until

SKETCH_IMAGE = draw_sketch(320, 200, seed=5)
SKETCH = encode(SKETCH_IMAGE)
RED = (250, 10, 10)


def hint_layer(color=RED, box=(140, 80, 180, 120), size=(320, 200), mode="RGBA") -> bytes:
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).rectangle(box, fill=(*color, 255))
    return encode(layer.convert(mode) if mode != "RGBA" else layer)


def post(
    server: Server | InProcessApp, hints: bytes | str | None, query: str = "", sketch: bytes = SKETCH
) -> httpx.Response:
    files: dict = {"file": ("sketch.png", sketch, "image/png")}
    data = {}
    if isinstance(hints, str):
        data["hints"] = hints
    elif hints is not None:
        files["hints"] = ("hints.png", hints, "image/png")
    if isinstance(server, InProcessApp):
        with server.client() as client:
            return client.post(f"/colorize{query}", files=files, data=data)
    return httpx.post(f"{server.base_url}/colorize{query}", files=files, data=data, timeout=60)


def direct(server: Server, version: int, hints: bytes | None) -> np.ndarray:
    colorize = load_serving_function(server.models_dir / "generator" / str(version))
    layer = load_hints(hints)[np.newaxis] if hints is not None else None
    return colorize(load_sketch(SKETCH)[np.newaxis], layer).numpy()[0]


def test_models_say_which_versions_accept_hints(server: Server):
    versions = {
        entry["version"]: entry for entry in httpx.get(f"{server.base_url}/models").json()["versions"]
    }
    assert versions[2]["hints"] is True and versions[1]["hints"] is False
    assert {"l1_hints10", "psnr_hints10", "ssim_hints10"} <= set(versions[2]["val"])


def test_hints_steer_the_colors_where_they_are_painted(server: Server):
    layer = hint_layer()
    with_hints, without = post(server, layer, "?fill=soft"), post(server, None, "?fill=soft")
    assert with_hints.headers["X-Model-Version"] == "2"
    steered, plain = png_pixels(with_hints).astype(int), png_pixels(without).astype(int)
    np.testing.assert_allclose(steered, direct(server, 2, layer), atol=1)
    np.testing.assert_allclose(plain, direct(server, 2, None), atol=1)
    under = load_hints(layer)[..., 3] > 0
    distance_with = np.abs(steered[under] - RED).mean()
    distance_without = np.abs(plain[under] - RED).mean()
    assert distance_with < distance_without - 20, (
        f"under the hint the output should move toward {RED}: mean distance {distance_with:.1f} with hints, "
        f"{distance_without:.1f} without"
    )


def test_hints_to_a_version_trained_without_them_get_422(colorize_app: InProcessApp):
    response = post(colorize_app, hint_layer(), query="?version=1")
    assert response.status_code == 422, response.text
    assert "without color hints" in response.json()["detail"]
    assert post(colorize_app, None, query="?version=1").status_code == 200  # plain requests still served


def test_bad_hints_get_a_clear_4xx_naming_the_field(colorize_app: InProcessApp):
    truncated = hint_layer()[:60]
    cases = {
        "not an image": (b"this is not a picture", 415),
        "no alpha": (hint_layer(mode="RGB"), 422),
        "truncated": (truncated, 400),
        "a text field": ("red please", 422),
    }
    for name, (hints, status) in cases.items():
        response = post(colorize_app, hints)
        assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
        assert "hints" in response.json()["detail"], (
            f"{name}: the detail must name the field: {response.text}"
        )
    huge = Image.new("RGBA", (2100, 2000), (0, 0, 0, 0))  # over the server's S2C_MAX_PIXELS
    buffer = io.BytesIO()
    huge.save(buffer, format="PNG", optimize=True)
    assert post(colorize_app, buffer.getvalue()).status_code == 413
    assert post(colorize_app, hint_layer()).status_code == 200, "the server must keep serving after bad hints"


def test_an_empty_hints_field_counts_as_absent(colorize_app: InProcessApp):
    """Swagger UI's "Try it out" and HTML forms send a file field left unchosen as an empty part: no hints."""
    empty_parts = {
        "no file chosen": ("", b""),  # a browser's file input left empty
        "an empty file": ("hints.png", b""),
        "an empty value": (None, b""),
    }
    with colorize_app.client() as client:
        plain = client.post("/colorize?fill=soft", **form_body([("file", "sketch.png", SKETCH)]))
        assert plain.status_code == 200, plain.text
        for name, (filename, data) in empty_parts.items():
            response = client.post(
                "/colorize?fill=soft",
                **form_body([("file", "sketch.png", SKETCH), ("hints", filename, data)]),
            )
            assert response.status_code == 200, f"hints as {name}: {response.status_code} {response.text}"
            assert response.content == plain.content, f"hints as {name} must colorize as no hints do"


def test_hint_and_plain_requests_batched_together_each_get_their_own_answer(server: Server):
    layers = [hint_layer(color) for color in ((250, 10, 10), (10, 10, 250))] + [None, None]
    expected = [direct(server, 2, layer) for layer in layers]
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda index: post(server, layers[index % 4], "?fill=soft"), range(16)))
    for index, response in enumerate(responses):
        np.testing.assert_allclose(png_pixels(response).astype(int), expected[index % 4], atol=1)


def test_a_hint_dot_fills_the_closed_shape_it_touches_at_both_sizes(server: Server):
    """fill=regions (the default): one dot in a circle makes the whole circle that color, at 256 and at the
    sketch's own size, and the rest of the drawing does not take it."""
    sketch = Image.new("RGB", (600, 400), "white")
    pen = ImageDraw.Draw(sketch)
    pen.ellipse((60, 60, 300, 300), outline="black", width=5)
    pen.rectangle((360, 100, 560, 300), outline="black", width=5)
    layer = Image.new("RGBA", sketch.size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).ellipse((172, 172, 188, 188), fill=(*RED, 255))
    inside = np.zeros((400, 600), bool)
    inside[110:250, 110:250] = True  # well inside the circle, far from the dot
    in_square = np.zeros((400, 600), bool)
    in_square[130:270, 390:530] = True
    for query, scale in (("", 256 / 600), ("?size=original", 1.0)):
        response = post(server, encode(layer), query, sketch=encode(sketch))
        assert response.status_code == 200, response.text
        pixels = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)
        if scale != 1.0:  # the 256 square: the 600x400 drawing scaled and centered on white
            top = (256 - round(400 * scale)) // 2
            rows, columns = np.nonzero(inside)
            inner = pixels[(rows * scale).astype(int) + top, (columns * scale).astype(int)]
            rows, columns = np.nonzero(in_square)
            square = pixels[(rows * scale).astype(int) + top, (columns * scale).astype(int)]
        else:
            inner, square = pixels[inside], pixels[in_square]
        error = np.abs(inner - RED).mean()
        assert error < 12, f"{query or '256'}: the circle is {inner.mean(axis=0)}, not filled with {RED}"
        assert np.abs(square - RED).mean() > 60, f"{query or '256'}: the red leaked into the square"


def test_hints_work_at_the_sketch_own_size(server: Server):
    response = post(server, hint_layer(), query="?size=original")
    assert response.status_code == 200 and response.headers["X-Image-Size"] == "320x200"


def test_openapi_documents_the_hints_field_with_an_example(colorize_app: InProcessApp):
    with colorize_app.client() as client:
        body = client.get("/openapi.json").json()["paths"]["/colorize"]["post"]["requestBody"]
    multipart = body["content"]["multipart/form-data"]
    assert multipart["schema"]["properties"]["hints"]["format"] == "binary"
    assert "alpha" in multipart["schema"]["properties"]["hints"]["description"]
    assert "with hints" in multipart["examples"]


def test_a_hint_model_is_hot_loaded_under_hint_requests_without_a_failure(tmp_path: Path):
    """Plain version 1 answers hint requests with 422; a hint model published meanwhile is swapped in and
    answers them with 200, and no request in between fails any other way."""
    import keras

    from model.export import publish_generator
    from model.networks import build_generator

    data_dir = tmp_path / "data"
    publish_tiny_generator(data_dir / "models", seed=1)
    layer = hint_layer()
    outcomes: list[tuple[int, str | None]] = []
    halt = threading.Event()
    with run_server(data_dir) as running:
        wait_for_version(running, 1)

        def keep_asking() -> None:
            with httpx.Client(base_url=running.base_url, timeout=60) as client:
                while not halt.is_set():
                    files = {"file": ("s.png", SKETCH, "image/png"), "hints": ("h.png", layer, "image/png")}
                    response = client.post("/colorize", files=files)
                    outcomes.append((response.status_code, response.headers.get("X-Model-Version")))

        asker = threading.Thread(target=keep_asking)
        asker.start()
        try:
            wait_until(lambda: len(outcomes) >= 3, 60, "answers from version 1")
            keras.utils.set_random_seed(3)
            publish_generator(build_generator(8, hints=True), data_dir / "models", {"job_id": None})
            wait_until(lambda: (200, "2") in outcomes[-3:], 60, f"version 2 to answer; log:\n{running.log()}")
        finally:
            halt.set()
            asker.join(timeout=60)
    statuses = [status for status, _ in outcomes]
    assert set(statuses) == {422, 200}, f"only 422 (plain v1) and 200 (hint v2) expected, got {set(statuses)}"
    first_ok = statuses.index(200)
    assert all(status == 200 for status in statuses[first_ok:]), f"went back after the swap: {statuses}"
