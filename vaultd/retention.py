"""Retention (R6): what has expired, purge batches, approvals, the purge.

The decision is pure (``plan``, from ``vaultd.retention_plan``); this module
loads its inputs and does what follows. A purge:

1. runs only for a batch approved by ``[retention] purge_approvals`` distinct
   named users (2 by default, 1 allowed, never 0);
2. re-plans every item at purge time: anything now held, in an open case,
   not yet expired or reclassified longer is skipped and said so;
3. per recording: ``retention.purge.requested`` (audit) and the tombstone
   (all metadata, the hash) in one transaction, then ``Store.purge`` (the only
   deletion of an original anywhere in vaultd), then ``retention.purge.done``.
   A run cut off in between is finished by the next run of the same batch.

``prepare_scheduled`` is the daemon's weekly job: it gathers what will have
expired ``notify_ahead_days`` from now into a batch and raises an alert.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from vaultd import alerts, audit, faults
from vaultd import retention_policy as policy_mod
from vaultd.access import Action, Principal, Role
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import cases as cases_db
from vaultd.catalog import labels as labels_db
from vaultd.catalog import recordings as rec_db
from vaultd.catalog import retention as db
from vaultd.catalog.retention import Batch, BatchItem, Tombstone
from vaultd.errors import AccessDeniedError, NotFoundError, UsageError
from vaultd.i18n import _
from vaultd.model import Recording
from vaultd.people import actor_of, refuse_unless
from vaultd.retention_plan import CaseState, Decision, Item, Verdict, plan
from vaultd.retention_policy import Policy
from vaultd.vault import Vault, utcnow

__all__ = ["CaseState", "Decision", "Item", "Verdict", "plan", "policy_of", "prepare_scheduled", "purge"]
log = logging.getLogger(__name__)


def policy_of(vault: Vault) -> Policy:
    """``[retention] policy_file`` (relative to the home), else ``<home>/retention.toml``, else the defaults."""
    name, root = vault.config.retention.policy_file, vault.layout.root
    if name:
        return policy_mod.load(root / name)
    default = root / "retention.toml"
    return policy_mod.load(default if default.is_file() else None)


def scheduler_principal() -> Principal:
    """Who the daemon's scheduled job acts as (a service with the station's rights)."""
    return Principal("service:retention", frozenset(Role), local_owner=True)


def load_items(conn: Connection, ids: Sequence[str] | None = None) -> list[Item]:
    """The plan's inputs for ``ids`` (every recording when None)."""
    wanted = set(ids) if ids is not None else None
    times = [t for t in db.all_recording_times(conn) if wanted is None or t[0] in wanted]
    classes = db.classes_of(conn, ids)
    cases = cases_db.cases_of(conn, ids)
    holds = cases_db.active_holds_by_recording(conn, ids)
    purged = db.purged_ids(conn)
    return [Item(rid, start, ingested, classes.get(rid),
                 tuple(CaseState(c.number, c.closed_at, c.file_keep_months) for c in cases.get(rid, [])),
                 tuple(holds.get(rid, [])), rid in purged) for rid, start, ingested in times]


def plan_vault(vault: Vault, actor: Principal, at: datetime, via: str = "cli") -> list[Decision]:
    """Every recording's decision at ``at`` (pure plan over the catalog)."""
    policy = policy_of(vault)
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        refuse_unless(actor, Action.RETENTION_VIEW, via, {})
        decisions = plan(load_items(conn), policy, at)
        audit.append(conn, Event("retention.plan", actor_of(actor, via), {
            "at": at.isoformat(), "expired": [d.recording_id for d in decisions if d.purgeable]}))
    return decisions


