"""Concurrent requests are micro-batched, and batching changes no image's output."""

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from tests.app.conftest import Server, draw_sketch, encode, png_pixels

CLIENTS = 32


def _batch_counts(client: httpx.Client) -> tuple[float, float]:
    """(generator calls, images) so far, from the batch-size histogram."""
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        if family.name == "s2c_inference_batch_size"
        for sample in family.samples
    }
    return samples["s2c_inference_batch_size_count"], samples["s2c_inference_batch_size_sum"]


def test_32_concurrent_requests_each_return_what_they_return_alone(server: Server) -> None:
    sketches = [
        encode(draw_sketch(200 + 7 * index, 260 - 3 * index, seed=100 + index)) for index in range(CLIENTS)
    ]
    with server.client(limits=httpx.Limits(max_connections=CLIENTS)) as client:
        alone = []
        for sketch in sketches:
            response = client.post("/colorize", files={"file": ("s.png", sketch, "image/png")})
            alone.append((response.headers.get("X-Model-Version"), png_pixels(response)))
        calls_before, images_before = _batch_counts(client)

        start_together = threading.Barrier(CLIENTS)

        def send(sketch: bytes) -> httpx.Response:
            start_together.wait(timeout=60)
            return client.post("/colorize", files={"file": ("s.png", sketch, "image/png")})

        with ThreadPoolExecutor(CLIENTS) as pool:
            together = list(pool.map(send, sketches))
        calls_after, images_after = _batch_counts(client)

    failures = [
        (index, r.status_code, r.text[:200]) for index, r in enumerate(together) if r.status_code != 200
    ]
    assert not failures, f"{len(failures)} of {CLIENTS} concurrent requests failed: {failures[:5]}"
    with server.client() as client:
        for index, (response, (alone_version, alone_pixels)) in enumerate(zip(together, alone, strict=True)):
            assert response.headers["X-Model-Version"] == alone_version
            pixels = png_pixels(response)
            # The contract: inside any batch an image is at most 1 level of 255 from its output alone.
            if np.abs(pixels.astype(int) - alone_pixels.astype(int)).max() > 1:
                # Tell batching apart from plain run-to-run nondeterminism: send the image alone once more.
                again = png_pixels(
                    client.post("/colorize", files={"file": ("s.png", sketches[index], "image/png")})
                )
                raise AssertionError(
                    f"request {index}: {np.count_nonzero(pixels != alone_pixels)} values differ by more than "
                    "1 level from the "
                    f"same image "
                    f"sent alone; sent alone again, it differs from its first answer in "
                    f"{np.count_nonzero(again != alone_pixels)} values"
                )
    assert images_after - images_before == CLIENTS, (
        "every concurrent image should go through the generator once"
    )
    calls = calls_after - calls_before
    assert calls <= CLIENTS // 2, (
        f"{CLIENTS} concurrent requests took {calls:.0f} generator calls: a mean batch of "
        f"{CLIENTS / calls:.1f} images, expected at least 2"
    )
