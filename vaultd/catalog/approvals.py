"""Access requests and grants in the catalog."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from vaultd.catalog.schema import access_requests, grants, users


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
    uses_total: int
    uses_left: int
    approved_by: str
    created_at: datetime


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


def _grant(row: Any) -> GrantRow:
    m = row._mapping
    return GrantRow(id=m["id"], request_id=m["request_id"], grantee=m["grantee_name"], kind=m["kind"],
                    recording_ids=tuple(json.loads(m["recording_ids"])), purpose=m["purpose"],
                    expires_at=m["expires_at"], uses_total=m["uses_total"], uses_left=m["uses_left"],
                    approved_by=m["approver_name"], created_at=m["created_at"])


def get_grant(conn: Connection, grant_id: str) -> GrantRow | None:
    row = conn.execute(_grants_query().where(grants.c.id == grant_id)).first()
    return _grant(row) if row else None


def grants_of(conn: Connection, user_id: int | None) -> list[GrantRow]:
    q = _grants_query().order_by(grants.c.created_at)
    if user_id is not None:
        q = q.where(grants.c.grantee_id == user_id)
    return [_grant(r) for r in conn.execute(q)]


def use_grant(conn: Connection, grant_id: str) -> bool:
    """Take one use; False when none is left (checked and taken in one statement)."""
    result = conn.execute(update(grants).where(grants.c.id == grant_id, grants.c.uses_left > 0)
                          .values(uses_left=grants.c.uses_left - 1))
    return bool(result.rowcount)
