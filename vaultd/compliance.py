"""Compliance (R1, R2, R12): upload deadlines with the off-site exception,
labelling deadlines, interruptions; the report and the alerts.

The decisions are pure (``ingest_deadline``, ``timeliness``, ``build_report``,
``overdue_devices``); the service functions read the catalog, ask
``access.decide`` and write the audit entries themselves.

R1: a recording must be in the vault within 24 h of its end; when the officer
or the device was away on a recorded trip (left before the recording ended,
returned after), within 24 h of the return. A recording ingested while its
trip is still open is on time. A recording without an end time, or whose
time is implausible (before ``time.earliest_plausible``, in the future), is
"unknown": neither on time nor late, and listed as such.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from vaultd import access, alerts, audit, gaps
from vaultd.access import Action, Principal
from vaultd.approvals import visible_recording
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import compliance as db
from vaultd.catalog.compliance import RecordingFacts, TripRow
from vaultd.errors import NotFoundError, UsageError
from vaultd.gaps import Interruption
from vaultd.i18n import _
from vaultd.labels import labelling_deadline
from vaultd.metadata import Deadline, covers, ingest_deadline, whose
from vaultd.model import Actor
from vaultd.people import actor_of, require
from vaultd.reportscope import report_scope
from vaultd.vault import Vault, utcnow

log = logging.getLogger(__name__)

#: when a recording must be labelled by (R2), or None when it cannot be said
LabelDeadline = Callable[[RecordingFacts], "datetime | None"]

ALERT_NOT_DOCKED = "device.not-docked"
ALERT_UNLABELLED = "label.overdue"
ALERT_UNNOTED = "interruption.unnoted"


# -- pure decisions ------------------------------------------------------------


@dataclass(frozen=True)
class Timeliness:
    facts: RecordingFacts
    status: str  # on-time | late | unknown
    deadline: Deadline

    @property
    def late_by_s(self) -> float | None:
        if self.status != "late" or self.deadline.at is None:
            return None
        return (self.facts.ingested_at - self.deadline.at).total_seconds()

    def as_json(self) -> dict[str, Any]:
        f = self.facts
        return {"id": f.id, "status": self.status, "device_serial": f.device_serial, "officer_id": f.officer_id,
                "unit": f.unit, "recorded_end": _iso(f.recorded_end), "ingested_at": _iso(f.ingested_at),
                "deadline": _iso(self.deadline.at), "trip_id": self.deadline.trip_id,
                "late_by_s": self.late_by_s, "reason": f.late_reason}


def timeliness(f: RecordingFacts, trips: Sequence[TripRow], hours: float) -> Timeliness:
    if gaps.UNTRUSTED_TIME.intersection(f.time_flags):  # R11: its end says nothing
        return Timeliness(f, "unknown", Deadline(None))
    d = ingest_deadline(f.recorded_end, f.officer_id, f.device_serial, trips, hours)
    if d.away:
        return Timeliness(f, "on-time", d)
    if d.at is None:
        return Timeliness(f, "unknown", d)
    return Timeliness(f, "on-time" if f.ingested_at <= d.at else "late", d)


@dataclass(frozen=True)
class Unlabelled:
    facts: RecordingFacts
    deadline: datetime | None
    overdue: bool

    def as_json(self) -> dict[str, Any]:
        f = self.facts
        return {"id": f.id, "officer_id": f.officer_id, "unit": f.unit, "device_serial": f.device_serial,
                "recorded_start": _iso(f.recorded_start), "deadline": _iso(self.deadline),
                "overdue": self.overdue}


def unlabelled(f: RecordingFacts, label_deadline: LabelDeadline, now: datetime) -> Unlabelled | None:
    if f.labelled_at is not None:
        return None
    due = label_deadline(f)
    return Unlabelled(f, due, due is not None and now > due)


@dataclass
class Group:
    """Counts for one unit, one officer, or everything."""

    key: str | None
    recordings: int = 0
    on_time: int = 0
    late: int = 0
    unknown: int = 0
    unlabelled: int = 0
    overdue_unlabelled: int = 0
    interruptions: int = 0
    unnoted: int = 0

    @property
    def on_time_rate(self) -> float | None:
        decided = self.on_time + self.late
        return self.on_time / decided if decided else None

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "recordings": self.recordings, "on_time": self.on_time, "late": self.late,
                "unknown": self.unknown, "on_time_rate": self.on_time_rate, "unlabelled": self.unlabelled,
                "overdue_unlabelled": self.overdue_unlabelled, "interruptions": self.interruptions,
                "unnoted_interruptions": self.unnoted}


@dataclass(frozen=True)
class ComplianceReport:
    since: datetime | None
    until: datetime | None
    unit: str | None
    at: datetime
    total: Group
    late: list[Timeliness]
    unknown: list[Timeliness]
    unlabelled: list[Unlabelled]
    interruptions: list[Interruption]
    by_unit: list[Group] = field(default_factory=list)
    by_officer: list[Group] = field(default_factory=list)
    agency: str = ""  # [agency] name: who reports
    unit_names: tuple[tuple[str, str], ...] = ()  # [agency.units] of the units in the report

    def as_json(self) -> dict[str, Any]:
        return {"agency": self.agency, "unit_names": dict(self.unit_names), "since": _iso(self.since), "until": _iso(self.until), "unit": self.unit, "at": self.at.isoformat(),
                "total": self.total.as_json(), "late": [t.as_json() for t in self.late],
                "unknown": [t.as_json() for t in self.unknown],
                "unlabelled": [u.as_json() for u in self.unlabelled],
                "interruptions": [g.as_json() for g in self.interruptions],
                "by_unit": [g.as_json() for g in self.by_unit],
                "by_officer": [g.as_json() for g in self.by_officer]}


def build_report(facts: Sequence[RecordingFacts], trips: Sequence[TripRow], interruptions: Sequence[Interruption],
                 label_deadline: LabelDeadline, *, hours: float, now: datetime, since: datetime | None = None,
                 until: datetime | None = None, unit: str | None = None) -> ComplianceReport:
    """The compliance report over ``facts`` (pure)."""
    total, units, officers = Group(None), dict[str | None, Group](), dict[str | None, Group]()

    def groups(unit_key: str | None, officer_key: str | None) -> tuple[Group, ...]:
        return (total, units.setdefault(unit_key, Group(unit_key)),
                officers.setdefault(officer_key, Group(officer_key)))

    late: list[Timeliness] = []
    unknown: list[Timeliness] = []
    todo: list[Unlabelled] = []
    for f in facts:
        t = timeliness(f, trips, hours)
        u = unlabelled(f, label_deadline, now)
        for g in groups(f.unit, f.officer_id):
            g.recordings += 1
            g.on_time += t.status == "on-time"
            g.late += t.status == "late"
            g.unknown += t.status == "unknown"
            g.unlabelled += u is not None
            g.overdue_unlabelled += u is not None and u.overdue
        (late if t.status == "late" else unknown if t.status == "unknown" else []).append(t)
        if u is not None:
            todo.append(u)
    for gap in interruptions:
        for g in groups(gap.unit, gap.officer_id):
            g.interruptions += 1
            g.unnoted += gap.note is None
    return ComplianceReport(since, until, unit, now, total, late, unknown, todo, list(interruptions),
                            sorted(units.values(), key=lambda g: g.key or ""),
                            sorted(officers.values(), key=lambda g: g.key or ""))


@dataclass(frozen=True)
class OverdueDevice:
    serial: str
    officer_number: str | None
    since: datetime  # last dock, enrolment, assignment or return, whichever is latest
    hours: float


def overdue_devices(devices: Sequence[db.DeviceDock], trips: Sequence[TripRow], now: datetime,
                    hours: float) -> list[OverdueDevice]:
    """Enrolled, assigned cameras not docked for more than ``hours`` (R1), unless
    the camera or its officer is away on a recorded trip (pure)."""
    out = []
    for d in devices:
        marks = [t for t in (d.last_docked_at, d.enrolled_at, d.assigned_since) if t is not None]
        away = False
        for trip in trips:
            if not whose(trip, d.officer_number, d.serial):
                continue
            if trip.left_at <= now and (trip.returned_at is None or trip.returned_at > now):
                away = True
            elif trip.returned_at is not None and trip.returned_at <= now:
                marks.append(trip.returned_at)
        if away or not marks:
            continue
        since = max(marks)
        if now - since > timedelta(hours=hours):
            out.append(OverdueDevice(d.serial, d.officer_number, since, (now - since).total_seconds() / 3600))
    return out


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


# -- label deadlines (R2) -------------------------------------------------------


def label_deadline_for(vault: Vault) -> LabelDeadline:
    """The labelling rule (R2): the configured Chinese working days after ingest."""
    days, tz = vault.config.retention.label_working_days, ZoneInfo(vault.config.time.station_tz)

    def due(f: RecordingFacts) -> datetime | None:
        return labelling_deadline(f.ingested_at, days, tz=tz)

    return due


# -- services ------------------------------------------------------------------


def _trip_rows(conn: Connection) -> list[TripRow]:
    return db.all_trips(conn)


def sync_timeliness(conn: Connection, facts: Sequence[RecordingFacts], trips: Sequence[TripRow],
                    hours: float) -> list[str]:
    """Keep each recording's stored deadline and on-time mark in step with the
    trips (what ``recordings show`` prints); the ids that changed."""
    stored = db.stored_timeliness(conn, [f.id for f in facts])
    changed: list[tuple[str, datetime | None, bool | None]] = []
    for f in facts:
        t = timeliness(f, trips, hours)
        on_time = None if t.status == "unknown" else t.status == "on-time"
        deadline = t.deadline.at if t.deadline.at is not None else stored[f.id][0]
        if stored.get(f.id) != (deadline, on_time):
            changed.append((f.id, deadline, on_time))
    db.set_timeliness(conn, changed)
    return [c[0] for c in changed]


def _sync_trip(conn: Connection, trip: TripRow, hours: float) -> list[str]:
    """Re-mark what was recorded during ``trip`` by its officer or device."""
    until = (trip.returned_at or utcnow()) + timedelta(days=1)
    facts = [f for f in db.facts(conn, since=trip.left_at - timedelta(days=1), until=until)
             if covers(trip, f.officer_id, f.device_serial, f.recorded_end or f.ingested_at)]
    return sync_timeliness(conn, facts, _trip_rows(conn), hours)


def report(vault: Vault, actor: Principal, *, since: datetime | None = None, until: datetime | None = None,
           unit: str | None = None, now: datetime | None = None, via: str = "cli") -> ComplianceReport:
    """The compliance report of one unit (or all) over [since, until)."""
    if since and until and since >= until:
        raise UsageError(_("--from must be before --to"))
    unit = report_scope(vault, actor, unit, via, _("read compliance reports"))
    now = now or utcnow()
    with vault.engine.begin() as conn:
        facts = db.facts(conn, since=since, until=until, unit=unit, records_only=True)
        found = gaps.gaps_in(conn, vault.config.compliance, since=since, until=until, unit=unit)
        rep = build_report(facts, _trip_rows(conn), found, label_deadline_for(vault),
                           hours=vault.config.ingest.deadline_hours, now=now, since=since, until=until,
                           unit=unit)
        audit.append(conn, Event("compliance.report", actor_of(actor, via), {
            "since": _iso(since), "until": _iso(until), "unit": unit, "recordings": rep.total.recordings,
            "late": [t.facts.id for t in rep.late], "unlabelled": len(rep.unlabelled),
            "interruptions": len(rep.interruptions)}))
    shown = {g.key for g in rep.by_unit} | ({unit} if unit else set())
    return dataclasses.replace(rep, agency=vault.config.agency_name,
                               unit_names=tuple((u, n) for u, n in vault.config.agency.units if u in shown))


def add_trip(vault: Vault, actor: Principal, *, officer_number: str | None, device_serial: str | None,
             left_at: datetime, returned_at: datetime | None, note: str, via: str = "cli") -> TripRow:
    """Record an off-site trip (R1 exception): the upload deadline of what was
    recorded during it moves to the return + 24 h."""
    require(vault, actor, Action.MANAGE_TRIPS, via, _("record trips"))
    if not (officer_number or device_serial):
        raise UsageError(_("a trip is an officer's or a device's"), hint=_("pass --officer N or --device SERIAL"))
    if returned_at is not None and returned_at < left_at:
        raise UsageError(_("the return (%s) is before the departure (%s)") % (returned_at.isoformat(),
                                                                              left_at.isoformat()))
    if not note.strip():
        raise UsageError(_("say where and why with --note"), hint=_("e.g. --note '山区巡查 / mountain patrol'"))
    now = utcnow()
    with vault.engine.begin() as conn:
        trip_id = db.add_trip(conn, officer_number=officer_number, device_serial=device_serial, left_at=left_at,
                              returned_at=returned_at, note=note.strip(), by=actor_of(actor, via).label, at=now)
        row = db.trip(conn, trip_id)
        assert row is not None
        changed = _sync_trip(conn, row, vault.config.ingest.deadline_hours)
        audit.append(conn, Event("trip.add", actor_of(actor, via), {**row.as_json(), "re_marked": changed}), now)
    return row


def return_trip(vault: Vault, actor: Principal, trip_id: int, returned_at: datetime, via: str = "cli") -> TripRow:
    require(vault, actor, Action.MANAGE_TRIPS, via, _("record trips"))
    now = utcnow()
    with vault.engine.begin() as conn:
        row = db.trip(conn, trip_id)
        if row is None:
            raise NotFoundError(_("no trip %d") % trip_id, hint=_("'vaultd trips list' shows them"))
        if row.returned_at is not None:
            raise UsageError(_("trip %d already has its return (%s)") % (trip_id, row.returned_at.isoformat()))
        if returned_at < row.left_at:
            raise UsageError(_("the return (%s) is before the departure (%s)") % (returned_at.isoformat(),
                                                                                  row.left_at.isoformat()))
        db.set_trip_return(conn, trip_id, returned_at)
        new = db.trip(conn, trip_id)
        assert new is not None
        changed = _sync_trip(conn, new, vault.config.ingest.deadline_hours)
        audit.append(conn, Event("trip.return", actor_of(actor, via), {
            "id": trip_id, "returned_at": returned_at.isoformat(), "re_marked": changed}), now)
    return new


def list_trips(vault: Vault, actor: Principal, *, officer_number: str | None = None,
               device_serial: str | None = None, via: str = "cli") -> list[TripRow]:
    if not access.decide(actor, Action.MANAGE_TRIPS, now=utcnow()).allowed:
        require(vault, actor, Action.READ_UNIT_REPORTS, via, _("list trips"))
    with vault.engine.connect() as conn:
        return db.all_trips(conn, officer_number=officer_number, device_serial=device_serial)


def set_late_reason(vault: Vault, actor: Principal, ref: str, reason: str, via: str = "cli") -> Timeliness:
    """Enter why a late recording was late (R1); replaces an earlier reason."""
    if not reason.strip():
        raise UsageError(_("the reason cannot be empty"), hint=_("e.g. --reason '连续执勤 / continuous duty'"))
    require(vault, actor, Action.EXPLAIN, via, _("enter late reasons"))
    now = utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        rec = visible_recording(conn, vault, actor, ref, via)
        [f] = db.facts(conn, ids=[rec.id])
        t = timeliness(f, _trip_rows(conn), vault.config.ingest.deadline_hours)
        if t.status != "late":
            raise UsageError(_("recording %s is not late (%s); it needs no reason") % (rec.id, t.status))
        db.set_late_reason(conn, rec.id, reason.strip(), actor_of(actor, via).label, now)
        audit.append(conn, Event("recording.late_reason", actor_of(actor, via), {
            "old": f.late_reason, "new": reason.strip(), "deadline": _iso(t.deadline.at)},
            EvidenceRef.of(rec)), now)
        [f] = db.facts(conn, ids=[rec.id])
    return Timeliness(f, t.status, t.deadline)


# -- alerts (the daemon's scheduler calls this) -------------------------------------


@dataclass(frozen=True)
class AlertRun:
    not_docked: list[OverdueDevice]
    unlabelled: dict[str, list[str]]  # officer (or "unit:<u>" / "-") -> overdue recording ids
    unnoted: list[Interruption]
    cleared: int


def check_alerts(vault: Vault, actor: Actor, now: datetime, *, gap_days: int = 90) -> AlertRun:
    """Raise the compliance alerts that hold at ``now`` and clear those that no
    longer do: cameras not docked, recordings unlabelled past their deadline
    (one alert per officer), interruptions without a note (of the last
    ``gap_days``). Also keeps the stored on-time marks of recent recordings in
    step with the trips."""
    with vault.engine.begin() as conn:
        trips = _trip_rows(conn)
        recent = db.facts(conn, since=now - timedelta(days=gap_days), until=now)
        remarked = sync_timeliness(conn, recent, trips, vault.config.ingest.deadline_hours)
        if remarked:  # e.g. ingested late while a trip was still open
            audit.append(conn, Event("compliance.re_marked", actor, {"recordings": remarked}), now)
        found = _conditions(conn, vault, trips, now, gap_days)
        _raise_all(conn, actor, now, found)
        stale = _stale(conn, found)
    for a in stale:
        alerts.clear_alert(vault, a.id, actor, _("resolved: the condition no longer holds at %s") % now.isoformat())
    if found.not_docked or found.unlabelled or found.unnoted:
        log.warning("compliance: %d cameras not docked, %d officers with overdue labels, %d unnoted interruptions",
                    len(found.not_docked), len(found.unlabelled), len(found.unnoted))
    return dataclasses.replace(found, cleared=len(stale))


def _conditions(conn: Connection, vault: Vault, trips: Sequence[TripRow], now: datetime,
                gap_days: int) -> AlertRun:
    cfg = vault.config.compliance
    due = label_deadline_for(vault)
    overdue = overdue_devices(db.enrolled_assigned(conn, now), trips, now, cfg.dock_overdue_hours)
    late_labels: dict[str, list[str]] = {}
    for f in db.facts(conn, unlabelled_only=True, records_only=True):
        u = unlabelled(f, due, now)
        if u is not None and u.overdue:
            who = f.officer_id or (f"unit:{f.unit}" if f.unit else "-")
            late_labels.setdefault(who, []).append(f.id)
    unnoted = [g for g in gaps.gaps_in(conn, cfg, since=now - timedelta(days=gap_days), until=now)
               if g.note is None]
    return AlertRun(overdue, late_labels, unnoted, 0)


def _raise_all(conn: Connection, actor: Actor, now: datetime, found: AlertRun) -> None:
    for d in found.not_docked:
        alerts.raise_alert(conn, ALERT_NOT_DOCKED, d.serial, _(
            "camera %s (officer %s) has not been docked for %.0f hours (since %s)")
            % (d.serial, d.officer_number or "-", d.hours, d.since.isoformat()), actor=actor,
            details={"officer": d.officer_number, "since": d.since.isoformat()}, at=now)
    for who, ids in found.unlabelled.items():
        alerts.raise_alert(conn, ALERT_UNLABELLED, who, _(
            "%d recordings of %s are unlabelled past their deadline") % (len(ids), who), actor=actor,
            details={"recordings": ids}, at=now)
    for g in found.unnoted:
        alerts.raise_alert(conn, ALERT_UNNOTED, g.id, _(
            "camera %s stopped recording for %.0f s before %s without a note")
            % (g.device_serial, g.gap_s, g.id), actor=actor, details=g.as_json(), at=now)


def _stale(conn: Connection, found: AlertRun) -> list[alerts.Alert]:
    """Open compliance alerts whose condition no longer holds (an old gap stays until noted)."""
    still = ({(ALERT_NOT_DOCKED, d.serial) for d in found.not_docked}
             | {(ALERT_UNLABELLED, w) for w in found.unlabelled} | {(ALERT_UNNOTED, g.id) for g in found.unnoted})
    noted = db.gap_notes(conn)
    return [a for kind in (ALERT_NOT_DOCKED, ALERT_UNLABELLED, ALERT_UNNOTED)
            for a in alerts.open_alerts(conn, kind) if (a.kind, a.subject) not in still
            and (a.kind != ALERT_UNNOTED or a.subject in noted)]
