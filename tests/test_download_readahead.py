"""A hashed download keeps the disk busy (#17.7): while one batch of an original is
read and hashed, the next one is already asked of the disk (POSIX_FADV_WILLNEED),
so a cold download does not wait on the disk between hash steps."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import anyio
import pytest

from vaultd.api import download
from vaultd.model import Recording


def test_read_ahead_asks_for_the_next_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "HASH_READ_BYTES", 64 << 10)
    monkeypatch.setattr(download, "HASH_BATCH_BYTES", 256 << 10)
    monkeypatch.setattr(download, "HOLD_BYTES", 64 << 10)
    data = os.urandom((1 << 20) + 4321)
    (tmp_path / "o").write_bytes(data)
    rec = cast(Recording, SimpleNamespace(id="r1", sha256=hashlib.sha256(data).hexdigest()))
    advice: list[tuple[int, int, int]] = []
    real = os.posix_fadvise

    def record(fd: int, offset: int, length: int, how: int) -> None:
        advice.append((offset, length, how))
        real(fd, offset, length, how)

    monkeypatch.setattr(os, "posix_fadvise", record)
    fd = os.open(tmp_path / "o", os.O_RDONLY)
    try:
        ahead: Any = download._ReadAhead(fd, 0, len(data), rec, "original r1", verify=True)
        anyio.run(ahead.run)
    finally:
        os.close(fd)
    assert ahead.read == len(data) and ahead.released == len(data)  # read, hashed, matched
    asked = [(o, n) for o, n, how in advice if how == os.POSIX_FADV_WILLNEED]
    assert asked, advice
    reads_from = 0
    for o, n in asked:  # each ask is ahead of what had been read, and within the file
        assert o > reads_from and o + n <= len(data)
        reads_from = o
    assert max(o + n for o, n in asked) >= len(data) - (256 << 10)  # up to the last batch
