"""Compliance in the catalog: trips, late reasons, interruption notes, the
scrub's place, spot checks, and the facts the reports read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, tuple_, update

from vaultd.catalog.schema import (
    audit_entries,
    device_assignments,
    devices,
    docks,
    ingest_sessions,
    interruption_notes,
    labels,
    late_reasons,
    recordings,
    scrub_state,
    spot_check_findings,
    spot_check_items,
    spot_checks,
    tombstones,
    trips,
)

# -- trips -----------------------------------------------------------------------


@dataclass(frozen=True)
class TripRow:
    id: int
    officer_number: str | None
    device_serial: str | None
    left_at: datetime
    returned_at: datetime | None
    note: str
    recorded_by: str
    recorded_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "officer_number": self.officer_number, "device_serial": self.device_serial,
                "left_at": self.left_at.isoformat(),
                "returned_at": self.returned_at.isoformat() if self.returned_at else None,
                "note": self.note, "recorded_by": self.recorded_by, "recorded_at": self.recorded_at.isoformat()}


def _trip(r: Any) -> TripRow:
    return TripRow(r.id, r.officer_number, r.device_serial, r.left_at, r.returned_at, r.note,
                   r.recorded_by, r.recorded_at)


def add_trip(conn: Connection, *, officer_number: str | None, device_serial: str | None, left_at: datetime,
             returned_at: datetime | None, note: str, by: str, at: datetime) -> int:
    res = conn.execute(insert(trips).values(
        officer_number=officer_number, device_serial=device_serial, left_at=left_at,
        returned_at=returned_at, note=note, recorded_by=by, recorded_at=at))
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def trip(conn: Connection, trip_id: int) -> TripRow | None:
    row = conn.execute(select(trips).where(trips.c.id == trip_id)).first()
    return _trip(row) if row else None


def set_trip_return(conn: Connection, trip_id: int, returned_at: datetime) -> None:
    conn.execute(update(trips).where(trips.c.id == trip_id).values(returned_at=returned_at))


def all_trips(conn: Connection, *, officer_number: str | None = None, device_serial: str | None = None,
              since: datetime | None = None) -> list[TripRow]:
    q = select(trips)
    if officer_number:
        q = q.where(trips.c.officer_number == officer_number)
    if device_serial:
        q = q.where(trips.c.device_serial == device_serial)
    if since:
        q = q.where(or_(trips.c.returned_at.is_(None), trips.c.returned_at >= since))
    return [_trip(r) for r in conn.execute(q.order_by(trips.c.left_at, trips.c.id))]


# -- late reasons, interruption notes --------------------------------------------


def late_reason(conn: Connection, recording_id: str) -> str | None:
    row = conn.execute(select(late_reasons.c.reason).where(late_reasons.c.recording_id == recording_id)).first()
    return str(row.reason) if row else None


def set_late_reason(conn: Connection, recording_id: str, reason: str, by: str, at: datetime) -> None:
    if late_reason(conn, recording_id) is None:
        conn.execute(insert(late_reasons).values(recording_id=recording_id, reason=reason,
                                                 entered_by=by, entered_at=at))
    else:
        conn.execute(update(late_reasons).where(late_reasons.c.recording_id == recording_id).values(
            reason=reason, entered_by=by, entered_at=at))


def gap_note(conn: Connection, after_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(interruption_notes).where(interruption_notes.c.after_id == after_id)).first()
    return dict(row._mapping) if row else None


def set_gap_note(conn: Connection, *, after_id: str, before_id: str, note: str, by: str, at: datetime) -> None:
    if gap_note(conn, after_id) is None:
        conn.execute(insert(interruption_notes).values(after_id=after_id, before_id=before_id, note=note,
                                                       noted_by=by, noted_at=at))
    else:
        conn.execute(update(interruption_notes).where(interruption_notes.c.after_id == after_id).values(
            before_id=before_id, note=note, noted_by=by, noted_at=at))


def gap_notes(conn: Connection) -> dict[str, str]:
    """after_id -> note, for every noted interruption."""
    return {r.after_id: r.note for r in conn.execute(select(interruption_notes.c.after_id,
                                                            interruption_notes.c.note))}


# -- the facts reports read ---------------------------------------------------


@dataclass(frozen=True)
class RecordingFacts:
    """What compliance needs to know about one recording (no media metadata)."""

    id: str
    device_serial: str | None
    officer_id: str | None
    unit: str | None
    recorded_start: datetime | None
    recorded_end: datetime | None
    ingested_at: datetime
    duration_s: float | None
    size_bytes: int
    media_type: str
    labelled_at: datetime | None
    late_reason: str | None
    time_flags: tuple[str, ...] = ()  # R11: why its times may not be trusted


_FACT_COLS = (recordings.c.id, recordings.c.device_serial, recordings.c.officer_id, recordings.c.unit,
              recordings.c.recorded_start, recordings.c.recorded_end, recordings.c.ingested_at,
              recordings.c.duration_s, recordings.c.size_bytes, recordings.c.media_type,
              labels.c.labelled_at, late_reasons.c.reason, recordings.c.time_flags)


def facts(conn: Connection, *, since: datetime | None = None, until: datetime | None = None,
          unit: str | None = None, ids: Sequence[str] | None = None,
          device_serial: str | None = None, unlabelled_only: bool = False,
          live_only: bool = False, records_only: bool = False) -> list[RecordingFacts]:
    """Recordings whose recorded start lies in [since, until) (by ingest time when
    the start is unknown), with their label date and late reason. ``records_only``:
    video, audio and photos, not the camera's other files (logs)."""
    q = (select(*_FACT_COLS)
         .select_from(recordings.outerjoin(labels, labels.c.recording_id == recordings.c.id)
                      .outerjoin(late_reasons, late_reasons.c.recording_id == recordings.c.id)))
    when = func.coalesce(recordings.c.recorded_start, recordings.c.ingested_at)
    if since is not None:
        q = q.where(when >= since)
    if until is not None:
        q = q.where(when < until)
    if unit is not None:
        q = q.where(recordings.c.unit == unit)
    if device_serial is not None:
        q = q.where(recordings.c.device_serial == device_serial)
    if ids is not None:
        q = q.where(recordings.c.id.in_(list(ids)))
    if unlabelled_only:
        q = q.where(labels.c.labelled_at.is_(None), _live())
    if live_only:
        q = q.where(_live())
    if records_only:
        q = q.where(recordings.c.media_type != "other")
    q = q.order_by(recordings.c.recorded_start, recordings.c.id)
    return [RecordingFacts(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
                           tuple(json.loads(r[12] or "[]"))) for r in conn.execute(q)]


