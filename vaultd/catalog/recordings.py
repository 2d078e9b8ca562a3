"""Recordings in the catalog: insert, find, search."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, case, exists, false, func, or_, select, true, update

from vaultd.catalog.schema import case_recordings, cases, recordings
from vaultd.errors import NotFoundError, UsageError
from vaultd.i18n import _
from vaultd.model import LEVELS, MediaType, Recording, TimeSource

_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id() -> str:
    """A recording id: 'r' and 12 characters of Crockford base32 (60 random bits)."""
    bits = int.from_bytes(secrets.token_bytes(8), "big") >> 4
    return "r" + "".join(_ID_ALPHABET[(bits >> shift) & 31] for shift in range(55, -1, -5))


@dataclass(frozen=True)
class Scope:
    """What a user may see, as SQL can filter it (access.visible stays the authority)."""

    levels: tuple[str, ...]  # confidentiality levels within clearance
    everything: bool = False  # legal, auditor: every recording within clearance
    officer_number: str | None = None  # officer: own recordings
    unit: str | None = None  # supervisor: the unit's recordings
    granted_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordingFilter:
    scope: Scope | None = None  # None: no restriction (the local owner)
    device_serial: str | None = None
    officer_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    media_type: MediaType | None = None
    limit: int | None = None
    offset: int = 0
    unit: str | None = None  # the recording's unit
    case_number: str | None = None  # linked to this case


_INSERT = recordings.insert()


def insert(conn: Connection, rec: Recording) -> None:
    conn.execute(_INSERT, _to_row(rec))


def insert_many(conn: Connection, recs: Sequence[Recording]) -> None:
    if recs:
        conn.execute(_INSERT, [_to_row(r) for r in recs])


_BY_SHA = select(recordings).where(recordings.c.sha256 == bindparam("sha"))


def ids_by_sha(conn: Connection, shas: Sequence[str]) -> dict[str, str]:
    """sha256 -> recording id for those of ``shas`` already in the catalog (one query)."""
    if not shas:
        return {}
    q = select(recordings.c.sha256, recordings.c.id).where(recordings.c.sha256.in_(list(set(shas))))
    return {r.sha256: r.id for r in conn.execute(q)}


# R9 through cases: the highest level of the cases a recording is linked to (an unknown
# level counts as the highest), read with the recording; None when it is in no case
_CASE_RANK = (
    select(func.max(case(*((cases.c.confidentiality == lv, i) for i, lv in enumerate(LEVELS)),
                         else_=len(LEVELS) - 1)))
    .select_from(case_recordings.join(cases, cases.c.id == case_recordings.c.case_id))
    .where(case_recordings.c.recording_id == recordings.c.id)
    .scalar_subquery().label("case_rank")
)


def _select() -> Any:
    return select(recordings, _CASE_RANK)


def get(conn: Connection, ref: str) -> Recording:
    """By id, or by a unique sha256 prefix of at least 8 hex digits."""
    ref = ref.strip().lower()
    row = conn.execute(_select().where(recordings.c.id == ref)).first()
    if row is None and len(ref) >= 8 and all(c in "0123456789abcdef" for c in ref):
        rows = conn.execute(
            _select().where(recordings.c.sha256.startswith(ref)).limit(2)
        ).all()
        if len(rows) > 1:
            raise UsageError(
                _("sha256 prefix %s matches more than one recording") % ref,
                hint=_("give more hex digits, or the recording id"),
            )
        row = rows[0] if rows else None
    if row is None:
        raise NotFoundError(
            _("no recording %s") % ref,
            hint=_("'vaultd recordings list' shows the ids"),
        )
    return _from_row(row)


def search(conn: Connection, flt: RecordingFilter) -> list[Recording]:
    q = _select()
    if flt.scope is not None:
        q = q.where(_scope_clause(flt.scope))
    if flt.device_serial:
        q = q.where(recordings.c.device_serial == flt.device_serial)
    if flt.officer_id:
        q = q.where(recordings.c.officer_id == flt.officer_id)
    if flt.since:
        q = q.where(recordings.c.recorded_start >= flt.since)
    if flt.until:
        q = q.where(recordings.c.recorded_start < flt.until)
    if flt.media_type:
        q = q.where(recordings.c.media_type == flt.media_type.value)
    if flt.unit:
        q = q.where(recordings.c.unit == flt.unit)
    if flt.case_number:
        q = q.where(recordings.c.id.in_(
            select(case_recordings.c.recording_id)
            .join(cases, cases.c.id == case_recordings.c.case_id)
            .where(cases.c.number == flt.case_number.strip())))
    q = q.order_by(recordings.c.recorded_start, recordings.c.id).offset(flt.offset)
    if flt.limit is not None:
        q = q.limit(flt.limit)
    return [_from_row(r) for r in conn.execute(q)]


def _scope_clause(scope: Scope) -> Any:
    c = recordings.c
    mine: list[Any] = [false()]
    if scope.everything:
        mine.append(true())
    if scope.officer_number:
        mine.append(c.officer_id == scope.officer_number)
    if scope.unit:
        mine.append(c.unit == scope.unit)
    if scope.granted_ids:
        mine.append(c.id.in_(scope.granted_ids))
    in_a_higher_case = exists().where(case_recordings.c.recording_id == c.id,
                                      cases.c.id == case_recordings.c.case_id,
                                      cases.c.confidentiality.not_in(scope.levels))
    return and_(c.confidentiality.in_(scope.levels), ~in_a_higher_case, or_(*mine))


def set_confidentiality(conn: Connection, recording_id: str, level: str) -> None:
    """A recording's own R9 level (its cases may raise what applies: ``Recording.effective_confidentiality``)."""
    conn.execute(update(recordings).where(recordings.c.id == recording_id).values(confidentiality=level))


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(recordings)).scalar_one())


