"""Zero-copy response bodies for uvicorn's h11 server.

uvicorn (0.54) does not implement the ASGI "Zero Copy Send" extension, so an
original went through Python a chunk at a time: read into bytes, copied into
the transport's buffer, written out. ``ZeroCopyH11Protocol`` is uvicorn's h11
protocol plus that extension: it advertises ``http.response.zerocopysend`` in
``scope["extensions"]`` and answers the message

    {"type": "http.response.zerocopysend", "file": <binary file object>,
     "offset": int, "count": int, "more_body": bool}

with asyncio's ``loop.sendfile``: the kernel copies the file's pages to the
socket. It is advertised only where that works: a plain (not TLS) stream
socket under asyncio's selector loop; elsewhere the application sees no
extension and sends bytes as before.

Unlike a body message after a disconnect (which uvicorn drops silently), a
zero-copy send that cannot deliver every byte raises ``ConnectionError``
after closing the connection, as ASGI 2.4 asks of servers: h11 already
counted the bytes, so the connection cannot be used again. A file that ends
before ``count`` bytes closes the connection too and raises ``EOFError``; a
file that cannot be read raises its ``OSError`` (only when some bytes of the
call went out already: asyncio reports a failure of the very first
``os.sendfile`` as ``SendfileNotAvailableError``, without its errno, which
counts as the connection's).

This is the only module that knows uvicorn's internals: that the ``send``
handed to the application is a bound method of the request's
``RequestResponseCycle``, and that cycle's attributes named in
``CYCLE_ATTRIBUTES``. tests/test_api_download_fast.py checks them against the
installed uvicorn, so an upgrade that moves them fails loudly instead of
quietly serving every download the slow way.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import IO, Any, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

EXTENSION = "http.response.zerocopysend"
CYCLE_ATTRIBUTES = ("conn", "transport", "scope", "response_started", "response_complete", "disconnected")

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]


class ZeroCopyH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with ``http.response.zerocopysend``; pass it as
    ``uvicorn.Config(http=ZeroCopyH11Protocol)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = _with_zerocopy(self.app)  # handle_events runs self.app for each request


def _with_zerocopy(app: Any) -> Any:
    async def run(scope: Message, receive: Callable[[], Awaitable[Message]], send: Send) -> None:
        cycle = getattr(send, "__self__", None)
        if scope["type"] == "http" and isinstance(cycle, RequestResponseCycle) and _can_sendfile(cycle):
            scope["extensions"] = {**(scope.get("extensions") or {}), EXTENSION: {}}
            send = _Sender(cycle, send).send
        await app(scope, receive, send)
    return run


def _can_sendfile(cycle: RequestResponseCycle) -> bool:
    transport = cycle.transport
    sock = transport.get_extra_info("socket")
    return (transport.get_extra_info("sslcontext") is None and sock is not None
            and sock.type == socket.SOCK_STREAM
            and isinstance(asyncio.get_running_loop(), asyncio.SelectorEventLoop))


class _Span:
    """Stands for ``count`` file bytes in h11's output (h11 only takes its length)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count


class _Sender:
    def __init__(self, cycle: RequestResponseCycle, send: Send) -> None:
        self.cycle, self.plain_send = cycle, send

    async def send(self, message: Message) -> None:
        if message["type"] != EXTENSION:
            await self.plain_send(message)
            return
        cycle = self.cycle
        if not cycle.response_started or cycle.response_complete:
            raise RuntimeError(f"unexpected ASGI message {EXTENSION!r} outside a response body")
        if cycle.disconnected:
            raise ConnectionError("the client closed the connection")
        file, offset, count = message["file"], int(message["offset"]), int(message["count"])
        if count > 0 and cycle.scope["method"] != "HEAD":
            await self._sendfile(file, offset, count)
        if not message.get("more_body", False):
            await self.plain_send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _sendfile(self, file: IO[bytes], offset: int, count: int) -> None:
        cycle, span = self.cycle, _Span(count)
        marker: object = span  # h11 hands back the same object (typed as bytes)
        pieces = cycle.conn.send_with_data_passthrough(h11.Data(data=cast(bytes, span)))
        transport = cycle.transport
        sent = count
        try:
            for piece in pieces or []:
                if piece is marker:
                    sent = await asyncio.get_running_loop().sendfile(transport, file, offset, count,
                                                                     fallback=False)
                else:
                    transport.write(piece)  # a chunk header (HTTP/1.1 without content-length)
        except BaseException as exc:  # h11 counted the bytes: the connection is done for
            transport.abort()
            if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
                raise  # the file could not be read: not the connection's fault
            if isinstance(exc, Exception):
                raise ConnectionError(f"the file could not be sent: {exc!r}") from exc
            raise
        if sent < count:
            transport.abort()
            raise EOFError(f"the file ended {count - sent} bytes short of the {count} to send")
