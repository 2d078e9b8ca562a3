"""Walking a camera's file tree without trusting it.

Only regular files are read; symlinks are never followed (every path
component is opened with ``O_NOFOLLOW`` relative to its parent); names are
kept as raw bytes and neutralised for display; caps on depth, count and size
keep a hostile device from exhausting the station. Every entry is looked at
on its own, so one bad entry cannot hide the rest. What is not ingested is
reported with its reason, never dropped silently.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vaultd.config import IngestConfig
from vaultd.errors import DeviceGoneError, UsageError
from vaultd.i18n import _
from vaultd.model import CameraIdentity, SafeName
from vaultd.names import neutralise

SIM_IDENTITY_FILE = "vaultd-camera.json"
_MAX_IDENTITY_BYTES = 64 << 10


@dataclass(frozen=True)
class CameraFile:
    """A regular file found on the camera."""

    parts: tuple[bytes, ...]  # raw name bytes of each path component
    display_path: str  # neutralised components joined with '/'
    name: SafeName
    size_bytes: int
    mtime_ns: int


@dataclass(frozen=True)
class Passed:
    """Something found that will not be ingested, and why."""

    display_path: str
    name_raw: bytes
    reason: str
    limit: bool = False  # a cap stopped it: the camera is not fully ingested
    failed: bool = False  # an error stopped it


@dataclass
class Walk:
    files: list[CameraFile] = field(default_factory=list)
    passed: list[Passed] = field(default_factory=list)


MAX_ROOT_NAMES = 4096  # names at a camera's root considered for driver matching


def root_names(path: Path) -> frozenset[str]:
    """The names at a camera filesystem's root (capped), for matching drivers: data, not paths."""
    names: set[str] = set()
    with os.scandir(path) as it:
        for n, entry in enumerate(it):
            if n >= MAX_ROOT_NAMES:
                break
            names.add(entry.name)
    return frozenset(names)


