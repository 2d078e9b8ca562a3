"""Cases, their recordings, and holds in the catalog (R6, R8)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from vaultd.catalog.schema import case_recordings, cases, holds


@dataclass(frozen=True)
class CaseRow:
    id: int
    number: str
    title: str
    unit: str | None
    handler: str | None
    party: str | None
    confidentiality: str
    act_ended_at: datetime | None
    opened_at: datetime
    opened_by: str
    closed_at: datetime | None
    closed_by: str | None
    archived_at: datetime | None
    archived_by: str | None
    file_keep_months: int | None

    @property
    def status(self) -> str:
        return "archived" if self.archived_at else "closed" if self.closed_at else "open"


@dataclass(frozen=True)
class HoldRow:
    id: str
    recording_id: str | None
    case_id: int | None
    reason: str
    note: str | None
    set_by: str
    set_at: datetime
    released_by: str | None
    released_at: datetime | None
    release_note: str | None
    case_number: str | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None


def _case(row: Any) -> CaseRow:
    m = row._mapping
    return CaseRow(**{k: m[k] for k in CaseRow.__dataclass_fields__})


def add_case(conn: Connection, **values: Any) -> int:
    return int(conn.execute(insert(cases).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def case_by_number(conn: Connection, number: str) -> CaseRow | None:
    row = conn.execute(select(cases).where(cases.c.number == number)).first()
    return _case(row) if row else None


def case_by_id(conn: Connection, case_id: int) -> CaseRow | None:
    row = conn.execute(select(cases).where(cases.c.id == case_id)).first()
    return _case(row) if row else None


def list_cases(conn: Connection, *, status: str | None = None, unit: str | None = None) -> list[CaseRow]:
    q = select(cases).order_by(cases.c.opened_at, cases.c.id)
    if unit:
        q = q.where(cases.c.unit == unit)
    rows = [_case(r) for r in conn.execute(q)]
    return [r for r in rows if status is None or r.status == status]


def update_case(conn: Connection, case_id: int, **values: Any) -> None:
    conn.execute(update(cases).where(cases.c.id == case_id).values(**values))


def link(conn: Connection, case_id: int, recording_id: str, *, at: datetime, by: str) -> bool:
    """Link; False when it was linked already."""
    exists = conn.execute(select(case_recordings.c.case_id).where(
        case_recordings.c.case_id == case_id, case_recordings.c.recording_id == recording_id)).first()
    if exists:
        return False
    conn.execute(insert(case_recordings).values(case_id=case_id, recording_id=recording_id, linked_at=at,
                                                linked_by=by))
    return True


def unlink(conn: Connection, case_id: int, recording_id: str) -> bool:
    result = conn.execute(delete(case_recordings).where(
        case_recordings.c.case_id == case_id, case_recordings.c.recording_id == recording_id))
    return bool(result.rowcount)


def recording_ids(conn: Connection, case_id: int) -> list[str]:
    q = select(case_recordings.c.recording_id).where(case_recordings.c.case_id == case_id).order_by(
        case_recordings.c.linked_at, case_recordings.c.recording_id)
    return [r[0] for r in conn.execute(q)]


def cases_of(conn: Connection, recording_ids_: Sequence[str] | None = None) -> dict[str, list[CaseRow]]:
    """Linked cases by recording id (all links when ``recording_ids_`` is None)."""
    q = select(case_recordings.c.recording_id, cases).join(cases, cases.c.id == case_recordings.c.case_id)
    if recording_ids_ is not None:
        q = q.where(case_recordings.c.recording_id.in_(list(recording_ids_)))
    out: dict[str, list[CaseRow]] = {}
    for row in conn.execute(q):
        out.setdefault(row.recording_id, []).append(_case(row))
    return out


# -- holds -------------------------------------------------------------------------------

def _hold(row: Any) -> HoldRow:
    m = row._mapping
    return HoldRow(**{k: m[k] for k in HoldRow.__dataclass_fields__ if k != "case_number"},
                   case_number=m.get("case_number"))


def _holds_query() -> Any:
    return select(holds, cases.c.number.label("case_number")).outerjoin(cases, cases.c.id == holds.c.case_id)


def add_hold(conn: Connection, **values: Any) -> None:
    conn.execute(insert(holds).values(**values))


def get_hold(conn: Connection, hold_id: str) -> HoldRow | None:
    row = conn.execute(_holds_query().where(holds.c.id == hold_id)).first()
    return _hold(row) if row else None


def list_holds(conn: Connection, *, active_only: bool) -> list[HoldRow]:
    q = _holds_query().order_by(holds.c.set_at, holds.c.id)
    if active_only:
        q = q.where(holds.c.released_at.is_(None))
    return [_hold(r) for r in conn.execute(q)]


def release_hold(conn: Connection, hold_id: str, *, by: str, at: datetime, note: str | None) -> bool:
    result = conn.execute(update(holds).where(holds.c.id == hold_id, holds.c.released_at.is_(None)).values(
        released_by=by, released_at=at, release_note=note))
    return bool(result.rowcount)


def active_holds_by_recording(conn: Connection, recording_ids_: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Active hold ids that cover each recording: set on it, or on a case it is linked to."""
    direct = select(holds.c.recording_id.label("rid"), holds.c.id).where(
        holds.c.released_at.is_(None), holds.c.recording_id.is_not(None))
    via_case = select(case_recordings.c.recording_id.label("rid"), holds.c.id).join(
        holds, holds.c.case_id == case_recordings.c.case_id).where(holds.c.released_at.is_(None))
    out: dict[str, list[str]] = {}
    wanted = set(recording_ids_) if recording_ids_ is not None else None
    for q in (direct, via_case):
        for rid, hid in conn.execute(q):
            if wanted is None or rid in wanted:
                out.setdefault(rid, []).append(hid)
    return {k: sorted(set(v)) for k, v in out.items()}
