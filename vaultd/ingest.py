"""Ingest: from a camera's file tree into the vault, nothing lost.

One session per docked camera (or ``vaultd ingest PATH``):

1. recover what a killed session left (intents without rows, staging);
2. walk the tree (``camerafs``), report what will not be ingested;
3. per batch of files: copy+hash into staging, check the source did not
   change while read, make the batch durable with one flush, record intents,
   rename into the store, flush, then commit catalog rows in one transaction
   (a second thread commits a batch while the next one is copied; many small
   files are copied by a helper process, ``vaultd.copier``);
4. with ``wipe``: only when every file is safely in the vault, re-hash each
   camera file and delete it.

A kill at any instant, then a rerun, ends in the state of an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from vaultd import audit, camerafs, copier, faults, metadata
from vaultd.audit import Event, EvidenceRef
from vaultd.camerafs import CameraFile, Passed
from vaultd.containers import StructureReport
from vaultd.catalog import compliance as comp_db
from vaultd.catalog import db
from vaultd.catalog import people as people_db
from vaultd.catalog import recordings as rec_db
from vaultd.catalog import sessions as ses_db
from vaultd.describe import describe
from vaultd.errors import DeviceGoneError, DiskFullError
from vaultd.i18n import _
from vaultd.model import Actor, CameraIdentity, Outcome, Progress, Recording
from vaultd.store import GONE_ERRNOS, StagedObject, Staging, hash_fd
from vaultd.vault import Vault, utcnow

log = logging.getLogger(__name__)

BATCH_FILES = 128
BATCH_BYTES = 512 << 20
_COMMITS_AHEAD = 2  # batches copied ahead of their commit


@dataclass(frozen=True)
class FileResult:
    path: str
    outcome: Outcome
    reason: str | None = None
    recording_id: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    name_oddities: tuple[str, ...] = ()
    damaged: bool = False
    blocking: bool = False  # keeps the camera from counting as fully ingested
    wiped: bool = False


@dataclass
class IngestReport:
    session_id: str
    source: str
    device_serial: str | None
    started_at: datetime
    finished_at: datetime | None = None
    results: list[FileResult] = field(default_factory=list)
    error: str | None = None  # what stopped the session early
    wipe_note: str | None = None
    recovered: int = 0

    def counts(self) -> dict[str, int]:
        out = {o.value: 0 for o in Outcome}
        for r in self.results:
            out[r.outcome.value] += 1
        return out

    @property
    def complete(self) -> bool:
        """True when every recording on the camera is safely in the vault."""
        return self.error is None and not any(r.blocking for r in self.results)


@dataclass
class _Item:
    cam: CameraFile
    staged: StagedObject
    structure: StructureReport | None = None  # checked by the copy helper
    recording: Recording | None = None
    sighting_id: int | None = None
    recording_id: str | None = None


@dataclass
class _Session:
    vault: Vault
    root_fd: int
    identity: CameraIdentity
    actor: Actor
    report: IngestReport
    staging: Staging
    progress: Progress | None
    clock: Callable[[], datetime]
    dirs: camerafs.DirCache
    done: dict[str, tuple[CameraFile, str, int]] = field(default_factory=dict)  # path -> (file, sha, sighting)


def ingest_path(vault: Vault, path: Path, *, actor: Actor, wipe: bool = False,
                progress: Progress | None = None,
                clock: Callable[[], datetime] = utcnow) -> IngestReport:
    """Ingest every regular file under ``path`` (a mounted or simulated camera)."""
    root_fd = camerafs.open_root(path)
    try:
        identity = camerafs.read_sim_identity(root_fd) or CameraIdentity()
        return ingest_tree(vault, root_fd, str(path), identity, actor=actor, wipe=wipe,
                           progress=progress, clock=clock)
    finally:
        os.close(root_fd)


def ingest_tree(vault: Vault, root_fd: int, source: str, identity: CameraIdentity, *,
                actor: Actor, wipe: bool, progress: Progress | None,
                clock: Callable[[], datetime],
                reopen_for_wipe: Callable[[], int] | None = None) -> IngestReport:
    """Ingest the tree at ``root_fd``. ``reopen_for_wipe`` (when the camera is
    mounted read-only) makes it writable and returns a new root fd, owned by the
    caller; it is called only when the ingest is complete and a wipe is due."""
    recovered = recover(vault)
    session_id = uuid.uuid4().hex
    report = IngestReport(session_id, source, identity.serial, clock(), recovered=recovered)
    walk = camerafs.walk(root_fd, vault.config.ingest)
    scanned_at = time.monotonic()
    with db.begin_unsynced(vault.engine) as conn:  # durable with the first batch's intents
        ses_db.start(conn, session_id, at=report.started_at, source=source,
                     device_serial=identity.serial, actor=actor.label)
        audit.append(conn, Event("ingest.session.start", actor, {
            "session": session_id, "source": source, "device": _identity_details(identity),
            "files_found": len(walk.files), "bytes_found": sum(f.size_bytes for f in walk.files),
        }), report.started_at)
    staging = vault.store.open_staging(session_id)
    ses = _Session(vault, root_fd, identity, actor, report, staging, progress, clock,
                   camerafs.DirCache(root_fd))
    try:
        _record_passed(ses, walk.passed)
        if progress:
            progress.begin(len(walk.files), sum(f.size_bytes for f in walk.files))
        _copy_all(ses, walk.files, scanned_at)
        if wipe:
            if reopen_for_wipe is not None and ses.report.complete:
                ses.dirs.close()
                ses.root_fd = reopen_for_wipe()
                ses.dirs = camerafs.DirCache(ses.root_fd)
            _wipe(ses)
    finally:
        ses.dirs.close()
        staging.close()
        if progress:
            progress.end()
        _finish(ses)
    return report


def _copy_all(ses: _Session, files: list[CameraFile], scanned_at: float) -> None:
    """Copy batch after batch while the previous batch is described and committed
    on a second thread (ffprobe and SQL overlap the next copy)."""
    cfg = ses.vault.config.ingest
    pending = files
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaultd-commit") as committer:
        commits: list[Future[None]] = []
        try:
            for attempt in range(cfg.defer_retries + 1):
                deferred: list[CameraFile] = []
                # files untouched for settle_s before the scan go at once; recent ones
                # (and every retry) wait out the settle time first
                stale, fresh = _by_age(pending, time.time() - cfg.settle_s) if attempt == 0 else ([], pending)
                for group, wait in ((stale, False), (fresh, True)):
                    if wait and group:
                        _settle(scanned_at, cfg.settle_s)
                    batches = _batches(group)
                    with _copier(ses, batches) as source:
                        for batch in batches:
                            items, stopped = _stage_batch(ses, batch, source,
                                                          last_try=attempt == cfg.defer_retries,
                                                          deferred=deferred)
                            while len(commits) >= _COMMITS_AHEAD:
                                commits.pop(0).result()
                            commits.append(committer.submit(_commit_and_clean, ses, items))
                            if stopped is not None:  # what was copied before it is kept
                                raise stopped
                if not deferred:
                    break
                pending, scanned_at = deferred, time.monotonic()
        except (DiskFullError, DeviceGoneError) as exc:
            ses.report.error = exc.message
            log.error("ingest of %s stopped: %s", ses.report.source, exc.message)
        finally:
            for commit in commits:
                commit.result()


def _by_age(files: list[CameraFile], settled_before: float) -> tuple[list[CameraFile], list[CameraFile]]:
    """(files last modified before ``settled_before`` (epoch s), the rest). A file
    dated in the future (a camera clock ahead, local time shown as UTC) counts as recent."""
    cut_ns = int(settled_before * 1e9)
    stale = [f for f in files if f.mtime_ns < cut_ns]
    fresh = [f for f in files if f.mtime_ns >= cut_ns]
    return stale, fresh


def _settle(scanned_at: float, settle_s: float) -> None:
    wait = scanned_at + settle_s - time.monotonic()
    if wait > 0:
        time.sleep(wait)


def _batches(files: list[CameraFile]) -> list[list[CameraFile]]:
    out: list[list[CameraFile]] = []
    cur: list[CameraFile] = []
    size = 0
    for f in files:
        if cur and (len(cur) >= BATCH_FILES or size + f.size_bytes > BATCH_BYTES):
            out.append(cur)
            cur, size = [], 0
        cur.append(f)
        size += f.size_bytes
    if cur:
        out.append(cur)
    return out


def _copier(ses: _Session, batches: list[list[CameraFile]]) -> copier.Copier:
    """A helper process copies the batches of small files when there are many
    (not while a test has armed fault points: they count in this process only)."""
    job = copier.CopyJob(ses.vault.store, ses.staging, ses.root_fd, ses.vault.config.ingest.reserve_bytes)
    if not faults.armed() and copier.wants_helper(batches, ses.vault.store.chunk_bytes):
        return copier.HelperCopier(job, ses.dirs, batches, ses.progress)
    return copier.LocalCopier(job, ses.dirs, [f for b in batches for f in b], ses.progress)


def _stage_batch(ses: _Session, batch: list[CameraFile], source: copier.Copier, *, last_try: bool,
                 deferred: list[CameraFile]) -> tuple[list[_Item], DiskFullError | DeviceGoneError | None]:
    """Copy one batch into staging and make it durable; files still being written
    go to ``deferred``. When the camera goes away or the disk fills mid-batch, the
    files copied before are still made durable and returned with the error, so
    they are kept and the next dock skips them."""
    big = len(batch) == 1
    items: list[_Item] = []
    stopped: DiskFullError | DeviceGoneError | None = None
    try:
        try:
            for cam, result in source.copy(batch, fsync=big):
                if isinstance(result, copier.Staged):
                    items.append(_Item(cam, result.staged, structure=result.structure))
                elif isinstance(result, copier.Changed):
                    _defer(ses, cam, deferred, last_try)
                else:
                    _source_failed(ses, cam, result.errno, result.why)
        except (DiskFullError, DeviceGoneError) as exc:
            stopped = exc
        if not big and items:
            ses.vault.store.make_durable([item.staged for item in items])
        faults.point("ingest.batch_durable")
    except BaseException:
        _clean(items)
        raise
    return items, stopped


def _commit_and_clean(ses: _Session, items: list[_Item]) -> None:
    try:
        _commit_batch(ses, items)
    finally:
        _clean(items)


def _clean(items: list[_Item]) -> None:
    for item in items:
        if item.staged.path.exists():
            os.unlink(item.staged.path)


def _defer(ses: _Session, cam: CameraFile, deferred: list[CameraFile],
           last_try: bool) -> None:
    """Report a file still being written, or queue it for another try."""
    if last_try:
        _add_result(ses, cam, Outcome.DEFERRED,
                    _("still being written (size or time changed while read); dock again later"),
                    blocking=True)
    else:
        st = _restat(ses, cam)
        deferred.append(cam if st is None else CameraFile(
            cam.parts, cam.display_path, cam.name, st.st_size, st.st_mtime_ns))


def _restat(ses: _Session, cam: CameraFile) -> os.stat_result | None:
    try:
        fd = camerafs.open_file(ses.root_fd, cam.parts, ses.dirs)
    except OSError:
        return None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _source_failed(ses: _Session, cam: CameraFile, err: int | None, why: str) -> None:
    if err in GONE_ERRNOS and not _device_present(ses.root_fd):
        raise DeviceGoneError(
            _("the camera disappeared while reading %s (%s)") % (cam.display_path, why),
            hint=_("dock it again: what is already in the vault is skipped, the rest resumes"),
        )
    _add_result(ses, cam, Outcome.FAILED, _("cannot read from the camera: %s") % why, blocking=True)


def _device_present(root_fd: int) -> bool:
    try:
        faults.point("source.present")
        os.listdir(root_fd)
        return True
    except OSError:
        return False


def _commit_batch(ses: _Session, items: list[_Item]) -> None:
    """Intents, renames, then one transaction with every row of the batch."""
    if not items:
        return
    vault, now = ses.vault, ses.clock()
    with vault.engine.connect() as conn:
        known = rec_db.ids_by_sha(conn, [i.staged.sha256 for i in items])
    fresh = [i for i in items if i.staged.sha256 not in known]
    seen: set[str] = set()
    for item in fresh:
        if item.staged.sha256 not in seen:
            seen.add(item.staged.sha256)
            item.recording = describe(item.cam, item.staged, ses.identity, vault.config,
                                      session_id=ses.report.session_id, now=now,
                                      structure=item.structure)
    new = [i for i in items if i.recording is not None]
    with vault.engine.begin() as conn:
        units: dict[str | None, str | None] = {}
        trips = comp_db.all_trips(conn) if new else []
        for item in new:
            item.recording = _on_time(_attribute(conn, item.recording, ses.identity, units), trips,
                                      vault.config.ingest.deadline_hours, now)
        ses_db.add_intents(conn, [item.staged.sha256 for item in new], ses.report.session_id, now)
    faults.point("ingest.intents_recorded")
    vault.store.commit_many([item.staged for item in new])
    faults.point("ingest.objects_placed")
    _insert_rows(ses, items, now)
    faults.point("ingest.rows_committed")


def _on_time(rec: Recording | None, trips: Sequence[metadata.Trip], hours: float,
             now: datetime) -> Recording | None:
    """R1 with the off-site exception: a recorded trip covering the recording moves
    its deadline to the return + ``hours``; ingested while still away is on time."""
    if rec is None or not trips:
        return rec
    d = metadata.ingest_deadline(rec.recorded_end, rec.officer_id, rec.device_serial, trips, hours)
    if d.trip_id is None and not d.away:
        return rec
    return dataclasses.replace(rec, ingest_deadline=d.at, on_time=True if d.away else now <= (d.at or now))


def _attribute(conn: Connection, rec: Recording | None, identity: CameraIdentity,
               units: dict[str | None, str | None]) -> Recording:
    """R13: the officer named in the file, else who held the device when it
    recorded, else the camera's configured officer; and that officer's unit
    (``units`` caches the lookups of one batch)."""
    assert rec is not None
    officer = rec.officer_id
    if officer is None and rec.device_serial and rec.recorded_start:
        officer = people_db.officer_at(conn, rec.device_serial, rec.recorded_start)
    officer = officer or identity.officer_id
    if officer not in units:
        user = people_db.user_by_officer(conn, officer) if officer else None
        units[officer] = user.unit if user else identity.unit
    return dataclasses.replace(rec, officer_id=officer, maker=officer, unit=units[officer])


def _insert_rows(ses: _Session, items: list[_Item], now: datetime) -> None:
    try:
        with ses.vault.engine.begin() as conn:
            audit.append_many(conn, _insert_batch(ses, conn, items, now), now)
    except SQLIntegrityError:
        # another session catalogued the same bytes meanwhile: try once more,
        # now seeing its rows, so ours become sightings
        with ses.vault.engine.begin() as conn:
            audit.append_many(conn, _insert_batch(ses, conn, items, now), now)
    for item in items:
        assert item.sighting_id is not None
        outcome = Outcome.NEW if item.recording is not None else Outcome.DUPLICATE
        ses.done[item.cam.display_path] = (item.cam, item.staged.sha256, item.sighting_id)
        _add_result(ses, item.cam, outcome, None, staged=item.staged, recording=item.recording,
                    recording_id=item.recording_id)


def _insert_batch(ses: _Session, conn: Connection, items: list[_Item], now: datetime) -> list[Event]:
    """Catalog rows for a batch in a few multi-row statements; returns the audit events."""
    sid = ses.report.session_id
    known = rec_db.ids_by_sha(conn, [i.staged.sha256 for i in items])
    new: list[Recording] = []
    for item in items:
        sha = item.staged.sha256
        if sha not in known and item.recording is not None:
            new.append(item.recording)
            known[sha] = item.recording.id
        else:
            item.recording = None
        item.recording_id = known[sha]
    rec_db.insert_many(conn, new)
    ses_db.drop_intents(conn, sorted({i.staged.sha256 for i in items}), sid)  # new or not, done now
    ids = ses_db.add_sightings(conn, [ses_db.Sighting(
        recording_id=item.recording_id or "", session_id=sid, device_serial=ses.identity.serial,
        source_path=item.cam.display_path, name_raw=item.cam.name.raw,
        size_bytes=item.staged.size_bytes, mtime=_mtime(item.cam), seen_at=now,
        outcome="new" if item.recording is not None else "duplicate") for item in items])
    for item, sighting_id in zip(items, ids):
        item.sighting_id = sighting_id
    return [_event(ses, item) for item in items]


def _event(ses: _Session, item: _Item) -> Event:
    details: dict[str, object] = {
        "session": ses.report.session_id, "source_path": item.cam.display_path,
        "name_raw_hex": item.cam.name.raw.hex(), "name_oddities": list(item.cam.name.oddities),
        "device_serial": ses.identity.serial, "camera_mtime": _mtime(item.cam).isoformat()}
    if item.recording is not None:
        rec = item.recording
        details.update({"media_type": rec.media_type.value, "damaged": rec.damaged,
                        "recorded_start": rec.recorded_start.isoformat() if rec.recorded_start else None,
                        "time_source": rec.time_source.value, "on_time": rec.on_time})
    evidence = EvidenceRef(item.recording_id or "", item.staged.sha256, item.staged.size_bytes)
    kind = "ingest" if item.recording is not None else "ingest.duplicate"
    return Event(kind, ses.actor, details, evidence)


def _mtime(cam: CameraFile) -> datetime:
    return datetime.fromtimestamp(cam.mtime_ns / 1e9, tz=timezone.utc)


def _add_result(ses: _Session, cam: CameraFile, outcome: Outcome, reason: str | None, *,
                blocking: bool = False, staged: StagedObject | None = None,
                recording: Recording | None = None, recording_id: str | None = None) -> None:
    rec_id = recording.id if recording else recording_id
    ses.report.results.append(FileResult(
        path=cam.display_path, outcome=outcome, reason=reason, recording_id=rec_id,
        sha256=staged.sha256 if staged else None,
        size_bytes=staged.size_bytes if staged else cam.size_bytes,
        name_oddities=cam.name.oddities, damaged=bool(recording and recording.damaged),
        blocking=blocking))
    if outcome in (Outcome.DEFERRED, Outcome.FAILED):
        at = ses.clock()
        with ses.vault.engine.begin() as conn:
            ses_db.add_file_event(conn, session_id=ses.report.session_id,
                                  source_path=cam.display_path, name_raw=cam.name.raw,
                                  outcome=outcome.value, reason=reason or "", at=at)
            audit.append(conn, Event(f"ingest.{outcome.value}", ses.actor, {
                "session": ses.report.session_id, "source_path": cam.display_path,
                "name_raw_hex": cam.name.raw.hex(), "reason": reason or ""}), at)


def _record_passed(ses: _Session, passed: list[Passed]) -> None:
    now = ses.clock()
    with ses.vault.engine.begin() as conn:
        for p in passed:
            outcome = Outcome.FAILED if p.failed else Outcome.SKIPPED
            ses_db.add_file_event(conn, session_id=ses.report.session_id, source_path=p.display_path,
                                  name_raw=p.name_raw, outcome=outcome.value, reason=p.reason, at=now)
            audit.append(conn, Event(f"ingest.{outcome.value}", ses.actor, {
                "session": ses.report.session_id, "source_path": p.display_path,
                "name_raw_hex": p.name_raw.hex(), "reason": p.reason, "limit": p.limit}), now)
            ses.report.results.append(FileResult(
                path=p.display_path, outcome=outcome, reason=p.reason,
                blocking=p.failed or p.limit))


def _wipe(ses: _Session) -> None:
    """Delete camera files whose copies are durable, catalogued and re-verified."""
    if not ses.report.complete:
        ses.report.wipe_note = _("wipe skipped: not every file on the camera is safely in the vault")
        return
    wiped = 0
    for i, res in enumerate(ses.report.results):
        entry = ses.done.get(res.path)
        if entry is None:
            continue
        cam, sha, sighting_id = entry
        faults.point("ingest.before_wipe")
        if _wipe_one(ses, cam, EvidenceRef(res.recording_id or "", sha, res.size_bytes or 0), sighting_id):
            ses.report.results[i] = FileResult(**{**res.__dict__, "wiped": True})
            wiped += 1
    ses.report.wipe_note = _("wiped %d files from the camera") % wiped


def _wipe_one(ses: _Session, cam: CameraFile, ev: EvidenceRef, sighting_id: int) -> bool:
    problem = None
    try:
        fd = camerafs.open_file(ses.root_fd, cam.parts, ses.dirs)
        try:
            same = hash_fd(fd) == ev.sha256
        finally:
            os.close(fd)
        if same:
            camerafs.unlink_file(ses.dirs, cam.parts)
        else:
            problem = "camera file changed since it was copied"
    except OSError as exc:
        problem = exc.strerror or str(exc)
    at = ses.clock()
    with ses.vault.engine.begin() as conn:
        if problem is None:
            ses_db.mark_wiped(conn, sighting_id, at)
        audit.append(conn, Event("camera.wipe" if problem is None else "camera.wipe.refused", ses.actor, {
            "session": ses.report.session_id, "source_path": cam.display_path,
            "device_serial": ses.identity.serial, "problem": problem}, ev), at)
    if problem is not None:
        log.warning("not wiping %s: %s", cam.display_path, problem)
        return False
    faults.point("ingest.after_wipe")
    return True


def _identity_details(identity: CameraIdentity) -> dict[str, object]:
    return {k: v for k, v in identity.__dict__.items() if v is not None}


def _finish(ses: _Session) -> None:
    rep = ses.report
    rep.finished_at = ses.clock()
    status = "complete" if rep.complete else ("stopped" if rep.error else "incomplete")
    summary = {"counts": rep.counts(), "error": rep.error, "wipe": rep.wipe_note}
    with ses.vault.engine.begin() as conn:
        ses_db.finish(conn, rep.session_id, at=rep.finished_at, status=status, summary=summary)
        audit.append(conn, Event("ingest.session.end", ses.actor, {
            "session": rep.session_id, "status": status, **summary}), rep.finished_at)


def recover(vault: Vault) -> int:
    """Undo what killed sessions left half done. Returns how many objects it removed.

    Runs only when no other session is running (the staging lock); an object
    placed in the store by a dead session but never catalogued is removed
    (the camera was not wiped, so the next ingest copies it again).
    """
    with vault.store.recovery_lock() as exclusive:
        if not exclusive:
            return 0
        removed = 0
        with vault.engine.begin() as conn:
            for sha, session_id, has_row in ses_db.orphan_intents(conn):
                if not has_row and vault.store.remove_uncommitted(sha):
                    removed += 1
                    log.warning("recovery: removed uncatalogued object %s of dead session %s",
                                sha, session_id)
                    audit.append(conn, Event("recovery.uncatalogued_removed", Actor("service", "vaultd"), {
                        "sha256": sha, "session": session_id,
                        "why": "placed by a killed ingest before its catalog row; camera not wiped"}))
                ses_db.drop_intent(conn, sha, session_id)
            ses_db.abandon_running(conn, utcnow())
        vault.store.clean_staging()
        return removed


__all__ = ["FileResult", "IngestReport", "Progress", "ingest_path", "recover"]
