"""Copying camera files into staging: on the calling thread, or in a helper process.

``stage_file`` is the one copy of a camera file into a session's staging
folder: open it without following links, check it is what the walk saw, check
the space reserve, copy and hash it in one pass (``Store.stage``), and check
again that it did not change meanwhile. What happened comes back as a value
(``Staged``, ``Changed``, ``Unreadable``); only DiskFullError and StorageError
are raised, and they stop the session.

Two copiers run it batch after batch:

* ``LocalCopier`` on the calling thread, with ``camerafs.Readahead`` a little
  ahead of it;
* ``HelperCopier`` in a child process (``python -S``, ``vaultd.copier.main``),
  for the batches of small files when there are many (``HELPER_MIN_FILES``).
  A small file's copy is a dozen system calls, and each one gives Python's GIL
  away and must take it back. Beside the commit thread, which catalogues the
  previous batch in pure Python, those hand-overs make the two threads take
  turns on one core: 2,000 files of 100 KiB took 1.43 s, where the copy needs
  0.65 s of CPU and the catalogue 0.85 s. In a process of its own the copy
  really runs beside the catalogue.
  The helper also checks each copy's structure (``containers.check_path``)
  while it is in the page cache, which takes that work off the commit thread.

The helper only accelerates: the session keeps every decision (what is copied,
deferred or failed, durability, the catalogue). It inherits the camera's root
folder and writes only into the session's staging folder. If it cannot start
or dies, the parent copies the rest itself and logs a warning; anything the
dead helper left in staging goes with the staging folder. Fault points
(``vaultd.faults``) count in the parent only: the helper runs without them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from vaultd import camerafs, containers
from vaultd.camerafs import CameraFile
from vaultd.errors import DiskFullError, StorageError
from vaultd.model import Progress
from vaultd.store import SourceReadError, StagedObject, Staging, Store

log = logging.getLogger(__name__)

#: small files in one go that make a helper process worth its start (0.1-0.2 s): measured
#: on 100 KiB files, 200 took 0.14 s copied here and 0.21 s with a helper, 400 about the same
#: either way (0.28 / 0.27 s), 2000 1.43 s here and ~1.0 s with a helper
HELPER_MIN_FILES = 384
#: the helper reports what it copied at least this often (the progress bar moves)
REPORT_EVERY_S = 0.2
_STOPS: dict[str, type[StorageError]] = {"DiskFullError": DiskFullError, "StorageError": StorageError}
_FAULT_VARS = ("VAULTD_KILL_AT", "VAULTD_KILL_TRACE")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Staged:
    staged: StagedObject
    structure: containers.StructureReport | None = None  # checked while the copy was hot


@dataclass(frozen=True)
class Changed:
    """Size or time differ from what the walk saw, or changed while it was read."""


@dataclass(frozen=True)
class Unreadable:
    errno: int | None
    why: str


StageResult = Staged | Changed | Unreadable
Results = Iterator[tuple[CameraFile, StageResult]]


@dataclass(frozen=True)
class CopyJob:
    """Where one session copies from and to."""

    store: Store
    staging: Staging
    root_fd: int
    reserve_bytes: int


def stage_file(job: CopyJob, dirs: camerafs.DirCache, cam: CameraFile, *, fsync: bool,
               progress: Progress | None = None, check: bool = False) -> StageResult:
    """Copy ``cam`` into staging. ``check``: also check the copy's structure."""
    try:
        fd, st = camerafs.open_file_stat(job.root_fd, cam.parts, dirs)
    except OSError as exc:
        return Unreadable(exc.errno, exc.strerror or str(exc))
    try:
        if changed(st, cam):
            return Changed()
        job.store.check_space(cam.size_bytes, job.reserve_bytes)
        try:
            staged = job.store.stage(job.staging, fd, progress.advance if progress else None,
                                     fsync=fsync, size_hint=cam.size_bytes)
        except SourceReadError as exc:
            return Unreadable(exc.errno, str(exc))
        if changed(os.fstat(fd), cam) or staged.size_bytes != cam.size_bytes:
            os.unlink(staged.path)
            return Changed()
    finally:
        os.close(fd)
    structure = None
    if check:
        try:
            structure = containers.check_path(staged.path, cam.name.display)
        except OSError:
            pass  # the commit checks it again and says what went wrong
    return Staged(staged, structure)


def changed(st: os.stat_result, cam: CameraFile) -> bool:
    return st.st_size != cam.size_bytes or st.st_mtime_ns != cam.mtime_ns


def for_helper(batch: Sequence[CameraFile], chunk_bytes: int) -> bool:
    """A batch the helper copies: several files, each small enough for one read."""
    return len(batch) > 1 and all(f.size_bytes < chunk_bytes for f in batch)


