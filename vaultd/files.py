"""Small durable-write helpers for the vault's own files (never originals)."""

from __future__ import annotations

import os
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
