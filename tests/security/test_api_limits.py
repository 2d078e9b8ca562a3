"""Issue 16 #8: request bodies are capped per route before they are read.

A stranger without a token must not make the server read (and hold) a body
of any size: a Content-Length over the cap is refused at once, unread; a
chunked body is cut off as soon as it passes the cap; memory does not grow.
"""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from serving import vaultd_server
import test_api
from test_api import API, PASSWORD, World, logged

from vaultd.api.limits import JSON_BODY_BYTES, LIST_BODY_BYTES
from vaultd.vault import Vault

BIG = 50 << 20
world = test_api.world  # the API world of tests/test_api.py: its users, tokens and recordings


def too_large(r: object) -> None:
    assert getattr(r, "status_code") == 413, getattr(r, "text")
    err = getattr(r, "json")()["error"]
    assert err["code"] == "body_too_large" and str(JSON_BODY_BYTES) in err["message"], err


def test_a_login_body_over_the_cap_is_refused_before_login_runs(world: World) -> None:
    body = {"name": "wang", "password": "x" * (JSON_BODY_BYTES + 1)}
    r = world.client.post(API + "/login", json=body)
    too_large(r)
    assert r.headers["connection"] == "close"
    assert not logged(world.vault, "auth.failed")  # the login never ran
    ok = world.client.post(API + "/login", json={"name": "wang", "password": PASSWORD})
    assert ok.status_code == 200, ok.text  # a body under the cap still works


def test_a_chunked_body_over_the_cap_is_refused(world: World) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "wang", "password": "'
        for _i in range(JSON_BODY_BYTES // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    r = world.client.post(API + "/login", content=chunks(), headers={"content-type": "application/json"})
    too_large(r)
    assert not logged(world.vault, "auth.failed")


def test_the_cap_holds_on_routes_that_read_no_body(world: World) -> None:
    r = world.client.request("GET", API + "/health", content=b"x" * (JSON_BODY_BYTES + 1))
    too_large(r)


def test_a_route_that_takes_lists_has_a_larger_cap_it_publishes(world: World) -> None:
    ids = [f"{i:064x}" for i in range(1000)]  # 1000 ids: the most a request names, over 64 KiB
    body = {"kind": "view-original", "recordings": ids, "purpose": "案件 2026-017 复核"}
    assert JSON_BODY_BYTES < len(json.dumps(body)) < LIST_BODY_BYTES
    r = world.post("wang", "/access/requests", body)
    assert r.status_code == 404, r.text  # read and judged: no such recording, not "too large"
    schema = world.client.get("/openapi.json").json()
    assert schema["paths"][API + "/access/requests"]["post"]["x-max-body-bytes"] == LIST_BODY_BYTES
    r = world.post("wang", "/access/requests", {**body, "purpose": "x" * LIST_BODY_BYTES})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


# -- against a real server, over a socket ----------------------------------------------------

def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10)
    return sock


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            break
        data += more
    head, _sep, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _s, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        more = sock.recv(65536)
        if not more:
            break
        rest += more
    return int(lines[0].split()[1]), headers, rest


def _login_head(extra: str) -> bytes:
    return (f"POST {API}/login HTTP/1.1\r\nHost: vaultd\r\nContent-Type: application/json\r\n{extra}\r\n").encode()


def _send_until_answered(sock: socket.socket, chunked: bool) -> int:
    """Send a 50 MB body as fast as the server takes it, until it answers; the bytes sent."""
    sock.setblocking(False)
    piece = (b"4000\r\n" + b"x" * 0x4000 + b"\r\n") if chunked else b"x" * 0x4000
    sent = 0
    try:
        while sent < BIG:
            readable, writable, _x = select.select([sock], [sock], [], 10)
            if readable:
                break
            if not writable:
                pytest.fail("the server neither reads nor answers")
            sent += sock.send(piece[sent % len(piece):])
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.setblocking(True)
    sock.settimeout(10)
    return sent


@pytest.fixture
def server(vault: Vault, home: Path) -> Iterator[tuple[str, int]]:
    with vaultd_server(home) as (url, proc):
        yield url, proc.pid


def test_a_real_server_refuses_a_large_content_length_before_any_byte_of_the_body(
        server: tuple[str, int]) -> None:
    with _connect(server[0]) as sock:
        sock.sendall(_login_head(f"Content-Length: {BIG}\r\n"))  # and not one byte of the body
        status, headers, body = _response(sock)
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "body_too_large"
    assert headers["x-content-type-options"] == "nosniff"


def test_a_real_server_cuts_off_a_chunked_body_once_it_passes_the_cap(server: tuple[str, int]) -> None:
    with _connect(server[0]) as sock:
        sock.sendall(_login_head("Transfer-Encoding: chunked\r\n"))
        sent = _send_until_answered(sock, chunked=True)
        status, _headers, body = _response(sock)
    assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"
    assert sent < BIG // 4  # stopped near the cap (plus what the sockets buffer), far from 50 MB


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_four_50_mb_bodies_at_once_do_not_grow_the_server(server: tuple[str, int]) -> None:
    url, pid = server
    with _connect(url) as warm:  # one refusal first: the code paths are loaded before the baseline
        warm.sendall(_login_head("Content-Length: 100000\r\n"))
        assert _response(warm)[0] == 413
    before = _peak_rss_bytes(pid)
    socks = [_connect(url) for _i in range(4)]
    try:
        for i, sock in enumerate(socks):
            sock.sendall(_login_head(f"Content-Length: {BIG}\r\n" if i % 2 else "Transfer-Encoding: chunked\r\n"))
        for i, sock in enumerate(socks):
            _send_until_answered(sock, chunked=not i % 2)
            assert _response(sock)[0] == 413
    finally:
        for sock in socks:
            sock.close()
    grown = _peak_rss_bytes(pid) - before
    assert grown < 16 << 20, f"the server's peak memory grew by {grown >> 20} MiB"
