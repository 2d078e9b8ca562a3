"""Scrub: re-hash every stored original against the catalog.

``plan`` decides what to check; ``run`` does the reading. A mismatch or a
missing file is an integrity failure, never a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vaultd import audit
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import recordings as rec_db
from vaultd.catalog import sessions as ses_db
from vaultd.model import Actor
from vaultd.vault import Vault, utcnow


@dataclass(frozen=True)
class ScrubFinding:
    recording_id: str
    sha256: str
    problem: str


@dataclass
class ScrubReport:
    checked: int = 0
    bytes_checked: int = 0
    findings: list[ScrubFinding] = field(default_factory=list)
    unknown_objects: list[str] = field(default_factory=list)  # in the store, not in the catalog

    @property
    def ok(self) -> bool:
        return not self.findings and not self.unknown_objects


def scrub_all(vault: Vault, actor: Actor,
              progress: Callable[[int, int], None] | None = None) -> ScrubReport:
    """Check every original; ``progress(done, total)`` after each."""
    with vault.engine.connect() as conn:
        items = rec_db.all_hashes(conn)
    report = ScrubReport()
    for n, (rec_id, sha, size) in enumerate(items, 1):
        result = vault.store.check(sha, size)
        report.checked += 1
        report.bytes_checked += size
        if not result.ok:
            report.findings.append(ScrubFinding(rec_id, sha, result.problem or "?"))
        at = utcnow()
        with vault.engine.begin() as conn:
            ses_db.add_scrub_result(conn, rec_id, at, result.ok, result.problem)
            audit.append(conn, Event("scrub.result", actor, {"ok": result.ok, "problem": result.problem},
                                     EvidenceRef(rec_id, sha, size)), at)
        if progress:
            progress(n, len(items))
    known = {sha for _id, sha, _size in items}
    report.unknown_objects = [sha for sha in vault.store.iter_objects() if sha not in known]
    with vault.engine.begin() as conn:
        audit.append(conn, Event("scrub.run", actor, {
            "checked": report.checked, "bytes_checked": report.bytes_checked,
            "failed": [f.recording_id for f in report.findings],
            "unknown_objects": report.unknown_objects}))
    return report
