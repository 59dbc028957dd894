"""Request body limits, enforced while the body streams in rather than after it sits in memory.

Each route has its limit (a sketch, a dataset zip, a job's JSON); every other body gets a small one, so no
request can make the server buffer more than it should.

A declared `Content-Length` over the limit is answered with 413 before a byte of the body is read. Otherwise
(chunked uploads, or a client that lies) the body is counted as it arrives and the request fails with 413 as
soon as it passes the limit; FastAPI turns the HTTPException raised inside `receive` into the JSON error.

Bodies the app holds in memory (all but the dataset zip, which streams to disk) also share one budget for the
whole process: each request reserves its declared length (or its route's limit, when it declares none) until
it is answered, and one that would pass the budget gets 503 with Retry-After at once. Many clients that each
send most of an allowed upload and stall can then fill only the budget, never the memory.
"""

import asyncio
import time

from fastapi import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A multipart upload wraps the file in boundaries and part headers; they are not counted against the limit.
MULTIPART_ALLOWANCE_BYTES = 64 * 1024


OTHER_BODIES_BYTES = 64 * 1024  # JSON bodies: a job launch, a label, a pin
MIN_RATE_BYTES = 256 * 1024  # a large upload gets a second more per 256 KiB it declares


def too_large_detail(limit_bytes: int, setting: str = "S2C_MAX_UPLOAD_BYTES") -> str:
    return f"upload is larger than the limit of {limit_bytes} bytes ({setting})"


class UploadLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        limits: dict[str, tuple[int, str]],
        timeout_seconds: float = 60.0,
        other_bytes: int = OTHER_BODIES_BYTES,
        in_flight_budget: int | None = None,
        streamed: frozenset[str] = frozenset(),
    ):
        """`limits`: path -> (bytes, the setting that sets it); other paths get `other_bytes`. A body must
        arrive within `timeout_seconds`, plus a second per MIN_RATE_BYTES of its declared length."""
        self.app = app
        self.limits = limits
        self.timeout_seconds = timeout_seconds
        self.other_bytes = other_bytes
        self.in_flight_budget = in_flight_budget
        self.streamed = streamed  # paths whose bodies go to disk: outside the budget
        self.in_flight = 0  # bytes reserved by the bodies of requests not yet answered (one event loop)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path = self._route_path(scope)
        max_bytes, setting = self.limits.get(path, (self.other_bytes, "the limit for request bodies"))
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = max_bytes
        if content_type.startswith("multipart/"):
            limit += MULTIPART_ALLOWANCE_BYTES
        declared = headers.get(b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            response = JSONResponse({"detail": too_large_detail(max_bytes, setting)}, status_code=413,
                                    headers={"Connection": "close"})  # fmt: skip
            await response(scope, receive, send)
            return

        length = int(declared) if declared is not None and declared.strip().isdigit() else 0
        budget = self.in_flight_budget
        reserved = 0 if path in self.streamed or budget is None else (length or limit)
        if budget is not None and reserved and self.in_flight + reserved > budget:
            response = JSONResponse(
                {"detail": "the server is receiving as many uploads as it holds at once "
                           "(S2C_MAX_IN_FLIGHT_BODY_BYTES); try again in a moment"},
                status_code=503, headers={"Retry-After": "1", "Connection": "close"},
            )  # fmt: skip
            await response(scope, receive, send)
            return
        self.in_flight += reserved
        try:
            await self._limited(scope, receive, send, limit, length, max_bytes, setting)
        finally:
            self.in_flight -= reserved

    async def _limited(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        limit: int,
        length: int,
        max_bytes: int,
        setting: str,
    ) -> None:
        """The app, reading its body through a receive that enforces the limit and the deadline."""
        received, body_done = 0, False
        allowed = self.timeout_seconds + length / MIN_RATE_BYTES
        deadline = time.monotonic() + allowed

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # the app waiting for a disconnect: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"the request body did not arrive within {allowed:.0f} s (S2C_BODY_TIMEOUT_SECONDS); "
                    "send it faster or in one piece",
                    headers={"Connection": "close"},
                ) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(
                        413, too_large_detail(max_bytes, setting), headers={"Connection": "close"}
                    )
            return message

        await self.app(scope, limited_receive, send)

    @staticmethod
    def _route_path(scope: Scope) -> str:
        """The path without the mount prefix (`root_path`), as the router matches it."""
        path, root_path = scope["path"], scope.get("root_path", "")
        return path[len(root_path) :] if root_path and path.startswith(root_path) else path
