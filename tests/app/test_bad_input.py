"""Everything a client can get wrong gets its 4xx with a JSON detail, and the service keeps answering.

What one request shows runs in process (`colorize_app`); bodies that stall, stream or vanish midway, and the
server's log, need the real server (`server`)."""

import socket
import struct
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import (
    MAX_UPLOAD_BYTES,
    InProcessApp,
    Server,
    draw_sketch,
    encode,
    form_body,
    in_process_app,
    png_pixels,
    publish_tiny_hint_generator,
)
from tests.conftest import publish_tiny_generator


def _noise(width: int = 300, height: int = 300) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))


def _png_bomb(width: int, height: int) -> bytes:
    """A 1-bit PNG that is a few kilobytes on disk and `width * height` pixels once decoded."""
    return encode(Image.new("1", (width, height), 1), "PNG", optimize=True)


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width x height` (a bomb's header) followed by a token of compressed data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(1000)))
        + chunk(b"IEND", b"")
    )


def _gif_with_huge_screen(width: int, height: int) -> bytes:
    """A valid 1x1 GIF whose logical screen claims `width x height`."""
    small = bytearray(encode(Image.new("P", (1, 1)), "GIF"))
    small[6:10] = struct.pack("<HH", width, height)
    return bytes(small)


def _png_with_bad_crc() -> bytes:
    data = bytearray(encode(_noise()))
    data[100] ^= 0xFF  # inside the first IDAT chunk
    return bytes(data)


PNG = encode(_noise())
JPEG = encode(_noise(), "JPEG")
# The head of an upload whose body never comes in full.
PARTIAL_UPLOAD_HEAD = (
    b"POST /colorize HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nContent-Length: 500000\r\n\r\n"
)


def multipart(data: bytes, name: str = "file", filename: str = "sketch.png") -> dict[str, Any]:
    return {"files": {name: (filename, data, "application/octet-stream")}}


def raw(data: bytes, content_type: str | None = "image/png") -> dict[str, Any]:
    return {"content": data, "headers": {"Content-Type": content_type} if content_type else {}}


CASES: list[tuple[str, Callable[[], dict[str, Any]], int, str]] = [
    # An empty file field (HTML forms and Swagger UI's "Try it out" with no file chosen) is a missing one.
    ("empty multipart file", lambda: multipart(b""), 422, "'file'"),
    ("file field with no file chosen", lambda: form_body([("file", "", b"")]), 422, "'file'"),
    ("file field with an empty value", lambda: form_body([("file", None, b"")]), 422, "'file'"),
    ("empty raw body", lambda: raw(b""), 400, "empty"),
    ("truncated PNG", lambda: multipart(PNG[: len(PNG) // 2]), 400, "truncated"),
    ("truncated JPEG", lambda: raw(JPEG[: len(JPEG) // 2], "image/jpeg"), 400, "truncated"),
    ("PNG with a broken CRC", lambda: multipart(_png_with_bad_crc()), 400, "cannot"),
    ("PNG signature then garbage", lambda: raw(PNG[:8] + b"x" * 200), 400, "cannot read"),
    ("text file", lambda: multipart(b"just some words\n" * 20, filename="notes.txt"), 415, "not a supported"),
    (
        "SVG",
        lambda: raw(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
        415,
        "not a supported",
    ),
    ("TIFF (not an accepted format)", lambda: raw(encode(_noise(), "TIFF"), "image/tiff"), 415, "PNG, JPEG"),
    ("raw body typed text/plain", lambda: raw(PNG, "text/plain"), 415, "content type"),
    ("raw body without a content type", lambda: raw(PNG, None), 415, "content type"),
    ("JSON body", lambda: {"json": {"image": "base64..."}}, 415, "content type"),
    (
        "multipart without a file field",
        lambda: {"files": {"image": ("s.png", PNG, "image/png")}},
        422,
        "'file'",
    ),
    (
        "multipart file sent as a text field",
        lambda: {"data": {"file": "hi"}, "files": {"o": ("o", b"x")}},
        422,
        "'file'",
    ),
    (
        "malformed multipart body",
        lambda: raw(b"--nope\r\ngarbage", "multipart/form-data; boundary=xyz"),
        400,
        "",
    ),
    (
        "upload over S2C_MAX_UPLOAD_BYTES",
        lambda: raw(b"\x89PNG" + bytes(MAX_UPLOAD_BYTES + 10)),
        413,
        "limit",
    ),
    ("multipart file just over the limit", lambda: multipart(bytes(MAX_UPLOAD_BYTES + 1)), 413, "limit"),
    ("multipart upload over the limit", lambda: multipart(bytes(MAX_UPLOAD_BYTES + 70_000)), 413, "limit"),
    ("PNG over S2C_MAX_PIXELS", lambda: multipart(_png_bomb(2500, 2000)), 413, "pixels"),
    ("PNG decompression bomb", lambda: raw(_png_header_claiming(100_000, 100_000)), 413, "too large"),
    (
        "GIF claiming a huge screen",
        lambda: raw(_gif_with_huge_screen(60_000, 60_000), "image/gif"),
        413,
        "large",
    ),
]


@pytest.mark.parametrize(
    ("name", "request_options", "status", "detail_part"), CASES, ids=[case[0] for case in CASES]
)
def test_bad_input_gets_its_status_and_a_json_detail(
    colorize_app: InProcessApp,
    name: str,
    request_options: Callable[[], dict[str, Any]],
    status: int,
    detail_part: str,
) -> None:
    with colorize_app.client() as client:
        response = client.post("/colorize", **request_options())
    assert response.status_code == status, (
        f"{name}: expected {status}, got {response.status_code}: {response.text}"
    )
    assert response.headers["content-type"].startswith("application/json"), response.headers
    detail = response.json()["detail"]
    assert detail_part.lower() in str(detail).lower(), (
        f"{name}: detail {detail!r} should mention {detail_part!r}"
    )


@pytest.mark.parametrize(
    ("query", "status"),
    [("version=0", 422), ("version=-1", 422), ("version=1.5", 422), ("version=../x", 422),
     ("version=nolabel", 404), ("version=12345", 404)],
    ids=str,
)  # fmt: skip
def test_bad_version_query(colorize_app: InProcessApp, query: str, status: int) -> None:
    with colorize_app.client() as client:
        response = client.post(f"/colorize?{query}", **multipart(encode(draw_sketch())))
    assert response.status_code == status, response.text
    assert "detail" in response.json()


def test_a_pinned_version_is_not_loaded_for_a_request_without_a_usable_image(tmp_path) -> None:
    """Loading a pinned version takes seconds (SavedModel, ONNX session, agreement check): a request whose
    body is empty or not an image is answered from its body alone, and nothing is loaded for it."""
    assert publish_tiny_generator(tmp_path / "models", seed=1) == 1
    assert publish_tiny_hint_generator(tmp_path / "models", seed=2) == 2
    with in_process_app(tmp_path, serving=2) as running, running.client() as client:
        store = running.services.model_store
        bad_bodies = {
            "an empty raw body": {"content": b"", "headers": {"Content-Type": "image/png"}},
            "not an image": multipart(b"no picture here"),
            "no file field": {"files": {"other": ("x.png", encode(draw_sketch()), "image/png")}},
        }
        for name, body in bad_bodies.items():
            response = client.post("/colorize?version=1", **body)
            assert 400 <= response.status_code < 500, f"{name}: {response.status_code} {response.text}"
            assert 1 not in store._pinned and not store._pinned_loads, f"{name}: version 1 was loaded for it"
        assert client.post("/colorize?version=1", **multipart(encode(draw_sketch()))).status_code == 200
        assert 1 in store._pinned, "a good request loads the pinned version"


def _send_then_read_status(port: int, head: bytes, body_chunks: list[bytes]) -> tuple[int, bytes]:
    """Send a request head and some body, never finish the body, and read what the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head)
        for chunk in body_chunks:
            connection.sendall(chunk)
        answer = b""
        while b"\r\n\r\n" not in answer:
            received = connection.recv(65536)  # times out (fails the test) if the server waits for the rest
            if not received:
                break
            answer += received
        while True:
            try:
                received = connection.recv(65536)
            except (TimeoutError, ConnectionError):
                break
            if not received:
                break
            answer += received
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 "), f"no HTTP answer, got {answer[:200]!r}"
    return int(status_line.split()[1]), answer


def test_declared_oversized_upload_is_refused_before_its_body_is_sent(server: Server) -> None:
    head = (
        b"POST /colorize HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Content-Length: 50000000\r\n\r\n"
    )
    status, answer = _send_then_read_status(server.port, head, [])
    assert status == 413, answer[:500]
    assert b"S2C_MAX_UPLOAD_BYTES" in answer, answer[:500]


def test_chunked_upload_is_refused_while_it_streams(server: Server) -> None:
    head = (
        b"POST /colorize HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = bytes(100_000)
    chunks = [b"%x\r\n" % len(chunk) + chunk + b"\r\n"] * (MAX_UPLOAD_BYTES // len(chunk) + 2)
    status, answer = _send_then_read_status(
        server.port, head, chunks
    )  # no terminating chunk: the body never ends
    assert status == 413, answer[:500]


def test_chunked_multipart_upload_is_refused_while_it_streams(server: Server) -> None:
    boundary = b"limit-test"
    head = (
        b"POST /colorize HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n\r\n"
    )
    part_head = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    )
    chunk = part_head + bytes(200_000)
    chunks = [b"%x\r\n" % len(chunk) + chunk + b"\r\n"] * (MAX_UPLOAD_BYTES // 200_000 + 2)
    status, answer = _send_then_read_status(server.port, head, chunks)
    assert status == 413, answer[:500]


def _server_errors(client: httpx.Client) -> list[str]:
    """The request counters with status 500, from /metrics."""
    return [
        line
        for line in client.get("/metrics").text.splitlines()
        if 'status="500"' in line and "_total{" in line
    ]


def test_bad_input_never_produces_a_500_and_the_service_still_answers(server: Server) -> None:
    log_start = server.log_path.stat().st_size
    with server.client() as client:
        errors_before = _server_errors(client)
        for name, request_options, _, _ in CASES:
            assert client.post("/colorize", **request_options()).status_code < 500, name
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            connection.sendall(PARTIAL_UPLOAD_HEAD + PNG[:1000])  # and hangs up mid-upload
        assert client.get("/healthz").status_code == 200
        png_pixels(client.post("/colorize", **multipart(encode(draw_sketch(seed=4)))))
        png_pixels(client.post("/colorize", **raw(encode(draw_sketch(seed=5), "JPEG"), "image/jpeg")))
        errors_after = _server_errors(client)
    assert errors_after == errors_before, "some request got a 500:\n" + "\n".join(errors_after)
    log = server.log_path.read_bytes()[log_start:].decode(errors="replace")
    assert "Traceback" not in log, log


def test_wrong_method_and_unknown_path_are_json(colorize_app: InProcessApp) -> None:
    with colorize_app.client() as client:
        wrong_method = client.get("/colorize")
        unknown = client.get("/no/such/thing")
    assert wrong_method.status_code == 405 and "detail" in wrong_method.json()
    assert unknown.status_code == 404 and "detail" in unknown.json()


def test_a_client_that_hangs_up_mid_upload_does_not_hurt(server: Server) -> None:
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            connection.sendall(PARTIAL_UPLOAD_HEAD + PNG[:1000])
    with server.client() as client:
        png_pixels(client.post("/colorize", **multipart(encode(draw_sketch(seed=6)))))
