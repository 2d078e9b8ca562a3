"""Verifying the whole audit log, independently of what the database claims.

Recomputes every leaf and subtree from the entry bytes, checks each stored
node, each checkpoint's signature and root, the consistency of each
checkpoint with the one before, the custody links between entries about the
same recording, that every recording has its ingest entry with the same hash,
and the checkpoint kept outside the database (or one an auditor holds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from vaultd import audit, merkle, note, tlogfmt
from vaultd.catalog.schema import audit_checkpoints, audit_entries, audit_nodes, recordings
from vaultd.errors import IntegrityError, UsageError
from vaultd.i18n import _
from vaultd.vault import Vault

_BATCH = 10_000


@dataclass
class VerifyReport:
    entries: int = 0
    checkpoints: int = 0
    recordings: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Scan:
    tree: merkle.MemoryNodes = field(default_factory=merkle.MemoryNodes)
    last_for: dict[str, int] = field(default_factory=dict)
    ingested: dict[str, tuple[str, int]] = field(default_factory=dict)  # recording -> (sha, idx)


def verify(vault: Vault, held: bytes | None = None) -> VerifyReport:
    """Check everything; ``held`` is a signed checkpoint an auditor kept."""
    report = VerifyReport()
    v = audit.verifier(vault)
    with vault.engine.connect() as conn:
        scan = _scan_entries(conn, report)
        if report.ok:
            _check_nodes(conn, scan.tree, report)
            _check_checkpoints(conn, scan.tree, v, report)
        _check_recordings(conn, scan, report)
        head = audit.size(conn)
    if head != report.entries and report.ok:
        report.problems.append(_("the log head says %d entries, %d are stored") % (head, report.entries))
    outside = vault.layout.root / audit.CHECKPOINT_FILE
    if outside.is_file():
        _check_held(outside.read_bytes(), _("the checkpoint kept outside the database"), scan.tree, v, report)
    elif report.checkpoints:
        report.problems.append(_("the checkpoint kept outside the database (%s) is missing") % outside)
    if held is not None:
        _check_held(held, _("the checkpoint given with --since"), scan.tree, v, report)
    return report


def _scan_entries(conn: Connection, report: VerifyReport) -> _Scan:
    scan = _Scan()
    q = select(audit_entries.c.idx, audit_entries.c.entry, audit_entries.c.type,
               audit_entries.c.evidence_id).order_by(audit_entries.c.idx)
    for row in conn.execution_options(yield_per=_BATCH).execute(q):
        if row.idx != report.entries:
            report.problems.append(_("audit entry %d is missing (found %d next)") % (report.entries, row.idx))
            return scan
        entry = bytes(row.entry)
        problem = _check_entry(row.idx, entry, row.type, row.evidence_id, scan)
        if problem:
            report.problems.append(problem)
            return scan
        scan.tree.append_leaf_hash(merkle.hash_leaf(entry))
        report.entries += 1
    return scan


def _check_entry(idx: int, entry: bytes, type_: str, evidence_id: str | None, scan: _Scan) -> str | None:
    try:
        doc: dict[str, Any] = json.loads(entry)
    except ValueError:
        return _("audit entry %d is not valid JSON") % idx
    ev = doc.get("evidence") or {}
    if doc.get("type") != type_ or ev.get("id") != evidence_id:
        return _("audit entry %d: its indexed columns do not match its bytes") % idx
    if evidence_id is not None:
        if doc.get("prev") != scan.last_for.get(evidence_id):
            return _("audit entry %d: custody link for recording %s is broken (prev %r, expected %r)") % (
                idx, evidence_id, doc.get("prev"), scan.last_for.get(evidence_id))
        scan.last_for[evidence_id] = idx
        if type_ == "ingest":
            scan.ingested.setdefault(evidence_id, (ev.get("sha256", ""), idx))
    return None


def _check_nodes(conn: Connection, tree: merkle.MemoryNodes, report: VerifyReport) -> None:
    q = select(audit_nodes.c.level, audit_nodes.c.idx, audit_nodes.c.hash).order_by(
        audit_nodes.c.level, audit_nodes.c.idx)
    stored = 0
    for row in conn.execution_options(yield_per=_BATCH).execute(q):
        stored += 1
        expect = tree.nodes.get((row.level, row.idx))
        if expect != bytes(row.hash):
            where = (_("audit entry %d") % row.idx if row.level == 0
                     else _("subtree (level %d, index %d)") % (row.level, row.idx))
            report.problems.append(_("stored hash of %s does not match the entries") % where)
            return
    if stored != len(tree.nodes):
        report.problems.append(_("%d subtree hashes are stored, %d expected") % (stored, len(tree.nodes)))


def _check_checkpoints(conn: Connection, tree: merkle.MemoryNodes, v: note.Verifier,
                       report: VerifyReport) -> None:
    prev: tlogfmt.Checkpoint | None = None
    q = select(audit_checkpoints.c.size, audit_checkpoints.c.note).order_by(audit_checkpoints.c.size)
    for row in conn.execute(q):
        label = _("checkpoint at size %d") % row.size
        cp = _open_checkpoint(bytes(row.note), label, v, report)
        if cp is None:
            return
        if cp.size != row.size or not _matches_tree(cp, tree, label, report):
            if cp.size != row.size:
                report.problems.append(_("%s: its note says size %d") % (label, cp.size))
            return
        if prev is not None:
            proof = merkle.consistency_proof(prev.size, cp.size, tree)
            if not merkle.verify_consistency(prev.size, cp.size, prev.root, cp.root, proof):
                report.problems.append(_("%s is not consistent with the one at size %d") % (label, prev.size))
                return
        prev = cp
        report.checkpoints += 1


def _open_checkpoint(signed: bytes, label: str, v: note.Verifier,
                     report: VerifyReport) -> tlogfmt.Checkpoint | None:
    try:
        text, _ok = note.open_note(signed, [v])
        return tlogfmt.parse_checkpoint_body(text)
    except (IntegrityError, UsageError) as exc:
        report.problems.append(_("%s: signature or format invalid: %s") % (label, exc.message))
        return None


def _matches_tree(cp: tlogfmt.Checkpoint, tree: merkle.MemoryNodes, label: str,
                  report: VerifyReport) -> bool:
    if cp.size > tree.size:
        report.problems.append(_("%s covers %d entries but the log holds only %d: entries were removed "
                                 "or the database was replaced with an older copy") % (label, cp.size, tree.size))
        return False
    if merkle.root_hash(cp.size, tree) != cp.root:
        report.problems.append(_("%s does not match the entries: the log was rewritten at or before "
                                 "entry %d") % (label, cp.size - 1))
        return False
    return True


def _check_held(signed: bytes, label: str, tree: merkle.MemoryNodes, v: note.Verifier,
                report: VerifyReport) -> None:
    cp = _open_checkpoint(signed, label, v, report)
    if cp is not None:
        _matches_tree(cp, tree, label, report)


def _check_recordings(conn: Connection, scan: _Scan, report: VerifyReport) -> None:
    seen: set[str] = set()
    for row in conn.execute(select(recordings.c.id, recordings.c.sha256).order_by(recordings.c.id)):
        report.recordings += 1
        seen.add(row.id)
        logged = scan.ingested.get(row.id)
        if logged is None:
            report.problems.append(_("recording %s has no ingest entry in the audit log") % row.id)
        elif logged[0] != row.sha256:
            report.problems.append(_("recording %s: catalog sha256 %s differs from ingest entry %d (%s)")
                                   % (row.id, row.sha256, logged[1], logged[0]))
    for rec_id, (_sha, idx) in sorted(scan.ingested.items(), key=lambda kv: kv[1][1]):
        if rec_id not in seen:
            report.problems.append(_("recording %s (ingest entry %d) is missing from the catalog")
                                   % (rec_id, idx))
