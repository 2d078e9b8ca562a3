"""Cases (一案一卷, R8): recordings linked as evidence, closed once they are
labelled, archived; the case-file deadline (30 days after the act ends).

Every function takes the acting principal, asks ``access.decide`` and writes
the audit entry itself (refusals included). Case names, parties and titles
are kept exactly as typed (Unicode, e.g. 张三).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from vaultd import access, audit
from vaultd.access import Action, Level, Principal
from vaultd.approvals import ref_of, visible_recording
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import cases as db
from vaultd.catalog import labels as labels_db
from vaultd.catalog import recordings as rec_db
from vaultd.catalog.cases import CaseRow
from vaultd.errors import NotFoundError, UsageError
from vaultd.i18n import _
from vaultd.safetext import check_name
from vaultd.labels import missing_for_case
from vaultd.people import actor_of, refuse_unless
from vaultd.vault import Vault, utcnow

FILE_DEADLINE = timedelta(days=30)  # R8: the case file within 30 days after the act ends
MAX_TEXT = 4000


def file_deadline(case: CaseRow) -> datetime | None:
    """R8: when the case file must be formed (None until the act's end is known)."""
    return case.act_ended_at + FILE_DEADLINE if case.act_ended_at else None


@dataclass(frozen=True)
class NewCase:
    number: str
    title: str
    unit: str | None = None
    handler: str | None = None  # 承办人
    party: str | None = None  # 行政相对人
    confidentiality: Level = Level.NORMAL
    act_ended_at: datetime | None = None
    file_keep_months: int | None = None


@dataclass(frozen=True)
class CaseDetail:
    case: CaseRow
    recording_ids: tuple[str, ...]  # those the actor may see
    hidden: int  # linked recordings the actor may not see
    unlabelled: tuple[str, ...]  # visible ones that still lack what closing needs
    holds: tuple[str, ...]  # active holds on the case

    def as_json(self) -> dict[str, Any]:
        return {**case_json(self.case), "recordings": list(self.recording_ids), "hidden_recordings": self.hidden,
                "not_ready_to_close": list(self.unlabelled), "holds": list(self.holds)}


def case_json(c: CaseRow) -> dict[str, Any]:
    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t else None
    due = file_deadline(c)
    return {"number": c.number, "title": c.title, "unit": c.unit, "handler": c.handler, "party": c.party,
            "confidentiality": c.confidentiality, "status": c.status, "act_ended_at": iso(c.act_ended_at),
            "file_deadline": iso(due), "file_overdue": bool(due and c.archived_at is None and utcnow() > due),
            "opened_at": iso(c.opened_at), "opened_by": c.opened_by, "closed_at": iso(c.closed_at),
            "closed_by": c.closed_by, "archived_at": iso(c.archived_at), "archived_by": c.archived_by,
            "file_keep_months": c.file_keep_months}


def _text(value: str | None, what: str, required: bool = False, name: bool = False) -> str | None:
    """Free text (a title) as given, or a name or id (``name``: no control or bidi characters)."""
    value = value.strip() if value else None
    if required and not value:
        raise UsageError(_("%s is required") % what)
    if value and (len(value) > MAX_TEXT or "\x00" in value):
        raise UsageError(_("%s is too long or contains a NUL character") % what)
    if value and name:
        check_name(value, what)
    return value


def load(conn: Connection, actor: Principal, number: str) -> CaseRow:
    """The case if the actor's clearance reaches it; otherwise 'not found' (R9)."""
    row = db.case_by_number(conn, number.strip())
    if row is None or (not actor.local_owner and Level(row.confidentiality).rank() > actor.clearance.rank()):
        raise NotFoundError(_("no case %s") % number, hint=_("'vaultd cases list' shows the cases"))
    return row


def create(vault: Vault, actor: Principal, new: NewCase, via: str = "cli") -> CaseRow:
    number = _text(new.number, _("case number"), required=True, name=True)
    title = _text(new.title, _("a title"), required=True)
    assert number is not None and title is not None
    if new.file_keep_months is not None and new.file_keep_months < 1:
        raise UsageError(_("--file-keep-months must be at least 1"))
    now = utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        refuse_unless(actor, Action.CASE_MANAGE, via, {"case": number})
        if db.case_by_number(conn, number) is not None:
            raise UsageError(_("case %s exists already") % number, hint=_("'vaultd cases show %s'") % number)
        values = dict(number=number, title=title, unit=_text(new.unit, _("unit name"), name=True),
                      handler=_text(new.handler, _("handler"), name=True),
                      party=_text(new.party, _("party"), name=True), confidentiality=new.confidentiality.value,
                      act_ended_at=new.act_ended_at, file_keep_months=new.file_keep_months)
        db.add_case(conn, **values, opened_at=now, opened_by=actor_of(actor, via).label)
        audit.append(conn, Event("case.create", actor_of(actor, via), {
            k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items()}), now)
        row = db.case_by_number(conn, number)
    assert row is not None
    return row


def _may_view(actor: Principal) -> bool:
    return any(access.decide(actor, a, now=utcnow()).allowed for a in (Action.CASE_MANAGE, Action.RETENTION_VIEW))


def show(vault: Vault, actor: Principal, number: str, via: str = "cli") -> CaseDetail:
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        if not _may_view(actor):
            refuse_unless(actor, Action.CASE_MANAGE, via, {"case": number})
        row = load(conn, actor, number)
        ids = db.recording_ids(conn, row.id)
        recs = [rec_db.get(conn, i) for i in ids]
        seen = [r for r in recs if access.visible(actor, ref_of(r))]
        labels = labels_db.labels_of(conn, [r.id for r in seen])
        unready = tuple(r.id for r in seen if missing_for_case(labels.get(r.id), r.media_type))
        holds = tuple(h.id for h in db.list_holds(conn, active_only=True) if h.case_id == row.id)
        audit.append(conn, Event("case.show", actor_of(actor, via), {"case": row.number}))
    return CaseDetail(row, tuple(r.id for r in seen), len(recs) - len(seen), unready, holds)


def list_(vault: Vault, actor: Principal, status: str | None = None, unit: str | None = None,
          via: str = "cli") -> list[CaseRow]:
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        if not _may_view(actor):
            refuse_unless(actor, Action.CASE_MANAGE, via, {})
        rows = [r for r in db.list_cases(conn, status=status, unit=unit)
                if actor.local_owner or Level(r.confidentiality).rank() <= actor.clearance.rank()]
        audit.append(conn, Event("case.list", actor_of(actor, via), {"status": status, "unit": unit,
                                                                      "cases": [r.number for r in rows]}))
    return rows


def link(vault: Vault, actor: Principal, number: str, refs: list[str], via: str = "cli") -> list[str]:
    """Link recordings to an open case as evidence; returns the ids newly linked."""
    if not refs:
        raise UsageError(_("name at least one recording"))
    now, linked = utcnow(), []
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        refuse_unless(actor, Action.CASE_MANAGE, via, {"case": number})
        row = load(conn, actor, number)
        if row.status != "open":
            raise UsageError(_("case %s is %s: recordings can only be linked to an open case") % (number, row.status))
        for ref in refs:
            rec = visible_recording(conn, vault, actor, ref, via)
            if db.link(conn, row.id, rec.id, at=now, by=actor_of(actor, via).label):
                linked.append(rec.id)
                audit.append(conn, Event("case.link", actor_of(actor, via), {"case": row.number},
                                         EvidenceRef.of(rec)), now)
    return linked


def close(vault: Vault, actor: Principal, number: str, act_ended_at: datetime | None = None,
          via: str = "cli") -> CaseRow:
    """Close a case; every linked recording must be labelled first (R2, R3)."""
    now = utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        refuse_unless(actor, Action.CASE_CLOSE, via, {"case": number})
        row = load(conn, actor, number)
        if row.status != "open":
            raise UsageError(_("case %s is already %s") % (number, row.status))
        recs = [rec_db.get(conn, i) for i in db.recording_ids(conn, row.id)]
        labels = labels_db.labels_of(conn, [r.id for r in recs])
        missing = {r.id: missing_for_case(labels.get(r.id), r.media_type) for r in recs}
        missing = {k: v for k, v in missing.items() if v}
        if missing:
            listing = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(missing.items()))
            raise UsageError(_("case %s cannot close: recordings not labelled (%s)") % (number, listing),
                             hint=_("label them with 'vaultd recordings label ID --case-number ... --party ... "
                                    "--handler ... --proves ...' (audio also --description)"))
        ended = act_ended_at or row.act_ended_at or now
        db.update_case(conn, row.id, closed_at=now, closed_by=actor_of(actor, via).label, act_ended_at=ended)
        audit.append(conn, Event("case.close", actor_of(actor, via), {
            "case": row.number, "act_ended_at": ended.isoformat(), "recordings": [r.id for r in recs]}), now)
        out = db.case_by_id(conn, row.id)
    assert out is not None
    return out


def archive(vault: Vault, actor: Principal, number: str, via: str = "cli") -> CaseRow:
    now = utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        refuse_unless(actor, Action.CASE_CLOSE, via, {"case": number})
        row = load(conn, actor, number)
        if row.status != "closed":
            raise UsageError(_("case %s is %s: only a closed case can be archived") % (number, row.status))
        db.update_case(conn, row.id, archived_at=now, archived_by=actor_of(actor, via).label)
        due = file_deadline(row)
        audit.append(conn, Event("case.archive", actor_of(actor, via), {
            "case": row.number, "file_deadline": due.isoformat() if due else None,
            "late": bool(due and now > due)}), now)
        out = db.case_by_id(conn, row.id)
    assert out is not None
    return out
