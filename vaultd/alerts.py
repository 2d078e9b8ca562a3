"""Alerts: conditions a person must see and act on (unknown camera, scrub
mismatch, overdue docking, ...). Shown by ``vaultd status``, ``vaultd alerts``
and the API; raising and clearing one are audit entries.

An open alert with the same kind and subject is not raised twice: it is
counted and its ``last_seen_at`` moves on, so a condition that persists does
not flood the list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from vaultd import audit
from vaultd.audit import Event
from vaultd.catalog.schema import alerts as alerts_t
from vaultd.errors import NotFoundError, UsageError
from vaultd.i18n import _
from vaultd.model import Actor
from vaultd.vault import Vault, utcnow

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Alert:
    id: int
    kind: str
    subject: str
    severity: str
    message: str
    details: Mapping[str, Any]
    raised_at: datetime
    last_seen_at: datetime
    count: int
    cleared_at: datetime | None = None
    cleared_by: str | None = None
    clear_note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "subject": self.subject, "severity": self.severity,
                "message": self.message, "details": dict(self.details),
                "raised_at": self.raised_at.isoformat(), "last_seen_at": self.last_seen_at.isoformat(),
                "count": self.count,
                "cleared_at": self.cleared_at.isoformat() if self.cleared_at else None,
                "cleared_by": self.cleared_by, "clear_note": self.clear_note}


def _row(r: Any) -> Alert:
    return Alert(r.id, r.kind, r.subject, r.severity, r.message, json.loads(r.details), r.raised_at,
                 r.last_seen_at, int(r._mapping["count"]), r.cleared_at, r.cleared_by, r.clear_note)


def raise_alert(conn: Connection, kind: str, subject: str, message: str, *, actor: Actor,
                severity: str = "warning", details: Mapping[str, Any] | None = None,
                at: datetime | None = None) -> int:
    """Raise (or re-count) an alert inside the caller's transaction; returns its id.

    The first raise of an open (kind, subject) is an ``alert.raised`` audit entry;
    repeats only bump the count."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r}")
    at = at or utcnow()
    existing = conn.execute(select(alerts_t.c.id, alerts_t.c.count).where(
        alerts_t.c.kind == kind, alerts_t.c.subject == subject, alerts_t.c.cleared_at.is_(None))).first()
    if existing is not None:
        conn.execute(update(alerts_t).where(alerts_t.c.id == existing.id).values(
            count=int(existing[1]) + 1, last_seen_at=at, message=message))
        return int(existing.id)
    new_id = conn.execute(alerts_t.insert().values(
        kind=kind, subject=subject, severity=severity, message=message,
        details=json.dumps(dict(details or {}), ensure_ascii=False, sort_keys=True),
        raised_at=at, last_seen_at=at, count=1)).inserted_primary_key[0]  # type: ignore[index]
    audit.append(conn, Event("alert.raised", actor, {
        "alert_id": int(new_id), "kind": kind, "subject": subject, "severity": severity,
        "message": message, "details": dict(details or {})}), at)
    return int(new_id)


def open_alerts(conn: Connection, kind: str | None = None) -> list[Alert]:
    q = select(alerts_t).where(alerts_t.c.cleared_at.is_(None))
    if kind is not None:
        q = q.where(alerts_t.c.kind == kind)
    return [_row(r) for r in conn.execute(q.order_by(alerts_t.c.id))]


def list_alerts(vault: Vault, *, include_cleared: bool = False, limit: int = 200) -> list[Alert]:
    with vault.engine.connect() as conn:
        q = select(alerts_t)
        if not include_cleared:
            q = q.where(alerts_t.c.cleared_at.is_(None))
        return [_row(r) for r in conn.execute(q.order_by(alerts_t.c.id.desc()).limit(limit))]


def clear_alert(vault: Vault, alert_id: int, actor: Actor, note: str) -> Alert:
    """Mark an alert as dealt with; the note says how. An audit entry."""
    if not note.strip():
        raise UsageError(_("clearing alert %d needs a note saying what was done") % alert_id,
                         hint=_("pass --note TEXT"))
    at = utcnow()
    with vault.engine.begin() as conn:
        row = conn.execute(select(alerts_t).where(alerts_t.c.id == alert_id)).first()
        if row is None:
            raise NotFoundError(_("no alert %d") % alert_id, hint=_("see 'vaultd alerts list'"))
        if row.cleared_at is not None:
            raise UsageError(_("alert %d was already cleared at %s by %s")
                             % (alert_id, row.cleared_at.isoformat(), row.cleared_by))
        conn.execute(update(alerts_t).where(alerts_t.c.id == alert_id).values(
            cleared_at=at, cleared_by=actor.label, clear_note=note))
        audit.append(conn, Event("alert.cleared", actor, {"alert_id": alert_id, "kind": row.kind,
                                                           "subject": row.subject, "note": note}), at)
        row = conn.execute(select(alerts_t).where(alerts_t.c.id == alert_id)).one()
    return _row(row)
