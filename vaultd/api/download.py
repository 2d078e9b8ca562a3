"""Streaming an original's bytes to an HTTP client, whole or one range.

The read was authorised (and one grant use spent) before this response is
made. The response reads the open file in chunks off the event loop, never
holding more than one chunk, and reports how the transfer ended exactly once
through ``on_done(problem)`` (``None`` when every byte was handed to the
server), whether it finished, the client went away or the read failed.

Once the status line is out, an error can only cut the connection: the
response then ends without its last message, which makes the server close
it, and the client sees a short body. A whole-file response is hashed on the
way and its last chunk is sent only when the digest matches the catalog, so
a client never receives a complete but wrong original.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from urllib.parse import quote

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectSendStream
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from vaultd.api.ranges import ByteRange
from vaultd.errors import HashMismatchError, StorageError, VaultError
from vaultd.i18n import _
from vaultd.model import Recording

log = logging.getLogger(__name__)
CHUNK_BYTES = 1 << 20  # when the caller names none
READ_AHEAD = 1  # chunks read ahead of the one being sent


def original_headers(rec: Recording) -> dict[str, str]:
    """Headers of every answer that carries an original's bytes."""
    return {
        "accept-ranges": "bytes",
        "etag": f'"{rec.sha256}"',
        "x-content-sha256": rec.sha256,
        "content-disposition": "attachment; filename*=UTF-8''" + quote(rec.original_name, safe=""),
        "cache-control": "no-store",
    }


class OriginalResponse(Response):
    """200 with the whole original, or 206 with ``part`` of it."""

    media_type = "application/octet-stream"

    def __init__(self, fd: int, rec: Recording, part: ByteRange | None,
                 on_done: Callable[[str | None], None], *, chunk_bytes: int | None = None) -> None:
        self.fd = fd
        self.rec = rec
        self.part = part or ByteRange(0, rec.size_bytes - 1)
        self.whole = part is None
        self.on_done = on_done
        self.chunk_bytes = chunk_bytes or CHUNK_BYTES
        self.status_code = 200 if part is None else 206
        self.sent_all = False
        self.background = None
        headers: Mapping[str, str] = {**original_headers(rec), "content-length": str(self.part.length)}
        if part is not None:
            headers = {**headers, "content-range": part.content_range(rec.size_bytes)}
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem: str | None = _("the client went away before the transfer finished")
        try:
            async with anyio.create_task_group() as tg:
                async def stream() -> None:
                    nonlocal problem
                    try:
                        await self._stream(send)
                        problem = None
                    except Exception as exc:  # a task boundary: logged, audited, connection cut
                        problem = _describe(exc)
                        log.error("sending original %s failed; the connection is cut: %s",
                                  self.rec.id, problem, exc_info=exc)
                    tg.cancel_scope.cancel()

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(stream)
                tg.start_soon(watch)
        finally:
            os.close(self.fd)
            if self.sent_all:
                problem = None
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.on_done, problem)

    async def _stream(self, send: Send) -> None:
        """Send the part, reading (and hashing) the next chunk while one is sent."""
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        digest = hashlib.sha256() if self.whole else None
        if self.part.length <= 0:
            self._check(digest)
            self.sent_all = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        chunks, incoming = anyio.create_memory_object_stream[bytes](max_buffer_size=READ_AHEAD)
        failed: list[Exception] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._read_all, chunks, digest, failed)
            left = self.part.length
            async with incoming:
                async for data in incoming:
                    left -= len(data)
                    if left == 0:
                        self.sent_all = True  # the client may hang up at once; that is no failure
                    await send({"type": "http.response.body", "body": data, "more_body": left > 0})
        if failed:
            raise failed[0]

    async def _read_all(self, out: MemoryObjectSendStream[bytes], digest: hashlib._Hash | None,
                        failed: list[Exception]) -> None:
        """Read the part in chunks into ``out``; the last one only once the hash is checked."""
        pos, left = self.part.start, self.part.length
        async with out:
            try:
                while left > 0:
                    data = await anyio.to_thread.run_sync(_read, self.fd, min(self.chunk_bytes, left), pos,
                                                          digest)
                    if not data:
                        raise StorageError(_("original %s is shorter than its recorded size") % self.rec.id,
                                           hint=_("run 'vaultd scrub' and report this to the vault's "
                                                  "administrator"))
                    pos += len(data)
                    left -= len(data)
                    if left == 0:
                        self._check(digest)
                    await out.send(data)
            except Exception as exc:  # noqa: BLE001 - handed to the sender, which raises it
                failed.append(exc)

    def _check(self, digest: hashlib._Hash | None) -> None:
        if digest is not None and digest.hexdigest() != self.rec.sha256:
            raise HashMismatchError(
                _("original %s does not match its recorded hash; the transfer was cut") % self.rec.id,
                hint=_("run 'vaultd scrub' and report this to the vault's administrator"))


def _describe(exc: Exception) -> str:
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc.message if isinstance(exc, VaultError) else repr(exc)


def _read(fd: int, size: int, pos: int, digest: hashlib._Hash | None) -> bytes:
    data = os.pread(fd, size, pos)
    if digest is not None:
        digest.update(data)
    return data
