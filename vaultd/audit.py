"""The audit log: an RFC 6962 transparency log in the catalog database.

Entries are canonical JSON (RFC 8785), numbered without gaps by a counter row
that every writer locks; each append stores its leaf and every complete
subtree hash it finishes, so roots and proofs need O(log n) reads. Triggers
refuse UPDATE and DELETE. Checkpoints are C2SP signed notes made with the
vault's Ed25519 log key; the latest one is also kept in a file outside the
database, so that replacing the database with an older copy is detected.

The audit log is evidence, not ``logging``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, TextClause, bindparam, func, insert, select, text, update

from vaultd import keys, merkle, note, tlogfmt
from vaultd.catalog.schema import audit_checkpoints, audit_entries, audit_head, audit_nodes, recordings
from vaultd.files import write_durably
from vaultd.errors import LogTamperedError, NotFoundError, UsageError, VaultError
from vaultd.i18n import _
from vaultd.logcheck import StoredEntry, StoredNode
from vaultd.model import Actor, Recording
from vaultd.vault import Vault, utcnow

ENTRY_VERSION = 1
VaultErrorT = TypeVar("VaultErrorT", bound=VaultError)
CHECKPOINT_FILE = "audit-checkpoint.txt"


@dataclass(frozen=True)
class EvidenceRef:
    id: str
    sha256: str
    size_bytes: int

    @staticmethod
    def of(rec: Recording) -> "EvidenceRef":
        return EvidenceRef(rec.id, rec.sha256, rec.size_bytes)


@dataclass(frozen=True)
class Event:
    type: str
    actor: Actor
    details: Mapping[str, Any] = field(default_factory=dict)
    evidence: EvidenceRef | None = None


class SqlNodes:
    """``merkle.NodeReader`` over the ``audit_nodes`` table: one SELECT per call."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get_nodes(self, keys_: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        if not keys_:
            return {}
        params: dict[str, int] = {}
        for n, (level, idx) in enumerate(keys_):
            params[f"l{n}"], params[f"i{n}"] = level, idx
        rows = self.conn.execute(_nodes_query(len(keys_)), params)
        return {(r.level, r.idx): bytes(r.hash) for r in rows}


