"""Ingest sessions and what they saw: sightings, file events, intents, scrubs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from vaultd.catalog.schema import (
    file_events,
    ingest_intents,
    ingest_sessions,
    recordings,
    scrub_results,
    sightings,
)


@dataclass(frozen=True)
class Sighting:
    recording_id: str
    session_id: str
    device_serial: str | None
    source_path: str
    name_raw: bytes
    size_bytes: int
    mtime: datetime | None
    seen_at: datetime
    outcome: str  # "new" | "duplicate"


def start(conn: Connection, session_id: str, *, at: datetime, source: str,
          device_serial: str | None, actor: str) -> None:
    conn.execute(ingest_sessions.insert().values(
        id=session_id, started_at=at, source=source, device_serial=device_serial,
        actor=actor, status="running",
    ))


def finish(conn: Connection, session_id: str, *, at: datetime, status: str,
           summary: dict[str, Any]) -> None:
    conn.execute(update(ingest_sessions).where(ingest_sessions.c.id == session_id).values(
        finished_at=at, status=status, summary=json.dumps(summary, ensure_ascii=False),
    ))


_INSERT_SIGHTING = sightings.insert()
_INSERT_EVENT = file_events.insert()
_INSERT_INTENT = ingest_intents.insert()
_DROP_INTENT = delete(ingest_intents).where(ingest_intents.c.sha256 == bindparam("sha"),
                                            ingest_intents.c.session_id == bindparam("sid"))


def add_sightings(conn: Connection, many: list[Sighting]) -> list[int]:
    """Insert sightings in one statement; their ids, in order."""
    if not many:
        return []
    rows = [dict(recording_id=s.recording_id, session_id=s.session_id, device_serial=s.device_serial,
                 source_path=s.source_path, name_raw=s.name_raw, size_bytes=s.size_bytes,
                 mtime=s.mtime, seen_at=s.seen_at, outcome=s.outcome) for s in many]
    result = conn.execute(_INSERT_SIGHTING.returning(sightings.c.id, sort_by_parameter_order=True), rows)
    return [int(r[0]) for r in result]


def drop_intents(conn: Connection, shas: list[str], session_id: str) -> None:
    if shas:
        conn.execute(_DROP_INTENT, [{"sha": sha, "sid": session_id} for sha in shas])


def mark_wiped(conn: Connection, sighting_id: int, at: datetime) -> None:
    conn.execute(update(sightings).where(sightings.c.id == sighting_id).values(wiped_at=at))


def sightings_of(conn: Connection, recording_id: str) -> list[dict[str, Any]]:
    q = select(sightings).where(sightings.c.recording_id == recording_id).order_by(sightings.c.id)
    return [dict(r._mapping) for r in conn.execute(q)]


def add_file_event(conn: Connection, *, session_id: str, source_path: str, name_raw: bytes,
                   outcome: str, reason: str, at: datetime) -> None:
    conn.execute(_INSERT_EVENT, dict(
        session_id=session_id, source_path=source_path, name_raw=name_raw,
        outcome=outcome, reason=reason, at=at,
    ))


# -- intents: "this session is about to place object X in the store" -------

def add_intents(conn: Connection, shas: Sequence[str], session_id: str, at: datetime) -> None:
    """One intent per object, in one statement."""
    if shas:
        conn.execute(_INSERT_INTENT, [dict(sha256=sha, session_id=session_id, created_at=at) for sha in shas])


def drop_intent(conn: Connection, sha256: str, session_id: str) -> None:
    conn.execute(_DROP_INTENT, {"sha": sha256, "sid": session_id})


def orphan_intents(conn: Connection) -> list[tuple[str, str, bool]]:
    """Every open intent: (sha256, session_id, has a recording row)."""
    q = select(ingest_intents.c.sha256, ingest_intents.c.session_id, recordings.c.id).outerjoin(
        recordings, recordings.c.sha256 == ingest_intents.c.sha256)
    return [(r[0], r[1], r[2] is not None) for r in conn.execute(q)]


def abandon_running(conn: Connection, at: datetime) -> int:
    result = conn.execute(update(ingest_sessions).where(ingest_sessions.c.status == "running")
                          .values(status="abandoned", finished_at=at))
    return int(result.rowcount or 0)


def add_scrub_result(conn: Connection, recording_id: str, at: datetime, ok: bool,
                     problem: str | None) -> None:
    conn.execute(scrub_results.insert().values(
        recording_id=recording_id, checked_at=at, ok=ok, problem=problem))