def wants_helper(batches: Sequence[Sequence[CameraFile]], chunk_bytes: int,
                 min_files: int | None = None) -> bool:
    """Whether a group's small files are many enough to start a helper for them
    (``min_files``: default ``HELPER_MIN_FILES``; 0: never)."""
    if min_files is None:
        min_files = HELPER_MIN_FILES
    if min_files <= 0:
        return False
    return sum(len(b) for b in batches if for_helper(b, chunk_bytes)) >= min_files


class LocalCopier:
    """Copies on the calling thread, with a readahead thread over the group."""

    def __init__(self, job: CopyJob, dirs: camerafs.DirCache, files: Sequence[CameraFile],
                 progress: Progress | None) -> None:
        self._job = job
        self._dirs = dirs
        self._progress = progress
        self._ahead = camerafs.Readahead(job.root_fd, files, max_file_bytes=job.store.chunk_bytes)

    def copy(self, batch: Sequence[CameraFile], *, fsync: bool) -> Results:
        for cam in batch:
            if self._progress:
                self._progress.file(cam.display_path)
            result = stage_file(self._job, self._dirs, cam, fsync=fsync, progress=self._progress)
            self._ahead.advance(cam)
            yield cam, result

    def close(self) -> None:
        self._ahead.close()

    def __enter__(self) -> LocalCopier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HelperCopier:
    """Copies a group's batches of small files in a child process, a batch ahead
    of the caller. Until the child is ready (its start takes 0.1-0.2 s from a
    cold page cache) the caller copies the batches itself; other batches, and
    everything after the helper failed, are copied on the calling thread too."""

    def __init__(self, job: CopyJob, dirs: camerafs.DirCache, batches: Sequence[Sequence[CameraFile]],
                 progress: Progress | None) -> None:
        self._job = job
        self._dirs = dirs
        self._progress = progress
        chunk = job.store.chunk_bytes
        self._mine = [list(b) for b in batches if for_helper(b, chunk)]
        self._local = LocalCopier(job, dirs, [f for b in batches if not for_helper(b, chunk) for f in b],
                                  progress)
        self._ready = False
        self._sent = 0  # helper batches asked for (or copied here before it was ready)
        self._done = 0  # helper batches handed over
        self._proc: subprocess.Popen[bytes] | None = None
        try:
            self._proc = _start(job)
        except OSError as exc:
            self._fail(_why(exc))

    def copy(self, batch: Sequence[CameraFile], *, fsync: bool) -> Results:
        if not for_helper(batch, self._job.store.chunk_bytes):
            yield from self._local.copy(batch, fsync=fsync)
            return
        assert self._done < len(self._mine) and list(batch) == self._mine[self._done], \
            "batches must come in the order given"
        self._done += 1
        got: list[StageResult] = []
        stop: StorageError | None = None
        if self._proc is not None and self._try_ready():
            try:
                got, stop = self._receive(len(batch))
                self._ask_next()
            except (OSError, EOFError, pickle.PickleError, ValueError) as exc:
                self._fail(_why(exc))
        elif self._proc is not None:
            self._sent = self._done  # not ready yet: this batch is copied here
        for cam, result in zip(batch, got):
            if self._progress:
                self._progress.file(cam.display_path)
                if isinstance(result, Staged):
                    self._progress.advance(result.staged.size_bytes)
            yield cam, result
        if stop is not None:
            raise stop
        rest = batch[len(got):]  # all of it before the helper was ready; what it left when it died
        if rest:
            with LocalCopier(self._job, self._dirs, rest, self._progress) as here:
                yield from here.copy(rest, fsync=fsync)

    def _try_ready(self) -> bool:
        try:
            return self._is_ready()
        except (OSError, EOFError, pickle.PickleError, ValueError) as exc:
            self._fail(_why(exc))
            return False

    def _is_ready(self) -> bool:
        """Whether the child has started; on its first word, give it the rest of the group."""
        if self._ready:
            return True
        assert self._proc is not None and self._proc.stdout is not None
        readable, _w, _x = select.select([self._proc.stdout], [], [], 0)
        if not readable:
            return False
        if self._recv()[0] != "ready":
            raise ValueError("the helper did not start as expected")
        self._ready = True
        first = self._done - 1
        self._sent = first
        self._send(("group", [f for b in self._mine[first:] for f in b]))
        self._ask_next()
        return True

    def _receive(self, n: int) -> tuple[list[StageResult], StorageError | None]:
        got: list[StageResult] = []
        while True:
            msg = self._recv()
            if msg[0] == "files":
                got.extend(msg[1])
            elif msg[0] == "end":
                if len(got) != n:
                    raise ValueError(f"the helper copied {len(got)} of {n} files")
                return got, None
            elif msg[0] == "stop":
                _kind, cls, message, hint = msg
                return got, _STOPS.get(cls, StorageError)(message, hint=hint)
            else:
                raise ValueError(f"unexpected message from the helper: {msg[0]!r}")

    def _ask_next(self) -> None:
        """Keep the batch being taken and the next one asked for: the helper goes on
        to the next while the caller takes the one it finished."""
        while self._proc is not None and self._sent < min(self._done + 1, len(self._mine)):
            self._send(("copy", self._mine[self._sent], len(self._mine[self._sent]) == 1))
            self._sent += 1

    def _send(self, msg: object) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        pickle.dump(msg, self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self._proc.stdin.flush()

    def _recv(self) -> tuple[Any, ...]:
        assert self._proc is not None and self._proc.stdout is not None
        msg = _Unpickler(self._proc.stdout).load()
        if not isinstance(msg, tuple) or not msg:
            raise ValueError("malformed message from the helper")
        return msg

    def _fail(self, why: str) -> None:
        log.warning("copy helper process failed (%s); copying on in this process", why)
        self._stop_process(kill=True)

    def _stop_process(self, *, kill: bool) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if kill:
            proc.kill()
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop the helper (mid-batch too: its unfinished copies stay in staging,
        which the session removes) and wait for it."""
        self._stop_process(kill=self._done < self._sent)
        self._local.close()

    def __enter__(self) -> HelperCopier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Unpickler(pickle.Unpickler):
    """Takes from the helper only the values it may send: the helper reads hostile
    camera files, so what it says is checked like input."""

    ALLOWED = frozenset({
        ("vaultd.copier", "Staged"), ("vaultd.copier", "Changed"), ("vaultd.copier", "Unreadable"),
        ("vaultd.store", "StagedObject"), ("vaultd.containers", "StructureReport"),
        ("pathlib", "PosixPath"), ("datetime", "datetime"), ("datetime", "timezone"),
        ("datetime", "timedelta"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"the helper may not send {module}.{name}")
        return super().find_class(module, name)


Copier = LocalCopier | HelperCopier


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _start(job: CopyJob) -> subprocess.Popen[bytes]:
    package_parent = str(Path(__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if k not in _FAULT_VARS}
    argv = [sys.executable, "-S", "-c",
            f"import sys; sys.path.insert(0, {package_parent!r}); from vaultd.copier import main; main()",
            str(os.getpid()), str(job.root_fd), str(job.store.store_dir), str(job.store.staging_dir), str(job.staging.root),
            str(job.store.chunk_bytes), str(job.reserve_bytes)]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                            pass_fds=(job.root_fd,), close_fds=True)


# -- the helper process ---------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> None:
    """The helper: ``PARENT_PID ROOT_FD STORE_DIR STAGING_DIR SESSION_DIR CHUNK_BYTES RESERVE_BYTES``;
    requests come as pickles on stdin, answers go as pickles to stdout."""
    args = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    parent, root_fd, store_dir, staging_dir, session_dir, chunk, reserve = args
    _die_with(int(parent))
    store = Store(Path(store_dir), Path(staging_dir), chunk_bytes=int(chunk))
    job = CopyJob(store, Staging.join(Path(session_dir)), int(root_fd), int(reserve))
    try:
        serve(job, sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:
        os._exit(0)  # the session ended (or stopped) before asking for more: nothing to say


def _die_with(parent: int) -> None:
    """Be killed when the session's thread ends, however it ends (PR_SET_PDEATHSIG):
    a helper never copies on for a session that is gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the closed pipe ends it after the batch
    if os.getppid() != parent:
        os._exit(0)  # the parent died before the request took effect


def serve(job: CopyJob, inp: BinaryIO, out: BinaryIO) -> None:
    dirs = camerafs.DirCache(job.root_fd)
    ahead: camerafs.Readahead | None = None
    _answer(out, ("ready",))
    try:
        while True:
            try:
                msg = pickle.load(inp)
            except EOFError:
                return
            if msg[0] == "group":
                if ahead is not None:
                    ahead.close()
                ahead = camerafs.Readahead(job.root_fd, msg[1], max_file_bytes=job.store.chunk_bytes)
            elif msg[0] == "copy":
                _copy_batch(job, dirs, ahead, msg[1], msg[2], out)
            else:
                return
    finally:
        if ahead is not None:
            ahead.close()
        dirs.close()


def _copy_batch(job: CopyJob, dirs: camerafs.DirCache, ahead: camerafs.Readahead | None,
                batch: Sequence[CameraFile], fsync: bool, out: BinaryIO) -> None:
    done: list[StageResult] = []
    sent_at = time.monotonic()
    for cam in batch:
        try:
            done.append(stage_file(job, dirs, cam, fsync=fsync, check=True))
        except StorageError as exc:
            _answer(out, ("files", done))
            _answer(out, ("stop", type(exc).__name__, exc.message, exc.hint))
            return
        if ahead is not None:
            ahead.advance(cam)
        if time.monotonic() - sent_at >= REPORT_EVERY_S:
            _answer(out, ("files", done))
            done, sent_at = [], time.monotonic()
    _answer(out, ("files", done))
    _answer(out, ("end",))


def _answer(out: BinaryIO, msg: object) -> None:
    pickle.dump(msg, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()
