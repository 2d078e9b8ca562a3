"""The record of every export: what left the vault, to whom, and its hashes (R7)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from vaultd.catalog import cases as cases_db
from vaultd.catalog.schema import exports


@dataclass(frozen=True)
class ExportRow:
    id: str
    status: str
    created_at: datetime
    finished_at: datetime | None
    maker: str
    grant_id: str
    requester: str
    approver: str
    purpose: str
    case_number: str | None
    recording_ids: tuple[str, ...]
    out_path: str
    packages: tuple[dict[str, Any], ...]
    payload_bytes: int
    checkpoint_size: int | None
    entry_index: int | None
    problem: str | None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["created_at"] = self.created_at.isoformat()
        d["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        d["recording_ids"] = list(self.recording_ids)
        d["packages"] = list(self.packages)
        return d


def _row(r: Any) -> ExportRow:
    m = dict(r._mapping)
    m["recording_ids"] = tuple(json.loads(m["recording_ids"]))
    m["packages"] = tuple(json.loads(m["packages"]))
    return ExportRow(**m)


def add(conn: Connection, *, export_id: str, at: datetime, maker: str, grant_id: str, requester: str,
        approver: str, purpose: str, case_number: str | None, recording_ids: list[str], out_path: str,
        payload_bytes: int, entry_index: int) -> None:
    conn.execute(insert(exports).values(
        id=export_id, status="building", created_at=at, maker=maker, grant_id=grant_id, requester=requester,
        approver=approver, purpose=purpose, case_number=case_number, recording_ids=json.dumps(recording_ids),
        out_path=out_path, packages="[]", payload_bytes=payload_bytes, entry_index=entry_index))


def finish(conn: Connection, export_id: str, *, at: datetime, status: str, packages: list[dict[str, Any]],
           checkpoint_size: int | None, problem: str | None) -> None:
    conn.execute(update(exports).where(exports.c.id == export_id).values(
        status=status, finished_at=at, packages=json.dumps(packages), checkpoint_size=checkpoint_size,
        problem=problem))


def get(conn: Connection, export_id: str) -> ExportRow | None:
    r = conn.execute(select(exports).where(exports.c.id == export_id)).first()
    return _row(r) if r else None


def all_exports(conn: Connection, limit: int = 1000) -> list[ExportRow]:
    return [_row(r) for r in conn.execute(select(exports).order_by(exports.c.created_at.desc()).limit(limit))]


def last_checkpoint_size(conn: Connection) -> int | None:
    """The size of the log checkpoint the latest complete export carried."""
    value = conn.execute(select(func.max(exports.c.checkpoint_size)).where(exports.c.status == "complete")).scalar()
    return int(value) if value is not None else None


def case_recording_ids(conn: Connection, case_number: str) -> list[str] | None:
    """Recordings linked to the case with this number; None when no such case."""
    case = cases_db.case_by_number(conn, case_number)
    return None if case is None else sorted(cases_db.recording_ids(conn, case.id))
