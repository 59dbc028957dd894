"""The last line of defence: any exception a route lets through becomes a JSON answer inside the CORS layer.

Starlette answers unhandled exceptions in its outermost middleware, outside CORS, so a browser on another
origin could not even read that a request failed. This middleware sits inside CORS instead. A full disk is
the server's condition, not a bug: 507 with what to do, never a 500; so is an object store or Redis that does
not answer in shared mode: 503 with Retry-After.
"""

import errno
import logging

import redis
from botocore.exceptions import BotoCoreError, ClientError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("sketch2color")


class FailureMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            if started:  # the answer is on its way: nothing more can be said to the client
                raise
            response = failure_response(error)
            if response.status_code == 500:
                logger.exception("unexpected error in %s %s", scope["method"], scope["path"])
            await response(scope, receive, send)


def failure_response(error: Exception) -> JSONResponse:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        logger.error("the data folder's disk is full: %s", error)
        detail = (
            f"the server's disk is full ({error.filename or 'data folder'}): nothing was changed; free space on "
            "the data folder's disk and try again"
        )
        return JSONResponse({"detail": detail}, 507, headers={"Retry-After": "60"})
    if isinstance(error, BotoCoreError | ClientError | redis.ConnectionError | redis.TimeoutError):
        logger.error("shared mode: the object store or Redis did not answer: %r", error)
        detail = (
            f"the server's shared storage (object store or Redis) did not answer ({type(error).__name__}); "
            "try again shortly"
        )
        return JSONResponse({"detail": detail}, 503, headers={"Retry-After": "10"})
    if isinstance(error, RecursionError):
        return JSONResponse({"detail": "the request is nested too deeply to read"}, 400)
    return JSONResponse({"detail": "internal server error; the server log has the details"}, 500)
