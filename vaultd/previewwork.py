"""The preview worker: takes jobs from the queue and makes previews (#7).

The daemon runs ``Worker(vault).run_forever(stop_event)``; the command
line runs ``Worker(vault).run_until_idle()``. A job that was running when
its process died goes back to the queue when a worker starts
(``recover``). A damaged original that ffmpeg cannot read at all fails at
once with the reason; anything else is tried again with exponential
back-off, and after ``[preview] max_attempts`` the job is failed with its
error kept. ffmpeg runs at the lowest CPU priority, under the SCHED_IDLE
policy and in the idle I/O class (``nice -n 19 ionice -c 3 chrt --idle 0``;
the I/O class counts only under the BFQ scheduler), except the first seconds
a person is waiting for, under a time limit that scales with the media's
length; while the daemon ingests, the gate may throttle or stop it
(``[preview] ingest_run_pct``, ``pause_during_ingest``).

``Maker`` (``vaultd.previewmaker``) is the seam between the queue and ffmpeg:
``FfmpegMaker`` is the real one; tests of the queue pass a fake.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from vaultd import audit, media
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import previews as db
from vaultd.catalog import recordings as rec_db
from vaultd.errors import VaultError
from vaultd.i18n import _
from vaultd.model import Actor, Recording
from vaultd.preview import (
    QUICK,
    SERVICE,
    WAKE,
    Throttle,
    backoff_s,
    enqueue_backlog,
    ffmpeg_threads,
    folder_of,
    kind_of,
    provenance_json,
    root_of,
    throttle_for,
    time_limit_s,
    worker_count,
)
from vaultd.previewmaker import FfmpegMaker, Made, Maker, Task, UnreadableError

__all__ = ["FfmpegMaker", "Made", "Maker", "PreviewService", "Task", "UnreadableError", "Worker"]
from vaultd.vault import Vault, utcnow

log = logging.getLogger(__name__)

BACKLOG_EVERY_S = 60.0
GATE_POLL_S = 1.0
_ACTIVE: set[int] = set()  # job ids running in this process
_ACTIVE_LOCK = threading.Lock()
_COMMIT_LOCK = threading.Lock()  # a part never replaces a better one
_RANK = {"stills": 0, "partial": 1, "ready": 2}


# -- the worker ----------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Worker:
    """Takes preview jobs from the catalog's queue and makes them.

    ``workers``: jobs at once in ``run_forever`` (default ``[preview]
    workers``: cores - 1, at least 1).
    """

    vault: Vault
    actor: Actor = SERVICE
    workers: int | None = None
    maker: Maker = field(default_factory=FfmpegMaker)
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    #: True while ingest is running (the daemon's sessions): background previews are
    #: throttled (``[preview] ingest_run_pct``) or stopped (``pause_during_ingest``)
    busy: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        self.cfg = self.vault.config.preview
        self.tz = ZoneInfo(self.vault.config.time.station_tz)
        if self.workers is None:
            self.workers = worker_count(self.cfg.workers, os.cpu_count())

    # -- start-up ------------------------------------------------------------------
    def recover(self) -> int:
        """Jobs left 'running' by a process that is gone go back to the queue; its
        half-made files are removed. Returns how many jobs were queued again."""
        host = socket.gethostname()
        stale = []
        with self.vault.engine.begin() as conn:
            for job in db.running(conn):
                who, _sep, pid = (job.worker or "").rpartition(":")
                mine = pid.isdigit() and int(pid) == os.getpid()
                with _ACTIVE_LOCK:
                    active = job.id in _ACTIVE
                if who == host and pid.isdigit() and ((mine and not active) or (not mine and not _alive(int(pid)))):
                    stale.append(job.id)
            db.requeue(conn, stale, now=utcnow())
        work = root_of(self.vault) / ".work"
        if work.is_dir():
            for entry in work.iterdir():
                pid = entry.name.split("-", 1)[0]
                if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                    shutil.rmtree(entry, ignore_errors=True)
        if stale:
            log.info("preview jobs %s were running when their worker stopped; queued again", stale)
        return len(stale)

    # -- one job -------------------------------------------------------------------
    def run_once(self, recording_id: str | None = None) -> bool:
        """Make what is most urgent now: the first seconds of a video someone is waiting
        for, else the most urgent whole preview (or ``recording_id``'s).
        Returns False when there was nothing to do."""
        if recording_id is None and self.run_first_part():
            return True
        now = utcnow()
        with self.vault.engine.begin() as conn:
            job = db.claim(conn, now=now, worker=self.name, recording_id=recording_id)
            rec = rec_db.get(conn, job.recording_id) if job else None
        if job is None or rec is None:
            return False
        with _ACTIVE_LOCK:
            _ACTIVE.add(job.id)
        try:
            if kind_of(rec) == "video":
                self._stills_first(rec)
            self._make(rec, "full")
            with self.vault.engine.begin() as conn:
                db.finish(conn, job.id, now=utcnow())
        except UnreadableError as exc:
            self._failed(job, rec, exc.message, retry=False)
        except Exception as exc:  # a task boundary: one job; logged and kept with the job
            message = exc.message if isinstance(exc, VaultError) else repr(exc)
            if not isinstance(exc, VaultError):
                log.exception("preview of %s failed", rec.id)
            self._failed(job, rec, message, retry=job.attempts < self.cfg.max_attempts)
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.discard(job.id)
        return True

    def _stills_first(self, rec: Recording) -> None:
        """Cheap things first: a video with no preview yet gets its poster and sprite
        (keyframes only) before the encode, so lists and scrubbing work early."""
        with self.vault.engine.connect() as conn:
            if db.get(conn, rec.id) is not None:
                return
        try:
            self._make(rec, "stills")
        except Exception as exc:  # a task boundary: the whole preview carries on and reports
            log.info("poster and sprite of %s could not be made first: %s", rec.id, exc)

    def run_first_part(self) -> bool:
        """The quick lane: the first ``[preview] first_part_s`` seconds of a video someone
        opened, at normal priority, even while its whole preview is being made. A failure
        here is only logged: the whole preview's job reports it."""
        with self.vault.engine.begin() as conn:
            job = db.claim_first_part(conn)
            rec = rec_db.get(conn, job.recording_id) if job else None
        if job is None or rec is None:
            return False
        if kind_of(rec) == "video":
            try:
                self._make(rec, "first")
            except Exception as exc:  # a task boundary: the whole preview's job carries on
                log.warning("first part of %s's preview failed: %s", rec.id, exc)
        return True

    def _make(self, rec: Recording, part: str) -> None:
        original = self.vault.store.object_path(rec.sha256)
        if not original.is_file():
            raise UnreadableError(_("the original of %s is missing from the store") % rec.id)
        limit = time_limit_s(rec.duration_s, rec.size_bytes, self.cfg)
        work = root_of(self.vault) / ".work" / f"{os.getpid()}-{rec.id}-{secrets.token_hex(4)}"
        work.mkdir(parents=True, mode=0o700)
        try:
            started = time.monotonic()
            # a person waits for the first part: it runs at normal priority (a few seconds);
            # everything else yields to ingest
            background = part != "first"
            made = self.maker.make(Task(
                rec, original, work, part, self.cfg, self.tz, limit, low_priority=background,
                threads=ffmpeg_threads(os.cpu_count(), self.workers or 1) if background else 0))
            state = {"first": "partial", "stills": "stills"}.get(part, "ready")
            self._commit(rec, made, work, state, time.monotonic() - started)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _commit(self, rec: Recording, made: Made, work: Path, state: str, seconds: float) -> None:
        files: dict[str, dict[str, Any]] = {
            name: {"sha256": _sha256(work / name), "size_bytes": (work / name).stat().st_size, "role": role}
            for name, role in made.files.items()}
        row = db.PreviewRow(
            recording_id=rec.id, state=state, kind=made.kind, main_file=made.main_file,
            sha256=str(files[made.main_file]["sha256"]), size_bytes=sum(int(f["size_bytes"]) for f in files.values()),
            files=files, original_sha256=rec.sha256, tools=self.maker.tools(), params=made.params,
            incomplete=made.incomplete, problems=made.problems[:4000], made_at=utcnow(), seconds=round(seconds, 3))
        for leftover in work.iterdir():
            if leftover.name not in files:
                leftover.unlink()
        (work / "provenance.json").write_text(provenance_json(row), encoding="utf-8")
        with _COMMIT_LOCK, self.vault.engine.begin() as conn:
            there = db.get(conn, rec.id)
            if state != "ready" and there is not None and _RANK[there.state] >= _RANK[state]:
                return  # something better came first: a part never replaces it
            _replace_folder(work, folder_of(self.vault, rec.id))
            db.put(conn, row)
            audit.append(conn, Event("preview.made", self.actor, {
                "state": state, "kind": made.kind, "files": files, "incomplete": made.incomplete,
                "problems": row.problems[:500], "tools": row.tools}, EvidenceRef.of(rec)))

    def _failed(self, job: db.JobRow, rec: Recording, message: str, *, retry: bool) -> None:
        now = utcnow()
        retry_at = now + timedelta(seconds=backoff_s(job.attempts, self.cfg.retry_base_s)) if retry else None
        with self.vault.engine.begin() as conn:
            db.fail(conn, job.id, message, now=now, retry_at=retry_at)
            if retry_at is None:
                audit.append(conn, Event("preview.failed", self.actor, {
                    "error": message[:1000], "attempts": job.attempts}, EvidenceRef.of(rec)))
        if retry_at is None:
            log.warning("preview of %s failed for good: %s", rec.id, message)
        else:
            log.info("preview of %s failed (try %d), again at %s: %s", rec.id, job.attempts, retry_at, message)

    # -- loops -----------------------------------------------------------------------
    def run_until_idle(self, limit: int | None = None) -> int:
        """Make previews until no job may run now; returns how many jobs ran."""
        self.recover()
        enqueue_backlog(self.vault)
        done = 0
        while (limit is None or done < limit) and self.run_once():
            done += 1
        return done

    def run_forever(self, stop: threading.Event) -> None:
        """``workers`` threads taking jobs until ``stop`` is set; idle ones poll every
        ``[preview] poll_s``; recordings without a job are queued every minute."""
        self.recover()
        threads = [threading.Thread(target=self._loop, args=(stop, n == 0), name=f"preview-{n}", daemon=True)
                   for n in range(self.workers or 1)]
        # the quick lane: first parts for people waiting, even while every worker is busy
        threads.append(threading.Thread(target=self._quick_loop, args=(stop,), name="preview-quick", daemon=True))
        if self.busy is not None:  # the gate: throttles (or stops) background previews while ingest runs
            if self._ingesting():  # before any worker starts: no job slips through at start-up
                self._apply(throttle_for(True, self.cfg))
            threads.append(threading.Thread(target=self._watch_ingest, args=(stop,), name="preview-gate",
                                            daemon=True))
        for t in threads:
            t.start()
        stop.wait()
        WAKE.set()  # idle threads see the stop at once
        QUICK.set()
        for t in threads:
            t.join()

    def _ingesting(self) -> bool:
        try:
            return self.busy is not None and bool(self.busy())
        except Exception:  # a task boundary: never let the gate stop previews for good
            log.exception("the ingest check of the preview worker failed")
            return False

    def _watch_ingest(self, stop: threading.Event) -> None:
        """While ingest runs, background previews are throttled (``[preview] ingest_run_pct``:
        their ffmpeg stopped part of each period) or stopped outright (``pause_during_ingest``);
        when it is done they run on. Never leaves an ffmpeg stopped when it ends."""
        last: Throttle | None = None
        try:
            while not stop.is_set():
                ingesting = self._ingesting()
                plan = throttle_for(ingesting, self.cfg)
                duty = plan.run_s > 0 and plan.stop_s > 0
                if plan != last or duty:  # a steady plan is applied once, a duty cycle each period
                    if last is None or plan.held != last.held:
                        log.info("previews %s", "throttled: ingest is running" if ingesting else "running")
                    self._apply(plan)
                    if last is not None and last.stopped and not plan.stopped:
                        WAKE.set()  # workers that waited out the stop start at once
                    last = plan
                if duty:  # run, then stopped
                    stop.wait(plan.run_s)
                    media.pause_background()
                    stop.wait(plan.stop_s)
                else:
                    stop.wait(GATE_POLL_S)
        finally:
            media.release_background()

    @staticmethod
    def _apply(plan: Throttle) -> None:
        media.hold_background(plan.held, stop_new=plan.stopped)
        (media.pause_background if plan.stopped else media.resume_background)()

    def _quick_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                busy = self.run_first_part()
            except Exception:  # a task boundary: the loop keeps going
                log.exception("preview quick lane step failed")
                busy = False
            if not busy and not stop.is_set():
                QUICK.wait(self.cfg.poll_s)
                QUICK.clear()

    def _loop(self, stop: threading.Event, discover: bool) -> None:
        next_backlog = 0.0
        while not stop.is_set():
            try:
                if discover and time.monotonic() >= next_backlog:
                    enqueue_backlog(self.vault)
                    next_backlog = time.monotonic() + BACKLOG_EVERY_S
                busy = False if media.background_paused() else self.run_once()
            except Exception:  # a task boundary: the loop keeps going
                log.exception("preview worker step failed")
                busy = False
            if not busy and not stop.is_set():
                if WAKE.wait(self.cfg.poll_s):  # someone is waiting for a preview
                    WAKE.clear()


def _replace_folder(work: Path, final: Path) -> None:
    """Put the new files where the old ones were (a rename each; the old ones are removed)."""
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{secrets.token_hex(4)}")
        os.rename(final, old)
    final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.rename(work, final)
    work.mkdir()  # the caller removes it
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class PreviewService:
    """The worker as one of the daemon's extras (``name``, ``start``, ``stop``, ``status``):
    ``Worker.run_forever`` in a thread, stopped with the daemon. A job cut short by the
    stop stays 'running' and is queued again when the next worker starts."""

    name = "previews"

    def __init__(self, vault: Vault, workers: int | None = None, maker: Maker | None = None,
                 busy: Callable[[], bool] | None = None) -> None:
        self.worker = Worker(vault, workers=workers, maker=maker or FfmpegMaker(), busy=busy)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.worker.run_forever, args=(self._stop,),
                                        name="vaultd-previews", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def status(self) -> dict[str, Any]:
        with self.worker.vault.engine.connect() as conn:
            counts = db.counts(conn)
        return {"workers": self.worker.workers, "jobs": counts, "paused_for_ingest": media.background_paused(),
                "held_for_ingest": media.background_held(),
                "running": bool(self._thread and self._thread.is_alive())}
