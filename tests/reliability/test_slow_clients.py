"""A client that sends its body a few bytes a second is cut off with 408 in bounded time; others are served."""

import socket
import time
from pathlib import Path

from tests.app.conftest import draw_sketch, encode, run_server, wait_for_version
from tests.conftest import publish_tiny_generator

BODY_TIMEOUT_SECONDS = 2


def test_a_trickled_body_gets_408_and_the_server_keeps_serving(tmp_path: Path):
    data_dir = tmp_path / "data"
    publish_tiny_generator(data_dir / "models", seed=1)
    with run_server(data_dir, body_timeout_seconds=BODY_TIMEOUT_SECONDS) as server:
        host, port = "127.0.0.1", server.port
        started = time.monotonic()
        answer = b""
        with socket.create_connection((host, port), timeout=20) as connection:
            connection.sendall(
                b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
            )
            connection.settimeout(0.4)
            for _ in range(40):  # a byte every 0.4 s: 16 s for the whole body, if it were allowed
                try:
                    connection.sendall(b" ")
                    chunk = connection.recv(4096)
                    if chunk:
                        answer += chunk
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
            seconds = time.monotonic() - started
            answer += _rest_of_answer(connection)  # the body may come in a later segment than the headers
        assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
        assert b"S2C_BODY_TIMEOUT_SECONDS" in answer
        assert seconds < BODY_TIMEOUT_SECONDS + 4, f"cut off after {seconds:.1f} s"
        with server.client() as client:
            ordinary = client.post("/colorize", files={"file": ("s.png", encode(draw_sketch()), "image/png")})
            assert ordinary.status_code in (200, 503), ordinary.text


def _rest_of_answer(connection: socket.socket) -> bytes:
    """Read until the server closes the connection (it sends `connection: close`), for at most 10 s."""
    connection.settimeout(10)
    rest = b""
    try:
        while chunk := connection.recv(4096):
            rest += chunk
    except OSError:
        pass
    return rest


IN_FLIGHT_BUDGET = 1_000_000
STALLED_LENGTH = 600_000


def _head(length: int) -> bytes:
    return (
        f"POST /colorize HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_stalled_uploads_fill_only_the_in_flight_budget_then_get_503_and_it_is_released(tmp_path: Path):
    """300 clients each sending 9 of a declared 10 MiB and stalling used to exhaust the API's memory: now
    what bodies may hold at once is one budget, and an upload past it is told to retry at once."""
    data_dir = tmp_path / "data"
    publish_tiny_generator(data_dir / "models", seed=1)
    with run_server(data_dir, max_in_flight_body_bytes=IN_FLIGHT_BUDGET) as server:
        wait_for_version(server, 1)
        address = ("127.0.0.1", server.port)
        with socket.create_connection(address, timeout=20) as stalled:
            stalled.sendall(_head(STALLED_LENGTH) + b"\0" * 100_000)  # most of nothing, then silence
            time.sleep(0.5)  # the server has admitted it (there is no event to wait on from outside)
            with socket.create_connection(address, timeout=20) as second:
                second.sendall(_head(STALLED_LENGTH) + b"\0" * 1000)
                answer = second.recv(4096) + _rest_of_answer(second)
            assert answer.startswith(b"HTTP/1.1 503"), answer[:300]
            assert b"retry-after: 1" in answer.lower() and b"S2C_MAX_IN_FLIGHT_BODY_BYTES" in answer
            with server.client() as client:  # small requests still fit beside the stalled one
                ordinary = client.post(
                    "/colorize", files={"file": ("s.png", encode(draw_sketch()), "image/png")}
                )
                assert ordinary.status_code == 200, ordinary.text
        # The stalled client went away: its reservation is released, and a body of its size is read again.
        deadline = time.monotonic() + 20
        while True:
            with socket.create_connection(address, timeout=20) as again:
                again.sendall(_head(STALLED_LENGTH) + b"\0" * STALLED_LENGTH)
                answer = again.recv(4096) + _rest_of_answer(again)
            if not answer.startswith(b"HTTP/1.1 503") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.startswith(b"HTTP/1.1 4"), answer[:300]  # read and judged: not an image, not "busy"
