"""Spending grant uses and giving them back (issue 16 #10, R5).

One use of a grant is one complete copy of one recording; the rules are in
``vaultd.grantuse`` (pure). This module keeps the copies in the catalog, in
the caller's transaction, and writes the audit entries: ``grant.use`` when a
copy begins (one use spent), ``grant.return`` when a use is given back.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Connection

from vaultd import access, audit, grantuse
from vaultd.access import Action, Principal
from vaultd.approvals import grant_of, ref_of
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import approvals as db
from vaultd.catalog.approvals import GrantRow
from vaultd.errors import AccessDeniedError
from vaultd.grantuse import Copy, Reading, Span, Start
from vaultd.i18n import _
from vaultd.model import Actor, Recording
from vaultd.people import actor_of
from vaultd.vault import utcnow


@dataclass(frozen=True)
class Use:
    """What a read of an original holds: the grant, and the copy and read it belongs to
    (all None for the station's local owner, who needs no grant)."""

    grant: str | None
    copy: int | None = None
    reading: str | None = None


def _refuse(actor: Principal, via: str, rec: Recording, action: Action, rule: str,
            grant_id: str | None, reason: str | None = None) -> AccessDeniedError:
    """The refusal, logged with the reason the user gave (#16.12)."""
    hint = (_("another read of the same bytes of this copy is in progress; wait for it to end, or ask for "
              "the bytes it is not sending") if rule == "copy-in-progress" else
            _("ask for access: 'vaultd access request --kind view-original --recording %s --purpose ...'") % rec.id)
    return audit.refusal(
        AccessDeniedError(_("%s may not %s recording %s (rule: %s)") % (actor.name, action.value, rec.id, rule),
                          rule=rule, hint=hint),
        Event("access.denied", actor_of(actor, via), {
            "action": action.value, "rule": rule, "grant": grant_id,
            **({"reason": reason} if reason is not None else {})}, EvidenceRef.of(rec)))


def check_grant(conn: Connection, actor: Principal, grant_id: str | None, rec: Recording, action: Action,
                via: str, *, reason: str | None = None) -> GrantRow | None:
    """The grant, if it lets the actor do ``action`` on ``rec`` now (nothing spent);
    None for the local owner. Refusals are audited."""
    if actor.local_owner:
        return None
    row = db.get_grant(conn, grant_id) if grant_id else None
    now = utcnow()
    grants = [grant_of(row)] if row else []
    if row and action is Action.READ_ORIGINAL and grantuse.is_open(db.latest_download(conn, row.id, rec.id), now):
        grants = [replace(grants[0], uses_left=max(1, row.uses_left))]  # a read of the open copy needs no use
    decision = access.decide(actor, action, recording=ref_of(rec), grants=grants, now=now)
    if not decision.allowed or row is None:
        raise _refuse(actor, via, rec, action, decision.rule, grant_id, reason)
    return row


def begin_read(conn: Connection, actor: Principal, grant: GrantRow | None, rec: Recording, span: Span,
               via: str, *, reason: str | None = None) -> Use:
    """Join the open copy of ``rec`` under ``grant``, or begin one (one use spent)."""
    if grant is None:
        return Use(None)
    db.lock_grant(conn, grant.id)
    now = utcnow()
    current = db.latest_download(conn, grant.id, rec.id)
    reading = Reading(secrets.token_hex(6), span[0], span[1], now)
    verdict = grantuse.start_read(current, span, now)
    if verdict is Start.BUSY:
        raise _refuse(actor, via, rec, Action.READ_ORIGINAL, "copy-in-progress", grant.id, reason)
    if verdict is Start.JOIN:
        assert current is not None
        db.save_copy(conn, grantuse.joined(current, reading, now))
        return Use(grant.id, current.id, reading.id)
    left = db.spent_uses(conn, [grant.id]).get((grant.id, rec.id), 0)
    left = grant.uses_total - left
    if left <= 0:
        raise _refuse(actor, via, rec, Action.READ_ORIGINAL, "grant-used-up", grant.id, reason)
    copy_id = db.add_copy(conn, Copy(0, grant.id, rec.id, "download", "open", (), (reading,), now, now))
    audit.append(conn, Event("grant.use", actor_of(actor, via), {
        "grant": grant.id, "action": Action.READ_ORIGINAL.value, "copy": copy_id, "uses_left": left - 1},
        EvidenceRef.of(rec)), now)
    return Use(grant.id, copy_id, reading.id)


def end_read(conn: Connection, actor: Principal, rec: Recording, use: Use, *, sent: Span | None, ok: bool,
             fault: bool, via: str) -> str | None:
    """Record how a read of ``use`` ended; the copy's state after it (None: no copy)."""
    if use.copy is None or use.reading is None:
        return None
    now = utcnow()
    before = db.get_copy(conn, use.copy)
    after = grantuse.end_read(before, use.reading, sent, ok=ok, fault=fault, size_bytes=rec.size_bytes, now=now)
    db.save_copy(conn, after)
    if before.state == "open" and after.state == "returned":
        audit.append(conn, Event("grant.return", actor_of(actor, via), {
            "grant": before.grant_id, "copy": before.id,
            "why": "vault-failure" if fault else "nothing-sent"}, EvidenceRef.of(rec)), now)
    return after.state


def spend_for_export(conn: Connection, actor: Principal, grant: GrantRow, recs: Sequence[Recording],
                     export_id: str, via: str) -> None:
    """One use of each recording, for one export (in the export's transaction)."""
    db.lock_grant(conn, grant.id)
    now = utcnow()
    spent = db.spent_uses(conn, [grant.id])
    for rec in recs:
        if grant.uses_total - spent.get((grant.id, rec.id), 0) <= 0:
            raise _refuse(actor, via, rec, Action.EXPORT, "grant-used-up", grant.id)
    for rec in recs:
        db.add_copy(conn, Copy(0, grant.id, rec.id, "export", "open", (), (), now, now, export_id))


def end_export(conn: Connection, export_id: str, *, ok: bool, maker: Actor) -> None:
    """Complete the copies of a sealed export, or give back the uses of a failed one."""
    now = utcnow()
    ended = db.end_export_copies(conn, export_id, "complete" if ok else "returned", now)
    if not ok and ended:
        audit.append(conn, Event("grant.return", maker, {
            "grant": ended[0][0], "export": export_id, "recordings": [r for _g, r in ended],
            "why": "export-failed"}), now)
