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
from vaultd.approvals import visible_recording
from vaultd.audit import Event, EvidenceRef
from vaultd.cases import load as load_case
from vaultd.catalog import cases as db
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


def _target(conn: Connection, vault: Vault, actor: Principal, ref: str, via: str) -> Recording:
    """A hold only protects, so whoever may set one may name any recording within
    their clearance (a leader sees no recordings by role); above it: 'not found'."""
    rec = rec_db.get(conn, ref)
    if actor.local_owner or Level(rec.confidentiality).rank() <= actor.clearance.rank():
        return rec
    return visible_recording(conn, vault, actor, ref, via)


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
        rec = _target(conn, vault, actor, recording, via) if recording else None
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
        return db.list_holds(conn, active_only=not include_released)


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
        if not db.release_hold(conn, hold_id, by=actor.name, at=now, note=note):
            raise UsageError(_("hold %s was released already") % hold_id)
        audit.append(conn, Event("hold.release", actor_of(actor, via), {
            "hold": hold_id, "set_by": row.set_by, "reason": row.reason, "note": note,
            "recording": row.recording_id, "case": row.case_number}), now)
        out = db.get_hold(conn, hold_id)
    assert out is not None
    return out