def set_timeliness(conn: Connection, rows: Sequence[tuple[str, datetime | None, bool | None]]) -> None:
    """Store recomputed (id, ingest_deadline, on_time) on recordings (catalog metadata, never bytes)."""
    for rid, deadline, on_time in rows:
        conn.execute(update(recordings).where(recordings.c.id == rid).values(ingest_deadline=deadline,
                                                                             on_time=on_time))


def stored_timeliness(conn: Connection, ids: Sequence[str]) -> dict[str, tuple[datetime | None, bool | None]]:
    q = select(recordings.c.id, recordings.c.ingest_deadline, recordings.c.on_time).where(
        recordings.c.id.in_(list(ids)))
    return {r.id: (r.ingest_deadline, r.on_time) for r in conn.execute(q)}


def dock_times(conn: Connection, serials: Sequence[str], since: datetime | None,
               until: datetime | None) -> dict[str, list[datetime]]:
    q = select(docks.c.serial, docks.c.docked_at).where(docks.c.serial.in_(list(serials)))
    if since is not None:
        q = q.where(docks.c.docked_at >= since)
    if until is not None:
        q = q.where(docks.c.docked_at < until)
    out: dict[str, list[datetime]] = {}
    for r in conn.execute(q.order_by(docks.c.docked_at)):
        out.setdefault(r.serial, []).append(r.docked_at)
    return out


@dataclass(frozen=True)
class DeviceDock:
    serial: str
    enrolled_at: datetime | None
    last_docked_at: datetime | None
    officer_number: str | None  # assigned now
    assigned_since: datetime | None


def enrolled_assigned(conn: Connection, now: datetime) -> list[DeviceDock]:
    """Enrolled cameras with the officer they are assigned to at ``now``."""
    a = device_assignments
    q = (select(devices.c.serial, devices.c.enrolled_at, devices.c.last_docked_at,
                a.c.officer_number, a.c.valid_from)
         .select_from(devices.join(a, and_(a.c.device_serial == devices.c.serial, a.c.valid_from <= now,
                                           or_(a.c.valid_until.is_(None), a.c.valid_until > now))))
         .where(devices.c.status == "enrolled")
         .order_by(devices.c.serial))
    return [DeviceDock(r[0], r[1], r[2], r[3], r[4]) for r in conn.execute(q)]


def audit_times(conn: Connection, types: Sequence[str], since: datetime,
                until: datetime) -> dict[str, list[datetime]]:
    """type -> the times of its audit entries in [since, until), for each of ``types`` (one scan)."""
    q = select(audit_entries.c.type, audit_entries.c.at).where(
        audit_entries.c.type.in_(list(types)), audit_entries.c.at >= since, audit_entries.c.at < until)
    out: dict[str, list[datetime]] = {t: [] for t in types}
    for r in conn.execute(q):
        out[r.type].append(r.at)
    return out


def evidence_events(conn: Connection, types: Sequence[str], since: datetime,
                    until: datetime) -> list[tuple[str, datetime, str | None, str | None]]:
    """(type, at, unit, officer) of each audit entry of ``types`` about a recording in
    [since, until): whose recording it was, for counts per unit and officer."""
    q = (select(audit_entries.c.type, audit_entries.c.at, recordings.c.unit, recordings.c.officer_id)
         .join(recordings, recordings.c.id == audit_entries.c.evidence_id)
         .where(audit_entries.c.type.in_(list(types)), audit_entries.c.at >= since, audit_entries.c.at < until))
    return [(r.type, r.at, r.unit, r.officer_id) for r in conn.execute(q)]


