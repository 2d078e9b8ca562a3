"""Access requests, approvals and grants (R5): who asked, why, who approved,
for which recordings, until when, how many uses. Every step is audited."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import Connection

from vaultd import access, audit
from vaultd.access import Action, Level, Principal, RecordingRef, RequestKind, RequestRef, Role
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import approvals as db
from vaultd.catalog import cases as cases_db
from vaultd.catalog import people as people_db
from vaultd.catalog import recordings as rec_db
from vaultd.catalog.approvals import GrantRow, RequestRow
from vaultd.errors import AccessDeniedError, NotFoundError, UsageError
from vaultd.i18n import _
from vaultd.safetext import check_name
from vaultd.model import Recording
from vaultd.people import actor_of
from vaultd.vault import Vault, utcnow


def ref_of(rec: Recording) -> RecordingRef:
    """The recording as access control sees it, its cases' levels included (R9)."""
    cases = (_level(rec.case_confidentiality),) if rec.case_confidentiality else ()
    return RecordingRef(rec.id, rec.officer_id, rec.unit, _level(rec.confidentiality), cases)


def _level(value: str) -> Level:
    """A stored level; an unknown one counts as the highest (never opens anything)."""
    try:
        return Level(value)
    except ValueError:
        return Level.SECRET


def grant_of(g: GrantRow) -> access.Grant:
    return access.Grant(g.id, RequestKind(g.kind), g.grantee, frozenset(g.recording_ids), g.expires_at,
                        g.uses_left, g.purpose)


def visible_recording(conn: Connection, vault: Vault, actor: Principal, ref: str, via: str,
                      details: Mapping[str, object] | None = None) -> Recording:
    """The recording if the actor may see it; otherwise the same 'not found' as a
    missing one (never reveal that it exists), with the refusal logged (with ``details``)."""
    return _recording_for(conn, actor, ref, via, access.visible, details)


def reachable_recording(conn: Connection, vault: Vault, actor: Principal, ref: str, via: str) -> Recording:
    """Like ``visible_recording``, for what a leader may do on any recording within
    clearance though seeing none by role (holds, confidentiality levels)."""
    return _recording_for(conn, actor, ref, via, access.reachable, None)


def _recording_for(conn: Connection, actor: Principal, ref: str, via: str, may: Callable[..., bool],
                   details: Mapping[str, object] | None) -> Recording:
    rec = rec_db.get(conn, ref)
    grants = [grant_of(g) for g in _grants_for(conn, actor)]
    if may(actor, ref_of(rec), grants=grants, now=utcnow()):
        return rec
    decision = access.decide(actor, Action.VIEW_METADATA, recording=ref_of(rec), grants=grants, now=utcnow())
    raise audit.refusal(
        NotFoundError(_("no recording %s") % ref, hint=_("'vaultd recordings list' shows the ids")),
        Event("access.denied", actor_of(actor, via), {
            "action": Action.VIEW_METADATA.value, "rule": decision.rule, **(details or {})}, EvidenceRef.of(rec)))


def _grants_for(conn: Connection, actor: Principal) -> list[GrantRow]:
    if actor.local_owner:
        return []
    user = people_db.user_by_name(conn, actor.name)
    return db.grants_of(conn, user.id) if user else []


def _user_id(conn: Connection, actor: Principal) -> int:
    if actor.local_owner:
        raise UsageError(_("the station's local owner needs no approval and makes none"),
                         hint=_("requests and approvals are made by named users: use --url/--token or 'vaultd login'"))
    user = people_db.user_by_name(conn, actor.name)
    if user is None:
        raise NotFoundError(_("no user %s") % actor.name)
    return user.id


def _deny(actor: Principal, via: str, action: Action, rule: str,
          details: dict[str, object]) -> AccessDeniedError:
    return audit.refusal(
        AccessDeniedError(_("%s may not %s (rule: %s)") % (actor.name, action.value, rule), rule=rule),
        Event("access.denied", actor_of(actor, via), {"action": action.value, "rule": rule, **details}))


