"""Holds (R6 long-term keeping): a hold on a recording or a case blocks every
purge of it. Setting one is audited; releasing one needs a second authorised
person, never the one who set it.
"""

from __future__ import annotations

import secrets
from enum import Enum

from sqlalchemy import Connection

from vaultd import access, audit
from vaultd.access import Action, Level, Principal
from vaultd.approvals import grant_of, reachable_recording, ref_of
from vaultd.audit import Event, EvidenceRef
from vaultd.cases import load as load_case
from vaultd.catalog import approvals as appr_db
from vaultd.catalog import cases as db
from vaultd.catalog import people as people_db
from vaultd.catalog import recordings as rec_db
from vaultd.catalog.cases import HoldRow
from vaultd.errors import AccessDeniedError, NotFoundError, UsageError
from vaultd.i18n import _
from vaultd.model import Recording
from vaultd.people import actor_of
from vaultd.vault import Vault, utcnow


class HoldReason(str, Enum):
    COERCIVE_MEASURE = "coercive-measure"  # 行政强制措施
    DISPUTE = "dispute"  # 争议
    COMPLAINT = "complaint"  # 投诉
    OBSTRUCTION = "obstruction"  # 阻碍执法、袭击执法人员
    MASS_INCIDENT = "mass-incident"  # 群体性事件
    LITIGATION = "litigation"  # 复议、诉讼
    OTHER = "other"  # with a note saying what


def _denied(actor: Principal, via: str, action: Action, rule: str, details: dict[str, object],
            evidence: EvidenceRef | None = None) -> AccessDeniedError:
    return audit.refusal(
        AccessDeniedError(_("%s may not %s (rule: %s)") % (actor.name, action.value, rule), rule=rule),
        Event("access.denied", actor_of(actor, via), {"action": action.value, "rule": rule, **details}, evidence))


def _target(conn: Connection, vault: Vault, actor: Principal, ref: str, via: str, action: Action,
            owner: str | None = None) -> Recording:
    """The recording a hold is set on or released from: one the actor may name
    (``access.reachable``: they see it, or they are a leader within clearance),
    else 'not found', by id or by sha256 prefix alike (#16.11); then a supervisor
    only for a recording of their unit."""
    rec = reachable_recording(conn, vault, actor, ref, via)
    decision = access.decide(actor, action, recording=ref_of(rec), now=utcnow(), owner=owner)
    if not decision.allowed:
        raise _denied(actor, via, action, decision.rule, {}, EvidenceRef.of(rec))
    return rec


def add(vault: Vault, actor: Principal, *, reason: HoldReason, recording: str | None = None,
        case: str | None = None, note: str | None = None, via: str = "cli") -> HoldRow:
    if (recording is None) == (case is None):
        raise UsageError(_("name either --recording or --case"))
    note = note.strip() if note else None
    if reason is HoldReason.OTHER and not note:
        raise UsageError(_("a hold for reason 'other' needs a note saying why"), hint=_("--note TEXT"))
    hold_id, now = "h" + secrets.token_hex(5), utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        decision = access.decide(actor, Action.HOLD_SET, now=now)
        if not decision.allowed:
            raise _denied(actor, via, Action.HOLD_SET, decision.rule, {"recording": recording, "case": case})
        rec = _target(conn, vault, actor, recording, via, Action.HOLD_SET) if recording else None
        case_row = load_case(conn, actor, case) if case else None
        db.add_hold(conn, id=hold_id, recording_id=rec.id if rec else None, case_id=case_row.id if case_row else None,
                    reason=reason.value, note=note, set_by=actor.name, set_at=now)
        audit.append(conn, Event("hold.add", actor_of(actor, via), {
            "hold": hold_id, "reason": reason.value, "note": note,
            "case": case_row.number if case_row else None}, EvidenceRef.of(rec) if rec else None), now)
        row = db.get_hold(conn, hold_id)
    assert row is not None
    return row


def list_(vault: Vault, actor: Principal, *, include_released: bool = False, via: str = "cli") -> list[HoldRow]:
    with audit.logging_refusals(vault), vault.engine.connect() as conn:
        decision = access.decide(actor, Action.RETENTION_VIEW, now=utcnow())
        if not decision.allowed and not access.decide(actor, Action.HOLD_SET, now=utcnow()).allowed:
            raise _denied(actor, via, Action.RETENTION_VIEW, decision.rule, {})
        return [h for h in db.list_holds(conn, active_only=not include_released) if _listed(conn, actor, h)]


def _listed(conn: Connection, actor: Principal, hold: HoldRow) -> bool:
    """A hold is listed to those who may name what it holds (#16.11): its recording
    is reachable to them, or its case is within their clearance."""
    if actor.local_owner:
        return True
    if hold.recording_id is not None:
        user = people_db.user_by_name(conn, actor.name)
        grants = [grant_of(g) for g in appr_db.grants_of(conn, user.id)] if user else []
        return access.reachable(actor, ref_of(rec_db.get(conn, hold.recording_id)), grants=grants, now=utcnow())
    case = db.case_by_id(conn, hold.case_id) if hold.case_id is not None else None
    return case is not None and Level(case.confidentiality).rank() <= actor.clearance.rank()


def release(vault: Vault, actor: Principal, hold_id: str, note: str | None = None, via: str = "cli") -> HoldRow:
    """Release a hold: a second authorised person, never its setter (nor the station's local owner)."""
    now = utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        row = db.get_hold(conn, hold_id)
        if row is None:
            raise NotFoundError(_("no hold %s") % hold_id, hint=_("'vaultd holds list' shows them"))
        if actor.local_owner:
            raise UsageError(_("releasing a hold needs a second named person, not the station's local owner"),
                             hint=_("use --url/--token, or 'vaultd login'"))
        decision = access.decide(actor, Action.HOLD_RELEASE, now=now, owner=row.set_by)
        if not decision.allowed:
            raise _denied(actor, via, Action.HOLD_RELEASE, decision.rule, {"hold": hold_id, "set_by": row.set_by})
        if row.recording_id is not None:
            _target(conn, vault, actor, row.recording_id, via, Action.HOLD_RELEASE, owner=row.set_by)
        elif not _listed(conn, actor, row):
            raise NotFoundError(_("no hold %s") % hold_id, hint=_("'vaultd holds list' shows them"))
        if not db.release_hold(conn, hold_id, by=actor.name, at=now, note=note):
            raise UsageError(_("hold %s was released already") % hold_id)
        audit.append(conn, Event("hold.release", actor_of(actor, via), {
            "hold": hold_id, "set_by": row.set_by, "reason": row.reason, "note": note,
            "recording": row.recording_id, "case": row.case_number}), now)
        out = db.get_hold(conn, hold_id)
    assert out is not None
    return out
