"""Verifying a whole audit log, whoever holds it: the checks, without the I/O.

The log comes from a :class:`LogSource`: the station's own catalog
(``auditcheck.CatalogSource``) or a vault's HTTP API, read by an auditor at
another computer (``auditremote.ApiSource``). Nothing a source says about the
result is taken on trust: every leaf and subtree is recomputed here from the
entry bytes, and every checkpoint is opened with the log key the caller
gives. The checks:

- entries are numbered without gaps, are JSON, match their indexed columns,
  and each links to the previous entry about the same recording;
- every stored subtree hash matches the entries;
- every checkpoint is signed by the log key and matches the entries;
- every recording in the catalog has its ingest entry with the same hash, and
  every ingested recording is still in the catalog;
- the log head agrees with the entries;
- the checkpoint kept outside the database, and one an auditor holds, match
  the entries, and the source's consistency proof from the earliest of them
  (or the first checkpoint) to its latest one verifies.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from vaultd import merkle, note, tlogfmt
from vaultd.errors import IntegrityError, UsageError, VaultError
from vaultd.i18n import _


class StoredEntry(NamedTuple):
    """One stored entry: its bytes and the columns the catalog indexes it by.

    (A named tuple, not a dataclass: a million of them are made per check.)
    """

    idx: int
    entry: bytes
    type: str
    evidence_id: str | None


class StoredNode(NamedTuple):
    level: int
    idx: int
    hash: bytes


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    note: bytes


@dataclass(frozen=True)
class LogState:
    """The log's head (its size) and the checkpoint kept outside the database.

    A source reads the outside checkpoint first and the head after it, so that
    a checkpoint sealed meanwhile is never larger than the head.
    """

    size: int
    outside: bytes | None
    outside_name: str


@dataclass(frozen=True)
class CatalogHashes:
    """Every recording in the catalog, id -> sha256.

    ``complete_below``: every recording whose ingest entry is below this
    index is listed (a source that reads the catalog and the log at different
    moments says how far the catalog is known to be complete).
    """

    sha256: Mapping[str, str]
    complete_below: int


class LogSource(Protocol):
    """Where a log is read from. :func:`verify_log` calls, in this order:
    ``recordings``, ``state``, ``entries``, ``nodes``, ``checkpoints``, and
    ``consistency_proof`` at most once."""

    def recordings(self) -> CatalogHashes: ...

    def state(self) -> LogState: ...

    def entries(self, size: int) -> Iterable[StoredEntry]:
        """Every stored entry in index order (a source may stop at ``size``)."""
        ...

    def nodes(self, size: int) -> Iterable[StoredNode]:
        """The stored subtree hashes by (level, index) (a source may leave out
        those over entries from ``size`` on)."""
        ...

    def checkpoints(self, size: int) -> Iterable[StoredCheckpoint]:
        """The stored checkpoints by size (a source may leave out those above ``size``)."""
        ...

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]: ...


@dataclass
class VerifyReport:
    entries: int = 0
    checkpoints: int = 0
    recordings: int = 0
    problems: list[str] = field(default_factory=list)
    latest: bytes | None = None  # the latest checkpoint that verified, signed

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Scan:
    tree: merkle.MemoryNodes = field(default_factory=merkle.MemoryNodes)
    last_for: dict[str, int] = field(default_factory=dict)
    ingested: dict[str, tuple[str, int]] = field(default_factory=dict)  # recording -> (sha, idx)


def verify_log(source: LogSource, v: note.Verifier, held: bytes | None = None) -> VerifyReport:
    """Check everything the source holds against the log key ``v``; ``held``
    is a signed checkpoint an auditor kept (``--since``)."""
    report = VerifyReport()
    catalog = source.recordings()
    state = source.state()
    scan = _scan_entries(source.entries(state.size), report)
    span: tuple[tlogfmt.Checkpoint, tlogfmt.Checkpoint] | None = None
    if report.ok:
        _check_nodes(source.nodes(state.size), scan.tree, report)
        span = _check_checkpoints(source.checkpoints(state.size), scan.tree, v, report)
    _check_recordings(catalog, scan, report)
    if state.size != report.entries and report.ok:
        report.problems.append(_("the log head says %d entries, %d are stored") % (state.size, report.entries))
    if state.outside is not None:
        _check_held(state.outside, _("the checkpoint kept outside the database"), scan.tree, v, report)
    elif report.checkpoints:
        report.problems.append(_("the checkpoint kept outside the database (%s) is missing") % state.outside_name)
    base = None
    if held is not None:
        base = _check_held(held, _("the checkpoint given with --since"), scan.tree, v, report)
    if report.ok and span is not None:
        _check_proof(source, base or span[0], span[1], report)
    return report


def _scan_entries(rows: Iterable[StoredEntry], report: VerifyReport) -> _Scan:
    scan = _Scan()
    for row in rows:
        if row.idx != report.entries:
            report.problems.append(_("audit entry %d is missing (found %d next)") % (report.entries, row.idx))
            return scan
        problem = _check_entry(row, scan)
        if problem:
            report.problems.append(problem)
            return scan
        scan.tree.append_leaf_hash(merkle.hash_leaf(row.entry))
        report.entries += 1
    return scan


def _check_entry(row: StoredEntry, scan: _Scan) -> str | None:
    idx, evidence_id = row.idx, row.evidence_id
    try:
        doc: dict[str, Any] = json.loads(row.entry)
        ev = doc.get("evidence") or {}
        if doc.get("type") != row.type or ev.get("id") != evidence_id:
            return _("audit entry %d: its indexed columns do not match its bytes") % idx
    except (ValueError, AttributeError):  # not JSON, or not the shape of an entry
        return _("audit entry %d is not valid JSON") % idx
    if evidence_id is not None:
        if doc.get("prev") != scan.last_for.get(evidence_id):
            return _("audit entry %d: custody link for recording %s is broken (prev %r, expected %r)") % (
                idx, evidence_id, doc.get("prev"), scan.last_for.get(evidence_id))
        scan.last_for[evidence_id] = idx
        if row.type == "ingest":
            scan.ingested.setdefault(evidence_id, (str(ev.get("sha256", "")), idx))
    return None


def _check_nodes(rows: Iterable[StoredNode], tree: merkle.MemoryNodes, report: VerifyReport) -> None:
    stored = 0
    for row in rows:
        stored += 1
        if tree.nodes.get((row.level, row.idx)) != row.hash:
            where = (_("audit entry %d") % row.idx if row.level == 0
                     else _("subtree (level %d, index %d)") % (row.level, row.idx))
            report.problems.append(_("stored hash of %s does not match the entries") % where)
            return
    if stored != len(tree.nodes):
        report.problems.append(_("%d subtree hashes are stored, %d expected") % (stored, len(tree.nodes)))


def _check_checkpoints(rows: Iterable[StoredCheckpoint], tree: merkle.MemoryNodes, v: note.Verifier,
                       report: VerifyReport) -> tuple[tlogfmt.Checkpoint, tlogfmt.Checkpoint] | None:
    """Every stored checkpoint; returns the first and the latest (None: none, or one failed).

    Each must match the recomputed tree, so each extends the one before."""
    first: tlogfmt.Checkpoint | None = None
    prev: tlogfmt.Checkpoint | None = None
    for row in rows:
        label = _("checkpoint at size %d") % row.size
        cp = _open_checkpoint(row.note, label, v, report)
        if cp is None:
            return None
        if cp.size != row.size:
            report.problems.append(_("%s: its note says size %d") % (label, cp.size))
            return None
        if prev is not None and cp.size <= prev.size:
            report.problems.append(_("%s comes after the one at size %d") % (label, prev.size))
            return None
        if not _matches_tree(cp, tree, label, report):
            return None
        first, prev = first or cp, cp
        report.latest = row.note
        report.checkpoints += 1
    return None if first is None or prev is None else (first, prev)


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
                report: VerifyReport) -> tlogfmt.Checkpoint | None:
    cp = _open_checkpoint(signed, label, v, report)
    if cp is not None and _matches_tree(cp, tree, label, report):
        return cp
    return None


def _check_proof(source: LogSource, old: tlogfmt.Checkpoint, new: tlogfmt.Checkpoint,
                 report: VerifyReport) -> None:
    """The source's own consistency proof (made from its stored subtree hashes,
    as the proofs and receipts it hands out are) must link the two checkpoints."""
    if not 0 < old.size < new.size:
        return
    try:
        proof = source.consistency_proof(old.size, new.size)
    except VaultError as exc:
        report.problems.append(_("no consistency proof from size %d to %d: %s") % (old.size, new.size, exc.message))
        return
    if not merkle.verify_consistency(old.size, new.size, old.root, new.root, proof):
        report.problems.append(_("the consistency proof from size %d to %d does not verify: the stored "
                                 "subtree hashes do not match the entries") % (old.size, new.size))


def _check_recordings(catalog: CatalogHashes, scan: _Scan, report: VerifyReport) -> None:
    report.recordings = len(catalog.sha256)
    for rec_id, sha in sorted(catalog.sha256.items()):
        logged = scan.ingested.get(rec_id)
        if logged is None:
            report.problems.append(_("recording %s has no ingest entry in the audit log") % rec_id)
        elif logged[0] != sha:
            report.problems.append(_("recording %s: catalog sha256 %s differs from ingest entry %d (%s)")
                                   % (rec_id, sha, logged[1], logged[0]))
    for rec_id, (_sha, idx) in sorted(scan.ingested.items(), key=lambda kv: kv[1][1]):
        if rec_id not in catalog.sha256 and idx < catalog.complete_below:
            report.problems.append(_("recording %s (ingest entry %d) is missing from the catalog")
                                   % (rec_id, idx))


# -- the wire form of stored entries (the API's GET /audit/range) ----------------------------

_RECORD = struct.Struct(">QIII")  # idx, bytes of the entry, of its type, of its evidence id
_NO_ID = 0xFFFFFFFF


def pack_entries(rows: Iterable[StoredEntry]) -> bytes:
    """Entries as records: a big-endian header (index u64; lengths u32 of the
    entry, its type and its evidence id, 0xFFFFFFFF for none), then those bytes."""
    parts: list[bytes] = []
    for row in rows:
        kind = row.type.encode("utf-8")
        ev = b"" if row.evidence_id is None else row.evidence_id.encode("utf-8")
        parts.append(_RECORD.pack(row.idx, len(row.entry), len(kind), _NO_ID if row.evidence_id is None else len(ev)))
        parts += (row.entry, kind, ev)
    return b"".join(parts)


def unpack_entries(data: bytes) -> list[StoredEntry]:
    """The records of :func:`pack_entries`; anything else is an IntegrityError."""
    out: list[StoredEntry] = []
    at, view = 0, memoryview(data)
    try:
        while at < len(data):
            idx, n_entry, n_type, n_ev = _RECORD.unpack_from(data, at)
            at += _RECORD.size
            end = at + n_entry + n_type + (0 if n_ev == _NO_ID else n_ev)
            if end > len(data):
                raise ValueError("short")
            entry = bytes(view[at:at + n_entry])
            kind = str(view[at + n_entry:at + n_entry + n_type], "utf-8")
            ev = None if n_ev == _NO_ID else str(view[at + n_entry + n_type:end], "utf-8")
            out.append(StoredEntry(idx, entry, kind, ev))
            at = end
    except (struct.error, ValueError):
        raise IntegrityError(_("the entries sent are malformed at byte %d") % at,
                             hint=_("the vault or something between it and you altered them")) from None
    return out


_NODE = struct.Struct(">QB")  # idx, bytes of the hash


def pack_nodes(rows: Iterable[StoredNode]) -> bytes:
    """Stored subtree hashes of one level as records: index u64, length u8, the hash."""
    return b"".join(_NODE.pack(row.idx, len(row.hash)) + row.hash for row in rows)


def unpack_nodes(level: int, data: bytes) -> list[StoredNode]:
    """The records of :func:`pack_nodes`; anything else is an IntegrityError."""
    out: list[StoredNode] = []
    at = 0
    try:
        while at < len(data):
            idx, n = _NODE.unpack_from(data, at)
            at += _NODE.size
            if at + n > len(data):
                raise ValueError("short")
            out.append(StoredNode(level, idx, data[at:at + n]))
            at += n
    except (struct.error, ValueError):
        raise IntegrityError(_("the subtree hashes sent are malformed at byte %d") % at,
                             hint=_("the vault or something between it and you altered them")) from None
    return out
