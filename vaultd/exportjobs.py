"""Exports built over the API: jobs with progress, kept files, downloads (R5, R7).

Legal staff at their own PCs ask for an export (``POST /exports``,
``vaultd --url U export create``). ``start_job`` runs the same service as
the station (``export.start_export``: the grant is checked and one use
taken, the audit entries and the record written, refusals raised at once)
and queues the build; one build runs at a time on a worker thread of the
server, reporting its stage and files/bytes done (``job_status``). The export
id is the job id.

Where: ``<home>/exports/<EXPORT_ID>/``. While building, it holds the package
folder(s) and ``.building``, locked (flock) by the building process. Each
package is written as a zip or tar (``archive.py``) next to its disc image
(``--iso``), both fsync'd and hashed, and the folder is removed; only then is
the export recorded ``complete``, with each file's name, size and SHA-256.
A build that fails removes the folder and is recorded ``failed``
(``export.failed``); one cut off by a stopped server (its lock is free and
its record still says ``building``) is found the next time the server starts
or someone asks for its state, recorded failed the same way and removed. So
nothing half built is ever listed as done.

The files are kept ``[export] keep_days`` (7) after the build, then removed
(``export.removed``; the record, the hashes and the audit entries stay).
Only the export grant's grantee may see the job and download its files, and
each download checks their rights again as every read of evidence does: a
grantee who now holds a role without media rights (auditor, admin), or whose
clearance is below the level now in force of any recording in the export
(its own or a case's, R9), is refused and the refusal audited. A
download (whole, or one range to resume a cut one) is sent by the same
sender as originals (``api/download.py``) with the file's SHA-256 as its
ETag, and each is an audit entry (``export.download``) with its byte range.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import secrets
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from vaultd import access, archive, audit, bag, export, faults
from vaultd.access import Level, Principal
from vaultd.approvals import ref_of
from vaultd.audit import Event
from vaultd.catalog import exports as db
from vaultd.catalog import recordings as recordings_db
from vaultd.catalog.exports import ExportRow
from vaultd.errors import AccessDeniedError, NotFoundError, StorageError, UsageError
from vaultd.files import fsync_path
from vaultd.i18n import _
from vaultd.model import Actor
from vaultd.people import actor_of
from vaultd.vault import Vault, utcnow

log = logging.getLogger(__name__)
LOCK_NAME = ".building"
SERVICE = Actor("service", "export-jobs", "api")


@dataclass(frozen=True)
class JobRequest:
    """What an API client asks to export, and how it wants it packed."""

    grant_id: str | None
    recording_refs: tuple[str, ...] = ()
    case_number: str | None = None
    iso: bool = False
    disc: str | None = None
    with_previews: bool = False
    archive: str = "zip"
    disc_bytes: int | None = None


@dataclass(frozen=True)
class Artefact:
    """One downloadable file of an export: a package's zip/tar, or a disc image."""

    export_id: str
    name: str
    kind: str  # "archive" | "disc-image"
    size_bytes: int
    sha256: str
    path: Path

    @property
    def id(self) -> str:
        return f"{self.export_id}/{self.name}"

    @property
    def original_name(self) -> str:  # what the sender names in Content-Disposition
        return self.name

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "size_bytes": self.size_bytes, "sha256": self.sha256}


@dataclass(frozen=True)
class JobStatus:
    export_id: str
    state: str  # building | complete | failed
    stage: str  # queued | package | disc-image | archive | done | failed
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    problem: str | None
    artefacts: tuple[Artefact, ...]
    keep_until: datetime | None

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("state", "stage", "files_done", "files_total", "bytes_done",
                                           "bytes_total", "problem")}
        return {"id": self.export_id, **d, "artefacts": [a.as_dict() for a in self.artefacts],
                "keep_until": self.keep_until.isoformat() if self.keep_until else None}


# -- progress of a build in this process ------------------------------------------------------

@dataclass
class _Counts:
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0


