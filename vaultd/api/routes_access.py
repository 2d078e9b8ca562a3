"""Access requests, approvals and grants (R5)."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path

from vaultd import approvals, people, views
from vaultd.api.deps import VIA, PrincipalDep, VaultDep, zone
from vaultd.api.errors import VaultRoute
from vaultd.api.limits import LIST_BODY_BYTES, body_cap
from vaultd.api.models import (
    DenyIn,
    GrantList,
    GrantOut,
    RequestIn,
    RequestList,
    RequestOut,
)
from vaultd.catalog.approvals import GrantRow, RequestRow

router = APIRouter(prefix="/access", tags=["access"], route_class=VaultRoute)
RequestId = Annotated[str, Path(min_length=1, max_length=200)]


def request_json(row: RequestRow, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": row.id, "kind": row.kind, "requester": row.requester, "requester_unit": row.requester_unit,
        "purpose": row.purpose, "notice_number": row.notice_number, "case_number": row.case_number,
        "recordings": list(row.recording_ids), "expires_days": row.expires_days, "uses": row.uses,
        "status": row.status, "created_at": views.iso(row.created_at, tz), "decided_by": row.decided_by,
        "decided_at": views.iso(row.decided_at, tz), "decision_reason": row.decision_reason,
    }


def grant_json(row: GrantRow, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": row.id, "request_id": row.request_id, "grantee": row.grantee, "kind": row.kind,
        "recordings": list(row.recording_ids), "purpose": row.purpose,
        "expires_at": views.iso(row.expires_at, tz), "uses_total": row.uses_total,
        "uses_left": row.uses_left, "uses_left_by_recording": dict(row.uses_left_by_recording),
        "approved_by": row.approved_by,
        "created_at": views.iso(row.created_at, tz),
    }


@router.post("/requests", status_code=201, response_model=RequestOut, summary="Ask for access to recordings",
             openapi_extra=body_cap(LIST_BODY_BYTES))
def request_access(vault: VaultDep, actor: PrincipalDep, body: RequestIn) -> dict[str, Any]:
    row = approvals.request_access(vault, actor, body.kind, body.recordings, body.purpose,
                                   notice=body.notice, expires_days=body.expires_days, uses=body.uses,
                                   via=VIA, case=body.case)
    return request_json(row, zone(vault))


@router.get("/pending", response_model=RequestList,
            summary="Pending requests the caller may decide, and the caller's own")
def pending(vault: VaultDep, actor: PrincipalDep) -> dict[str, Any]:
    tz = zone(vault)
    rows = approvals.pending(vault, actor, VIA)
    who = people.directory(vault) if rows else None
    return {"items": [{**request_json(p.request, tz), "may_decide": p.may_decide, "rule": p.rule,
                       "requester_label": who.name(p.request.requester) if who else None} for p in rows]}


@router.post("/requests/{request_id}/approve", response_model=GrantOut, summary="Approve: makes a grant")
def approve(vault: VaultDep, actor: PrincipalDep, request_id: RequestId) -> dict[str, Any]:
    return grant_json(approvals.approve(vault, actor, request_id, VIA), zone(vault))


@router.post("/requests/{request_id}/deny", response_model=RequestOut, summary="Deny, with a reason")
def deny(vault: VaultDep, actor: PrincipalDep, request_id: RequestId, body: DenyIn) -> dict[str, Any]:
    return request_json(approvals.deny(vault, actor, request_id, body.reason, VIA), zone(vault))


@router.get("/grants", response_model=GrantList, summary="The caller's grants")
def my_grants(vault: VaultDep, actor: PrincipalDep) -> dict[str, Any]:
    tz = zone(vault)
    return {"items": [grant_json(g, tz) for g in approvals.my_grants(vault, actor, VIA)]}
