"""Reading evidence: list, show, and get an original's bytes.

Every function takes the acting principal, applies the access rules, and
writes the audit entry itself (refusals too), so no front end can forget it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from vaultd import access, audit, copies
from vaultd.access import Action, Level, Principal, Role
from vaultd.approvals import grant_of, reachable_recording, ref_of, visible_recording
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import approvals as appr_db
from vaultd.catalog import people as people_db
from vaultd.catalog import recordings as rec_db
from vaultd.catalog import retention as ret_db
from vaultd.catalog import sessions as ses_db
from vaultd.catalog.recordings import RecordingFilter, Scope
from vaultd.copies import Use
from vaultd.errors import AccessDeniedError, HashMismatchError, NotFoundError, StorageError, UsageError
from vaultd.grantuse import Span
from vaultd.i18n import _
from vaultd.model import Recording
from vaultd.people import actor_of
from vaultd.vault import Vault, utcnow


def _scope(vault: Vault, actor: Principal) -> tuple[Scope | None, list[access.Grant]]:
    if actor.local_owner:
        return None, []
    with vault.engine.connect() as conn:
        user = people_db.user_by_name(conn, actor.name)
        grants = [grant_of(g) for g in appr_db.grants_of(conn, user.id)] if user else []
    levels = tuple(lv.value for lv in Level if lv.rank() <= actor.clearance.rank())
    live = [g for g in grants if g.expires_at > utcnow()]
    return Scope(
        levels=levels,
        everything=bool(actor.roles & {Role.LEGAL, Role.AUDITOR}) and not actor.disabled,
        officer_number=actor.officer_number if Role.OFFICER in actor.roles else None,
        unit=actor.unit if Role.SUPERVISOR in actor.roles else None,
        granted_ids=tuple(sorted({r for g in live for r in g.recording_ids})),
    ), live


def list_recordings(vault: Vault, actor: Principal, flt: RecordingFilter, via: str = "cli") -> list[Recording]:
    scope, grants = _scope(vault, actor)
    now = utcnow()
    with vault.engine.begin() as conn:
        found = rec_db.search(conn, replace(flt, scope=scope))
        found = [r for r in found if access.visible(actor, ref_of(r), grants=grants, now=now)]
        audit.append(conn, Event("recording.list", actor_of(actor, via), {
            "filter": {k: (v.isoformat() if hasattr(v, "isoformat") else getattr(v, "value", v))
                       for k, v in flt.__dict__.items() if v is not None and k != "scope"},
            "ids": [r.id for r in found]}))
    return found


@dataclass(frozen=True)
class RecordingDetail:
    recording: Recording
    sightings: list[dict[str, Any]]
    purged: dict[str, Any] | None = None  # from its tombstone, once retention purged the original (#6)


def show_recording(vault: Vault, actor: Principal, ref: str, via: str = "cli") -> RecordingDetail:
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        rec = visible_recording(conn, vault, actor, ref, via)
        detail = RecordingDetail(rec, ses_db.sightings_of(conn, rec.id), _purged(conn, rec))
        audit.append(conn, Event("recording.show", actor_of(actor, via), {}, EvidenceRef.of(rec)))
    return detail


def set_confidentiality(vault: Vault, actor: Principal, ref: str, level: Level, reason: str,
                        via: str = "cli") -> Recording:
    """Set a recording's own R9 level (raise: its unit's supervisor, legal, leader; lower:
    legal, leader; never above one's clearance). Its cases may keep what applies higher.
    Audited with the old and new level and the reason; refusals too."""
    if not reason.strip():
        raise UsageError(_("a reason is required to change a recording's confidentiality"),
                         hint=_("say why with --reason"))
    now = utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        _refuse_level(actor, via, access.decide(actor, Action.SET_CONFIDENTIALITY, now=now), None)
        rec = reachable_recording(conn, vault, actor, ref, via)
        decision = access.decide(actor, Action.SET_CONFIDENTIALITY, recording=ref_of(rec), level=level, now=now)
        _refuse_level(actor, via, decision, rec)
        if rec.confidentiality == level.value:
            raise UsageError(_("recording %s is %s already") % (rec.id, level.value))
        rec_db.set_confidentiality(conn, rec.id, level.value)
        out = rec_db.get(conn, rec.id)
        audit.append(conn, Event("recording.confidentiality", actor_of(actor, via), {
            "old": rec.confidentiality, "new": level.value, "cases": rec.case_confidentiality,
            "effective": out.effective_confidentiality, "reason": reason, "rule": decision.rule},
            EvidenceRef.of(rec)), now)
    return out


def _refuse_level(actor: Principal, via: str, decision: access.Decision, rec: Recording | None) -> None:
    if decision.allowed:
        return
    raise audit.refusal(
        AccessDeniedError(_("%s may not set the confidentiality of %s (rule: %s)")
                          % (actor.name, rec.id if rec else _("recordings"), decision.rule), rule=decision.rule),
        Event("access.denied", actor_of(actor, via), {"action": Action.SET_CONFIDENTIALITY.value,
                                                      "rule": decision.rule},
              EvidenceRef.of(rec) if rec else None))


@dataclass(frozen=True)
class Retrieved:
    recording: Recording
    out: Path
    size_bytes: int


def authorise_original(vault: Vault, actor: Principal, ref: str, reason: str, grant_id: str | None,
                       via: str, span_of: Callable[[Recording], Span | None] | None = None) -> tuple[Recording, Use]:
    """Check the right to read an original's bytes and begin the read: it joins the
    grant's open copy of the recording, or begins one (one use; see vaultd.grantuse).
    ``span_of`` says which bytes the read sends (default: all), None when it can send
    none (a range past the end): then nothing is spent. End the read with ``finish_read``."""
    if not reason.strip():
        raise UsageError(_("a reason is required to read an original"),
                         hint=_("say why with --reason, e.g. --reason '案件 2026-017 review'"))
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        rec = visible_recording(conn, vault, actor, ref, via, {"reason": reason, "grant": grant_id})
        _refuse_purged(conn, rec)
        grant = copies.check_grant(conn, actor, grant_id, rec, Action.READ_ORIGINAL, via, reason=reason)
        span = span_of(rec) if span_of else (0, rec.size_bytes - 1)
        if span is None:
            return rec, Use(grant.id if grant else None)
        use = copies.begin_read(conn, actor, grant, rec, span, via, reason=reason)
    return rec, use


def _purged(conn: Connection, rec: Recording) -> dict[str, Any] | None:
    tomb = ret_db.tombstone(conn, rec.id)
    if tomb is None:
        return None
    return {"purged_at": tomb.purged_at.isoformat(), "batch": tomb.batch_id, "class": tomb.class_name,
            "purged_by": tomb.purged_by, "approvers": list(tomb.approvers), "audit_index": tomb.audit_index}


def _refuse_purged(conn: Connection, rec: Recording) -> None:
    """A purged original (R6) is gone: say so, from its tombstone (#6)."""
    tomb = ret_db.tombstone(conn, rec.id)
    if tomb is not None:
        raise NotFoundError(
            _("the original of %s was purged on %s (retention class %s, batch %s, approved by %s); "
              "its metadata and sha256 %s are kept") % (rec.id, tomb.purged_at.isoformat(), tomb.class_name,
                                                        tomb.batch_id, ", ".join(tomb.approvers), tomb.sha256),
            hint=_("'vaultd recordings show %s' shows what is kept") % rec.id)


def log_read(vault: Vault, actor: Principal, rec: Recording, *, reason: str, grant: str | None,
             where: str, problem: str | None, via: str) -> None:
    """The audit entry of a read that holds no copy (see ``finish_read``)."""
    finish_read(vault, actor, rec, Use(grant), reason=reason, where=where, problem=problem, sent=None,
                fault=False, via=via)


def finish_read(vault: Vault, actor: Principal, rec: Recording, use: Use, *, reason: str, where: str,
                problem: str | None, sent: Span | None, fault: bool, via: str) -> None:
    """End a read begun by ``authorise_original``: its audit entry (the bytes sent, its copy) and
    the copy's new state: complete once every byte was sent; the use given back when the vault
    failed (``fault``) or the copy sent nothing."""
    with vault.engine.begin() as conn:
        state = copies.end_read(conn, actor, rec, use, sent=sent, ok=problem is None, fault=fault, via=via)
        details: dict[str, Any] = {"reason": reason, "grant": use.grant, "out": where, "problem": problem}
        if use.copy is not None:
            details.update(copy=use.copy, copy_state=state, sent=list(sent) if sent else None)
        audit.append(conn, Event("recording.get" if problem is None else "recording.get.failed",
                                 actor_of(actor, via), details, EvidenceRef.of(rec)))


def get_original(vault: Vault, actor: Principal, ref: str, out: Path, reason: str,
                 grant_id: str | None = None, via: str = "cli") -> Retrieved:
    """Write the original's exact bytes to ``out``, checking the hash on the way."""
    rec, use = authorise_original(vault, actor, ref, reason, grant_id, via)
    try:
        size = _write_original(vault, rec, out)
    except Exception as exc:  # nothing was written (the file is removed): nothing was sent
        finish_read(vault, actor, rec, use, reason=reason, where=str(out), problem=getattr(exc, "message", str(exc)),
                    sent=None, fault=False, via=via)
        raise
    finish_read(vault, actor, rec, use, reason=reason, where=str(out), problem=None,
                sent=(0, size - 1) if size else None, fault=False, via=via)
    return Retrieved(rec, out, size)


def _write_original(vault: Vault, rec: Recording, out: Path) -> int:
    dst = _create_out(out)
    try:
        digest, size = vault.store.copy_out(rec.sha256, dst)
        os.fsync(dst)
    except BaseException as exc:
        os.close(dst)
        out.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StorageError(_("cannot write %s: %s") % (out, exc.strerror)) from exc
        raise
    os.close(dst)
    if digest != rec.sha256:
        out.unlink(missing_ok=True)
        raise HashMismatchError(
            _("original %s does not match its recorded hash; nothing was written") % rec.id,
            hint=_("run 'vaultd scrub' and report this to the vault's administrator"))
    return size


def _create_out(out: Path) -> int:
    try:
        return os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(_("%s already exists") % out,
                         hint=_("choose a new file name with --out; vaultd never overwrites")) from None
    except OSError as exc:
        raise UsageError(_("cannot create %s: %s") % (out, exc.strerror)) from None
