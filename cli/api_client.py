"""A small HTTP client of the sketch2color API (standard library only), with the token when one is set."""

import json
import secrets
import urllib.error
import urllib.request
from typing import Any

FilePart = tuple[str, str, bytes, str]  # (field, filename, data, content type)


def multipart(files: list[FilePart], fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body of text fields and file parts (RFC 7578) and its content type. The boundary
    is random, so no file's bytes can contain it by chance."""
    boundary = "s2c-" + secrets.token_hex(16)
    chunks = []
    for field, value in (fields or {}).items():
        chunks += [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n'.encode(),
            value.encode(),
            b"\r\n",
        ]
    for field, filename, data, content_type in files:
        quoted = "".join("_" if char in '"\\\r\n' else char for char in filename)
        chunks += [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{quoted}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode(),
            data,
            b"\r\n",
        ]
    body = b"".join([*chunks, f"--{boundary}--\r\n".encode()])
    return body, f"multipart/form-data; boundary={boundary}"


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token

    def request(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
        """One call; (status, decoded JSON or text). Connection failures raise OSError."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, decode(response.read())
        except urllib.error.HTTPError as error:
            return error.code, decode(error.read())

    def post_files(
        self, path: str, files: list[FilePart], timeout: float = 120.0, fields: dict[str, str] | None = None
    ):
        """POST files (and text fields) as multipart/form-data; (status, headers, body bytes)."""
        body, content_type = multipart(files, fields)
        return self.post_bytes(path, body, content_type, timeout)

    def post_bytes(self, path: str, data: bytes, content_type: str, timeout: float = 120.0):
        """POST a raw body; (status, headers, body bytes)."""
        headers = {"Content-Type": content_type}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()


def decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def detail(payload: Any) -> str:
    """The `detail` of an error answer, or the start of whatever came back."""
    if isinstance(payload, dict) and "detail" in payload:
        return str(payload["detail"])
    return str(payload)[:300]