def _case_recordings(conn: Connection, vault: Vault, actor: Principal, kind: RequestKind, case: str,
                     via: str) -> list[str]:
    """The recordings of a case a request names (#6): those the requester may see; all of
    them for an external retrieval (the leader's approval checks each one)."""
    row = cases_db.case_by_number(conn, case.strip())
    if row is None or (not actor.local_owner and Level(row.confidentiality).rank() > actor.clearance.rank()):
        raise NotFoundError(_("no case %s") % case, hint=_("'vaultd cases list' shows the cases"))
    ids = cases_db.recording_ids(conn, row.id)
    if kind is not RequestKind.EXTERNAL:
        grants = [grant_of(g) for g in _grants_for(conn, actor)]
        ids = [i for i in ids if access.visible(actor, ref_of(rec_db.get(conn, i)), grants=grants, now=utcnow())]
    if not ids:
        raise UsageError(_("case %s has no recordings you may ask for") % case)
    return ids


def request_access(vault: Vault, actor: Principal, kind: RequestKind, refs: Sequence[str], purpose: str,
                   *, notice: str | None, expires_days: int, uses: int, via: str,
                   case: str | None = None) -> RequestRow:
    if not purpose.strip():
        raise UsageError(_("a purpose is required"), hint=_("say why with --purpose"))
    if not 1 <= expires_days <= 365 or not 1 <= uses <= 1000:
        raise UsageError(_("--expires-days must be 1..365 and --uses 1..1000"))
    if not refs and not case:
        raise UsageError(_("name at least one recording with --recording, or a case with --case"))
    for value, what in ((notice, _("notice number")), (case, _("case number")),
                        *((ref, _("recording id")) for ref in refs)):
        if value and value.strip():  # a blank notice is for the access rule to refuse
            check_name(value.strip(), what)
    request_id = "q" + secrets.token_hex(5)
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        user_id = _user_id(conn, actor)
        if not access.has_media_rights(actor):  # before naming anything: no media, whatever is asked for
            raise _deny(actor, via, Action.REQUEST, "no-media-rights", {"kind": kind.value})
        if case:
            refs = list(dict.fromkeys([*refs, *_case_recordings(conn, vault, actor, kind, case, via)]))
        if kind is RequestKind.EXTERNAL:
            # another department asks for what it cannot see: take the ids as given and
            # reveal nothing about them; the leader's approval checks each one
            ids = [r.strip().lower() for r in refs]
            probe_refs = tuple(RecordingRef(i, None, None) for i in ids)
        else:
            recs = [visible_recording(conn, vault, actor, r, via) for r in refs]
            ids, probe_refs = [r.id for r in recs], tuple(ref_of(r) for r in recs)
        probe = RequestRef(request_id, kind, actor.name, actor.unit, probe_refs, notice, status="new")
        decision = access.decide(actor, Action.REQUEST, request=probe, now=utcnow())
        if not decision.allowed:
            raise _deny(actor, via, Action.REQUEST, decision.rule, {"kind": kind.value})
        db.add_request(conn, request_id=request_id, kind=kind.value, requester_id=user_id,
                       requester_unit=actor.unit, purpose=purpose, notice_number=notice, case_number=case,
                       recording_ids=ids, expires_days=expires_days, uses=uses, at=utcnow())
        audit.append_many(conn, per_recording(conn, Event("access.request", actor_of(actor, via), {
            "request": request_id, "kind": kind.value, "recordings": ids,
            "purpose": purpose, "notice_number": notice, "expires_days": expires_days, "uses": uses,
            **({"case": case} if case else {})}), ids))
        row = db.get_request(conn, request_id)
    assert row is not None
    return row


def per_recording(conn: Connection, event: Event, ids: Sequence[str]) -> list[Event]:
    """The same entry once per recording it concerns, so that 'audit list --recording ID'
    (and an export's custody chain) shows who asked, who approved, who denied (#16.12).
    Ids that name no recording (an external retrieval's, as given) stay in the details;
    with none left, one entry without evidence."""
    known = rec_db.ids_exist(conn, list(ids)) if ids else set()
    events = [replace(event, evidence=EvidenceRef.of(rec_db.get(conn, i)))
              for i in dict.fromkeys(ids) if i in known]
    return events or [event]


def _request_ref(conn: Connection, row: RequestRow) -> RequestRef:
    recs = tuple(ref_of(rec_db.get(conn, r)) for r in row.recording_ids)
    return RequestRef(row.id, RequestKind(row.kind), row.requester, row.requester_unit, recs,
                      row.notice_number, row.status)


