"""A recording's unit over time (R13, #17.3).

A recording belongs to the unit of the officer who held the camera when it
was made; that is set at ingest. Officers move between units, and a unit can
be set wrong: an admin reassigns recordings (one, or an officer's within a
time range) to another unit, with a reason. Each recording moved is an audit
entry of its own (``recording.unit_change``, with the unit before and after),
so ``audit list --recording`` shows when and why its unit changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from vaultd import audit
from vaultd.access import Action, Principal
from vaultd.audit import EvidenceRef, Event
from vaultd.catalog import recordings as rec_db
from vaultd.catalog.schema import recordings
from vaultd.errors import UsageError
from vaultd.i18n import _
from vaultd.people import actor_of, require
from vaultd.vault import Vault

MAX_AT_ONCE = 100_000


@dataclass(frozen=True)
class Selection:
    """Which recordings: one by id (or sha256 prefix), or an officer's (警号) in [since, until)."""
    recording: str | None = None
    officer: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Moved:
    recording_id: str
    unit_before: str | None
    unit_after: str


def reassign(vault: Vault, actor: Principal, which: Selection, unit: str, reason: str, via: str) -> list[Moved]:
    """Set the unit of the selected recordings (an admin, with a reason); those
    already in ``unit`` are left alone. One audit entry per recording moved."""
    require(vault, actor, Action.MANAGE_USERS, via, _("reassign recordings to another unit"))
    unit, reason = unit.strip(), reason.strip()
    if not unit:
        raise UsageError(_("which unit?"), hint=_("give --unit, e.g. --unit 二大队"))
    if not reason:
        raise UsageError(_("reassigning recordings needs a reason"), hint=_("give --reason TEXT"))
    if (which.recording is None) == (which.officer is None):
        raise UsageError(_("give one recording, or an officer (with --since/--until)"))
    if which.recording is not None and (which.since or which.until):
        raise UsageError(_("--since and --until go with --officer"))
    with vault.engine.begin() as conn:
        if which.recording is not None:
            recs = [rec_db.get(conn, which.recording)]
        else:
            q = select(recordings.c.id).where(recordings.c.officer_id == which.officer)
            if which.since is not None:
                q = q.where(recordings.c.recorded_start >= which.since)
            if which.until is not None:
                q = q.where(recordings.c.recorded_start < which.until)
            ids = [r.id for r in conn.execute(q.order_by(recordings.c.recorded_start, recordings.c.id)
                                              .limit(MAX_AT_ONCE + 1))]
            if len(ids) > MAX_AT_ONCE:
                raise UsageError(_("more than %d recordings at once") % MAX_AT_ONCE,
                                 hint=_("narrow --since/--until"))
            recs = [rec_db.get(conn, i) for i in ids]
        moved = [Moved(r.id, r.unit, unit) for r in recs if r.unit != unit]
        who = actor_of(actor, via)
        for m in moved:
            conn.execute(update(recordings).where(recordings.c.id == m.recording_id).values(unit=unit))
        by_id = {r.id: r for r in recs}
        audit.append_many(conn, [Event("recording.unit_change", who, {
            "unit_before": m.unit_before, "unit_after": unit, "reason": reason,
            "officer": by_id[m.recording_id].officer_id}, EvidenceRef.of(by_id[m.recording_id])) for m in moved])
    return moved