def all_hashes(conn: Connection) -> list[tuple[str, str, int]]:
    """(id, sha256, size_bytes) of every recording, for scrubs."""
    q = select(recordings.c.id, recordings.c.sha256, recordings.c.size_bytes).order_by(recordings.c.id)
    return [(r.id, r.sha256, r.size_bytes) for r in conn.execute(q)]


def _to_row(rec: Recording) -> dict[str, Any]:
    return {
        "id": rec.id,
        "sha256": rec.sha256,
        "size_bytes": rec.size_bytes,
        "original_name": rec.original_name,
        "original_name_raw": rec.original_name_raw,
        "name_oddities": json.dumps(list(rec.name_oddities)),
        "source_path": rec.source_path,
        "media_type": rec.media_type.value,
        "device_serial": rec.device_serial,
        "device_model": rec.device_model,
        "officer_id": rec.officer_id,
        "recorded_start": rec.recorded_start,
        "recorded_end": rec.recorded_end,
        "time_source": rec.time_source.value,
        "clock_offset_s": rec.clock_offset_s,
        "time_flags": json.dumps(list(rec.time_flags)),
        "ingested_at": rec.ingested_at,
        "ingest_deadline": rec.ingest_deadline,
        "on_time": rec.on_time,
        "duration_s": rec.duration_s,
        "video_codec": rec.video_codec,
        "audio_codec": rec.audio_codec,
        "width": rec.width,
        "height": rec.height,
        "damaged": rec.damaged,
        "damage_reasons": json.dumps(list(rec.damage_reasons), ensure_ascii=False),
        "important": rec.important,
        "making_method": rec.making_method,
        "maker": rec.maker,
        "ingest_session": rec.ingest_session,
        "extra": json.dumps(rec.extra, ensure_ascii=False, sort_keys=True),
        "unit": rec.unit,
        "confidentiality": rec.confidentiality,
    }


def _from_row(row: Row[Any]) -> Recording:
    m = row._mapping
    return Recording(
        id=m["id"],
        sha256=m["sha256"],
        size_bytes=m["size_bytes"],
        original_name=m["original_name"],
        original_name_raw=bytes(m["original_name_raw"]),
        name_oddities=tuple(json.loads(m["name_oddities"])),
        source_path=m["source_path"],
        media_type=MediaType(m["media_type"]),
        device_serial=m["device_serial"],
        device_model=m["device_model"],
        officer_id=m["officer_id"],
        recorded_start=m["recorded_start"],
        recorded_end=m["recorded_end"],
        time_source=TimeSource(m["time_source"]),
        clock_offset_s=m["clock_offset_s"],
        time_flags=tuple(json.loads(m["time_flags"])),
        ingested_at=m["ingested_at"],
        ingest_deadline=m["ingest_deadline"],
        on_time=m["on_time"],
        duration_s=m["duration_s"],
        video_codec=m["video_codec"],
        audio_codec=m["audio_codec"],
        width=m["width"],
        height=m["height"],
        damaged=bool(m["damaged"]),
        damage_reasons=tuple(json.loads(m["damage_reasons"])),
        important=bool(m["important"]),
        making_method=m["making_method"],
        maker=m["maker"],
        ingest_session=m["ingest_session"],
        extra=json.loads(m["extra"]),
        unit=m["unit"],
        confidentiality=m["confidentiality"],
        case_confidentiality=None if m.get("case_rank") is None else LEVELS[min(int(m["case_rank"]), len(LEVELS) - 1)],
    )


def ids_exist(conn: Connection, ids: Sequence[str]) -> set[str]:
    rows = conn.execute(select(recordings.c.id).where(recordings.c.id.in_(list(ids))))
    return {r.id for r in rows}
