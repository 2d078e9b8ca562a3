"""Cases, labels, holds and retention as JSON: one shape for the CLI and the API."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from vaultd.catalog.cases import HoldRow
from vaultd.catalog.labels import Label
from vaultd.catalog.retention import Batch, ClassChange
from vaultd.classes import Classified
from vaultd.labels import effective, is_labelled, labelling_deadline
from vaultd.model import Recording
from vaultd.retention import PurgeResult
from vaultd.retention_plan import Decision
from vaultd.vault import utcnow
from vaultd.views import iso


def label_json(rec: Recording, label: Label | None, tz: ZoneInfo, working_days: int = 2) -> dict[str, Any]:
    out = {"recording": rec.id, **effective(label, rec)}
    out["labelled"] = is_labelled(label, rec.media_type)
    due = labelling_deadline(rec.ingested_at, working_days, tz=tz)
    out["label_due"] = iso(due, tz)
    out["label_late"] = (label.labelled_at > due) if label and label.labelled_at else utcnow() > due
    out["labelled_at"] = iso(label.labelled_at, tz) if label else None
    out["updated_at"] = iso(label.updated_at, tz) if label else None
    out["updated_by"] = label.updated_by if label else None
    return out


def hold_json(h: HoldRow, tz: ZoneInfo) -> dict[str, Any]:
    return {"id": h.id, "recording": h.recording_id, "case": h.case_number, "reason": h.reason, "note": h.note,
            "set_by": h.set_by, "set_at": iso(h.set_at, tz), "active": h.active, "released_by": h.released_by,
            "released_at": iso(h.released_at, tz), "release_note": h.release_note}


def decision_json(d: Decision, tz: ZoneInfo) -> dict[str, Any]:
    return {"recording": d.recording_id, "class": d.class_name, "classified": d.classified,
            "verdict": d.verdict.value, "expires_at": iso(d.expires_at, tz), "why": d.why}


def batch_json(b: Batch, tz: ZoneInfo, needed: int) -> dict[str, Any]:
    return {"id": b.id, "status": b.status, "created_at": iso(b.created_at, tz), "created_by": b.created_by,
            "approvers": list(b.approvers), "approvals_needed": needed, "purged_at": iso(b.purged_at, tz),
            "purged_by": b.purged_by,
            "items": [{"recording": i.recording_id, "class": i.class_name, "expires_at": iso(i.expires_at, tz),
                       "why": i.why} for i in b.items]}


def purge_json(r: PurgeResult) -> dict[str, Any]:
    return {"batch": r.batch_id, "purged": list(r.purged),
            "skipped": [{"recording": rid, "why": why} for rid, why in r.skipped]}


def change_json(c: ClassChange, tz: ZoneInfo) -> dict[str, Any]:
    return {"id": c.id, "recording": c.recording_id, "from": c.from_class, "to": c.to_class, "reason": c.reason,
            "requested_by": c.requested_by, "requested_at": iso(c.requested_at, tz), "status": c.status,
            "decided_by": c.decided_by, "decided_at": iso(c.decided_at, tz)}


def classified_json(c: Classified) -> dict[str, Any]:
    return {"recording": c.recording_id, "old": c.old_class, "new": c.new_class, "applied": c.applied,
            "change": c.change_id}