@dataclass
class _Tracker:
    """Progress of one build (``model.Progress`` and ``export.BuildHooks``), read by
    ``job_status`` from request threads while the worker writes it."""

    export_id: str
    folder: Path
    fmt: str
    stage: str = "queued"
    problem: str | None = None
    counts: dict[str, _Counts] = field(default_factory=dict)
    current: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)

    def _here(self) -> _Counts:
        return self.counts.setdefault(self.stage, _Counts())

    def snapshot(self) -> tuple[str, _Counts]:
        """The stage and its counts (queued: the originals still to copy)."""
        with self.lock:
            c = self.counts.get("package" if self.stage == "queued" else self.stage, _Counts())
            return self.stage, _Counts(c.files_done, c.files_total, c.bytes_done, c.bytes_total)

    # model.Progress: the originals copied into the packages
    def begin(self, total_files: int, total_bytes: int) -> None:
        with self.lock:
            self.counts["package"] = _Counts(0, total_files, 0, total_bytes)

    def file(self, display_path: str) -> None:
        with self.lock:
            if self.current is not None:
                self._here().files_done += 1
            self.current = display_path

    def advance(self, nbytes: int) -> None:
        with self.lock:
            self._here().bytes_done += nbytes

    def end(self) -> None:
        self._settle()

    def _settle(self) -> None:
        with self.lock:
            if self.current is not None:
                self.counts.setdefault("package", _Counts()).files_done += 1
                self.current = None

    # export.BuildHooks
    def stage_to(self, name: str, files: int = 0, nbytes: int = 0) -> None:
        self._settle()
        with self.lock:
            self.stage = name
            c = self._here()
            c.files_total += files
            c.bytes_total += nbytes

    def stage_named(self, name: str) -> None:
        self.stage_to(name)

    def packaged(self, pkg: Path, record: dict[str, Any]) -> None:
        files, nbytes = archive.size_of(pkg)
        self.stage_to("archive", files, nbytes)

        def advance(n: int) -> None:
            with self.lock:
                self.counts["archive"].bytes_done += n

        made = archive.write_archive(pkg, self.folder / (pkg.name + archive.SUFFIX[self.fmt]), self.fmt, advance)
        with self.lock:
            self.counts["archive"].files_done += files
        faults.point("exportjob.archived")
        record.update(archive=made.path.name, archive_bytes=made.size_bytes, archive_sha256=made.sha256)
        if "iso" in record:
            image = Path(record["iso"])
            fsync_path(image)
            record["iso_sha256"] = bag.hash_file(image, ("sha256",))["sha256"]
        shutil.rmtree(pkg)  # kept as the archive; the station keeps folders, the server files to send
        fsync_path(self.folder)


class _Hooks:
    """``export.BuildHooks`` onto a tracker."""

    def __init__(self, tracker: _Tracker) -> None:
        self.tracker = tracker

    def stage(self, name: str) -> None:
        self.tracker.stage_named(name)

    def packaged(self, pkg: Path, record: dict[str, Any]) -> None:
        self.tracker.packaged(pkg, record)


@dataclass
class _Queued:
    build: export.ExportBuild
    tracker: _Tracker
    lock_fd: int


_running: dict[str, _Tracker] = {}  # this process's builds, by export id
_queue: queue.Queue[_Queued] = queue.Queue()
_worker: threading.Thread | None = None
_worker_lock = threading.Lock()


def _ensure_worker() -> None:
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            # a daemon thread: a stopped server leaves a build cut off, found by reap() next time
            _worker = threading.Thread(target=_work, name="vaultd-export-jobs", daemon=True)
            _worker.start()


def _work() -> None:
    while True:
        job = _queue.get()
        try:
            _build(job)
        except BaseException:  # a task boundary: logged; the build recorded itself as failed
            log.exception("export %s failed", job.tracker.export_id)
        finally:
            _queue.task_done()


