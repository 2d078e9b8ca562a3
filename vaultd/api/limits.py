"""Request bodies are capped per route, before they are read (issue 16 #8).

Every body the API takes is small JSON, so every route accepts at most
``JSON_BODY_BYTES`` unless it declares another cap with ``body_cap`` (its
``openapi_extra``, so the schema says it too). The cap holds in front of
everything else, sign-in included:

* a ``Content-Length`` over the cap is answered 413 at once: the application
  never runs and the body is never read (a client that sends
  ``Expect: 100-continue`` never even sends it);
* a body without a length (chunked) is counted as it arrives and cut off
  with the same 413 as soon as it passes the cap, so at most the cap (and
  what the server's buffers hold) is ever in memory.

The answer is the API's JSON error, code ``body_too_large``, with
``Connection: close``: what the client still sends is not read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vaultd.api.errors import error_response
from vaultd.i18n import _

log = logging.getLogger(__name__)
JSON_BODY_BYTES = 64 << 10  # any route that declares nothing else
LIST_BODY_BYTES = 256 << 10  # routes that take a list of up to 1000 recording ids
CODE = "body_too_large"
_EXTRA = "x-max-body-bytes"


def body_cap(max_bytes: int) -> dict[str, Any]:
    """``openapi_extra`` for a route that takes bodies up to ``max_bytes`` (not the default)."""
    return {_EXTRA: max_bytes}


class BodyTooLargeError(HTTPException):
    """The body passed its route's cap; answered 413 (``body_too_large``)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _("the request body is larger than this endpoint accepts (at most %d bytes)")
                         % max_bytes, headers={"connection": "close"})
        self.max_bytes = max_bytes
        self.hint = _("send a smaller body; see /openapi.json for what each endpoint takes")


class BodyLimit:
    """ASGI middleware: the cap of the route a request is for, enforced before its body is read.

    The caps come from the OpenAPI schema (``schema``: the application's), so
    the cap a route publishes is the one enforced."""

    def __init__(self, app: ASGIApp, schema: Callable[[], dict[str, Any]],
                 default_bytes: int = JSON_BODY_BYTES) -> None:
        self.app = app
        self.schema = schema
        self.default_bytes = default_bytes
        self._declared: list[tuple[str, re.Pattern[str], int]] | None = None

    def cap_of(self, scope: Scope) -> int:
        if self._declared is None:
            self._declared = [
                (method.upper(), compile_path(path)[0], int(op[_EXTRA]))
                for path, ops in self.schema().get("paths", {}).items()
                for method, op in ops.items() if isinstance(op, dict) and _EXTRA in op]
        method, path = scope["method"], scope["path"]
        for want, pattern, cap in self._declared:
            if want == method and pattern.match(path):
                return cap
        return self.default_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap_of(scope)
        length = Headers(scope=scope).get("content-length", "")
        if length.strip().isdigit() and int(length) > cap:
            log.info("%s %s: refused a body of %s bytes unread (cap %d)", scope["method"], scope["path"],
                     length.strip(), cap)
            await _refuse(scope, receive, send, BodyTooLargeError(cap))
            return
        counted = 0
        started = False

        async def limited() -> Message:
            nonlocal counted
            message = await receive()
            if message["type"] == "http.request":
                counted += len(message.get("body", b""))
                if counted > cap:
                    log.info("%s %s: cut off a body at %d bytes (cap %d)", scope["method"], scope["path"],
                             counted, cap)
                    raise BodyTooLargeError(cap)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BodyTooLargeError as exc:  # read outside a route's handler (the routes answer it themselves)
            if started:
                raise
            await _refuse(scope, receive, send, exc)


async def _refuse(scope: Scope, receive: Receive, send: Send, exc: BodyTooLargeError) -> None:
    response = error_response(413, CODE, str(exc.detail), hint=exc.hint, headers=dict(exc.headers or {}))
    await response(scope, receive, send)