@dataclass(frozen=True)
class Pending:
    """A pending request as one person sees it: may they decide it, and if not, why (the rule)."""

    request: RequestRow
    may_decide: bool
    rule: str


def pending(vault: Vault, actor: Principal, via: str) -> list[Pending]:
    """Pending requests the actor may decide, the actor's own, and, for a supervisor,
    those touching a recording of their unit (R5: another department asking for the
    unit's recordings is decided by a leader, but the unit hears of it)."""
    now = utcnow()
    out = []
    with vault.engine.connect() as conn:
        for row in db.requests_with_status(conn, "pending"):
            ref = _request_ref(conn, row)
            decision = access.decide(actor, Action.APPROVE, request=ref, now=now)
            if decision.allowed or row.requester == actor.name or _unit_hears(actor, ref):
                out.append(Pending(row, decision.allowed, decision.rule))
    return out


def _unit_hears(actor: Principal, ref: RequestRef) -> bool:
    return (Role.SUPERVISOR in actor.roles and not actor.disabled and access.concerns_unit(ref, actor.unit)
            and all(r.level.rank() <= actor.clearance.rank() for r in ref.recordings))


def _load_request(conn: Connection, request_id: str) -> RequestRow:
    row = db.get_request(conn, request_id)
    if row is None:
        raise NotFoundError(_("no access request %s") % request_id,
                            hint=_("'vaultd access pending' lists the open ones"))
    return row


def approve(vault: Vault, actor: Principal, request_id: str, via: str) -> GrantRow:
    now = utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        approver_id = _user_id(conn, actor)
        row = _load_request(conn, request_id)
        decision = access.decide(actor, Action.APPROVE, request=_request_ref(conn, row), now=now)
        if not decision.allowed:
            raise _deny(actor, via, Action.APPROVE, decision.rule, {"request": request_id,
                                                                  "recordings": list(row.recording_ids)})
        requester = people_db.user_by_name(conn, row.requester)
        assert requester is not None
        if not db.decide_request(conn, request_id, status="approved", decided_by=approver_id, at=now, reason=None):
            raise UsageError(_("request %s is no longer pending") % request_id)
        grant_id = "g" + secrets.token_hex(5)
        db.add_grant(conn, grant_id=grant_id, request=row, grantee_id=requester.id, approved_by=approver_id,
                     expires_at=now + timedelta(days=row.expires_days), at=now)
        audit.append_many(conn, per_recording(conn, Event("access.approve", actor_of(actor, via), {
            "request": request_id, "grant": grant_id, "rule": decision.rule, "kind": row.kind,
            "grantee": row.requester, "recordings": list(row.recording_ids)}), row.recording_ids), now)
        grant = db.get_grant(conn, grant_id)
    assert grant is not None
    return grant


def deny(vault: Vault, actor: Principal, request_id: str, reason: str, via: str) -> RequestRow:
    if not reason.strip():
        raise UsageError(_("a reason is required to deny a request"), hint=_("--reason TEXT"))
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        approver_id = _user_id(conn, actor)
        row = _load_request(conn, request_id)
        decision = access.decide(actor, Action.DENY, request=_request_ref(conn, row), now=utcnow())
        if not decision.allowed:
            raise _deny(actor, via, Action.DENY, decision.rule, {"request": request_id,
                                                                  "recordings": list(row.recording_ids)})
        if not db.decide_request(conn, request_id, status="denied", decided_by=approver_id,
                                 at=utcnow(), reason=reason):
            raise UsageError(_("request %s is no longer pending") % request_id)
        audit.append_many(conn, per_recording(conn, Event("access.deny", actor_of(actor, via), {
            "request": request_id, "reason": reason, "rule": decision.rule, "requester": row.requester,
            "recordings": list(row.recording_ids)}), row.recording_ids))
        out = db.get_request(conn, request_id)
    assert out is not None
    return out


def my_grants(vault: Vault, actor: Principal, via: str) -> list[GrantRow]:
    with vault.engine.connect() as conn:
        if actor.local_owner:
            return db.grants_of(conn, None)
        return _grants_for(conn, actor)