@functools.lru_cache(maxsize=256)
def _nodes_query(n: int) -> TextClause:
    """n primary-key lookups in one statement (a row-value IN would make SQLite
    scan the table); one cached statement per n keeps SQLAlchemy's cost low."""
    where = " OR ".join(f"(level = :l{i} AND idx = :i{i})" for i in range(n))
    return text(f"SELECT level, idx, hash FROM audit_nodes WHERE {where}")


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def encode_entry(event: Event, at: datetime, prev: int | None) -> bytes:
    body: dict[str, Any] = {
        "v": ENTRY_VERSION,
        "type": event.type,
        "time": _iso(at),
        "actor": {"kind": event.actor.kind, "name": event.actor.name, "via": event.actor.via},
        "evidence": None if event.evidence is None else {
            "id": event.evidence.id, "sha256": event.evidence.sha256,
            "size_bytes": event.evidence.size_bytes},
        "prev": prev,
        "details": dict(event.details),
    }
    return canonical_json(body)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of ``value``.

    Without floats and with ASCII keys, Python's sorted compact JSON is
    byte-identical to JCS (same escapes, same key order) and ten times
    faster; anything else goes through the rfc8785 library.
    """
    if _plain(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    return bytes(rfc8785.dumps(value))


def _plain(value: Any) -> bool:
    """Only dicts with ASCII string keys, lists, tuples, str, bool, None and
    safe ints (exact types: a subclass takes the library's path)."""
    todo = [value]
    while todo:
        v = todo.pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if not -_SAFE_INT <= v <= _SAFE_INT:  # outside: the library refuses it
                return False
        elif t is dict:
            if not all(type(k) is str and k.isascii() for k in v):
                return False
            todo.extend(v.values())
        elif t is list or t is tuple:
            todo.extend(v)
        else:
            return False
    return True


_SAFE_INT = 2**53 - 1


def append(conn: Connection, event: Event, at: datetime | None = None) -> int:
    """Append one entry inside the caller's transaction; returns its index."""
    return append_many(conn, [event], at)[0]


def append_many(conn: Connection, events: Sequence[Event], at: datetime | None = None) -> list[int]:
    """Append entries in order inside the caller's transaction; returns their indexes.

    One number grab, one node read per entry at most, and one multi-row insert
    each for entries and nodes: a batch of ingests costs little more than one.
    """
    if not events:
        return []
    at = at or utcnow()
    # taking the numbers and the writer's lock in one statement: gapless,
    # since a rolled-back transaction gives its numbers back
    end = _take_numbers(conn, len(events))
    first = end - len(events)
    reader = _Overlay(SqlNodes(conn))
    last_for = _last_entries(conn, {e.evidence.id for e in events if e.evidence is not None})
    entry_rows, node_rows = [], []
    for index, event in enumerate(events, first):
        prev = last_for[event.evidence.id] if event.evidence is not None else None
        entry = encode_entry(event, at, prev)
        for lv, i, h in merkle.nodes_completed_by_append(index, merkle.hash_leaf(entry), reader):
            reader.new[(lv, i)] = h
            node_rows.append({"level": lv, "idx": i, "hash": h})
        entry_rows.append({"idx": index, "entry": entry, "type": event.type, "actor": event.actor.label,
                           "evidence_id": event.evidence.id if event.evidence else None, "at": at})
        if event.evidence is not None:
            last_for[event.evidence.id] = index
    _insert(conn, entry_rows, node_rows)
    return list(range(first, end))


def _insert(conn: Connection, entry_rows: list[dict[str, Any]], node_rows: list[dict[str, Any]]) -> None:
    if conn.dialect.name != "sqlite":
        conn.execute(_INSERT_ENTRY, entry_rows)
        conn.execute(_INSERT_NODE, node_rows)
        return
    # the hot path on the embedded default: straight to the driver (the rows are
    # the same as SQLAlchemy would write: UTC as SQLite's DATETIME text)
    conn.exec_driver_sql(
        "INSERT INTO audit_entries (idx, entry, type, actor, evidence_id, at) VALUES (?, ?, ?, ?, ?, ?)",
        [(r["idx"], r["entry"], r["type"], r["actor"], r["evidence_id"], _sqlite_time(r["at"]))
         for r in entry_rows])
    if node_rows:
        conn.exec_driver_sql("INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)",
                             [(r["level"], r["idx"], r["hash"]) for r in node_rows])


def _sqlite_time(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _last_entries(conn: Connection, evidence_ids: set[str]) -> dict[str, int | None]:
    """The index of each evidence's latest entry (None: it has none yet), in
    one query per few hundred ids."""
    last: dict[str, int | None] = dict.fromkeys(evidence_ids)
    ids = sorted(evidence_ids)
    for at in range(0, len(ids), 500):
        q = select(audit_entries.c.evidence_id, func.max(audit_entries.c.idx)).where(
            audit_entries.c.evidence_id.in_(ids[at:at + 500])).group_by(audit_entries.c.evidence_id)
        last.update({row[0]: row[1] for row in conn.execute(q)})
    return last


def _take_numbers(conn: Connection, n: int) -> int:
    """Reserve n entry numbers; returns the new log size."""
    if conn.dialect.name == "sqlite":
        row = conn.exec_driver_sql("UPDATE audit_head SET size = size + ? WHERE id = 1 RETURNING size",
                                   (n,)).first()
        assert row is not None
        return int(row[0])
    return int(conn.execute(_TAKE_NUMBERS, {"n": n}).scalar_one())


class _Overlay:
    """Nodes written earlier in this batch, in front of the stored ones."""

    def __init__(self, stored: SqlNodes) -> None:
        self.stored = stored
        self.new: dict[tuple[int, int], bytes] = {}

    def get_nodes(self, keys_: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        found = {k: self.new[k] for k in keys_ if k in self.new}
        rest = [k for k in keys_ if k not in found]
        if rest:
            found.update(self.stored.get_nodes(rest))
        return found


_TAKE_NUMBERS = (update(audit_head).where(audit_head.c.id == 1)
                 .values(size=audit_head.c.size + bindparam("n")).returning(audit_head.c.size))
_INSERT_ENTRY = insert(audit_entries)
_INSERT_NODE = insert(audit_nodes)


def size(conn: Connection) -> int:
    return int(conn.execute(select(audit_head.c.size).where(audit_head.c.id == 1)).scalar_one())


def entry_bytes(conn: Connection, index: int) -> bytes:
    row = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.idx == index)).first()
    if row is None:
        raise NotFoundError(_("no audit entry %d") % index,
                            hint=_("entries are numbered from 0; 'vaultd audit checkpoint' shows the size"))
    return bytes(row.entry)


def root(conn: Connection, tree_size: int) -> bytes:
    return merkle.root_hash(tree_size, SqlNodes(conn))


# -- keys and checkpoints ---------------------------------------------------------

def origin(vault: Vault) -> str:
    return vault.config.audit.origin or f"vaultd/{vault.vault_id}"


def signer(vault: Vault) -> note.Signer:
    key = keys.load_log_key(vault.layout.keys_dir)
    seed = key.private_bytes_raw()
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    name = origin(vault)
    return note.Signer(name, note.key_id(name, public), seed)


def verifier(vault: Vault) -> note.Verifier:
    return signer(vault).verifier()


def latest_checkpoint(conn: Connection) -> tuple[int, bytes] | None:
    row = conn.execute(select(audit_checkpoints.c.size, audit_checkpoints.c.note)
                       .order_by(audit_checkpoints.c.size.desc()).limit(1)).first()
    return (int(row.size), bytes(row.note)) if row else None


def seal(vault: Vault) -> bytes | None:
    """Sign a checkpoint covering every entry, if any is not yet covered.

    Returns the new signed note, or None when the latest one covers all.
    """
    with vault.engine.begin() as conn:
        n = size(conn)
        last = latest_checkpoint(conn)
        if n == 0 or (last is not None and last[0] >= n):
            return None
        _require_extends_outside(vault, conn, n)
        body = tlogfmt.checkpoint_body(tlogfmt.Checkpoint(origin(vault), n, root(conn, n)))
        signed = note.sign_note(body, [signer(vault)])
        conn.execute(insert(audit_checkpoints).values(size=n, note=signed, created_at=utcnow()))
    write_durably(vault.layout.root / CHECKPOINT_FILE, signed, replace=True)
    return signed


def _require_extends_outside(vault: Vault, conn: Connection, n: int) -> None:
    """Never sign over the checkpoint kept outside the database unless the log
    extends it: a database put back from an older copy must stay detectable."""
    outside = vault.layout.root / CHECKPOINT_FILE
    if not outside.is_file():
        return
    held = checkpoint_of(vault, outside.read_bytes())
    if held.size > n or root(conn, held.size) != held.root:
        raise LogTamperedError(
            _("the audit log does not extend the checkpoint kept outside the database (size %d); "
              "refusing to sign a new one") % held.size,
            hint=_("the database was replaced or rewritten: run 'vaultd audit verify' and restore "
                   "the catalog from a copy that matches"))


def current_checkpoint(vault: Vault) -> bytes:
    """The latest checkpoint, sealing one first if entries are uncovered."""
    seal(vault)
    with vault.engine.connect() as conn:
        last = latest_checkpoint(conn)
    if last is None:
        raise NotFoundError(_("the audit log is empty; there is no checkpoint yet"))
    return last[1]


def checkpoint_of(vault: Vault, signed: bytes) -> tlogfmt.Checkpoint:
    """Open a signed checkpoint with this vault's log key (raises if forged)."""
    text, _ok = note.open_note(signed, [verifier(vault)])
    return tlogfmt.parse_checkpoint_body(text)


# -- proofs -------------------------------------------------------------------------

def inclusion_receipt(vault: Vault, index: int) -> bytes:
    """A C2SP tlog-proof@v1 for entry ``index`` against the latest checkpoint."""
    signed = current_checkpoint(vault)
    cp = checkpoint_of(vault, signed)
    if index >= cp.size:
        raise LogTamperedError(_("entry %d is not covered by the latest checkpoint") % index)
    with vault.engine.connect() as conn:
        proof = merkle.inclusion_proof(index, cp.size, SqlNodes(conn))
    return tlogfmt.format_tlog_proof(index, proof, signed)


def consistency(vault: Vault, old_size: int, new_size: int | None) -> list[bytes]:
    with vault.engine.connect() as conn:
        n = size(conn)
        new = n if new_size is None else new_size
        if not 0 < old_size <= new <= n:
            raise UsageError(_("sizes must satisfy 0 < OLD_SIZE <= NEW_SIZE <= %d (the log size)") % n)
        return merkle.consistency_proof(old_size, new, SqlNodes(conn))


def ingest_entry_index(conn: Connection, recording_id: str) -> int:
    row = conn.execute(select(audit_entries.c.idx).where(
        audit_entries.c.evidence_id == recording_id, audit_entries.c.type == "ingest")
        .order_by(audit_entries.c.idx).limit(1)).first()
    if row is None:
        raise LogTamperedError(_("recording %s has no ingest entry in the audit log") % recording_id,
                               hint=_("run 'vaultd audit verify'"))
    return int(row.idx)


# -- reading the log (itself logged) ---------------------------------------------------

@dataclass(frozen=True)
class AuditFilter:
    recording_id: str | None = None
    actor: str | None = None  # "local:alice", or just "alice"
    type: str | None = None  # exact, or a prefix ending in "." / "*": "ingest.*"
    since: datetime | None = None
    limit: int = 1000


@dataclass(frozen=True)
class LoggedEntry:
    index: int
    entry: bytes

    @property
    def doc(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.entry)
        return value


def read_entries(vault: Vault, actor: Actor, flt: AuditFilter) -> list[LoggedEntry]:
    q = select(audit_entries.c.idx, audit_entries.c.entry).order_by(audit_entries.c.idx)
    if flt.recording_id:
        q = q.where(audit_entries.c.evidence_id == flt.recording_id)
    if flt.actor:
        who = flt.actor
        q = q.where((audit_entries.c.actor == who) | audit_entries.c.actor.endswith(":" + who, autoescape=True))
    if flt.type:
        prefix = flt.type.endswith("*") or flt.type.endswith(".")
        t = flt.type.rstrip("*")
        q = q.where(audit_entries.c.type.startswith(t, autoescape=True) if prefix else audit_entries.c.type == t)
    if flt.since:
        q = q.where(audit_entries.c.at >= flt.since)
    with vault.engine.begin() as conn:
        rows = [LoggedEntry(int(r.idx), bytes(r.entry)) for r in conn.execute(q.limit(flt.limit))]
        append(conn, Event("audit.read", actor, {
            "filter": {k: (v.isoformat() if isinstance(v, datetime) else v)
                       for k, v in flt.__dict__.items() if v is not None},
            "returned": len(rows)}))
    return rows


def read_range(vault: Vault, actor: Actor, start: int, end: int) -> list[StoredEntry]:
    """Entries ``start <= idx < end`` with their indexed columns, as stored
    (for an auditor recomputing the log elsewhere); the read is logged."""
    q = (select(audit_entries.c.idx, audit_entries.c.entry, audit_entries.c.type, audit_entries.c.evidence_id)
         .where(audit_entries.c.idx >= start, audit_entries.c.idx < end).order_by(audit_entries.c.idx))
    with vault.engine.begin() as conn:
        rows = [StoredEntry(int(r.idx), bytes(r.entry), r.type, r.evidence_id) for r in conn.execute(q)]
        append(conn, Event("audit.read", actor, {"filter": {"start": start, "end": end}, "returned": len(rows)}))
    return rows


def read_nodes(vault: Vault, actor: Actor, level: int, start: int, end: int) -> list[StoredNode]:
    """Stored subtree hashes of ``level``, ``start <= idx < end``; the read is logged."""
    q = (select(audit_nodes.c.idx, audit_nodes.c.hash)
         .where(audit_nodes.c.level == level, audit_nodes.c.idx >= start, audit_nodes.c.idx < end)
         .order_by(audit_nodes.c.idx))
    with vault.engine.begin() as conn:
        rows = [StoredNode(level, int(r.idx), bytes(r.hash)) for r in conn.execute(q)]
        append(conn, Event("audit.read", actor, {"filter": {"level": level, "start": start, "end": end},
                                                  "returned": len(rows)}))
    return rows


def recording_hashes(vault: Vault, actor: Actor, after: str, limit: int) -> tuple[int, list[tuple[str, str]]]:
    """The log size, then the catalog's recordings (id, sha256) by id after
    ``after``, read in one snapshot; the read is logged."""
    q = (select(recordings.c.id, recordings.c.sha256).where(recordings.c.id > after)
         .order_by(recordings.c.id).limit(limit))
    with vault.engine.begin() as conn:
        n = size(conn)
        rows = [(str(r.id), str(r.sha256)) for r in conn.execute(q)]
        append(conn, Event("audit.read", actor, {"filter": {"recordings_after": after}, "returned": len(rows)}))
    return n, rows


def checkpoints(vault: Vault, after: int, upto: int | None, limit: int) -> list[tuple[int, bytes]]:
    """Stored checkpoints by size, ``after < size <= upto``."""
    q = select(audit_checkpoints.c.size, audit_checkpoints.c.note).where(audit_checkpoints.c.size > after)
    if upto is not None:
        q = q.where(audit_checkpoints.c.size <= upto)
    with vault.engine.connect() as conn:
        return [(int(r.size), bytes(r.note)) for r in conn.execute(q.order_by(audit_checkpoints.c.size).limit(limit))]


def state(vault: Vault) -> tuple[int, bytes | None]:
    """The log size and the checkpoint kept outside the database (None: none).

    The file is read first, so a checkpoint sealed meanwhile is never ahead of the size."""
    outside = vault.layout.root / CHECKPOINT_FILE
    held = outside.read_bytes() if outside.is_file() else None
    with vault.engine.connect() as conn:
        return size(conn), held


# -- refusals: logged even though the transaction that found them rolls back ----------

def refusal(exc: VaultErrorT, event: Event) -> VaultErrorT:
    """Attach the audit entry a refusal must leave; ``logging_refusals`` writes it."""
    setattr(exc, "audit_event", event)
    return exc


@contextmanager
def logging_refusals(vault: Vault) -> Iterator[None]:
    """Around a service call: a refusal raised inside a transaction (which rolls
    back) is still written to the log, in a transaction of its own."""
    try:
        yield
    except VaultError as exc:
        event = getattr(exc, "audit_event", None)
        if isinstance(event, Event):
            with vault.engine.begin() as conn:
                append(conn, event)
        raise