def _build(job: _Queued) -> None:
    t = job.tracker
    try:
        job.build.run(t, _Hooks(t))
    except BaseException as exc:
        with t.lock:
            t.stage, t.problem = "failed", getattr(exc, "message", None) or repr(exc)
        shutil.rmtree(t.folder, ignore_errors=True)
        raise
    else:
        with t.lock:
            t.stage = "done"
        (t.folder / LOCK_NAME).unlink(missing_ok=True)
    finally:
        os.close(job.lock_fd)
        _running.pop(t.export_id, None)  # the record says how it ended from now on
        t.done.set()


# -- starting a build ---------------------------------------------------------------------

def exports_root(vault: Vault) -> Path:
    return vault.layout.root / "exports"


def start_job(vault: Vault, actor: Principal, jreq: JobRequest, via: str = "api") -> JobStatus:
    """Check and record the export as the station would, then queue its build."""
    if jreq.archive not in archive.FORMATS:
        raise UsageError(_("unknown archive format %r") % jreq.archive, hint=_("use zip or tar"))
    now = utcnow()
    reap(vault, now)
    export_id = export.new_export_id(now)
    folder, lock_fd = _make_folder(exports_root(vault), export_id)
    req = export.ExportRequest(out_dir=folder, grant_id=jreq.grant_id, recording_refs=jreq.recording_refs,
                               case_number=jreq.case_number, iso=jreq.iso, disc=jreq.disc, disc_bytes=jreq.disc_bytes,
                               with_previews=jreq.with_previews)
    try:
        build = export.start_export(vault, actor, req, via, export_id=export_id)
    except BaseException:
        os.close(lock_fd)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    tracker = _Tracker(export_id, folder, jreq.archive)
    tracker.begin(sum(len(p) for p in build.parts), sum(r.size_bytes for p in build.parts for r in p))
    _running[export_id] = tracker
    _ensure_worker()
    _queue.put(_Queued(build, tracker, lock_fd))
    return job_status(vault, actor, export_id, via)


