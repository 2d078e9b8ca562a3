"""The content-addressed store of originals.

An original lives at ``store/sha256/ab/cd/<hex>``, read-only, written once.
It gets there through staging: one pass that reads the source, hashes it and
writes it (reader and writer overlap on two threads), then ``fsync`` of the
file, a rename into place and ``fsync`` of the directories. Nothing in this
module rewrites or deletes a stored original.

The store knows nothing of the catalog.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import logging
import os
import queue
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vaultd import faults
from vaultd.errors import DiskFullError, HashMismatchError, StorageError
from vaultd.files import fsync_path
from vaultd.i18n import _

log = logging.getLogger(__name__)

GONE_ERRNOS = frozenset({errno.EIO, errno.ENODEV, errno.ENXIO, errno.ENOTCONN, errno.ESHUTDOWN})
_BUFFERS = 4
_HEX64 = re.compile("[0-9a-f]{64}")
_SYNC_EACH_UP_TO = 16  # files or folders fsynced one by one; more: one syncfs
LOCK_NAME = ".sessions.lock"


class SourceReadError(Exception):
    """Reading the source (the camera) failed; ``errno`` tells how."""

    def __init__(self, err: OSError) -> None:
        super().__init__(err.strerror or str(err))
        self.errno = err.errno


@dataclass(frozen=True)
class StagedObject:
    path: Path
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class CheckResult:
    sha256: str
    ok: bool
    problem: str | None  # "missing", "size differs", "hash differs: <hex>"


ProgressFn = Callable[[int], None]


class Staging:
    """One ingest session's private staging folder.

    While it is open the session holds a shared lock on the staging area, so
    crash recovery (which needs the exclusive lock) never runs beside it.
    """

    def __init__(self, staging_dir: Path, session_id: str) -> None:
        lock_fd = os.open(staging_dir / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_SH)
        self._lock_fd: int | None = lock_fd
        self.root = staging_dir / session_id
        try:
            self.root.mkdir(mode=0o700)
        except OSError as exc:
            os.close(lock_fd)
            raise _storage_error(exc, self.root) from exc

    @classmethod
    def join(cls, root: Path) -> Staging:
        """The folder of a session open in another process (the copy helper's
        view): it takes no lock, the session holds it, and closing it removes nothing."""
        joined = cls.__new__(cls)
        joined._lock_fd = None
        joined.root = root
        return joined

    def new_part(self) -> Path:
        return self.root / f"{uuid.uuid4().hex}.part"

    def close(self) -> None:
        if self._lock_fd is None:
            return
        shutil.rmtree(self.root, ignore_errors=True)
        os.close(self._lock_fd)
        self._lock_fd = None


class Store:
    def __init__(self, store_dir: Path, staging_dir: Path, *, chunk_bytes: int = 8 << 20) -> None:
        self.store_dir = store_dir
        self.staging_dir = staging_dir
        self.chunk_bytes = chunk_bytes

    # -- places ---------------------------------------------------------
    def object_path(self, sha256: str) -> Path:
        if _HEX64.fullmatch(sha256) is None:
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.store_dir / f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def exists(self, sha256: str) -> bool:
        return self.object_path(sha256).is_file()

    def open_original(self, sha256: str) -> int:
        """Open an original read-only; the caller closes the fd."""
        path = self.object_path(sha256)
        try:
            return os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise StorageError(
                _("original %s is missing from the store") % sha256,
                hint=_("run 'vaultd scrub' and restore the store from backup"),
            ) from None

    def copy_out(self, sha256: str, dst_fd: int) -> tuple[str, int]:
        """Copy an original into ``dst_fd`` with the same one-pass copy+hash as
        ingest; returns (sha256 of the bytes written, size). The caller compares."""
        src = self.open_original(sha256)
        try:
            return _copy_and_hash(src, dst_fd, self.chunk_bytes, None, size_hint=os.fstat(src).st_size)
        except SourceReadError as exc:
            raise StorageError(_("cannot read original %s: %s") % (sha256, exc)) from exc
        finally:
            os.close(src)

    def iter_objects(self) -> Iterator[str]:
        base = self.store_dir / "sha256"
        if not base.is_dir():
            return
        for a in sorted(os.listdir(base)):
            for b in sorted(os.listdir(base / a)):
                yield from sorted(os.listdir(base / a / b))

    # -- space ----------------------------------------------------------
    def free_bytes(self) -> int:
        st = os.statvfs(self.store_dir)
        return st.f_bavail * st.f_frsize

    def check_space(self, needed_bytes: int, reserve_bytes: int) -> None:
        free = self.free_bytes()
        if free - needed_bytes < reserve_bytes:
            raise DiskFullError(
                _("not enough space in the vault: %d MiB free, %d MiB needed plus a reserve of %d MiB")
                % (free >> 20, -(-needed_bytes >> 20), reserve_bytes >> 20),
                hint=_("free space on %s (or lower ingest.reserve_bytes), then ingest again; nothing was wiped")
                % self.store_dir,
            )

    # -- staging --------------------------------------------------------
    def open_staging(self, session_id: str) -> Staging:
        return Staging(self.staging_dir, session_id)

    @contextmanager
    def recovery_lock(self) -> Iterator[bool]:
        """Exclusive hold on staging; yields False when a session is running."""
        fd = os.open(self.staging_dir / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def clean_staging(self) -> int:
        """Remove every staging folder; call only under ``recovery_lock``."""
        removed = 0
        for entry in os.scandir(self.staging_dir):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
        return removed

    def stage(self, staging: Staging, src_fd: int, progress: ProgressFn | None = None,
              *, fsync: bool = True, size_hint: int | None = None) -> StagedObject:
        """Copy ``src_fd`` into staging while hashing it; fsync the copy.

        The copy is made read-only (0444). With ``fsync=False`` the caller
        makes a batch durable with one ``flush()`` before committing any of
        it. ``size_hint``: the source's size when the caller has just looked
        (saves a stat).

        Raises SourceReadError when the source fails, DiskFullError on ENOSPC
        (the partial file is removed either way).
        """
        part = staging.new_part()
        try:
            dst_fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise _storage_error(exc, part) from exc
        try:
            digest, size = _copy_and_hash(src_fd, dst_fd, self.chunk_bytes, progress,
                                          size_hint=os.fstat(src_fd).st_size if size_hint is None else size_hint)
            faults.point("stage.before_fsync")
            os.fchmod(dst_fd, 0o444)  # whatever the umask made of the mode at creation
            if fsync:
                os.fsync(dst_fd)
        except SourceReadError:
            _discard(part)
            raise
        except OSError as exc:
            _discard(part)
            raise _storage_error(exc, part) from exc
        except BaseException:
            _discard(part)
            raise
        finally:
            os.close(dst_fd)
        faults.point("stage.done")
        return StagedObject(path=part, sha256=digest, size_bytes=size)

    def commit(self, staged: StagedObject) -> bool:
        """Move a staged object into place, durably. Returns False if it was
        already stored (an existing object is never replaced; the staged copy
        is dropped)."""
        return self.commit_many([staged])[0]

    def commit_many(self, staged: Sequence[StagedObject]) -> list[bool]:
        """Move a batch of staged objects into place, then make the new names
        durable (the folders touched: an fsync each when few, else one syncfs,
        which also waits for everything else written, other cameras' copies
        included). Returns, for each, whether it was placed (False: already stored)."""
        touched: set[Path] = set()
        placed = []
        for obj in staged:
            dirs = self._place(obj)
            placed.append(dirs is not None)
            touched.update(dirs or ())
        # the innermost folders first: a new folder's entry is its parent's
        self._sync_each_or_all(sorted(touched, key=lambda p: len(p.parts), reverse=True), _fsync)
        faults.point("store.after_rename")
        return placed

    def _sync_each_or_all(self, paths: Sequence[Path], sync_one: Callable[[Path], None]) -> None:
        """Make ``paths`` durable: each on its own when they are few (only their own
        data), else one syncfs (which also waits for everything else written)."""
        if len(paths) <= _SYNC_EACH_UP_TO:
            for path in paths:
                sync_one(path)
        else:
            self.flush()

    def _place(self, staged: StagedObject) -> list[Path] | None:
        """Rename ``staged`` to its name in the store; returns the folders whose
        entries changed, or None when the object was already there (the staged
        copy is then dropped)."""
        target = self.object_path(staged.sha256)
        if target.exists():
            _discard(staged.path)
            if target.stat().st_size != staged.size_bytes:
                raise HashMismatchError(
                    _("stored original %s has the wrong size") % staged.sha256,
                    hint=_("the store was altered; run 'vaultd scrub'"),
                )
            return None
        created = _make_dirs(target.parent)
        faults.point("store.before_rename")
        try:
            os.rename(staged.path, target)
        except OSError as exc:
            raise _storage_error(exc, target) from exc
        return [target.parent, *(d.parent for d in created)]

    def flush(self) -> None:
        """Make everything written to the vault's filesystem durable (syncfs)."""
        fd = os.open(self.store_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _syncfs(fd)
        finally:
            os.close(fd)

    def make_durable(self, staged: Sequence[StagedObject]) -> None:
        """Make these staged copies durable: an fsync each when they are few,
        else one syncfs; a copy that cannot be fsynced is a StorageError naming it."""
        self._sync_each_or_all([obj.path for obj in staged], _fsync)

    def remove_uncommitted(self, sha256: str) -> bool:
        """Remove an object that a dead ingest placed but never catalogued.

        Only crash recovery calls this, and only for objects named in an open
        ingest intent with no catalog row: they were never evidence of record.
        """
        target = self.object_path(sha256)
        try:
            os.unlink(target)
        except FileNotFoundError:
            return False
        _fsync(target.parent)
        return True

    def purge(self, sha256: str) -> bool:
        """Delete one original's bytes: the only removal of evidence of record.

        Only ``vaultd.retention.purge`` calls this, for a batch that was
        approved and re-checked (no hold, no open case, past its minimum) in
        the same run; it keeps a tombstone and writes the audit entries.
        Returns False when the object was already gone.
        """
        target = self.object_path(sha256)
        try:
            os.unlink(target)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _storage_error(exc, target) from exc
        _fsync(target.parent)
        return True

    # -- checking ---------------------------------------------------------
    def check(self, sha256: str, size_bytes: int | None = None) -> CheckResult:
        path = self.object_path(sha256)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return CheckResult(sha256, False, "missing")
        except OSError as exc:
            return CheckResult(sha256, False, f"unreadable: {exc.strerror}")
        try:
            if size_bytes is not None and os.fstat(fd).st_size != size_bytes:
                return CheckResult(sha256, False, "size differs")
            digest = hash_fd(fd, self.chunk_bytes)
        except OSError as exc:
            return CheckResult(sha256, False, f"unreadable: {exc.strerror}")
        finally:
            os.close(fd)
        if digest != sha256:
            return CheckResult(sha256, False, f"hash differs: {digest}")
        return CheckResult(sha256, True, None)


def hash_fd(fd: int, chunk_bytes: int = 8 << 20) -> str:
    h = hashlib.sha256()
    buf = bytearray(max(65536, min(chunk_bytes, os.fstat(fd).st_size + 1)))
    view = memoryview(buf)
    while True:
        n = os.readv(fd, [buf])
        if n == 0:
            return h.hexdigest()
        h.update(view[:n])


def _copy_and_hash(src_fd: int, dst_fd: int, chunk: int, progress: ProgressFn | None,
                   size_hint: int = -1) -> tuple[str, int]:
    """Reader thread reads and hashes; this thread writes. Buffers are pooled.

    A file that fits in one chunk is copied on this thread alone: a thread and
    its buffers cost more than they save on small files.
    """
    if 0 <= size_hint < chunk:
        return _copy_small(src_fd, dst_fd, size_hint, progress)
    try:
        os.posix_fadvise(src_fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    except OSError:
        pass  # a hint only
    free: queue.Queue[bytearray] = queue.Queue()
    bufs = _POOL.take(chunk, _BUFFERS)
    for buf in bufs:
        free.put(buf)
    full: queue.Queue[tuple[bytearray, int] | BaseException | None] = queue.Queue()
    h = hashlib.sha256()
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                buf = free.get()
                try:
                    faults.point("source.read")
                    n = os.readv(src_fd, [buf])
                except OSError as exc:
                    full.put(SourceReadError(exc))
                    return
                if n == 0:
                    full.put(None)
                    return
                h.update(memoryview(buf)[:n])
                full.put((buf, n))
        except BaseException as exc:  # pragma: no cover - surfaced below
            full.put(exc)

    thread = threading.Thread(target=reader, name="vaultd-read", daemon=True)
    thread.start()
    size = 0
    try:
        while True:
            item = full.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            buf, n = item
            _write_all(dst_fd, memoryview(buf)[:n])
            _start_writeback(dst_fd, size, n)
            size += n
            free.put(buf)
            faults.point("stage.chunk")
            if progress is not None:
                progress(n)
    finally:
        stop.set()
        free.put(bytearray(0))  # wakes a reader waiting for a buffer
        thread.join()
        _POOL.give(bufs)
    return h.hexdigest(), size


def _copy_small(src_fd: int, dst_fd: int, size_hint: int, progress: ProgressFn | None) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    while True:
        try:
            faults.point("source.read")
            data = os.read(src_fd, max(size_hint + 1, 65536))
        except OSError as exc:
            raise SourceReadError(exc) from exc
        if not data:
            return h.hexdigest(), size
        h.update(data)
        _write_all(dst_fd, memoryview(data))
        size += len(data)
        faults.point("stage.chunk")
        if progress is not None:
            progress(len(data))
        if size == size_hint:
            # a short read of a regular file is its end; growth after it shows
            # in the caller's check of size and time after the copy
            return h.hexdigest(), size


class _BufferPool:
    """Copy buffers kept between files: a fresh 8 MiB bytearray is zero-filled and
    page-faulted on every use, which costs as much as hashing it on small boxes."""

    def __init__(self, keep: int = 16) -> None:
        self._lock = threading.Lock()
        self._free: dict[int, list[bytearray]] = {}
        self._keep = keep

    def take(self, size: int, count: int) -> list[bytearray]:
        with self._lock:
            have = self._free.setdefault(size, [])
            out = [have.pop() for _i in range(min(count, len(have)))]
        return out + [bytearray(size) for _i in range(count - len(out))]

    def give(self, bufs: list[bytearray]) -> None:
        with self._lock:
            for buf in bufs:
                have = self._free.setdefault(len(buf), [])
                if len(have) < self._keep:
                    have.append(buf)


_POOL = _BufferPool()


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a chunk to disk now, without waiting (POSIX_FADV_DONTNEED on
    dirty pages starts their writeback): the file's final fsync then has little
    left to wait for, and several cameras' copies do not pile up dirty memory."""
    try:
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass  # a hint only


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _storage_error(exc: OSError, path: Path) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(
            _("the vault disk is full while writing %s") % path.name,
            hint=_("free space, then ingest again; the partial copy was removed and nothing was wiped"),
        )
    return StorageError(_("cannot write %s: %s") % (path, exc.strerror))


def _discard(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync(path: Path) -> None:
    """``fsync_path``, a failure being a StorageError that names the file or folder."""
    try:
        fsync_path(path)
    except OSError as exc:
        raise _storage_error(exc, path) from exc


def _make_dirs(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; returns those created, outermost first."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return []
    except FileNotFoundError:
        created = _make_dirs(path.parent)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            return created
        except OSError as exc:
            raise _storage_error(exc, path) from exc
        return [*created, path]
    except OSError as exc:
        raise _storage_error(exc, path) from exc
    return [path]


def _syncfs(fd: int) -> None:
    if _libc is not None and _libc.syncfs(fd) == 0:
        return
    os.sync()  # no syncfs here: sync everything


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syncfs.argtypes = [ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None


_libc = _load_libc()

