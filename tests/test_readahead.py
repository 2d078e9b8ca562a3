"""camerafs.Readahead: a hint that runs a little ahead of the copy and never
gets in its way (files gone, the copy stopped early, big files left alone)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vaultd import camerafs
from vaultd.config import IngestConfig


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[int, list[camerafs.CameraFile]]]:
    root = tmp_path / "cam"
    (root / "DCIM").mkdir(parents=True)
    for i in range(8):
        (root / "DCIM" / f"{i:02d}.JPG").write_bytes(bytes([i]) * 1000)
    (root / "DCIM" / "99_big.MP4").write_bytes(b"v" * 5000)
    fd = camerafs.open_root(root)
    files = sorted(camerafs.walk(fd, IngestConfig()).files, key=lambda f: f.display_path)
    yield fd, files
    os.close(fd)


def _advised(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], threading.Event]:
    """Record the size of each file the readahead asks the kernel for."""
    seen: list[int] = []
    changed = threading.Event()
    real = os.posix_fadvise

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        if advice == os.POSIX_FADV_WILLNEED:
            seen.append(os.fstat(fd).st_size)
            changed.set()
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", fadvise)
    return seen, changed


def test_it_stays_within_its_lead_and_follows_the_copy(tree: tuple[int, list[camerafs.CameraFile]],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fd, files = tree
    seen, changed = _advised(monkeypatch)
    with camerafs.Readahead(fd, files, max_file_bytes=4096, ahead_files=3) as ahead:
        while len(seen) < 3:
            assert changed.wait(10)
            changed.clear()
        time.sleep(0.2)
        assert len(seen) == 3  # no further than 3 files ahead of the copy
        ahead.advance(files[0])  # one copied: one more asked for
        while len(seen) < 4:
            assert changed.wait(10)
            changed.clear()
        for cam in files[1:]:
            ahead.advance(cam)  # files the copy passed are not asked for any more
    assert 4 <= len(seen) <= 8 and 5000 not in seen  # the big file is left to its own readahead


def test_files_gone_and_an_early_stop_are_no_error(tree: tuple[int, list[camerafs.CameraFile]],
                                                   tmp_path: Path) -> None:
    fd, files = tree
    for p in (tmp_path / "cam" / "DCIM").glob("0[0-3].JPG"):
        p.unlink()  # unplugged, or the files went away
    ahead = camerafs.Readahead(fd, files, max_file_bytes=4096, ahead_files=2)
    ahead.advance(files[0])
    ahead.close()  # the copy stopped (disk full, camera gone): the thread ends at once
    assert ahead._thread is not None and not ahead._thread.is_alive()


def test_no_thread_when_every_file_is_big(tree: tuple[int, list[camerafs.CameraFile]]) -> None:
    fd, files = tree
    with camerafs.Readahead(fd, files, max_file_bytes=10) as ahead:
        assert ahead._thread is None
