"""Upload size limit, enforced while the body streams in rather than after it sits in memory.

A declared `Content-Length` over the limit is answered with 413 before a byte of the body is read. Otherwise
(chunked uploads, or a client that lies) the body is counted as it arrives and the request fails with 413 as
soon as it passes the limit; FastAPI turns the HTTPException raised inside `receive` into the JSON error.
"""

from fastapi import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A multipart upload wraps the file in boundaries and part headers; they are not counted against the limit.
MULTIPART_ALLOWANCE_BYTES = 64 * 1024


def too_large_detail(limit_bytes: int) -> str:
    return f"upload is larger than the limit of {limit_bytes} bytes (S2C_MAX_UPLOAD_BYTES)"


class UploadLimitMiddleware:
    def __init__(self, app: ASGIApp, max_upload_bytes: int, paths: tuple[str, ...] = ("/colorize",)):
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._route_path(scope) not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = self.max_upload_bytes
        if content_type.startswith("multipart/"):
            limit += MULTIPART_ALLOWANCE_BYTES
        declared = headers.get(b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            response = JSONResponse({"detail": too_large_detail(self.max_upload_bytes)}, status_code=413,
                                    headers={"Connection": "close"})  # fmt: skip
            await response(scope, receive, send)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(
                        413, too_large_detail(self.max_upload_bytes), headers={"Connection": "close"}
                    )
            return message

        await self.app(scope, limited_receive, send)

    @staticmethod
    def _route_path(scope: Scope) -> str:
        """The path without the mount prefix (`root_path`), as the router matches it."""
        path, root_path = scope["path"], scope.get("root_path", "")
        return path[len(root_path) :] if root_path and path.startswith(root_path) else path
