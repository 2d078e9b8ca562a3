"""Recording labels (R2, R3) in the catalog."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from vaultd.catalog.schema import labels

#: the text fields a person may set with ``vaultd recordings label``
TEXT_FIELDS = ("case_number", "party", "handler", "making_method", "maker", "proves", "description")


@dataclass(frozen=True)
class Label:
    recording_id: str
    case_number: str | None = None
    party: str | None = None  # 行政相对人
    handler: str | None = None  # 承办人
    making_method: str | None = None  # None: the recording's own (from the device)
    maker: str | None = None  # None: the recording's own (the officer)
    making_time: datetime | None = None  # None: when recording started
    proves: str | None = None  # 证明对象
    description: str | None = None  # 文字说明
    labelled_at: datetime | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    def values(self) -> dict[str, object]:
        """The label's settable fields (times as ISO strings), for audit entries and JSON."""
        out: dict[str, object] = {k: getattr(self, k) for k in TEXT_FIELDS}
        out["making_time"] = self.making_time.isoformat() if self.making_time else None
        return out


def _label(row: Any) -> Label:
    m = row._mapping
    return Label(**{k: m[k] for k in m.keys()})


def get(conn: Connection, recording_id: str) -> Label | None:
    row = conn.execute(select(labels).where(labels.c.recording_id == recording_id)).first()
    return _label(row) if row else None


def labels_of(conn: Connection, recording_ids: Sequence[str] | None = None) -> dict[str, Label]:
    """Labels by recording id (all of them when ``recording_ids`` is None)."""
    q = select(labels)
    if recording_ids is not None:
        q = q.where(labels.c.recording_id.in_(list(recording_ids)))
    return {r.recording_id: _label(r) for r in conn.execute(q)}


def put(conn: Connection, label: Label) -> None:
    values = {c.name: getattr(label, c.name) for c in labels.columns}
    conn.execute(delete(labels).where(labels.c.recording_id == label.recording_id))
    conn.execute(insert(labels).values(**values))
