"""Small durable-write helpers for the vault's own files (never originals)."""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_durably(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` to ``path`` (mode 0600) and fsync it.

    ``replace=False`` refuses to overwrite an existing file; ``replace=True``
    writes a temporary file and renames it over ``path`` atomically.
    """
    target = path.with_suffix(path.suffix + ".tmp") if replace else path
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(target, flags, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if replace:
        os.replace(target, path)


def fsync_path(path: Path) -> None:
    """fsync a file (its data) or a folder (its entries) by name, never through a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_once(path: Path, data: bytes) -> bool:
    """Publish ``path`` (mode 0600) with ``data``, whole or not at all; never overwrite.

    The bytes go to a temporary name beside it, are fsync'd, then linked into
    place: a reader sees no file or the whole file, never a partial one. Returns
    False when ``path`` already existed (another process made it first: read
    that one; ours is discarded)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


@contextmanager
def locked(path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold an advisory lock (flock) on ``path``, created empty (0600) if missing.

    Exclusive for those who create what the lock guards, shared for readers;
    the kernel drops it if the process dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock
