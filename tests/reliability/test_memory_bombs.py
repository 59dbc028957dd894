"""An API under a hard memory limit (RLIMIT_AS, set by the test) survives a battery of decompression and
aspect-ratio bombs: each gets its 4xx (or its small answer), and the next ordinary request still works."""

import io
import struct
import zlib
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from tests.conftest import publish_tiny_generator
from tests.support import child_environment, start_uvicorn, wait_until

MEMORY_LIMIT_BYTES = 3 * 1024**3  # the API with TensorFlow and a model peaks near 2.2 GB of address space


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size but carries almost no data (its pixels decode as far as they go)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    rows = zlib.compress(b"\0" * (width + 1) * min(height, 64), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def real_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def capped_api(tmp_path_factory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("bombs") / "data"
    publish_tiny_generator(data_dir / "models", seed=1)
    environment = child_environment(data_dir, max_upload_bytes=20_000_000)
    api, base_url = start_uvicorn(
        environment, data_dir.parent, prefix=("prlimit", f"--as={MEMORY_LIMIT_BYTES}")
    )
    try:
        wait_until(
            lambda: httpx.get(f"{base_url}/readyz").status_code == 200, 120, "the capped API to be ready"
        )
        yield base_url
    finally:
        api.stop()
        print(api.tail(5))


BOMBS = [
    ("tall-1x2000000", real_png(1, 2_000_000), {200}),
    ("wide-40000x1", real_png(40_000, 1), {200}),
    ("declared-60000x60000", png_header_only(60_000, 60_000), {413}),
    ("declared-1x40000000", png_header_only(1, 40_000_000), {200, 400, 413}),
    ("declared-200000x200", png_header_only(200_000, 200), {200, 400, 413}),
]


@pytest.mark.parametrize(("name", "body", "statuses"), BOMBS, ids=[bomb[0] for bomb in BOMBS])
@pytest.mark.parametrize("size", ["256", "original"])
def test_bombs_get_an_answer_and_the_api_stays_up(
    capped_api: str, name: str, body: bytes, statuses, size: str
):
    with httpx.Client(base_url=capped_api, timeout=120) as client:
        answer = client.post(f"/colorize?size={size}", content=body, headers={"Content-Type": "image/png"})
        assert answer.status_code in statuses, f"{name}: {answer.status_code} {answer.text[:300]}"
        if answer.status_code != 200:
            assert "detail" in answer.json()
        ordinary = client.post("/colorize", content=real_png(300, 200), headers={"Content-Type": "image/png"})
        assert ordinary.status_code == 200, f"after {name}, an ordinary request got {ordinary.status_code}"


def test_running_out_of_memory_while_decoding_is_413_with_retry_after_not_a_bad_file():
    """Under a memory cap, a decode can fail for want of memory (a bomb, or memory other requests hold): the
    answer says the image is too large for the memory free now (413 + Retry-After), never that the file is
    bad (400)."""
    import asyncio

    from fastapi import HTTPException

    from app.api.routes.colorize import _read_image
    from contracts.settings import Settings

    def decode_without_memory(data: bytes, max_pixels: int) -> None:
        raise MemoryError

    with pytest.raises(HTTPException) as refused:
        asyncio.run(_read_image(decode_without_memory, b"\x89PNG", Settings(), "hints: "))
    assert refused.value.status_code == 413, refused.value.detail
    assert refused.value.headers == {"Retry-After": "5"}, refused.value.headers
    assert str(refused.value.detail).startswith(
        "hints: the image needs more memory than the server has free"
    ), refused.value.detail
