"""A real ``vaultd serve`` for tests that talk to it over HTTP, as users do."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def vaultd_serve(home: Path, *extra: str, wait_s: float = 30.0) -> Iterator[str]:
    """Start ``vaultd --home HOME serve`` on a free port (plus ``extra`` options);
    yield its base URL once /health answers; stop it afterwards."""
    with vaultd_server(home, *extra, wait_s=wait_s) as (url, _proc):
        yield url


@contextmanager
def vaultd_server(home: Path, *extra: str, wait_s: float = 30.0,
                  stderr: int | None = subprocess.DEVNULL) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As ``vaultd_serve``, yielding the process too (its pid, its stderr when asked for)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "vaultd.cli", "--home", str(home), "serve",
                             "--listen", f"127.0.0.1:{port}", *extra],
                            stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        end = time.monotonic() + wait_s
        while True:
            try:
                if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > end or proc.poll() is not None:
                pytest.fail("vaultd serve did not start")
            time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