def audit_of(conn: Connection, recording_id: str) -> list[tuple[str, str, datetime]]:
    """(type, actor, at) of every audit entry about one recording, in order."""
    q = (select(audit_entries.c.type, audit_entries.c.actor, audit_entries.c.at)
         .where(audit_entries.c.evidence_id == recording_id).order_by(audit_entries.c.idx))
    return [(r.type, r.actor, r.at) for r in conn.execute(q)]


# -- the scrub's place -----------------------------------------------------------


@dataclass(frozen=True)
class ScrubState:
    round: int
    round_started_at: datetime
    round_finished_at: datetime | None
    cursor_at: datetime | None
    cursor_id: str | None
    files_done: int
    bytes_done: int
    updated_at: datetime


def scrub_state_get(conn: Connection) -> ScrubState | None:
    r = conn.execute(select(scrub_state).where(scrub_state.c.id == 1)).first()
    if r is None:
        return None
    return ScrubState(r.round, r.round_started_at, r.round_finished_at, r.cursor_at, r.cursor_id,
                      r.files_done, r.bytes_done, r.updated_at)


def scrub_state_put(conn: Connection, s: ScrubState) -> None:
    values = dict(round=s.round, round_started_at=s.round_started_at, round_finished_at=s.round_finished_at,
                  cursor_at=s.cursor_at, cursor_id=s.cursor_id, files_done=s.files_done,
                  bytes_done=s.bytes_done, updated_at=s.updated_at)
    if conn.execute(update(scrub_state).where(scrub_state.c.id == 1).values(**values)).rowcount == 0:
        conn.execute(insert(scrub_state).values(id=1, **values))


def ingest_running(conn: Connection, started_after: datetime) -> bool:
    """Whether an ingest session started after ``started_after`` is still running."""
    q = select(ingest_sessions.c.id).where(ingest_sessions.c.status == "running",
                                           ingest_sessions.c.started_at > started_after).limit(1)
    return conn.execute(q).first() is not None


def _live() -> Any:
    return ~recordings.c.id.in_(select(tombstones.c.recording_id))


def tombstoned_shas(conn: Connection) -> set[str]:
    """Hashes of purged originals (a purge interrupted before the unlink may leave the bytes)."""
    return {r.sha256 for r in conn.execute(select(tombstones.c.sha256))}


def live_totals(conn: Connection) -> tuple[int, int]:
    """(files, bytes) of the originals the store should hold (purged ones excluded)."""
    r = conn.execute(select(func.count(), func.coalesce(func.sum(recordings.c.size_bytes), 0))
                     .where(_live())).one()
    return int(r[0]), int(r[1])


def scrub_page(conn: Connection, after: tuple[datetime, str] | None, limit: int) -> list[tuple[str, str, int, datetime]]:
    """(id, sha256, size, ingested_at) of live originals after the cursor, in scrub order."""
    q = select(recordings.c.id, recordings.c.sha256, recordings.c.size_bytes, recordings.c.ingested_at).where(_live())
    if after is not None:
        q = q.where(tuple_(recordings.c.ingested_at, recordings.c.id) > tuple_(*after))
    q = q.order_by(recordings.c.ingested_at, recordings.c.id).limit(limit)
    return [(r[0], r[1], r[2], r[3]) for r in conn.execute(q)]


# -- spot checks ---------------------------------------------------------------


def add_spot_check(conn: Connection, *, check_id: str, at: datetime, by: str, seed: str, percent: float,
                   unit: str | None, since: datetime | None, until: datetime | None, population: int,
                   sample: Sequence[str]) -> None:
    conn.execute(insert(spot_checks).values(
        id=check_id, drawn_at=at, drawn_by=by, seed=seed, percent=percent, unit=unit, since=since,
        until=until, population=population, sample_size=len(sample)))
    if sample:
        conn.execute(insert(spot_check_items), [
            {"check_id": check_id, "recording_id": rid, "position": i} for i, rid in enumerate(sample)])


def spot_check(conn: Connection, check_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(spot_checks).where(spot_checks.c.id == check_id)).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out["sample"] = [r.recording_id for r in conn.execute(
        select(spot_check_items.c.recording_id).where(spot_check_items.c.check_id == check_id)
        .order_by(spot_check_items.c.position))]
    return out


def spot_check_list(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(spot_checks).order_by(spot_checks.c.drawn_at.desc()))]


def add_finding(conn: Connection, *, check_id: str, recording_id: str, item: str, result: str, note: str,
                by: str, at: datetime) -> int:
    res = conn.execute(insert(spot_check_findings).values(
        check_id=check_id, recording_id=recording_id, item=item, result=result, note=note,
        found_by=by, found_at=at))
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def findings(conn: Connection, check_id: str) -> list[dict[str, Any]]:
    q = select(spot_check_findings).where(spot_check_findings.c.check_id == check_id).order_by(
        spot_check_findings.c.id)
    return [dict(r._mapping) for r in conn.execute(q)]
