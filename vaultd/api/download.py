"""Streaming an original's bytes to an HTTP client, whole or one range; also
any other stored file whose SHA-256 is known (an export's zip/tar or disc
image: see exportjobs.py), with the same guarantees.

The read was authorised (and its grant's copy begun or joined) before this
response is made. The response reports how the transfer ended exactly once
through ``on_done(problem)`` (``None`` when every byte was handed to the
server), whether it finished, the client went away or the read failed; by
then ``delivered`` says how many bytes of the part were handed to the server
and ``fault`` whether the vault failed (the original unreadable or not
matching its hash), not the client.

Once the status line is out, an error can only cut the connection: the
response then ends without its last message, which makes the server close
it, and the client sees a short body. A whole-file response is hashed on the
way and its last part is sent only when the digest matches the catalog, so a
client never receives a complete but wrong original.

Two ways to send, the same guarantees:

* zero-copy, where the server offers ``http.response.zerocopysend``
  (vaultd's own, see zerocopy.py; plain HTTP on TCP or a Unix socket): the
  kernel sends the file's pages while a worker thread reads (and, for a whole
  file, hashes) the same range ahead of them, never more than ``LEAD_BYTES``
  ahead, so what is sent is what was just read, normally still in the page
  cache, and the event loop seldom waits on the disk. Bytes go out only once
  read and hashed; the last ``HOLD_BYTES`` only once the digest matches. (The
  kernel sends the page cache's copy of what was hashed; should memory
  pressure evict a page between the hash and the send, the kernel reads it
  again from the disk, and that second read is not hashed: the store's
  originals are never written once stored, and scrubs catch a disk that
  changes them.) A ranged part is read ahead the same way, unhashed, only so
  that its pages are in memory when the kernel sends them.
* in chunks otherwise (TLS, other servers, the test client): each chunk is
  read (and hashed) off the event loop while the one before is sent, never
  holding more than two.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Callable, Mapping
from typing import Protocol
from urllib.parse import quote

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectSendStream
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from vaultd import faults
from vaultd.api.ranges import ByteRange
from vaultd.api.zerocopy import EXTENSION as ZEROCOPY
from vaultd.errors import HashMismatchError, StorageError, VaultError
from vaultd.i18n import _

log = logging.getLogger(__name__)
CHUNK_BYTES = 1 << 20  # when the caller names none
READ_AHEAD = 1  # chunks read ahead of the one being sent
HASH_READ_BYTES = 1 << 20  # one read (+ hash) step of the zero-copy path: stays in the CPU cache
HASH_BATCH_BYTES = 8 << 20  # read per trip to a worker thread, then released to the sender
LEAD_BYTES = 64 << 20  # how far reading may run ahead of the bytes sent
HOLD_BYTES = 1 << 20  # the tail of a whole file that waits for the digest


class Sendable(Protocol):
    """What the sender needs of a file: an original (``model.Recording``) or an export's file."""

    @property
    def id(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def original_name(self) -> str: ...


def original_headers(rec: Sendable) -> dict[str, str]:
    """Headers of every answer that carries an original's (or another sent file's) bytes."""
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

    def __init__(self, fd: int, rec: Sendable, part: ByteRange | None,
                 on_done: Callable[[str | None], None], *, chunk_bytes: int | None = None,
                 what: str | None = None, hint: str | None = None) -> None:
        self.fd = fd
        self.rec = rec
        self.what = what or _("original %s") % rec.id  # as errors name it
        self.hint = hint or scrub_hint()  # what a person does when the file on the vault is damaged
        self.part = part or ByteRange(0, rec.size_bytes - 1)
        self.whole = part is None
        self.on_done = on_done
        self.chunk_bytes = chunk_bytes or CHUNK_BYTES
        self.status_code = 200 if part is None else 206
        self.sent_all = False
        self.delivered = 0  # bytes of the part handed to the server
        self.fault = False  # the vault failed (not the client)
        self.background = None
        headers: Mapping[str, str] = {**original_headers(rec), "content-length": str(self.part.length)}
        if part is not None:
            headers = {**headers, "content-range": part.content_range(rec.size_bytes)}
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem: str | None = _("the client went away before the transfer finished")
        zerocopy = ZEROCOPY in (scope.get("extensions") or {})
        try:
            async with anyio.create_task_group() as tg:
                async def stream() -> None:
                    nonlocal problem
                    try:
                        await self._stream(send, zerocopy)
                        problem = None
                    except Exception as exc:  # a task boundary: logged, audited, connection cut
                        cause = _cause(exc)
                        if isinstance(cause, ConnectionError):  # the server could not deliver: gone
                            log.info("sending original %s stopped: %s", self.rec.id, cause)
                        else:
                            problem = _describe(cause)
                            self.fault = True
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
                problem, self.delivered, self.fault = None, self.part.length, False
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.on_done, problem)

    async def _stream(self, send: Send, zerocopy: bool) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if self.part.length <= 0:
            _verify(hashlib.sha256() if self.whole else None, self.rec, self.what, self.hint)
            self.sent_all = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            self.delivered = 0
        elif zerocopy:
            await self._stream_zerocopy(send)
        else:
            await self._stream_chunks(send)

    # -- zero-copy: the kernel sends, a worker thread hashes ahead ---------------------------

    async def _stream_zerocopy(self, send: Send) -> None:
        """The kernel sends pages that a worker thread has just read (and, for a whole
        file, hashed), so the event loop never waits on the disk."""
        file = io.FileIO(self.fd, "r", closefd=False)
        start, length = self.part.start, self.part.length
        ahead = _ReadAhead(self.fd, start, length, self.rec, self.what, self.hint, verify=self.whole)
        async with anyio.create_task_group() as tg:
            tg.start_soon(ahead.run)
            while ahead.sent < length:
                ready = await ahead.released_beyond_sent()
                last = ready == length
                try:
                    await send({"type": ZEROCOPY, "file": file, "offset": start + ahead.sent,
                                "count": ready - ahead.sent, "more_body": not last})
                except EOFError as exc:
                    raise _short(self.what, self.hint) from exc
                except ConnectionError:
                    raise
                except OSError as exc:  # the kernel could not read the file
                    raise _unreadable(self.what, exc, self.hint) from exc
                self.sent_all = last
                self.delivered = ready
                ahead.advance(ready)

    # -- in chunks: read (and hash) the next chunk while one is sent -----------------------

    async def _stream_chunks(self, send: Send) -> None:
        digest = hashlib.sha256() if self.whole else None
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
                    self.delivered += len(data)
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
                                                          digest, self.what, self.hint)
                    if not data:
                        raise _short(self.what, self.hint)
                    pos += len(data)
                    left -= len(data)
                    if left == 0:
                        _verify(digest, self.rec, self.what, self.hint)
                    await out.send(data)
            except Exception as exc:  # noqa: BLE001 - handed to the sender, which raises it
                failed.append(exc)


