"""Interruptions (R12): gaps between consecutive clips of one device inside
one duty period, each of which needs a note saying why.

``find_gaps`` is pure; ``list_gaps`` and ``note_gap`` read and write the
catalog and the audit log. A duty period ends at a pause of at least
``duty_break_hours``, at a dock of the camera, or when the officer changes:
pauses like these are not interruptions. An interruption is named by the
recording that follows it (``gaps note <that id>``). Only video and audio
clips count: photos and log files neither make nor break a run.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from vaultd import access, audit
from vaultd.access import Action, Principal, Role
from vaultd.approvals import visible_recording
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import compliance as db
from vaultd.catalog.compliance import RecordingFacts
from vaultd.config import ComplianceConfig
from vaultd.errors import NotFoundError, UsageError
from vaultd.i18n import _
from vaultd.people import actor_of, require
from vaultd.reportscope import report_scope
from vaultd.vault import Vault, utcnow


#: what a camera records continuously; photos and log files do not make or break a run
RECORDED = frozenset({"video", "audio"})
#: time flags (R11) that make a clip's place in time unknown: it is left out
UNTRUSTED_TIME = frozenset({"before-earliest-plausible", "in-future"})


@dataclass(frozen=True)
class Interruption:
    id: str  # the recording after the gap
    before_id: str
    device_serial: str
    officer_id: str | None
    unit: str | None
    gap_start: datetime
    gap_end: datetime
    note: str | None = None

    @property
    def gap_s(self) -> float:
        return (self.gap_end - self.gap_start).total_seconds()

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "before_id": self.before_id, "device_serial": self.device_serial,
                "officer_id": self.officer_id, "unit": self.unit, "gap_start": self.gap_start.isoformat(),
                "gap_end": self.gap_end.isoformat(), "gap_s": self.gap_s, "note": self.note}


def _docked_between(times: Sequence[datetime], start: datetime, end: datetime) -> bool:
    i = bisect_right(times, start)
    return i < len(times) and times[i] < end


def find_gaps(clips: Sequence[RecordingFacts], docks: Mapping[str, Sequence[datetime]],
              threshold_s: float, duty_break_s: float,
              notes: Mapping[str, str] | None = None) -> list[Interruption]:
    """Interruptions among ``clips`` (any order); ``docks``: sorted dock times per serial."""
    notes = notes or {}
    timed = sorted((c for c in clips if c.device_serial and c.recorded_start and c.recorded_end
                    and c.media_type in RECORDED and not UNTRUSTED_TIME.intersection(c.time_flags)),
                   key=lambda c: (c.device_serial or "", c.recorded_start, c.id))
    out: list[Interruption] = []
    prev: RecordingFacts | None = None
    reach: datetime | None = None  # the latest end so far in this device's run
    for clip in timed:
        assert clip.recorded_start is not None and clip.recorded_end is not None
        if prev is None or prev.device_serial != clip.device_serial or reach is None:
            prev, reach = clip, clip.recorded_end
            continue
        pause = (clip.recorded_start - reach).total_seconds()
        same_duty = (pause < duty_break_s and prev.officer_id == clip.officer_id
                     and not _docked_between(docks.get(clip.device_serial or "", ()), reach,
                                             clip.recorded_start))
        if pause > threshold_s and same_duty:
            out.append(Interruption(clip.id, prev.id, clip.device_serial or "", clip.officer_id, clip.unit,
                                    reach, clip.recorded_start, notes.get(clip.id)))
        prev, reach = clip, max(reach, clip.recorded_end)
    return sorted(out, key=lambda g: (g.gap_start, g.id))


def gaps_in(conn: Any, cfg: ComplianceConfig, *, since: datetime | None = None, until: datetime | None = None,
            unit: str | None = None, device_serial: str | None = None) -> list[Interruption]:
    """Interruptions whose following clip starts in [since, until) (I/O: reads the catalog)."""
    margin = timedelta(hours=cfg.duty_break_hours)
    clips = db.facts(conn, since=since - margin if since else None, until=until, unit=unit,
                     device_serial=device_serial)
    serials = sorted({c.device_serial for c in clips if c.device_serial})
    docks = db.dock_times(conn, serials, since - margin if since else None, until)
    found = find_gaps(clips, docks, cfg.gap_threshold_s, cfg.duty_break_hours * 3600, db.gap_notes(conn))
    return [g for g in found if (since is None or g.gap_end >= since) and (until is None or g.gap_end < until)]


def list_gaps(vault: Vault, actor: Principal, *, device_serial: str | None = None,
              since: datetime | None = None, until: datetime | None = None, unit: str | None = None,
              unnoted_only: bool = False, via: str = "cli") -> list[Interruption]:
    own = _own_only(actor)  # an officer sees the interruptions they must explain
    if own is None:
        unit = report_scope(vault, actor, unit, via, _("list interruptions"))
    with vault.engine.begin() as conn:
        found = gaps_in(conn, vault.config.compliance, since=since, until=until, unit=unit,
                        device_serial=device_serial)
        if own is not None:
            found = [g for g in found if g.officer_id == own]
        audit.append(conn, Event("gaps.list", actor_of(actor, via), {
            "device_serial": device_serial, "unit": unit, "count": len(found)}))
    return [g for g in found if not (unnoted_only and g.note)]


def _own_only(actor: Principal) -> str | None:
    """The officer number to narrow to, for an officer without report rights."""
    if (actor.officer_number and Role.OFFICER in actor.roles
            and not access.decide(actor, Action.READ_UNIT_REPORTS, now=utcnow()).allowed):
        return actor.officer_number
    return None


def note_gap(vault: Vault, actor: Principal, after_id: str, text: str, via: str = "cli") -> Interruption:
    """Attach (or replace) the note explaining the interruption before ``after_id``."""
    if not text.strip():
        raise UsageError(_("an interruption note cannot be empty"),
                         hint=_("say why recording stopped, e.g. --text '电量耗尽 / battery ran out'"))
    require(vault, actor, Action.EXPLAIN, via, _("explain interruptions"))
    now = utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        rec = visible_recording(conn, vault, actor, after_id, via)
        gap = next((g for g in gaps_in(conn, vault.config.compliance, device_serial=rec.device_serial)
                    if g.id == rec.id), None)
        if gap is None:
            raise NotFoundError(_("there is no interruption before recording %s") % rec.id,
                                hint=_("'vaultd gaps list' shows the interruptions and their ids"))
        old = db.gap_note(conn, rec.id)
        db.set_gap_note(conn, after_id=rec.id, before_id=gap.before_id, note=text.strip(),
                        by=actor_of(actor, via).label, at=now)
        audit.append(conn, Event("gap.note", actor_of(actor, via), {
            "before_id": gap.before_id, "gap_start": gap.gap_start.isoformat(),
            "gap_end": gap.gap_end.isoformat(), "old": old["note"] if old else None, "new": text.strip()},
            EvidenceRef.of(rec)), now)
    return Interruption(gap.id, gap.before_id, gap.device_serial, gap.officer_id, gap.unit, gap.gap_start,
                        gap.gap_end, text.strip())
