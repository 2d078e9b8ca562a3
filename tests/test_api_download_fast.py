"""Originals over a real uvicorn server: the zero-copy path (sendfile while a
worker thread hashes ahead) and its fallback (TLS), with the same guarantees:
a client never gets a complete but wrong original, a cut is audited once,
a client that goes away is noticed."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import socket
import ssl
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from vaultd import approvals, evidence, faults, people
from vaultd.access import RequestKind, Role
from vaultd.api.app import make_servers
from vaultd.api.download import HOLD_BYTES, OriginalResponse
from vaultd.api.zerocopy import CYCLE_ATTRIBUTES, EXTENSION, ZeroCopyH11Protocol
from vaultd.catalog.recordings import RecordingFilter
from vaultd.catalog.schema import audit_entries
from vaultd.ingest import ingest_path
from vaultd.model import Actor, Recording
from vaultd.vault import Vault
from conftest import token_for

API = "/api/v1"
SIZE = 12 * (1 << 20) + 12345  # several read batches, then the held-back tail
UNIT = "一大队"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(server: uvicorn.Server) -> Iterator[None]:
    """A uvicorn server in a thread, as the daemon runs the API."""
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    end = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < end, "the server did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=35)


@dataclass
class World:
    vault: Vault
    rec: Recording
    token: str
    grant: str
    base: str
    verify: ssl.SSLContext | bool = False

    def url(self) -> str:
        return f"{self.base}{API}/recordings/{self.rec.id}/original?reason=test&grant={self.grant}"

    def get(self, **headers: str) -> tuple[int, bytes, str | None]:
        """Status, the body as far as it came, and the error that ended it early."""
        got, error = bytearray(), None
        with httpx.Client(timeout=30, verify=self.verify) as client:
            with client.stream("GET", self.url(), headers={"Authorization": f"Bearer {self.token}",
                                                           **headers}) as r:
                try:
                    for chunk in r.iter_raw():
                        got += chunk
                except httpx.HTTPError as exc:
                    error = repr(exc)
                return r.status_code, bytes(got), error

    def reads(self, type_: str, count: int = 1, wait_s: float = 10.0) -> list[dict[str, Any]]:
        """The grant's read entries of ``type_`` once ``count`` are there (the server
        writes them after the transfer ends), checked to stay at ``count``."""
        end = time.monotonic() + wait_s
        while True:
            found = self._entries(type_)
            if len(found) >= count or time.monotonic() > end:
                break
            time.sleep(0.05)
        time.sleep(0.2)
        found = self._entries(type_)
        assert len(found) == count, found
        return found

    def _entries(self, type_: str) -> list[dict[str, Any]]:
        with self.vault.engine.connect() as conn:
            rows = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.type == type_)).all()
        docs = [json.loads(row.entry) for row in rows]
        return [d["details"] for d in docs if d["details"].get("grant") == self.grant]

    def store_path(self) -> Path:
        path = self.vault.store.object_path(self.rec.sha256)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        return path


def flip(path: Path, where: int) -> None:
    with open(path, "r+b") as f:
        f.seek(where)
        byte = f.read(1)
        f.seek(where)
        f.write(bytes([byte[0] ^ 0xFF]))


def make_world(vault: Vault, tmp_path: Path, base: str = "") -> World:
    owner = people.local_owner()
    people.add_user(vault, owner, people.NewUser("zhao", (Role.SUPERVISOR,), unit=UNIT), None, "cli")
    people.add_user(vault, owner, people.NewUser("wang", (Role.OFFICER,), unit=UNIT, officer_number="012345"),
                    None, "cli")
    clip = tmp_path / "camera" / "DCIM" / "3201001_012345_20261121083000_0001.MP4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(os.urandom(SIZE))
    ingest_path(vault, tmp_path / "camera", actor=Actor.local())
    (rec,) = evidence.list_recordings(vault, owner, RecordingFilter())
    tokens = {n: token_for(vault, n) for n in ("zhao", "wang")}
    req = approvals.request_access(vault, people.authenticate(vault, tokens["wang"], "test"),
                                   RequestKind.VIEW_ORIGINAL, [rec.id], "test", notice=None,
                                   expires_days=1, uses=10, via="api")
    grant = approvals.approve(vault, people.authenticate(vault, tokens["zhao"], "test"), req.id, "api")
    return World(vault, rec, tokens["wang"], grant.id, base)


@pytest.fixture
def world(vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A plain-HTTP server: every original leaves by sendfile (the chunk path would fail here,
    so a test cannot pass on it by mistake)."""
    async def no_chunks(self: OriginalResponse, send: Any) -> None:
        raise AssertionError("a plain-HTTP download went the chunk path, not sendfile")

    monkeypatch.setattr(OriginalResponse, "_stream_chunks", no_chunks)
    w = make_world(vault, tmp_path)
    port = free_port()
    (server,) = make_servers(vault, f"127.0.0.1:{port}")
    assert server.config.http is ZeroCopyH11Protocol
    w.base = f"http://127.0.0.1:{port}"
    with running(server):
        yield w