def _make_folder(root: Path, export_id: str) -> tuple[Path, int]:
    """``root/export_id`` with its lock file already held: made under a hidden name
    and renamed, so that no other process ever sees the folder unlocked."""
    root.mkdir(mode=0o700, exist_ok=True)
    tmp = root / f".new-{export_id}-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o700)
    fd = os.open(tmp / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        folder = root / export_id
        os.rename(tmp, folder)
        fsync_path(root)
    except BaseException:
        os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder, fd


# -- what is kept, and for how long ---------------------------------------------------------

def kept_folder(vault: Vault, row: ExportRow) -> Path | None:
    """The server-side folder of an export built over the API; None for the station's."""
    path = Path(row.out_path)
    return path if path.parent == exports_root(vault) and path.name == row.id else None


def keep_until(vault: Vault, row: ExportRow) -> datetime | None:
    if row.status != "complete" or row.finished_at is None:
        return None
    return row.finished_at + timedelta(days=vault.config.export.keep_days)


def decide(row: ExportRow | None, locked: bool, now: datetime, keep_days: int) -> str:
    """What to do with a folder under ``exports/`` (pure): ``keep``, ``abandoned`` (a
    cut-off build: record it failed, remove it), ``expired`` (remove, record that),
    or ``remove`` (a failed build's or a folder without a record)."""
    if locked:
        return "keep"  # a build runs in some process
    if row is None or row.status == "failed":
        return "remove"
    if row.status == "building":
        return "abandoned"
    assert row.finished_at is not None
    return "expired" if now >= row.finished_at + timedelta(days=keep_days) else "keep"


def _locked(folder: Path) -> bool:
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def reap(vault: Vault, now: datetime) -> None:
    """Record cut-off builds as failed and remove them; remove expired files."""
    root = exports_root(vault)
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if folder.name.startswith("."):
            if folder.name.startswith(".new-") and not _locked(folder):
                shutil.rmtree(folder, ignore_errors=True)
            continue
        with vault.engine.connect() as conn:
            row = db.get(conn, folder.name)
        what = decide(row, _locked(folder), now, vault.config.export.keep_days)
        if what == "keep":
            continue
        if what == "abandoned" and row is not None:
            _abandon(vault, row)
        shutil.rmtree(folder, ignore_errors=True)
        if what == "expired" and row is not None:
            with vault.engine.begin() as conn:
                audit.append(conn, Event("export.removed", SERVICE, {
                    "export": row.id, "files": [a.name for a in artefacts_of(vault, row)],
                    "keep_days": vault.config.export.keep_days}), now)


def _abandon(vault: Vault, row: ExportRow) -> None:
    log.warning("export %s was cut off before it finished; recording it as failed", row.id)
    export.finish_export(vault, row.id, SERVICE, "failed", [], None,
                         _("the build was cut off before it finished (the server stopped); nothing of it is kept"))


def artefacts_of(vault: Vault, row: ExportRow) -> list[Artefact]:
    """The files kept for an export built over the API (none for the station's)."""
    folder = kept_folder(vault, row)
    if folder is None or row.status != "complete":
        return []
    out = []
    for pkg in row.packages:
        if "archive" in pkg:
            out.append(Artefact(row.id, pkg["archive"], "archive", int(pkg["archive_bytes"]),
                                pkg["archive_sha256"], folder / pkg["archive"]))
        if "iso" in pkg and "iso_sha256" in pkg:
            name = Path(pkg["iso"]).name
            out.append(Artefact(row.id, name, "disc-image", int(pkg["iso_bytes"]), pkg["iso_sha256"],
                                folder / name))
    return out


# -- the grantee's view --------------------------------------------------------------------

def _grantee_row(vault: Vault, actor: Principal, export_id: str, what: str, via: str) -> ExportRow:
    with vault.engine.connect() as conn:
        row = db.get(conn, export_id)
    if row is None:
        raise NotFoundError(_("there is no export %s") % export_id,
                            hint=_("the id is what 'export create' printed (EXP-...)"))
    if actor.name != row.requester:
        with vault.engine.begin() as conn:
            audit.append(conn, Event("access.denied", actor_of(actor, via), {
                "action": what, "export": export_id, "rule": "not-grantee"}))
        raise AccessDeniedError(_("export %s belongs to %s, who holds its grant; %s may not see it or "
                                  "download it (rule: not-grantee)") % (export_id, row.requester, actor.name),
                                rule="not-grantee",
                                hint=_("only the user the export grant was given to may download it"))
    return row


def job_status(vault: Vault, actor: Principal, export_id: str, via: str = "api") -> JobStatus:
    """The state of an export's build, with progress while it runs (the grantee only)."""
    row = _grantee_row(vault, actor, export_id, "export-status", via)
    tracker = _running.get(export_id)
    if row.status == "building" and tracker is None:
        folder = kept_folder(vault, row)  # None: the station builds it (and says how it ends)
        if folder is not None and not _locked(folder):  # cut off: say so now, not at the next start
            if folder.is_dir():
                reap(vault, utcnow())
            else:
                _abandon(vault, row)
            with vault.engine.connect() as conn:
                row = db.get(conn, export_id) or row
    originals = len(row.recording_ids), row.payload_bytes
    if row.status == "building" and tracker is not None:
        stage, counts = tracker.snapshot()
    elif row.status == "complete":  # every original was copied
        stage, counts = "done", _Counts(originals[0], originals[0], originals[1], originals[1])
    else:
        stage, counts = ("failed" if row.status == "failed" else "package"), _Counts(0, originals[0], 0, originals[1])
    present = [a for a in artefacts_of(vault, row) if a.path.is_file()]
    return JobStatus(row.id, row.status, stage, counts.files_done, counts.files_total, counts.bytes_done,
                     counts.bytes_total, row.problem, tuple(present), keep_until(vault, row) if present else None)


def wait(export_id: str, timeout_s: float | None = None) -> bool:
    """Wait for a build of this process to end (for tests)."""
    tracker = _running.get(export_id)
    return True if tracker is None else tracker.done.wait(timeout_s)


def authorise_download(vault: Vault, actor: Principal, export_id: str, name: str, via: str = "api") -> Artefact:
    """The grantee's file ``name`` of a complete export, still kept."""
    row = _grantee_row(vault, actor, export_id, "export-download", via)
    _refuse_without_rights(vault, actor, row, via)
    if row.status != "complete":
        raise NotFoundError(_("export %s is %s; nothing to download") % (export_id, row.status),
                            hint=_("'vaultd --url URL export status %s' shows its state") % export_id)
    found = [a for a in artefacts_of(vault, row) if a.name == name]
    if not found:
        raise NotFoundError(_("export %s has no file %r") % (export_id, name),
                            hint=_("'vaultd --url URL export status %s' lists its files") % export_id)
    until = keep_until(vault, row)
    if until is not None and utcnow() >= until:
        reap(vault, utcnow())
    if not found[0].path.is_file():
        raise NotFoundError(_("the files of export %s were removed %d days after it was built") % (
            export_id, vault.config.export.keep_days),
            hint=_("its record and hashes are kept; ask for a new export grant to build it again"))
    return found[0]


def download_rule(actor: Principal, levels: Sequence[Level]) -> str | None:
    """Why the grantee may not download an export of recordings at ``levels`` now, or None:
    their rights are checked again at each download, as at every read of evidence (R9)."""
    if not access.has_media_rights(actor):
        return "no-media-rights"
    if any(level.rank() > actor.clearance.rank() for level in levels):
        return "clearance"
    return None


def _current_levels(vault: Vault, row: ExportRow) -> list[Level]:
    """Each exported recording's level now, its cases' included; one gone counts as the highest."""
    out = []
    with vault.engine.connect() as conn:
        for rec_id in row.recording_ids:
            try:
                out.append(ref_of(recordings_db.get(conn, rec_id)).level)
            except NotFoundError:
                out.append(Level.SECRET)
    return out


def _refuse_without_rights(vault: Vault, actor: Principal, row: ExportRow, via: str) -> None:
    rule = download_rule(actor, _current_levels(vault, row))
    if rule is None:
        return
    with vault.engine.begin() as conn:
        audit.append(conn, Event("access.denied", actor_of(actor, via), {
            "action": "export-download", "export": row.id, "rule": rule}))
    raise AccessDeniedError(_("%s may no longer download export %s (rule: %s)") % (actor.name, row.id, rule),
                            rule=rule,
                            hint=_("your role or clearance no longer covers every recording in it; "
                                   "ask the station's admin or a leader"))


def damaged_hint(export_id: str) -> str:
    """What to do when a kept export file is damaged ('vaultd scrub' checks originals, not these)."""
    return _("the file of export %s kept on the vault is damaged; tell the station's administrator, "
             "who can build the export again from the originals (a new export grant)") % export_id


def open_artefact(art: Artefact) -> int:
    """The file opened for sending; it must still be the size recorded."""
    try:
        fd = os.open(art.path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise StorageError(_("cannot read export file %s: %s") % (art.id, exc.strerror or exc)) from None
    if os.fstat(fd).st_size != art.size_bytes:
        os.close(fd)
        raise StorageError(_("export file %s is not the size recorded") % art.id,
                           hint=damaged_hint(art.export_id))
    return fd


def log_download(vault: Vault, actor: Principal, art: Artefact, *, where: str, problem: str | None,
                 via: str = "api") -> None:
    """The one audit entry of a download (or of one range of it), how it ended."""
    with vault.engine.begin() as conn:
        audit.append(conn, Event("export.download" if problem is None else "export.download.failed",
                                 actor_of(actor, via), {"export": art.export_id, "file": art.name,
                                                        "sha256": art.sha256, "out": where, "problem": problem}))
