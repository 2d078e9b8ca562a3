"""Access requests and grants in the catalog."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from vaultd.catalog.schema import access_requests, grant_copies, grants, users
from vaultd.grantuse import Copy, Reading


@dataclass(frozen=True)
class RequestRow:
    id: str
    kind: str
    requester: str
    requester_unit: str | None
    purpose: str
    notice_number: str | None
    case_number: str | None
    recording_ids: tuple[str, ...]
    expires_days: int
    uses: int
    status: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None


@dataclass(frozen=True)
class GrantRow:
    id: str
    request_id: str
    grantee: str
    kind: str
    recording_ids: tuple[str, ...]
    purpose: str
    expires_at: datetime
    uses_total: int  # copies of EACH recording (one use: one complete copy of one recording)
    uses_left: int  # of the recording with the most left: 0 when every one is used up
    approved_by: str
    created_at: datetime
    uses_left_by_recording: Mapping[str, int] = field(default_factory=dict)


_requester = users.alias("requester")
_decider = users.alias("decider")
_grantee = users.alias("grantee")
_approver = users.alias("approver")


def _requests_query() -> Any:
    return select(access_requests, _requester.c.name.label("requester_name"),
                  _decider.c.name.label("decider_name")).join(
        _requester, _requester.c.id == access_requests.c.requester_id).outerjoin(
        _decider, _decider.c.id == access_requests.c.decided_by)


def _request(row: Any) -> RequestRow:
    m = row._mapping
    return RequestRow(
        id=m["id"], kind=m["kind"], requester=m["requester_name"], requester_unit=m["requester_unit"],
        purpose=m["purpose"], notice_number=m["notice_number"], case_number=m["case_number"],
        recording_ids=tuple(json.loads(m["recording_ids"])), expires_days=m["expires_days"],
        uses=m["uses"], status=m["status"], created_at=m["created_at"], decided_by=m["decider_name"],
        decided_at=m["decided_at"], decision_reason=m["decision_reason"])


def add_request(conn: Connection, *, request_id: str, kind: str, requester_id: int,
                requester_unit: str | None, purpose: str, notice_number: str | None,
                case_number: str | None, recording_ids: list[str], expires_days: int, uses: int,
                at: datetime) -> None:
    conn.execute(insert(access_requests).values(
        id=request_id, kind=kind, requester_id=requester_id, requester_unit=requester_unit,
        purpose=purpose, notice_number=notice_number, case_number=case_number,
        recording_ids=json.dumps(recording_ids), expires_days=expires_days, uses=uses,
        status="pending", created_at=at))


def get_request(conn: Connection, request_id: str) -> RequestRow | None:
    row = conn.execute(_requests_query().where(access_requests.c.id == request_id)).first()
    return _request(row) if row else None


def requests_with_status(conn: Connection, status: str) -> list[RequestRow]:
    q = _requests_query().where(access_requests.c.status == status).order_by(access_requests.c.created_at)
    return [_request(r) for r in conn.execute(q)]


def decide_request(conn: Connection, request_id: str, *, status: str, decided_by: int,
                   at: datetime, reason: str | None) -> bool:
    """Record a decision on a pending request; False if it was no longer pending."""
    result = conn.execute(update(access_requests).where(
        access_requests.c.id == request_id, access_requests.c.status == "pending").values(
        status=status, decided_by=decided_by, decided_at=at, decision_reason=reason))
    return bool(result.rowcount)


def add_grant(conn: Connection, *, grant_id: str, request: RequestRow, grantee_id: int,
              approved_by: int, expires_at: datetime, at: datetime) -> None:
    conn.execute(insert(grants).values(
        id=grant_id, request_id=request.id, grantee_id=grantee_id, kind=request.kind,
        recording_ids=json.dumps(list(request.recording_ids)), purpose=request.purpose,
        expires_at=expires_at, uses_total=request.uses, uses_left=request.uses,
        approved_by=approved_by, created_at=at))


def _grants_query() -> Any:
    return select(grants, _grantee.c.name.label("grantee_name"),
                  _approver.c.name.label("approver_name")).join(
        _grantee, _grantee.c.id == grants.c.grantee_id).join(
        _approver, _approver.c.id == grants.c.approved_by)


def _grant(row: Any, spent: Mapping[tuple[str, str], int]) -> GrantRow:
    m = row._mapping
    recs = tuple(json.loads(m["recording_ids"]))
    left = {r: max(0, m["uses_total"] - spent.get((m["id"], r), 0)) for r in recs}
    return GrantRow(id=m["id"], request_id=m["request_id"], grantee=m["grantee_name"], kind=m["kind"],
                    recording_ids=recs, purpose=m["purpose"],
                    expires_at=m["expires_at"], uses_total=m["uses_total"], uses_left=max(left.values(), default=0),
                    approved_by=m["approver_name"], created_at=m["created_at"], uses_left_by_recording=left)


def get_grant(conn: Connection, grant_id: str) -> GrantRow | None:
    row = conn.execute(_grants_query().where(grants.c.id == grant_id)).first()
    return _grant(row, spent_uses(conn, [grant_id])) if row else None


def grants_of(conn: Connection, user_id: int | None) -> list[GrantRow]:
    q = _grants_query().order_by(grants.c.created_at)
    if user_id is not None:
        q = q.where(grants.c.grantee_id == user_id)
    rows = conn.execute(q).all()
    spent = spent_uses(conn, [r.id for r in rows]) if rows else {}
    return [_grant(r, spent) for r in rows]


# -- copies: one use is one copy of one recording (vaultd/grantuse.py) ------------------------

_SPENDING = ("open", "complete")


def spent_uses(conn: Connection, grant_ids: Iterable[str]) -> dict[tuple[str, str], int]:
    """Uses spent per (grant, recording): its copies open or complete."""
    q = (select(grant_copies.c.grant_id, grant_copies.c.recording_id, func.count())
         .where(grant_copies.c.grant_id.in_(list(grant_ids)), grant_copies.c.state.in_(_SPENDING))
         .group_by(grant_copies.c.grant_id, grant_copies.c.recording_id))
    return {(g, r): int(n) for g, r, n in conn.execute(q)}


def lock_grant(conn: Connection, grant_id: str) -> None:
    """Hold the grant's row until the transaction ends, so that two transactions
    count and spend its uses one after the other (SQLite: BEGIN IMMEDIATE does it too)."""
    conn.execute(update(grants).where(grants.c.id == grant_id).values(uses_total=grants.c.uses_total))


def _copy(row: Any) -> Copy:
    m = row._mapping
    return Copy(id=m["id"], grant_id=m["grant_id"], recording_id=m["recording_id"], kind=m["kind"],
                state=m["state"], delivered=tuple((a, b) for a, b in json.loads(m["delivered"])),
                reading=tuple(Reading(i, a, b, datetime.fromisoformat(t)) for i, a, b, t in json.loads(m["reading"])),
                started_at=m["started_at"], last_at=m["last_at"], export_id=m["export_id"])


def _copy_values(copy: Copy) -> dict[str, Any]:
    return {"state": copy.state, "delivered": json.dumps([list(s) for s in copy.delivered]),
            "reading": json.dumps([[r.id, r.start, r.end, r.since.isoformat()] for r in copy.reading]),
            "last_at": copy.last_at}


def latest_download(conn: Connection, grant_id: str, recording_id: str) -> Copy | None:
    """The newest open download copy of a recording under a grant (it may have lapsed)."""
    row = conn.execute(select(grant_copies).where(
        grant_copies.c.grant_id == grant_id, grant_copies.c.recording_id == recording_id,
        grant_copies.c.kind == "download", grant_copies.c.state == "open")
        .order_by(grant_copies.c.id.desc()).limit(1)).first()
    return _copy(row) if row else None


def get_copy(conn: Connection, copy_id: int) -> Copy:
    return _copy(conn.execute(select(grant_copies).where(grant_copies.c.id == copy_id)).one())


def add_copy(conn: Connection, copy: Copy) -> int:
    """Store a new copy (its id is the catalog's); the new id."""
    result = conn.execute(insert(grant_copies).values(
        grant_id=copy.grant_id, recording_id=copy.recording_id, kind=copy.kind, export_id=copy.export_id,
        started_at=copy.started_at, **_copy_values(copy)))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def save_copy(conn: Connection, copy: Copy) -> None:
    conn.execute(update(grant_copies).where(grant_copies.c.id == copy.id).values(**_copy_values(copy)))


def end_export_copies(conn: Connection, export_id: str, state: str, at: datetime) -> list[tuple[str, str]]:
    """Complete (or return) the open copies an export took; their (grant, recording)."""
    q = grant_copies.c.export_id == export_id
    rows = conn.execute(select(grant_copies.c.grant_id, grant_copies.c.recording_id)
                        .where(q, grant_copies.c.state == "open")).all()
    conn.execute(update(grant_copies).where(q, grant_copies.c.state == "open").values(state=state, last_at=at))
    return [(g, r) for g, r in rows]