def create_batch(vault: Vault, actor: Principal, *, now: datetime | None = None,
                 ahead: timedelta = timedelta(0), via: str = "cli") -> Batch | None:
    """Gather what has expired by ``now + ahead`` (and is in no open batch) into a new batch."""
    now = now or utcnow()
    policy = policy_of(vault)
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        refuse_unless(actor, Action.PURGE_PREPARE, via, {})
        waiting = db.in_open_batch(conn)
        chosen = [d for d in plan(load_items(conn), policy, now + ahead)
                  if d.purgeable and d.recording_id not in waiting]
        if not chosen:
            return None
        batch_id = "b" + secrets.token_hex(5)
        items = [BatchItem(d.recording_id, d.class_name, d.expires_at, d.why) for d in chosen
                 if d.expires_at is not None]
        db.add_batch(conn, batch_id, by=actor.name, at=now, items=items)
        audit.append(conn, Event("retention.batch.create", actor_of(actor, via), {
            "batch": batch_id, "recordings": [i.recording_id for i in items], "policy": policy.source,
            "until": (now + ahead).isoformat()}), now)
        batch = db.get_batch(conn, batch_id)
    assert batch is not None
    return batch


def get_batch(vault: Vault, actor: Principal, batch_id: str, via: str = "cli") -> Batch:
    with audit.logging_refusals(vault), vault.engine.connect() as conn:
        refuse_unless(actor, Action.RETENTION_VIEW, via, {"batch": batch_id})
        return _load_batch(conn, batch_id)


def _load_batch(conn: Connection, batch_id: str) -> Batch:
    batch = db.get_batch(conn, batch_id)
    if batch is None:
        raise NotFoundError(_("no purge batch %s") % batch_id, hint=_("'vaultd retention batch list' shows them"))
    return batch


def open_batches(vault: Vault, actor: Principal, via: str = "cli") -> list[Batch]:
    with audit.logging_refusals(vault), vault.engine.connect() as conn:
        refuse_unless(actor, Action.RETENTION_VIEW, via, {})
        return [_load_batch(conn, b) for b in db.open_batches(conn)]


def approve_batch(vault: Vault, actor: Principal, batch_id: str, via: str = "cli") -> Batch:
    """Record one named user's approval of a batch (each approver once)."""
    if actor.local_owner:
        raise UsageError(_("a purge is approved by named users, not the station's local owner"),
                         hint=_("use --url/--token, or 'vaultd login'"))
    now = utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        refuse_unless(actor, Action.PURGE_APPROVE, via, {"batch": batch_id})
        batch = _load_batch(conn, batch_id)
        if batch.status != "open":
            raise UsageError(_("batch %s is %s") % (batch_id, batch.status))
        if not db.add_approval(conn, batch_id, actor.name, now):
            raise UsageError(_("%s has approved batch %s already; another person must approve")
                             % (actor.name, batch_id))
        audit.append(conn, Event("retention.batch.approve", actor_of(actor, via), {
            "batch": batch_id, "recordings": [i.recording_id for i in batch.items]}), now)
        out = _load_batch(conn, batch_id)
    return out


@dataclass(frozen=True)
class PurgeResult:
    batch_id: str
    purged: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (recording id, why)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _snapshot(conn: Connection, rec: Recording) -> dict[str, Any]:
    label = labels_db.get(conn, rec.id)
    cases = cases_db.cases_of(conn, [rec.id]).get(rec.id, [])
    return {"recording": _plain(dataclasses.asdict(rec)),
            "label": _plain(dataclasses.asdict(label)) if label else None,
            "cases": [c.number for c in cases], "class": db.classes_of(conn, [rec.id]).get(rec.id)}


def _check_approvals(vault: Vault, actor: Principal, batch: Batch, via: str) -> None:
    need = vault.config.retention.purge_approvals
    if len(set(batch.approvers)) < need:
        rule = "approvals-missing"
        raise audit.refusal(
            AccessDeniedError(_("batch %s has %d of the %d approvals a purge needs")
                              % (batch.id, len(set(batch.approvers)), need), rule=rule,
                              hint=_("distinct authorised users run 'vaultd retention batch approve %s'") % batch.id),
            Event("access.denied", actor_of(actor, via), {
                "action": Action.PURGE_RUN.value, "rule": rule, "batch": batch.id,
                "approvers": list(batch.approvers), "needed": need}))


