"""Cases, labels, holds, retention classes, plans, purge batches (#6)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import Field

from vaultd import cases, classes, holds, labels, retention
from vaultd import views_cases as vc
from vaultd.access import Level
from vaultd.api.deps import VIA, PrincipalDep, VaultDep, aware, zone
from vaultd.api.errors import VaultRoute
from vaultd.api.limits import LIST_BODY_BYTES, body_cap
from vaultd.api.models import Long, Name, Short, _In
from vaultd.holds import HoldReason
from vaultd.vault import utcnow

router = APIRouter(tags=["cases and retention"], route_class=VaultRoute)
Id = Annotated[str, Path(min_length=1, max_length=200)]
CaseNumber = Annotated[str, Query(min_length=1, max_length=200, description="case number (案件编号)")]


class CaseIn(_In):
    number: Name
    title: Annotated[Long, Field(min_length=1)]
    unit: Short | None = None
    handler: Short | None = None
    party: Long | None = None
    confidentiality: Level = Level.NORMAL
    act_ended_at: datetime | None = None
    file_keep_months: int | None = Field(None, ge=1, le=1200)


class CaseRef(_In):
    case: Name


class LinkIn(CaseRef):
    recordings: list[Name] = Field(min_length=1, max_length=1000)


class CloseIn(CaseRef):
    act_ended_at: datetime | None = None


class LabelIn(_In):
    case_number: Long | None = None
    party: Long | None = None
    handler: Long | None = None
    making_method: Long | None = None
    maker: Long | None = None
    making_time: datetime | None = None
    proves: Long | None = None
    description: Long | None = None


class HoldIn(_In):
    recording: Name | None = None
    case: Name | None = None
    reason: HoldReason
    note: Long | None = None


class NoteIn(_In):
    note: Long | None = None


class ClassIn(_In):
    class_: Name = Field(alias="class")
    reason: Long = ""


@router.post("/cases", status_code=201, summary="Open a case")
def create_case(vault: VaultDep, actor: PrincipalDep, body: CaseIn) -> dict[str, Any]:
    new = cases.NewCase(body.number, body.title, body.unit, body.handler, body.party, body.confidentiality,
                        aware(body.act_ended_at, zone(vault), "act_ended_at"), body.file_keep_months)
    return cases.case_json(cases.create(vault, actor, new, VIA))


@router.get("/cases", summary="Cases the caller may see")
def list_cases(vault: VaultDep, actor: PrincipalDep,
               status: Annotated[str | None, Query(pattern="^(open|closed|archived)$")] = None,
               unit: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    return {"items": [cases.case_json(c) for c in cases.list_(vault, actor, status, unit, VIA)]}


@router.get("/case", summary="One case, its recordings, and what keeps it from closing")
def show_case(vault: VaultDep, actor: PrincipalDep, number: CaseNumber) -> dict[str, Any]:
    return cases.show(vault, actor, number, VIA).as_json()


@router.post("/case/link", summary="Link recordings to an open case", openapi_extra=body_cap(LIST_BODY_BYTES))
def link_case(vault: VaultDep, actor: PrincipalDep, body: LinkIn) -> dict[str, Any]:
    return {"case": body.case, "linked": cases.link(vault, actor, body.case, body.recordings, VIA)}


@router.post("/case/close", summary="Close a case (its recordings must be labelled)")
def close_case(vault: VaultDep, actor: PrincipalDep, body: CloseIn) -> dict[str, Any]:
    ended = aware(body.act_ended_at, zone(vault), "act_ended_at")
    return cases.case_json(cases.close(vault, actor, body.case, ended, VIA))


@router.post("/case/archive", summary="Archive a closed case")
def archive_case(vault: VaultDep, actor: PrincipalDep, body: CaseRef) -> dict[str, Any]:
    return cases.case_json(cases.archive(vault, actor, body.case, VIA))


@router.get("/recordings/{recording_id}/label", summary="A recording's label (R2, R3)")
def get_label(vault: VaultDep, actor: PrincipalDep, recording_id: Id) -> dict[str, Any]:
    rec, label = labels.get_label(vault, actor, recording_id, VIA)
    return vc.label_json(rec, label, zone(vault), vault.config.retention.label_working_days)


@router.post("/recordings/{recording_id}/label", summary="Change label fields (null or \"\" clears one)")
def set_label(vault: VaultDep, actor: PrincipalDep, recording_id: Id, body: LabelIn) -> dict[str, Any]:
    changes: dict[str, object] = body.model_dump(exclude_unset=True)
    if changes.get("making_time") is not None:
        changes["making_time"] = aware(body.making_time, zone(vault), "making_time")
    labels.set_label(vault, actor, recording_id, changes, VIA)
    rec, label = labels.get_label(vault, actor, recording_id, VIA)
    return vc.label_json(rec, label, zone(vault), vault.config.retention.label_working_days)


@router.post("/recordings/{recording_id}/class", summary="Set a retention class (shorter: a request)")
def classify(vault: VaultDep, actor: PrincipalDep, recording_id: Id, body: ClassIn) -> dict[str, Any]:
    return vc.classified_json(classes.classify(vault, actor, recording_id, body.class_, body.reason, VIA))


@router.get("/retention/class-changes", summary="Pending class changes")
def class_changes(vault: VaultDep, actor: PrincipalDep) -> dict[str, Any]:
    return {"items": [vc.change_json(c, zone(vault)) for c in classes.pending(vault, actor, VIA)]}


@router.post("/retention/class-changes/{change_id}/{verdict}", summary="Approve or deny a class change")
def decide_change(vault: VaultDep, actor: PrincipalDep, change_id: Id,
                  verdict: Annotated[str, Path(pattern="^(approve|deny)$")]) -> dict[str, Any]:
    return vc.change_json(classes.decide_change(vault, actor, change_id, verdict == "approve", VIA), zone(vault))


@router.post("/holds", status_code=201, summary="Put a hold on a recording or a case")
def add_hold(vault: VaultDep, actor: PrincipalDep, body: HoldIn) -> dict[str, Any]:
    row = holds.add(vault, actor, reason=body.reason, recording=body.recording, case=body.case, note=body.note,
                    via=VIA)
    return vc.hold_json(row, zone(vault))


@router.get("/holds", summary="Active holds (all with released=true)")
def list_holds(vault: VaultDep, actor: PrincipalDep, released: bool = False) -> dict[str, Any]:
    return {"items": [vc.hold_json(h, zone(vault))
                      for h in holds.list_(vault, actor, include_released=released, via=VIA)]}


@router.post("/holds/{hold_id}/release", summary="Release a hold (not by the one who set it)")
def release_hold(vault: VaultDep, actor: PrincipalDep, hold_id: Id, body: NoteIn) -> dict[str, Any]:
    return vc.hold_json(holds.release(vault, actor, hold_id, body.note, VIA), zone(vault))


@router.get("/retention/plan", summary="What would have expired by a time, and why")
def plan(vault: VaultDep, actor: PrincipalDep, at: datetime | None = None,
         every: Annotated[bool, Query(alias="all", description="every recording, not only the expired")] = False,
         ) -> dict[str, Any]:
    when = aware(at, zone(vault), "at") or utcnow()
    items = [d for d in retention.plan_vault(vault, actor, when, VIA) if every or d.purgeable]
    return {"at": when.isoformat(), "items": [vc.decision_json(d, zone(vault)) for d in items]}


def _batch(vault: Any, b: Any) -> dict[str, Any]:
    return vc.batch_json(b, zone(vault), vault.config.retention.purge_approvals)


@router.post("/retention/batches", summary="Gather what has expired now into a purge batch")
def create_batch(vault: VaultDep, actor: PrincipalDep) -> dict[str, Any]:
    b = retention.create_batch(vault, actor, via=VIA)
    return {"batch": _batch(vault, b) if b else None}


@router.get("/retention/batches", summary="Open purge batches")
def list_batches(vault: VaultDep, actor: PrincipalDep) -> dict[str, Any]:
    return {"items": [_batch(vault, b) for b in retention.open_batches(vault, actor, VIA)]}


@router.get("/retention/batches/{batch_id}", summary="One purge batch")
def get_batch(vault: VaultDep, actor: PrincipalDep, batch_id: Id) -> dict[str, Any]:
    return _batch(vault, retention.get_batch(vault, actor, batch_id, VIA))


@router.post("/retention/batches/{batch_id}/approve", summary="Approve a purge batch (each person once)")
def approve_batch(vault: VaultDep, actor: PrincipalDep, batch_id: Id) -> dict[str, Any]:
    return _batch(vault, retention.approve_batch(vault, actor, batch_id, VIA))


@router.post("/retention/batches/{batch_id}/purge", summary="Purge an approved batch")
def purge(vault: VaultDep, actor: PrincipalDep, batch_id: Id) -> dict[str, Any]:
    return vc.purge_json(retention.purge(vault, actor, batch_id, via=VIA))
