"""Verifying the station's own audit log, independently of what the database claims.

The checks are ``logcheck.verify_log`` (the same code an auditor runs over
the API, ``auditremote``); this module is the station's catalog as its
:class:`~vaultd.logcheck.LogSource`: the entries, stored subtree hashes,
checkpoints and recordings read in one database snapshot, and the checkpoint
kept outside the database read before it.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Connection, select

from vaultd import audit, logcheck, merkle, note
from vaultd.catalog.schema import audit_checkpoints, audit_entries, audit_nodes, recordings
from vaultd.logcheck import CatalogHashes, LogState, StoredCheckpoint, StoredEntry, StoredNode, VerifyReport
from vaultd.vault import Vault

_BATCH = 10_000


class CatalogSource:
    """``logcheck.LogSource`` over the catalog database (one read snapshot)."""

    def __init__(self, vault: Vault, conn: Connection) -> None:
        self.conn = conn
        path = vault.layout.root / audit.CHECKPOINT_FILE
        # read before the snapshot starts: a checkpoint sealed meanwhile is
        # then never ahead of the entries this snapshot shows
        self._state = LogState(0, path.read_bytes() if path.is_file() else None, str(path))

    def recordings(self) -> CatalogHashes:
        rows = self.conn.execute(select(recordings.c.id, recordings.c.sha256))
        hashes = {row.id: row.sha256 for row in rows}
        return CatalogHashes(hashes, audit.size(self.conn))

    def state(self) -> LogState:
        return LogState(audit.size(self.conn), self._state.outside, self._state.outside_name)

    def entries(self, size: int) -> Iterator[StoredEntry]:
        q = select(audit_entries.c.idx, audit_entries.c.entry, audit_entries.c.type,
                   audit_entries.c.evidence_id).order_by(audit_entries.c.idx)
        for row in self.conn.execution_options(yield_per=_BATCH).execute(q):
            yield StoredEntry(row.idx, bytes(row.entry), row.type, row.evidence_id)

    def nodes(self, size: int) -> Iterator[StoredNode]:
        q = select(audit_nodes.c.level, audit_nodes.c.idx, audit_nodes.c.hash).order_by(
            audit_nodes.c.level, audit_nodes.c.idx)
        for row in self.conn.execution_options(yield_per=_BATCH).execute(q):
            yield StoredNode(row.level, row.idx, bytes(row.hash))

    def checkpoints(self, size: int) -> Iterator[StoredCheckpoint]:
        q = select(audit_checkpoints.c.size, audit_checkpoints.c.note).order_by(audit_checkpoints.c.size)
        for row in self.conn.execute(q):
            yield StoredCheckpoint(int(row.size), bytes(row.note))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return merkle.consistency_proof(old_size, new_size, audit.SqlNodes(self.conn))


def verify(vault: Vault, held: bytes | None = None, key: note.Verifier | None = None) -> VerifyReport:
    """Check the station's log; ``held`` is a signed checkpoint an auditor kept,
    ``key`` a log key the caller pins (default: the vault's own)."""
    v = key or audit.verifier(vault)
    with vault.engine.connect() as conn:
        return logcheck.verify_log(CatalogSource(vault, conn), v, held)


__all__ = ["CatalogSource", "VerifyReport", "verify"]