def open_root(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise UsageError(_("%s does not exist") % path,
                         hint=_("give the folder where the camera is mounted")) from None
    except NotADirectoryError:
        raise UsageError(_("%s is not a folder") % path,
                         hint=_("give the folder where the camera is mounted")) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(_("%s is a symbolic link; give the real folder") % path) from None
        raise DeviceGoneError(_("cannot open %s: %s") % (path, exc.strerror)) from exc
    return fd


def walk(root_fd: int, limits: IngestConfig) -> Walk:
    out = Walk()
    total = [0]
    _walk_dir(root_fd, (), "", 0, limits, out, total)
    return out


def _walk_dir(dir_fd: int, parts: tuple[bytes, ...], prefix: str, depth: int,
              limits: IngestConfig, out: Walk, total: list[int]) -> None:
    try:
        entries = sorted(os.scandir(dir_fd), key=lambda e: os.fsencode(e.name))
    except OSError as exc:
        out.passed.append(Passed(prefix or ".", parts[-1] if parts else b".",
                                 _("cannot list folder: %s") % exc.strerror, failed=True))
        return
    for entry in entries:
        raw = os.fsencode(entry.name)
        safe = neutralise(raw)
        display = f"{prefix}{safe.display}"
        if depth == 0 and raw == SIM_IDENTITY_FILE.encode():
            out.passed.append(Passed(display, raw, _("simulated camera identity, not a recording")))
            continue
        _visit(dir_fd, entry, parts + (raw,), display, safe, depth, limits, out, total)


def _visit(dir_fd: int, entry: os.DirEntry[str], parts: tuple[bytes, ...], display: str,
           safe: SafeName, depth: int, limits: IngestConfig, out: Walk, total: list[int]) -> None:
    raw = parts[-1]
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError as exc:
        out.passed.append(Passed(display, raw, _("cannot read entry: %s") % exc.strerror, failed=True))
        return
    if stat.S_ISLNK(st.st_mode):
        out.passed.append(Passed(display, raw, _("symbolic link, not followed")))
    elif stat.S_ISDIR(st.st_mode):
        if depth + 1 >= limits.max_depth:
            out.passed.append(Passed(display, raw, _("limit: folder deeper than ingest.max_depth=%d")
                                     % limits.max_depth, limit=True))
            return
        try:
            sub_fd = os.open(raw, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
        except OSError as exc:
            out.passed.append(Passed(display, raw, _("cannot open folder: %s") % exc.strerror, failed=True))
            return
        try:
            _walk_dir(sub_fd, parts, display + "/", depth + 1, limits, out, total)
        finally:
            os.close(sub_fd)
    elif not stat.S_ISREG(st.st_mode):
        out.passed.append(Passed(display, raw, _("not a regular file (device, pipe or socket)")))
    else:
        _add_file(parts, display, safe, st, limits, out, total)


def _add_file(parts: tuple[bytes, ...], display: str, safe: SafeName, st: os.stat_result,
              limits: IngestConfig, out: Walk, total: list[int]) -> None:
    raw = parts[-1]
    if len(out.files) >= limits.max_files:
        reason = _("limit: more than ingest.max_files=%d files") % limits.max_files
    elif st.st_size > limits.max_file_bytes:
        reason = _("limit: larger than ingest.max_file_bytes=%d") % limits.max_file_bytes
    elif total[0] + st.st_size > limits.max_total_bytes:
        reason = _("limit: camera holds more than ingest.max_total_bytes=%d") % limits.max_total_bytes
    else:
        total[0] += st.st_size
        out.files.append(CameraFile(parts, display, safe, st.st_size, st.st_mtime_ns))
        return
    out.passed.append(Passed(display, raw, reason, limit=True))


class DirCache:
    """Folder fds of one camera, each opened once with ``O_NOFOLLOW`` step by step.

    Holding the fd keeps pointing at the folder that was walked, even if the
    device swaps a name for a symlink later; it saves three opens per file.
    """

    def __init__(self, root_fd: int, max_open: int = 256) -> None:
        self.root_fd = root_fd
        self.max_open = max_open
        self._fds: dict[tuple[bytes, ...], int] = {}

    def parent_of(self, parts: tuple[bytes, ...]) -> int:
        key = parts[:-1]
        if not key:
            return self.root_fd
        fd = self._fds.get(key)
        if fd is None:
            if len(self._fds) >= self.max_open:
                self.close()
            fd = os.open(key[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                         dir_fd=self.parent_of(key))
            self._fds[key] = fd
        return fd

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def open_file(root_fd: int, parts: tuple[bytes, ...], dirs: DirCache | None = None) -> int:
    """Open a camera file read-only, refusing symlinks at every step."""
    return open_file_stat(root_fd, parts, dirs)[0]


def open_file_stat(root_fd: int, parts: tuple[bytes, ...],
                   dirs: DirCache | None = None) -> tuple[int, os.stat_result]:
    """``open_file``, with the file's status as it was opened."""
    cache = dirs or DirCache(root_fd)
    try:
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=cache.parent_of(parts))
    finally:
        if dirs is None:
            cache.close()
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    os.set_blocking(fd, True)
    return fd, st


class Readahead:
    """Starts the kernel reading the next files of a copy before the copy asks.

    A small file is read in one call that waits for the disk (or the USB
    device) each time; one after another those waits add up to most of the
    copy. A thread of its own walks a little ahead of the copy, opening each
    coming small file and asking for its pages (``POSIX_FADV_WILLNEED``), so
    the reads queue up and overlap. Big files are skipped: their sequential
    reads already read ahead. It is a hint only: the copy reads and checks
    every byte itself, so any error here is ignored.
    """

    def __init__(self, root_fd: int, files: Sequence[CameraFile], *, max_file_bytes: int,
                 ahead_files: int = 48, ahead_bytes: int = 48 << 20) -> None:
        self._root_fd = root_fd
        self._files = files
        self._max_file_bytes = max_file_bytes
        self._ahead_files = ahead_files
        self._ahead_bytes = ahead_bytes
        self._done = 0  # files the copy has finished
        self._done_bytes = 0
        self._stopped = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        if any(f.size_bytes < max_file_bytes for f in files):
            self._thread = threading.Thread(target=self._run, name="vaultd-readahead", daemon=True)
            self._thread.start()

    def __enter__(self) -> Readahead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def advance(self, cam: CameraFile) -> None:
        """The copy is done with ``cam`` (the next file of the list)."""
        with self._cond:
            self._done += 1
            self._done_bytes += cam.size_bytes
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        dirs = DirCache(self._root_fd, max_open=64)
        ahead_bytes = 0  # bytes of the files up to the one being asked for
        try:
            for i, cam in enumerate(self._files):
                ahead_bytes += cam.size_bytes
                with self._cond:
                    while not self._stopped and (i - self._done >= self._ahead_files
                                                 or ahead_bytes - self._done_bytes > self._ahead_bytes):
                        if i <= self._done:  # the copy caught up: ask for this one anyway
                            break
                        self._cond.wait()
                    if self._stopped:
                        return
                    if i < self._done:
                        continue  # already copied
                if cam.size_bytes >= self._max_file_bytes:
                    continue
                try:
                    fd = open_file(self._root_fd, cam.parts, dirs)
                except OSError:
                    continue
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
                except OSError:
                    pass
                finally:
                    os.close(fd)
        finally:
            dirs.close()


def unlink_file(dirs: DirCache, parts: tuple[bytes, ...]) -> None:
    """Delete one camera file (the wipe step), without following links."""
    parent = dirs.parent_of(parts)
    os.unlink(parts[-1], dir_fd=parent)
    os.fsync(parent)


def read_sim_identity(root_fd: int) -> CameraIdentity | None:
    """The identity file a simulated camera carries at its root, if any."""
    try:
        fd = os.open(SIM_IDENTITY_FILE, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=root_fd)
    except OSError:
        return None
    try:
        data = os.read(fd, _MAX_IDENTITY_BYTES)
    finally:
        os.close(fd)
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None

    def text(key: str) -> str | None:
        value = doc.get(key)
        return str(value)[:128] if isinstance(value, (str, int)) else None

    offset = doc.get("clock_offset_s")
    return CameraIdentity(
        serial=text("serial"), model=text("model"), officer_id=text("officer_id"),
        unit=text("unit"), vendor=text("vendor"), camera_tz=text("camera_tz"),
        clock_offset_s=float(offset) if isinstance(offset, (int, float)) else None,
        simulated=bool(doc.get("simulated", True)),
    )
