"""The export's one-pass copy (#17.7): what it writes and hashes, and that it keeps the
disk busy at both ends (the chunk after the next asked for ahead, each written chunk's
writeback started at once) instead of waiting for reads and for one long final fsync."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from vaultd import bag

CHUNK = 64 << 10


def test_copy_hashing_reads_ahead_and_starts_writeback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(5 * CHUNK + 123)
    (tmp_path / "src").write_bytes(data)
    advice: list[tuple[int, int, int, int]] = []
    real = os.posix_fadvise

    def record(fd: int, offset: int, length: int, how: int) -> None:
        advice.append((fd, offset, length, how))
        real(fd, offset, length, how)

    monkeypatch.setattr(os, "posix_fadvise", record)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    dst = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        d = bag.copy_hashing(src, dst, CHUNK)
    finally:
        os.close(src)
        os.close(dst)
    assert (tmp_path / "dst").read_bytes() == data
    assert d == bag.Digests(hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest(), len(data))
    ahead = sorted(o for fd, o, n, how in advice if fd == src and how == os.POSIX_FADV_WILLNEED and n)
    assert ahead and ahead[-1] >= len(data) - CHUNK  # asked for up to the end, ahead of the reads
    started = sorted((o, n) for fd, o, n, how in advice if fd == dst and how == os.POSIX_FADV_DONTNEED)
    covered = 0
    for o, n in started:
        assert o == covered
        covered += n
    assert covered == len(data)  # every written byte's writeback started as it was written


def test_copy_hashing_without_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hints only: a file system that refuses them copies the same."""
    def refuse(fd: int, offset: int, length: int, how: int) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "posix_fadvise", refuse)
    data = os.urandom(3 * CHUNK)
    (tmp_path / "src").write_bytes(data)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    dst = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        d = bag.copy_hashing(src, dst, CHUNK)
    finally:
        os.close(src)
        os.close(dst)
    assert (tmp_path / "dst").read_bytes() == data and d.sha256 == hashlib.sha256(data).hexdigest()
