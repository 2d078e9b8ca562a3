"""Spot checks for the legal office (R10): a reproducible random sample of
recordings, and findings per recording against the checklist.

The sample is ``draw_sample(ids, percent, seed)``: pure, the ids sorted, then
``random.Random(seed).sample``; the seed is stored with the check and written
to the audit log, so anyone can draw the same sample again from the same
population (``spotcheck draw ... --seed S``). Findings are audit entries too;
a later finding on the same item supersedes an earlier one, both are kept.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vaultd import audit, gaps
from vaultd.access import Action, Principal
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import compliance as db
from vaultd.catalog import recordings as rec_db
from vaultd.compliance import label_deadline_for, timeliness, unlabelled
from vaultd.errors import NotFoundError, UsageError
from vaultd.i18n import _
from vaultd.people import actor_of, require
from vaultd.vault import Vault, utcnow

#: what the legal office checks on each sampled recording (003 att.3 §14)
CHECKLIST = {
    "recorded": "recorded as required (应当记录的已记录)",
    "uninterrupted": "recorded without interruption, or the interruption explained (连续、无中断)",
    "on-time": "handed over (uploaded) on time (按时移交存储)",
    "labelled": "labelled: case number, party, handler (按规定标注)",
    "access": "accessed and used properly (查阅、使用规范)",
}
RESULTS = ("pass", "fail", "n/a")


def sample_size(population: int, percent: float) -> int:
    """Ceil of ``percent`` of ``population``; at least one when there is any."""
    if population <= 0:
        return 0
    return min(population, max(1, math.ceil(population * percent / 100 - 1e-9)))


def draw_sample(ids: Sequence[str], percent: float, seed: str) -> list[str]:
    """The sample (pure, reproducible): the same ids, percent and seed give the same list."""
    population = sorted(set(ids))
    return random.Random(seed).sample(population, sample_size(len(population), percent))


@dataclass(frozen=True)
class SpotCheck:
    id: str
    drawn_at: datetime
    drawn_by: str
    seed: str
    percent: float
    unit: str | None
    since: datetime | None
    until: datetime | None
    population: int
    sample: list[str]
    findings: list[dict[str, Any]]
    hints: dict[str, dict[str, Any]]  # per recording: what the catalog says about each checklist item

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "drawn_at": self.drawn_at.isoformat(), "drawn_by": self.drawn_by,
                "seed": self.seed, "percent": self.percent, "unit": self.unit,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "population": self.population, "sample": self.sample,
                "findings": [{**f, "found_at": f["found_at"].isoformat()} for f in self.findings],
                "hints": self.hints, "checklist": CHECKLIST}


def draw(vault: Vault, actor: Principal, percent: float, *, unit: str | None = None,
         since: datetime | None = None, until: datetime | None = None, seed: str | None = None,
         via: str = "cli") -> SpotCheck:
    """Draw and keep a sample of ``percent`` % of the recordings made in [since, until)."""
    require(vault, actor, Action.SPOT_CHECK, via, _("draw spot checks"))
    if not 0 < percent <= 100:
        raise UsageError(_("--percent must be more than 0 and at most 100, got %s") % percent)
    if since and until and since >= until:
        raise UsageError(_("--from must be before --to"))
    seed = seed or secrets.token_hex(16)
    if not seed.strip() or len(seed) > 64:
        raise UsageError(_("a seed is 1 to 64 characters"))
    now, check_id = utcnow(), "sc" + secrets.token_hex(5)
    with vault.engine.begin() as conn:
        ids = [f.id for f in db.facts(conn, since=since, until=until, unit=unit, live_only=True,
                                           records_only=True)]
        sample = draw_sample(ids, percent, seed)
        db.add_spot_check(conn, check_id=check_id, at=now, by=actor_of(actor, via).label, seed=seed,
                          percent=percent, unit=unit, since=since, until=until, population=len(ids),
                          sample=sample)
        audit.append(conn, Event("spotcheck.draw", actor_of(actor, via), {
            "id": check_id, "seed": seed, "percent": percent, "unit": unit,
            "since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
            "population": len(ids), "sample": sample}), now)
    return show(vault, actor, check_id, via=via, log=False)


def show(vault: Vault, actor: Principal, check_id: str, *, via: str = "cli", log: bool = True) -> SpotCheck:
    """A spot check, its findings, and per recording what the catalog says."""
    require(vault, actor, Action.SPOT_CHECK, via, _("read spot checks"))
    with vault.engine.begin() as conn:
        row = db.spot_check(conn, check_id)
        if row is None:
            raise NotFoundError(_("no spot check %s") % check_id, hint=_("'vaultd spotcheck list' shows them"))
        hints = _hints(vault, conn, row["sample"])
        if log:
            audit.append(conn, Event("spotcheck.show", actor_of(actor, via), {"id": check_id}))
        found = db.findings(conn, check_id)
    return SpotCheck(row["id"], row["drawn_at"], row["drawn_by"], row["seed"], row["percent"], row["unit"],
                     row["since"], row["until"], row["population"], row["sample"], found, hints)


def _hints(vault: Vault, conn: Any, sample: list[str]) -> dict[str, dict[str, Any]]:
    facts = {f.id: f for f in db.facts(conn, ids=sample)}
    trips = db.all_trips(conn)
    due = label_deadline_for(vault)
    serials = sorted({f.device_serial for f in facts.values() if f.device_serial})
    found = [g for s in serials for g in gaps.gaps_in(conn, vault.config.compliance, device_serial=s)]
    out: dict[str, dict[str, Any]] = {}
    for rid in sample:
        f = facts.get(rid)
        if f is None:
            out[rid] = {"purged": True}
            continue
        t = timeliness(f, trips, vault.config.ingest.deadline_hours)
        u = unlabelled(f, due, utcnow())
        touching = [g for g in found if rid in (g.id, g.before_id)]
        reads = db.audit_of(conn, rid)
        out[rid] = {
            "on-time": {"status": t.status, "deadline": t.deadline.at.isoformat() if t.deadline.at else None,
                        "late_reason": f.late_reason},
            "labelled": {"labelled_at": f.labelled_at.isoformat() if f.labelled_at else None,
                         "overdue": bool(u and u.overdue)},
            "uninterrupted": [{"gap": g.id, "gap_s": g.gap_s, "note": g.note} for g in touching],
            "access": {kind: sum(1 for t_, _a, _at in reads if t_ == kind)
                       for kind in sorted({t_ for t_, _a, _at in reads})},
        }
    return out


def finding(vault: Vault, actor: Principal, check_id: str, ref: str, item: str, result: str, note: str = "",
            via: str = "cli") -> dict[str, Any]:
    """Record one finding on one sampled recording against one checklist item."""
    require(vault, actor, Action.SPOT_CHECK, via, _("record spot-check findings"))
    if item not in CHECKLIST:
        raise UsageError(_("unknown checklist item %r") % item, hint=_("one of: %s") % ", ".join(CHECKLIST))
    if result not in RESULTS:
        raise UsageError(_("unknown result %r") % result, hint=_("one of: %s") % ", ".join(RESULTS))
    if result == "fail" and not note.strip():
        raise UsageError(_("a failed item needs a note saying what is wrong"), hint=_("pass --note TEXT"))
    now = utcnow()
    with vault.engine.begin() as conn:
        row = db.spot_check(conn, check_id)
        if row is None:
            raise NotFoundError(_("no spot check %s") % check_id, hint=_("'vaultd spotcheck list' shows them"))
        rec = rec_db.get(conn, ref)
        if rec.id not in row["sample"]:
            raise UsageError(_("recording %s is not in spot check %s") % (rec.id, check_id),
                             hint=_("'vaultd spotcheck show %s' lists its sample") % check_id)
        fid = db.add_finding(conn, check_id=check_id, recording_id=rec.id, item=item, result=result,
                             note=note.strip(), by=actor_of(actor, via).label, at=now)
        audit.append(conn, Event("spotcheck.finding", actor_of(actor, via), {
            "check": check_id, "finding": fid, "item": item, "result": result, "note": note.strip()},
            EvidenceRef.of(rec)), now)
    return {"id": fid, "check": check_id, "recording_id": rec.id, "item": item, "result": result,
            "note": note.strip(), "found_at": now.isoformat()}


def list_checks(vault: Vault, actor: Principal, via: str = "cli") -> list[dict[str, Any]]:
    require(vault, actor, Action.SPOT_CHECK, via, _("list spot checks"))
    with vault.engine.connect() as conn:
        return db.spot_check_list(conn)
