"""Previews: derived copies for watching, never evidence (#7, R10).

What a person asks for right now jumps the queue (on-demand), then new
ingests, then the backlog. The queue lives in the catalog
(``vaultd.catalog.previews``) and survives restarts; the worker
(``vaultd.previewwork``) makes previews at low CPU and I/O priority. This
module holds the pure decisions (encoder, sizes, strip text, back-off,
time limits), the queue calls front ends and the daemon use, and the access
checks for watching previews, each of which writes its audit entry.

Previews live under ``<home>/previews/<recording id>/`` (or ``[preview]
folder``), apart from the evidence store: deleting one loses nothing, it
is made again when asked for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from vaultd import access, audit, media
from vaultd.access import Action, Principal
from vaultd.approvals import grant_of, ref_of, visible_recording
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import approvals as appr_db
from vaultd.catalog import people as people_db
from vaultd.catalog import previews as db
from vaultd.catalog import recordings as rec_db
from vaultd.config import PreviewConfig
from vaultd.errors import AccessDeniedError, NotFoundError, UsageError
from vaultd.i18n import _
from vaultd.media import Encoder
from vaultd.model import Actor, MediaType, Recording
from vaultd.people import actor_of, require
from vaultd.vault import Vault, utcnow

log = logging.getLogger(__name__)

ON_DEMAND = 300  # a person is waiting (opened in review, asked by a supervisor)
NEW_INGEST = 200
BACKLOG = 100
SERVICE = Actor(kind="service", name="preview", via="daemon")
MAX_BACKOFF_S = 6 * 3600.0
MAX_SPRITE_TILES = 300
THROTTLE_PERIOD_S = 0.5  # one on/off cycle of background ffmpeg while ingest runs
SPRITE_COLUMNS = 10
CONTENT_TYPES = {".mp4": "video/mp4", ".m4a": "audio/mp4", ".jpg": "image/jpeg", ".png": "image/png",
                 ".json": "application/json"}


#: set when a person asks for a preview: idle workers in this process wake at once
#: (workers in another process notice within ``[preview] poll_s``)
WAKE = threading.Event()
QUICK = threading.Event()  # the same, for the lane that makes first parts


class PreviewPendingError(NotFoundError):
    """No preview yet; it has been queued for the person waiting."""

    code = "preview_pending"


# -- pure decisions -----------------------------------------------------------------

def choose_encoder(setting: str, available: Iterable[str], render_nodes: Sequence[str],
                   nvidia: bool) -> tuple[Encoder, str]:
    """The H.264 encoder for ``[preview] encoder`` given what this machine has, and why.

    ``auto`` takes VAAPI (a render node and h264_vaapi), else NVENC (an NVIDIA
    device and h264_nvenc), else libx264; ``vaapi`` / ``nvenc`` take only that
    one and fall back to libx264 when it is missing; ``software`` is libx264.
    """
    names = set(available)
    vaapi = "h264_vaapi" in names and bool(render_nodes)
    nvenc = "h264_nvenc" in names and nvidia
    if setting == "software":
        return Encoder("libx264"), "configured"
    if setting in ("auto", "vaapi") and vaapi:
        return Encoder("h264_vaapi", render_nodes[0]), "render node and h264_vaapi present"
    if setting in ("auto", "nvenc") and nvenc:
        return Encoder("h264_nvenc"), "NVIDIA device and h264_nvenc present"
    if setting == "auto":
        return Encoder("libx264"), "no hardware encoder found"
    return Encoder("libx264"), f"{setting} asked for but not available"


def worker_count(setting: int, cpus: int | None) -> int:
    """``[preview] workers``; 0 means cores - 1, at least 1."""
    if setting > 0:
        return setting
    return max(1, (cpus or 1) - 1)


def ffmpeg_threads(cpus: int | None, workers: int) -> int:
    """Threads of one background ffmpeg: the workers together use at most cores - 1, so
    that ingest always has a core (0, ffmpeg's own choice, on a one-core machine)."""
    spare = (cpus or 1) - 1
    return max(1, spare // max(1, workers)) if spare > 0 else 0


@dataclass(frozen=True)
class Throttle:
    """What the gate does with background previews' ffmpeg for one period: run for
    ``run_s``, then stopped for ``stop_s``. ``stop_s == 0``: runs throughout;
    ``run_s == 0``: stopped until the ingest ends (no new job starts). ``held``: a
    camera is being ingested (the runs' time limits do not count meanwhile)."""

    run_s: float
    stop_s: float
    held: bool

    @property
    def stopped(self) -> bool:
        return self.run_s <= 0 and self.stop_s > 0


def throttle_for(ingesting: bool, cfg: PreviewConfig, period_s: float = THROTTLE_PERIOD_S) -> Throttle:
    """While a camera is ingested, background ffmpeg runs ``ingest_run_pct`` % of each
    period (``pause_during_ingest = true``: 0 %, stopped until it ends); otherwise throughout."""
    if not ingesting:
        return Throttle(period_s, 0.0, held=False)
    pct = 0 if cfg.pause_during_ingest else cfg.ingest_run_pct
    run_s = period_s * pct / 100.0
    return Throttle(run_s, period_s - run_s, held=True)


def backoff_s(attempts: int, base_s: float) -> float:
    """Wait before try ``attempts + 1``: base, 2 x base, 4 x base ... at most 6 hours."""
    return min(MAX_BACKOFF_S, base_s * 2.0 ** max(0, attempts - 1))


def time_limit_s(duration_s: float | None, size_bytes: int, cfg: PreviewConfig) -> float:
    """A job's time limit scales with the media's length (guessed from its size when unknown)."""
    seconds = duration_s if duration_s and duration_s > 0 else max(60.0, size_bytes / 500_000)
    return cfg.timeout_base_s + cfg.timeout_per_media_s * seconds


def output_height(source_height: int | None, wanted: int) -> int:
    """The preview's height: ``wanted``, never above the source's, always even."""
    height = min(wanted, source_height) if source_height else wanted
    return max(2, height - height % 2)


def sprite_layout(duration_s: float | None, every_s: float) -> tuple[float, int, int]:
    """(seconds between thumbnails, thumbnails, columns); at most 300 thumbnails."""
    duration = duration_s if duration_s and duration_s > 0 else every_s
    every = max(every_s, duration / MAX_SPRITE_TILES)
    count = max(1, math.ceil(duration / every))
    return every, count, min(SPRITE_COLUMNS, count)


def zone_label(when: datetime, tz: ZoneInfo) -> str:
    offset = when.astimezone(tz).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def strip_text(rec: Recording, tz: ZoneInfo, *, cjk: bool, clock: bool, start_s: float = 0.0) -> str:
    """The burned-in strip: recording id, recorded date and time (station zone,
    corrected by the camera's clock offset where known) and the marking.

    ``clock``: a running clock for drawtext (``%{pts:gmtime:...}``, expansion
    on), else the start time as plain text.
    """
    mark = media.PREVIEW_MARK if cjk else media.PREVIEW_MARK_LATIN
    start = rec.recorded_start
    if start is None:
        return f"{rec.id}  time unknown  {mark}"
    note = "" if rec.clock_offset_s is not None else " (camera clock)"
    label = zone_label(start, tz)
    if clock:
        offset = (start.astimezone(tz).utcoffset() or timedelta(0)).total_seconds()
        epoch = start.timestamp() + offset + start_s
        when = "%{pts:gmtime:" + f"{epoch:.3f}" + r":%Y-%m-%d %H\:%M\:%S}"
    else:
        when = (start + timedelta(seconds=start_s)).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    return f"{rec.id}  {when} {label}{note}  {mark}"


def kind_of(rec: Recording) -> str | None:
    """What preview a recording gets: video, audio, photo, or None."""
    return rec.media_type.value if rec.media_type is not MediaType.OTHER else None


# -- where previews live ------------------------------------------------------------

def root_of(vault: Vault) -> Path:
    folder = vault.config.preview.folder
    return Path(folder) if folder else vault.layout.root / "previews"


def folder_of(vault: Vault, recording_id: str) -> Path:
    if not recording_id.isalnum():
        raise UsageError(_("%r is not a recording id") % recording_id)
    return root_of(vault) / recording_id


# -- the queue, for the daemon and the front ends ------------------------------------

def enqueue_new(vault: Vault, recording_ids: Sequence[str], *, now: datetime | None = None) -> int:
    """Ingest hook: queue previews of newly ingested recordings (idle workers wake at
    once). Returns how many were queued."""
    queued = _enqueue(vault, recording_ids, NEW_INGEST, SERVICE.label, now or utcnow())
    if queued:
        WAKE.set()
    return queued


def enqueue_backlog(vault: Vault, *, limit: int = 1000, now: datetime | None = None) -> int:
    """Queue recordings that have no preview job yet (oldest first) at backlog priority."""
    with vault.engine.connect() as conn:
        ids = db.without_job(conn, limit)
    return _enqueue(vault, ids, BACKLOG, SERVICE.label, now or utcnow())


def _enqueue(vault: Vault, ids: Sequence[str], priority: int, who: str, now: datetime, *,
             first_part: bool = False, again: bool = False) -> int:
    if not ids:
        return 0
    queued = 0
    with vault.engine.begin() as conn:
        kinds = {r: rec_db.get(conn, r).media_type for r in ids}
        for rec_id in ids:
            if kinds[rec_id] is MediaType.OTHER:
                continue
            db.enqueue(conn, rec_id, priority=priority, requested_by=who, now=now,
                       first_part=first_part and kinds[rec_id] is MediaType.VIDEO, again=again)
            queued += 1
    return queued


def rebuild(vault: Vault, actor: Principal, ref: str | None, via: str = "cli") -> int:
    """Make one preview (``ref``) or all of them (``None``) again. Admin or station owner."""
    require(vault, actor, Action.MANAGE_CONFIG, via, _("rebuild previews"))
    now = utcnow()
    with vault.engine.connect() as conn:
        ids = [rec_db.get(conn, ref).id] if ref else db.previewable_ids(conn)
    n = _enqueue(vault, ids, ON_DEMAND if ref else BACKLOG, actor_of(actor, via).label, now, again=True)
    with vault.engine.begin() as conn:
        audit.append(conn, Event("preview.rebuild", actor_of(actor, via),
                                 {"recording": ref, "all": ref is None, "queued": n}))
    return n


@dataclass(frozen=True)
class QueueStatus:
    counts: dict[str, int]
    previews: int
    preview_bytes: int
    failed: list[db.JobRow]
    waiting: list[db.JobRow]  # queued and running, most urgent first
    encoder: str
    encoder_reason: str
    font: str | None
    workers: int


def status(vault: Vault, actor: Principal, via: str = "cli") -> QueueStatus:
    require(vault, actor, Action.MANAGE_CONFIG, via, _("see the preview queue"))
    cfg = vault.config.preview
    with vault.engine.connect() as conn:
        counts = db.counts(conn)
        n, size = db.totals(conn)
        failed = db.jobs(conn, ("failed",))
        waiting = db.jobs(conn, ("running", "queued"))
    enc, why = encoder_for(cfg)
    font, _cjk = media.find_font(cfg.font_file)
    return QueueStatus(counts, n, size, failed, waiting, enc.name, why, font,
                       worker_count(cfg.workers, os.cpu_count()))


def encoder_for(cfg: PreviewConfig) -> tuple[Encoder, str]:
    return choose_encoder(cfg.encoder, media.available_encoders(), media.render_nodes(), media.nvidia_present())


def forget(vault: Vault, recording_id: str) -> None:
    """Drop a recording's preview and job (for retention purges: previews follow their original)."""
    with vault.engine.begin() as conn:
        db.remove(conn, recording_id)
        db.delete_job(conn, recording_id)
    shutil.rmtree(folder_of(vault, recording_id), ignore_errors=True)


# -- watching: access-checked and audited -------------------------------------------

@dataclass(frozen=True)
class PreviewFile:
    recording: Recording
    preview: db.PreviewRow
    name: str
    path: Path
    sha256: str
    size_bytes: int
    content_type: str


def authorise(vault: Vault, actor: Principal, ref: str, via: str) -> Recording:
    """The recording if ``actor`` may watch its preview (officers: their own;
    supervisors: their unit; legal: all within clearance; or a grant); a
    refusal is audited."""
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        rec = visible_recording(conn, vault, actor, ref, via)
        if actor.local_owner:
            return rec
        user = people_db.user_by_name(conn, actor.name)
        grants = [grant_of(g) for g in appr_db.grants_of(conn, user.id)] if user else []
        decision = access.decide(actor, Action.VIEW_PREVIEW, recording=ref_of(rec), grants=grants, now=utcnow())
        if not decision.allowed:
            raise audit.refusal(
                AccessDeniedError(_("%s may not watch the preview of %s (rule: %s)")
                                  % (actor.name, rec.id, decision.rule), rule=decision.rule,
                                  hint=_("ask for access: 'vaultd access request --kind view-original "
                                         "--recording %s --purpose ...'") % rec.id),
                Event("access.denied", actor_of(actor, via), {
                    "action": Action.VIEW_PREVIEW.value, "rule": decision.rule}, EvidenceRef.of(rec)))
    return rec


def describe(vault: Vault, actor: Principal, ref: str, *, request: bool, via: str = "cli"
             ) -> tuple[Recording, db.PreviewRow | None, db.JobRow | None]:
    """A recording's preview and job; ``request`` queues it for the person waiting when missing.
    Reading the state is an audit entry (``preview.status``) of its own (#16.12)."""
    rec, row, job = _describe(vault, actor, ref, request=request, via=via)
    with vault.engine.begin() as conn:
        audit.append(conn, Event("preview.status", actor_of(actor, via), {
            "state": row.state if row else None, "job": job.state if job else None}, EvidenceRef.of(rec)))
    return rec, row, job


def _describe(vault: Vault, actor: Principal, ref: str, *, request: bool, via: str
              ) -> tuple[Recording, db.PreviewRow | None, db.JobRow | None]:
    rec = authorise(vault, actor, ref, via)
    row, job = _current(vault, rec)
    missing = row is None or row.state != "ready"
    waiting = job is not None and job.priority >= ON_DEMAND and job.state in ("queued", "running")
    # a failed job stays failed (its reason shown) until someone rebuilds it
    if request and missing and kind_of(rec) is not None and not waiting and (job is None or job.state != "failed"):
        _enqueue(vault, [rec.id], ON_DEMAND, actor_of(actor, via).label, utcnow(), first_part=True, again=True)
        with vault.engine.begin() as conn:
            audit.append(conn, Event("preview.request", actor_of(actor, via), {}, EvidenceRef.of(rec)))
            job = db.job_of(conn, rec.id)
        WAKE.set()
        QUICK.set()
    return rec, row, job


def _current(vault: Vault, rec: Recording) -> tuple[db.PreviewRow | None, db.JobRow | None]:
    """The catalog's preview, dropped when its files were deleted (it will be made again)."""
    with vault.engine.begin() as conn:
        row = db.get(conn, rec.id)
        if row is not None and not all((folder_of(vault, rec.id) / n).is_file() for n in row.files):
            log.warning("preview files of %s are gone; it will be made again", rec.id)
            db.remove(conn, rec.id)
            row = None
        return row, db.job_of(conn, rec.id)


def open_file(vault: Vault, actor: Principal, ref: str, name: str | None, *, where: str,
              via: str = "cli") -> PreviewFile:
    """One file of a recording's preview (default: the main one), audited as a view.

    No preview yet: it is queued at once for the person waiting and
    PreviewPendingError says so; the first seconds of a video come first.
    """
    rec, row, job = _describe(vault, actor, ref, request=True, via=via)  # the view below is the entry
    main = name in (None, "", "main")
    if row is None or (row.state == "stills" and main):
        error = job.last_error if job and job.state == "failed" else None
        if error:
            raise PreviewPendingError(_("the preview of %s could not be made: %s") % (rec.id, error),
                                      hint=_("'vaultd previews rebuild %s' tries again") % rec.id)
        raise PreviewPendingError(
            _("no preview of %s yet (%s); it is being made, ask again in a few seconds")
            % (rec.id, _("only its poster and sprite") if row else (job.state if job else "none")),
            hint=_("'vaultd previews status' shows the queue"))
    name = row.main_file if name in (None, "", "main") else name
    if name in ("provenance", "provenance.json"):
        return _provenance_file(vault, actor, rec, row, where, via)
    if name not in row.files:
        raise NotFoundError(_("the preview of %s has no file %r") % (rec.id, name),
                            hint=_("it has: %s") % ", ".join(sorted(row.files)))
    meta = row.files[name]
    with vault.engine.begin() as conn:
        audit.append(conn, Event("preview.view", actor_of(actor, via), {
            "file": name, "sha256": meta["sha256"], "state": row.state, "where": where}, EvidenceRef.of(rec)))
    return PreviewFile(rec, row, name, folder_of(vault, rec.id) / name, str(meta["sha256"]),
                       int(meta["size_bytes"]), CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream"))


def _provenance_file(vault: Vault, actor: Principal, rec: Recording, row: db.PreviewRow, where: str,
                     via: str) -> PreviewFile:
    path = folder_of(vault, rec.id) / "provenance.json"
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    with vault.engine.begin() as conn:
        audit.append(conn, Event("preview.view", actor_of(actor, via), {
            "file": path.name, "sha256": digest, "state": row.state, "where": where}, EvidenceRef.of(rec)))
    return PreviewFile(rec, row, path.name, path, digest, len(data), CONTENT_TYPES[".json"])


def write_copy(vault: Vault, actor: Principal, ref: str, out: Path, name: str | None = None,
               via: str = "cli") -> PreviewFile:
    """``recordings preview ID --out FILE``: copy a preview file out (never overwrites)."""
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(_("%s already exists") % out,
                         hint=_("choose a new file name with --out; vaultd never overwrites")) from None
    except OSError as exc:
        raise UsageError(_("cannot create %s: %s") % (out, exc.strerror)) from None
    try:
        found = open_file(vault, actor, ref, name, where=str(out), via=via)
    except BaseException:
        os.close(fd)
        out.unlink(missing_ok=True)
        raise
    try:
        with os.fdopen(fd, "wb") as dst, open(found.path, "rb") as src:
            shutil.copyfileobj(src, dst, 1 << 20)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return found


def provenance_json(row: db.PreviewRow) -> str:
    return json.dumps({"notice": media.PREVIEW_MARK, "recording": row.recording_id, "state": row.state,
                       "original_sha256": row.original_sha256, "files": row.files, "tools": row.tools,
                       "params": row.params, "incomplete": row.incomplete, "problems": row.problems,
                       "made_at": row.made_at.isoformat(), "seconds": row.seconds},
                      ensure_ascii=False, indent=2, sort_keys=True)


# -- what front ends print ------------------------------------------------------------

def _iso(t: datetime | None, tz: ZoneInfo) -> str | None:
    return t.astimezone(tz).isoformat() if t is not None else None


def job_json(job: db.JobRow | None, tz: ZoneInfo) -> dict[str, object] | None:
    if job is None:
        return None
    return {"recording": job.recording_id, "state": job.state, "priority": job.priority,
            "attempts": job.attempts, "not_before": _iso(job.not_before, tz), "error": job.last_error,
            "requested_by": job.requested_by, "updated_at": _iso(job.updated_at, tz), "worker": job.worker}


def preview_json(rec: Recording, row: db.PreviewRow | None, job: db.JobRow | None,
                 tz: ZoneInfo) -> dict[str, object]:
    """A recording's preview as front ends show it: state, files, provenance."""
    state = row.state if row else (job.state if job and job.state in ("queued", "running", "failed") else "none")
    out: dict[str, object] = {"recording": rec.id, "state": state, "notice": media.PREVIEW_MARK,
                              "job": job_json(job, tz)}
    if row is not None:
        out.update(kind=row.kind, main_file=row.main_file, sha256=row.sha256, size_bytes=row.size_bytes,
                   files=row.files, original_sha256=row.original_sha256, tools=row.tools, params=row.params,
                   incomplete=row.incomplete, problems=row.problems, made_at=_iso(row.made_at, tz),
                   seconds=row.seconds)
    return out


def status_json(st: QueueStatus, tz: ZoneInfo) -> dict[str, object]:
    return {"jobs": st.counts, "previews": st.previews, "preview_bytes": st.preview_bytes,
            "encoder": st.encoder, "encoder_reason": st.encoder_reason, "font": st.font,
            "workers": st.workers, "failed": [job_json(j, tz) for j in st.failed],
            "waiting": [job_json(j, tz) for j in st.waiting]}