def purge(vault: Vault, actor: Principal, batch_id: str, *, now: datetime | None = None,
          via: str = "cli") -> PurgeResult:
    """Delete the originals of an approved batch that still may go; keep tombstones."""
    now = now or utcnow()
    policy = policy_of(vault)
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        refuse_unless(actor, Action.PURGE_RUN, via, {"batch": batch_id})
        batch = _load_batch(conn, batch_id)
        if batch.status != "open":
            raise UsageError(_("batch %s was purged already") % batch_id)
        _check_approvals(vault, actor, batch, via)
        ids = [i.recording_id for i in batch.items]
        decisions = plan(load_items(conn, ids), policy, now)
        unfinished = {i for i in ids if (t := db.tombstone(conn, i)) is not None and t.audit_index is None
                      and t.batch_id == batch_id}
    purged, skipped = [], []
    for d in decisions:
        if d.purgeable or d.recording_id in unfinished:
            _purge_one(vault, actor, batch, d, now, via)
            purged.append(d.recording_id)
        else:
            skipped.append((d.recording_id, f"{d.verdict.value}: {d.why}"))
    with vault.engine.begin() as conn:
        if skipped:
            audit.append(conn, Event("retention.purge.skipped", actor_of(actor, via), {
                "batch": batch_id, "skipped": [list(s) for s in skipped]}), now)
        db.finish_batch(conn, batch_id, by=actor.name, at=now)
    return PurgeResult(batch_id, tuple(purged), tuple(skipped))


def _purge_one(vault: Vault, actor: Principal, batch: Batch, d: Decision, now: datetime, via: str) -> None:
    who = actor_of(actor, via)
    with vault.engine.begin() as conn:
        rec = rec_db.get(conn, d.recording_id)
        if db.tombstone(conn, rec.id) is None:
            audit.append(conn, Event("retention.purge.requested", who, {
                "batch": batch.id, "class": d.class_name, "why": d.why, "approvers": list(batch.approvers),
                "expires_at": d.expires_at.isoformat() if d.expires_at else None}, EvidenceRef.of(rec)), now)
            db.add_tombstone(conn, Tombstone(rec.id, rec.sha256, rec.size_bytes, batch.id, d.class_name, now,
                                             actor.name, batch.approvers, _snapshot(conn, rec), None))
    faults.point("purge.before-unlink")
    removed = vault.store.purge(rec.sha256)
    # a preview is derived from the original and goes with it (previews are below
    # retention in the layering: they know nothing of purges)
    from vaultd import preview

    preview.forget(vault, rec.id)
    with vault.engine.begin() as conn:
        index = audit.append(conn, Event("retention.purge.done", who, {
            "batch": batch.id, "removed": removed, "sha256": rec.sha256}, EvidenceRef.of(rec)), now)
        db.set_tombstone_index(conn, rec.id, index)
    log.info("purged original of %s (%s) in batch %s", rec.id, rec.sha256, batch.id)


def prepare_scheduled(vault: Vault, actor: Principal, now: datetime) -> str | None:
    """The daemon's weekly job: a batch of what expires within ``notify_ahead_days``,
    announced as an alert (API, ``vaultd alerts``) and in the log. None when nothing is due."""
    ahead = timedelta(days=vault.config.retention.notify_ahead_days)
    batch = create_batch(vault, actor, now=now, ahead=ahead, via="daemon")
    if batch is None:
        log.info("retention: nothing expires by %s", (now + ahead).isoformat())
        return None
    first = min(i.expires_at for i in batch.items)
    need = vault.config.retention.purge_approvals
    message = _("purge batch %s prepared: %d recordings may be purged from %s once %d people approve it") % (
        batch.id, len(batch.items), first.date().isoformat(), need)
    with vault.engine.begin() as conn:
        alerts.raise_alert(conn, "retention.batch", batch.id, message, actor=actor_of(actor, "daemon"),
                           severity="info", at=now, details={
                               "batch": batch.id, "recordings": len(batch.items),
                               "earliest": first.isoformat(), "approvals_needed": need})
    log.warning("%s", message)
    return batch.id
