"""Retention classes, class changes, purge batches and tombstones in the catalog."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from vaultd.catalog.schema import (
    class_changes,
    purge_approvals,
    purge_batches,
    purge_items,
    recordings,
    retention_classes,
    tombstones,
)


@dataclass(frozen=True)
class ClassChange:
    id: str
    recording_id: str
    from_class: str
    to_class: str
    reason: str
    requested_by: str
    requested_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None


@dataclass(frozen=True)
class BatchItem:
    recording_id: str
    class_name: str
    expires_at: datetime
    why: str


@dataclass(frozen=True)
class Batch:
    id: str
    created_at: datetime
    created_by: str
    status: str  # open | purged
    purged_at: datetime | None
    purged_by: str | None
    items: tuple[BatchItem, ...]
    approvers: tuple[str, ...]


@dataclass(frozen=True)
class Tombstone:
    recording_id: str
    sha256: str
    size_bytes: int
    batch_id: str
    class_name: str
    purged_at: datetime
    purged_by: str
    approvers: tuple[str, ...]
    snapshot: dict[str, Any]
    audit_index: int | None


def _fields(cls: type, row: Any) -> dict[str, Any]:
    m = row._mapping
    return {f.name: m[f.name] for f in fields(cls) if f.name in m}


# -- classes -------------------------------------------------------------------------------

def classes_of(conn: Connection, ids: Sequence[str] | None = None) -> dict[str, str]:
    q = select(retention_classes.c.recording_id, retention_classes.c.class_name)
    if ids is not None:
        q = q.where(retention_classes.c.recording_id.in_(list(ids)))
    return {r[0]: r[1] for r in conn.execute(q)}


def set_class(conn: Connection, recording_id: str, class_name: str, *, by: str, at: datetime,
              change_id: str | None) -> None:
    conn.execute(delete(retention_classes).where(retention_classes.c.recording_id == recording_id))
    conn.execute(insert(retention_classes).values(recording_id=recording_id, class_name=class_name, set_at=at,
                                                  set_by=by, change_id=change_id))


def add_change(conn: Connection, **values: Any) -> None:
    conn.execute(insert(class_changes).values(**values, status="pending"))


def get_change(conn: Connection, change_id: str) -> ClassChange | None:
    row = conn.execute(select(class_changes).where(class_changes.c.id == change_id)).first()
    return ClassChange(**_fields(ClassChange, row)) if row else None


def pending_changes(conn: Connection) -> list[ClassChange]:
    q = select(class_changes).where(class_changes.c.status == "pending").order_by(class_changes.c.requested_at)
    return [ClassChange(**_fields(ClassChange, r)) for r in conn.execute(q)]


def decide_change(conn: Connection, change_id: str, *, status: str, by: str, at: datetime) -> bool:
    result = conn.execute(update(class_changes).where(
        class_changes.c.id == change_id, class_changes.c.status == "pending").values(
        status=status, decided_by=by, decided_at=at))
    return bool(result.rowcount)


# -- batches -------------------------------------------------------------------------------

def add_batch(conn: Connection, batch_id: str, *, by: str, at: datetime, items: Sequence[BatchItem]) -> None:
    conn.execute(insert(purge_batches).values(id=batch_id, created_at=at, created_by=by, status="open"))
    if items:
        conn.execute(insert(purge_items), [
            {"batch_id": batch_id, "recording_id": i.recording_id, "class_name": i.class_name,
             "expires_at": i.expires_at, "why": i.why} for i in items])


def get_batch(conn: Connection, batch_id: str) -> Batch | None:
    row = conn.execute(select(purge_batches).where(purge_batches.c.id == batch_id)).first()
    if row is None:
        return None
    items = tuple(BatchItem(**_fields(BatchItem, r)) for r in conn.execute(
        select(purge_items).where(purge_items.c.batch_id == batch_id).order_by(purge_items.c.recording_id)))
    approvers = tuple(r[0] for r in conn.execute(
        select(purge_approvals.c.approver).where(purge_approvals.c.batch_id == batch_id)
        .order_by(purge_approvals.c.approved_at)))
    return Batch(**_fields(Batch, row), items=items, approvers=approvers)


def open_batches(conn: Connection) -> list[str]:
    q = select(purge_batches.c.id).where(purge_batches.c.status == "open").order_by(purge_batches.c.created_at)
    return [r[0] for r in conn.execute(q)]


def in_open_batch(conn: Connection) -> set[str]:
    """Recording ids already waiting in an open batch."""
    q = select(purge_items.c.recording_id).join(purge_batches, purge_batches.c.id == purge_items.c.batch_id).where(
        purge_batches.c.status == "open")
    return {r[0] for r in conn.execute(q)}


def add_approval(conn: Connection, batch_id: str, approver: str, at: datetime) -> bool:
    exists = conn.execute(select(purge_approvals.c.approver).where(
        purge_approvals.c.batch_id == batch_id, purge_approvals.c.approver == approver)).first()
    if exists:
        return False
    conn.execute(insert(purge_approvals).values(batch_id=batch_id, approver=approver, approved_at=at))
    return True


def finish_batch(conn: Connection, batch_id: str, *, by: str, at: datetime) -> bool:
    result = conn.execute(update(purge_batches).where(
        purge_batches.c.id == batch_id, purge_batches.c.status == "open").values(
        status="purged", purged_at=at, purged_by=by))
    return bool(result.rowcount)


# -- tombstones ----------------------------------------------------------------------------

def add_tombstone(conn: Connection, t: Tombstone) -> None:
    conn.execute(insert(tombstones).values(
        recording_id=t.recording_id, sha256=t.sha256, size_bytes=t.size_bytes, batch_id=t.batch_id,
        class_name=t.class_name, purged_at=t.purged_at, purged_by=t.purged_by,
        approvers=json.dumps(list(t.approvers), ensure_ascii=False),
        snapshot=json.dumps(t.snapshot, ensure_ascii=False, sort_keys=True), audit_index=t.audit_index))


def _tomb(row: Any) -> Tombstone:
    m = row._mapping
    return Tombstone(m["recording_id"], m["sha256"], m["size_bytes"], m["batch_id"], m["class_name"],
                     m["purged_at"], m["purged_by"], tuple(json.loads(m["approvers"])), json.loads(m["snapshot"]),
                     m["audit_index"])


def tombstone(conn: Connection, recording_id: str) -> Tombstone | None:
    row = conn.execute(select(tombstones).where(tombstones.c.recording_id == recording_id)).first()
    return _tomb(row) if row else None


def purged_ids(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute(select(tombstones.c.recording_id))}


def set_tombstone_index(conn: Connection, recording_id: str, index: int) -> None:
    conn.execute(update(tombstones).where(tombstones.c.recording_id == recording_id).values(audit_index=index))


def all_recording_times(conn: Connection) -> list[tuple[str, datetime | None, datetime]]:
    q = select(recordings.c.id, recordings.c.recorded_start, recordings.c.ingested_at).order_by(recordings.c.id)
    return [(r[0], r[1], r[2]) for r in conn.execute(q)]