# -- the uvicorn internals the extension builds on ------------------------------------------

def test_uvicorn_still_has_what_the_zerocopy_protocol_relies_on() -> None:
    """Fails when an upgrade of uvicorn moves what zerocopy.py touches: the
    per-request cycle and its attributes, and the app run for each request."""
    import inspect

    from uvicorn.protocols.http import h11_impl

    source = inspect.getsource(h11_impl.RequestResponseCycle)
    for name in CYCLE_ATTRIBUTES:
        assert f"self.{name} =" in source, f"RequestResponseCycle.{name} is gone"
    assert "self.scope, self.receive, self.send" in source, "run_asgi no longer hands the app the cycle's send"
    handler = inspect.getsource(h11_impl.H11Protocol.handle_events)
    assert "app = self.app" in handler and "run_asgi(app)" in handler
    assert "self.app = config.loaded_app" in inspect.getsource(h11_impl.H11Protocol.__init__)


async def _probe_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Says whether the extension is offered, and sends a file with it in three parts."""
    if scope["type"] != "http":
        return
    offered = EXTENSION in (scope.get("extensions") or {})
    path = Path(scope["path"].removeprefix("/file"))
    if not offered or not scope["path"].startswith("/file"):
        body = b"offered" if offered else b"absent"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    size = path.stat().st_size
    chunked = scope["query_string"] == b"chunked"
    await send({"type": "http.response.start", "status": 200,
                "headers": [] if chunked else [(b"content-length", str(size).encode())]})
    with open(path, "rb") as f:
        cuts = [0, 1000, size // 2, size]
        for a, b in zip(cuts, cuts[1:]):
            await send({"type": EXTENSION, "file": f, "offset": a, "count": b - a, "more_body": b < size})


@contextmanager
def probe_server(**config: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_probe_app, host="127.0.0.1", port=port, http=ZeroCopyH11Protocol,
                                           log_config=None, lifespan="off", **config))
    with running(server):
        yield f"127.0.0.1:{port}"


def test_the_protocol_offers_zerocopy_and_sends_files_whole_chunked_and_for_head(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    (tmp_path / "f").write_bytes(data)
    with probe_server() as addr, httpx.Client(base_url=f"http://{addr}") as client:
        assert client.get("/").content == b"offered"
        for _ in range(2):  # twice: the connection stays usable after a zero-copy body
            r = client.get(f"/file{tmp_path / 'f'}")
            assert r.status_code == 200 and r.content == data
        r = client.get(f"/file{tmp_path / 'f'}?chunked")
        assert r.headers["transfer-encoding"] == "chunked" and r.content == data
        r = client.head(f"/file{tmp_path / 'f'}")
        assert r.status_code == 200 and r.headers["content-length"] == str(len(data)) and r.content == b""


def test_no_zerocopy_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with probe_server(ssl_certfile=str(cert), ssl_keyfile=str(key)) as addr:
        assert httpx.get(f"https://{addr}/", verify=ssl.create_default_context(cafile=str(cert))).content == b"absent"


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


# -- originals by sendfile ---------------------------------------------------------------

def test_whole_original_and_ranges_by_sendfile(world: World) -> None:
    data = world.store_path().read_bytes()
    status, body, error = world.get()
    assert (status, error) == (200, None) and body == data
    assert hashlib.sha256(body).hexdigest() == world.rec.sha256
    status, body, error = world.get(Range="bytes=100-5000099")
    assert (status, error) == (206, None) and body == data[100:5000100]
    status, body, error = world.get(Range=f"bytes=-{HOLD_BYTES + 7}")
    assert (status, error) == (206, None) and body == data[-HOLD_BYTES - 7:]
    reads = world.reads("recording.get", 3)
    assert all(r["problem"] is None for r in reads)


@pytest.mark.parametrize("where", [0, SIZE // 2, SIZE - 1])
def test_a_corrupt_original_is_cut_and_the_cut_audited_once(world: World, where: int) -> None:
    flip(world.store_path(), where)
    status, body, error = world.get()
    assert status == 200 and error is not None
    assert len(body) <= SIZE - HOLD_BYTES  # the held-back tail never left
    (failed,) = world.reads("recording.get.failed")
    assert "does not match" in failed["problem"]
    assert not world.reads("recording.get", 0)


def test_a_shorter_original_is_cut_whole_or_ranged(world: World) -> None:
    with open(world.store_path(), "r+b") as f:
        f.truncate(SIZE - 5000)
    for headers in ({}, {"Range": "bytes=0-"}):
        status, body, error = world.get(**headers)
        assert status in (200, 206) and error is not None and len(body) < SIZE
    failed = world.reads("recording.get.failed", 2)
    assert all("shorter than its recorded size" in f["problem"] for f in failed)


def test_a_client_that_goes_away_mid_sendfile_is_audited_once(world: World) -> None:
    request = (f"GET {world.url().removeprefix(world.base)} HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {world.token}\r\n\r\n").encode()
    host, port = world.base.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)  # the rest cannot hide in buffers
        sock.connect((host, int(port)))
        sock.sendall(request)
        got = 0
        while got < 1 << 20:
            got += len(sock.recv(1 << 16))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    (failed,) = world.reads("recording.get.failed")
    assert "went away" in failed["problem"]
    assert not world.reads("recording.get", 0)
    status, body, error = world.get()  # the server is fine afterwards
    assert status == 200 and error is None and hashlib.sha256(body).hexdigest() == world.rec.sha256


def eio_on_read(n: int) -> None:
    """The nth read of an original fails as a dying disk would."""
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        if len(calls) == n:
            raise OSError(errno.EIO, "Input/output error")

    faults.hooks["original.read"] = fail


def test_a_read_error_mid_sendfile_is_audited_as_a_failure_not_a_disconnect(world: World) -> None:
    eio_on_read(3)
    status, body, error = world.get()
    assert status == 200 and error is not None and len(body) < SIZE
    (failed,) = world.reads("recording.get.failed")
    assert "cannot read original" in failed["problem"] and "Input/output error" in failed["problem"]
    assert not world.reads("recording.get", 0)


# -- the fallback: TLS cannot sendfile ------------------------------------------------------

def test_over_tls_the_original_goes_in_chunks_with_the_same_checks(vault: Vault, tmp_path: Path) -> None:
    w = make_world(vault, tmp_path)
    cert, key = self_signed(tmp_path)
    port = free_port()
    (server,) = make_servers(vault, f"127.0.0.1:{port}", certfile=cert, keyfile=key)
    w.base, w.verify = f"https://127.0.0.1:{port}", ssl.create_default_context(cafile=str(cert))
    with running(server):
        status, body, error = w.get()
        assert (status, error) == (200, None) and hashlib.sha256(body).hexdigest() == w.rec.sha256
        flip(w.store_path(), SIZE - 1)
        status, body, error = w.get()
        assert status == 200 and error is not None and len(body) < SIZE
        (failed,) = w.reads("recording.get.failed")
        assert "does not match" in failed["problem"]
        assert len(w.reads("recording.get")) == 1
        eio_on_read(2)  # a read error in chunks: a failure named as such, not a disconnect
        status, body, error = w.get()
        assert status == 200 and error is not None and len(body) < SIZE
        failed_reads = w.reads("recording.get.failed", 2)
        assert sum("cannot read original" in f["problem"] for f in failed_reads) == 1

