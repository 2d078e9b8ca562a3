"""A recording's retention class. Lengthening applies at once; moving to a
class that keeps it for less time (``Policy.is_shorter``) is only a request
until a supervisor (or leader), not the requester, approves it.

Why not ``vaultd.approvals``: those requests end in grants of access to
originals (kinds, uses, expiry); a class change grants nothing and is
decided on one recording, so it has its own small record (``class_changes``)
and the same audit pattern.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from vaultd import access, audit
from vaultd.access import Action, Principal, Role
from vaultd.approvals import visible_recording
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import recordings as rec_db
from vaultd.catalog import retention as db
from vaultd.catalog.retention import ClassChange
from vaultd.errors import AccessDeniedError, NotFoundError, UsageError
from vaultd.i18n import _
from vaultd.people import actor_of
from vaultd.retention import policy_of
from vaultd.vault import Vault, utcnow


@dataclass(frozen=True)
class Classified:
    recording_id: str
    old_class: str | None
    new_class: str
    applied: bool  # False: a shorter class, waiting for approval (see change_id)
    change_id: str | None = None


def _denied(actor: Principal, via: str, action: Action, rule: str, details: dict[str, object]) -> AccessDeniedError:
    return audit.refusal(
        AccessDeniedError(_("%s may not %s (rule: %s)") % (actor.name, action.value, rule), rule=rule),
        Event("access.denied", actor_of(actor, via), {"action": action.value, "rule": rule, **details}))


def classify(vault: Vault, actor: Principal, ref: str, new_class: str, reason: str = "",
             via: str = "cli") -> Classified:
    policy = policy_of(vault)
    if new_class not in policy.classes:
        raise UsageError(_("no retention class %r") % new_class,
                         hint=_("classes: %s") % ", ".join(sorted(policy.classes)))
    now = utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        decision = access.decide(actor, Action.CLASSIFY, now=now)
        if not decision.allowed:
            raise _denied(actor, via, Action.CLASSIFY, decision.rule, {"class": new_class})
        rec = visible_recording(conn, vault, actor, ref, via)
        old = db.classes_of(conn, [rec.id]).get(rec.id)
        if old == new_class:
            return Classified(rec.id, old, new_class, True)
        if not policy.is_shorter(old, new_class):
            db.set_class(conn, rec.id, new_class, by=actor.name, at=now, change_id=None)
            audit.append(conn, Event("retention.class.set", actor_of(actor, via), {
                "old": old, "new": new_class, "reason": reason}, EvidenceRef.of(rec)), now)
            return Classified(rec.id, old, new_class, True)
        if not reason.strip():
            raise UsageError(_("a shorter class needs a reason for the approver"), hint=_("--reason TEXT"))
        change_id = "c" + secrets.token_hex(5)
        db.add_change(conn, id=change_id, recording_id=rec.id, from_class=old or policy.default_class.name,
                      to_class=new_class, reason=reason, requested_by=actor.name, requested_at=now)
        audit.append(conn, Event("retention.class.request", actor_of(actor, via), {
            "change": change_id, "old": old, "new": new_class, "reason": reason}, EvidenceRef.of(rec)), now)
    return Classified(rec.id, old, new_class, False, change_id)


def pending(vault: Vault, actor: Principal, via: str = "cli") -> list[ClassChange]:
    with vault.engine.connect() as conn:
        return db.pending_changes(conn)


def decide_change(vault: Vault, actor: Principal, change_id: str, approve: bool, via: str = "cli") -> ClassChange:
    """A supervisor or leader, never the requester (nor the station's local owner), decides."""
    if actor.local_owner:
        raise UsageError(_("a class change is approved by a named supervisor, not the station's local owner"),
                         hint=_("use --url/--token, or 'vaultd login'"))
    now = utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        change = db.get_change(conn, change_id)
        if change is None:
            raise NotFoundError(_("no class change %s") % change_id)
        decision = access.decide(actor, Action.CLASS_APPROVE, now=now, owner=change.requested_by)
        if not decision.allowed:
            raise _denied(actor, via, Action.CLASS_APPROVE, decision.rule, {"change": change_id})
        rec = rec_db.get(conn, change.recording_id)
        if Role.LEADER not in actor.roles and rec.unit != actor.unit:  # a supervisor decides for their unit
            raise _denied(actor, via, Action.CLASS_APPROVE, "supervisor-of-another-unit",
                          {"change": change_id, "recording_unit": rec.unit})
        if not db.decide_change(conn, change_id, status="approved" if approve else "denied", by=actor.name, at=now):
            raise UsageError(_("class change %s is no longer pending") % change_id)
        if approve:
            db.set_class(conn, rec.id, change.to_class, by=actor.name, at=now, change_id=change_id)
        audit.append(conn, Event("retention.class.approve" if approve else "retention.class.deny",
                                 actor_of(actor, via), {
                                     "change": change_id, "old": change.from_class, "new": change.to_class,
                                     "requested_by": change.requested_by}, EvidenceRef.of(rec)), now)
        out = db.get_change(conn, change_id)
    assert out is not None
    return out