class _ReadAhead:
    """Reads (and, with ``verify``, hashes) a part ahead of the zero-copy sender, in
    batches on worker threads.

    ``released`` is how much of the part may be sent: what has been read, less
    the last ``HOLD_BYTES`` of a verified part until its digest has matched. The
    sender reports what it sent through ``advance``; reading stays within
    ``LEAD_BYTES`` of it, so the pages sent are the ones just read (and hashed),
    still in the page cache. Both run on the event loop; only ``_read_batch``
    runs on a worker thread.
    """

    def __init__(self, fd: int, start: int, length: int, rec: Sendable, what: str, hint: str, *,
                 verify: bool) -> None:
        self.fd, self.start, self.length, self.rec, self.what, self.hint = fd, start, length, rec, what, hint
        self.digest = hashlib.sha256() if verify else None
        self.read = 0
        self.released = 0
        self.sent = 0
        self.buffer = memoryview(bytearray(min(HASH_READ_BYTES, length)))
        self._changed = anyio.Event()

    async def run(self) -> None:
        """Read batch after batch (small ones first, so sending starts early; a verified
        part's last ``HOLD_BYTES`` on their own, checked before they are released).
        Raises HashMismatchError or StorageError, which cancels the sender: the cut."""
        hold_from = self.length - (min(HOLD_BYTES, self.length) if self.digest else 0)
        while self.read < self.length:
            while self.read - self.sent >= LEAD_BYTES:
                await self._changed.wait()
            end = hold_from if self.read < hold_from else self.length
            batch = min(HASH_BATCH_BYTES, max(HASH_READ_BYTES, self.read))
            await anyio.to_thread.run_sync(self._read_batch, min(end, self.read + batch))
            if self.read == self.length:
                _verify(self.digest, self.rec, self.what, self.hint)
            self.released = self.read
            self._notify()

    def _read_batch(self, end: int) -> None:
        while self.read < end:
            view = self.buffer[:min(len(self.buffer), end - self.read)]
            try:
                faults.point("original.read")
                n = os.preadv(self.fd, [view], self.start + self.read)
            except OSError as exc:
                raise _unreadable(self.what, exc, self.hint) from exc
            if n == 0:
                raise _short(self.what, self.hint)
            if self.digest is not None:
                self.digest.update(view[:n])
            self.read += n

    async def released_beyond_sent(self) -> int:
        while self.released <= self.sent:
            await self._changed.wait()
        return self.released

    def advance(self, sent: int) -> None:
        self.sent = sent
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


def scrub_hint() -> str:
    """The hint for a damaged original: scrub checks the originals."""
    return _("run 'vaultd scrub' and report this to the vault's administrator")


def _verify(digest: hashlib._Hash | None, rec: Sendable, what: str, hint: str) -> None:
    if digest is not None and digest.hexdigest() != rec.sha256:
        raise HashMismatchError(
            _("%s does not match its recorded hash; the transfer was cut") % what, hint=hint)


def _short(what: str, hint: str) -> StorageError:
    return StorageError(_("%s is shorter than its recorded size") % what, hint=hint)


def _unreadable(what: str, exc: OSError, hint: str) -> StorageError:
    return StorageError(_("cannot read %s: %s") % (what, exc.strerror or exc), hint=hint)


def _cause(exc: BaseException) -> BaseException:
    """The one exception inside (nested) single-member exception groups; a VaultError
    before a ConnectionError when both ends failed (a cut that made the client fail)."""
    while isinstance(exc, BaseExceptionGroup):
        vault = [e for e in exc.exceptions if isinstance(_cause(e), VaultError)]
        exc = _cause(vault[0]) if vault else exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, VaultError) else repr(exc)


def _read(fd: int, size: int, pos: int, digest: hashlib._Hash | None, what: str, hint: str) -> bytes:
    try:
        faults.point("original.read")
        data = os.pread(fd, size, pos)
    except OSError as exc:
        raise _unreadable(what, exc, hint) from exc
    if digest is not None:
        digest.update(data)
    return data
