"""A client that sends its body a few bytes a second is cut off with 408 in bounded time; others are served."""

import socket
import time
from pathlib import Path

from tests.app.conftest import draw_sketch, encode, run_server
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
