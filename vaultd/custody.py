"""The custody chain carried in an export: audit entries, their proofs, the checkpoint.

For each exported recording, the exact bytes of every audit entry about it up
to and including the export's own entries; a c2sp.org/tlog-proof@v1 for each
against one signed checkpoint; a consistency proof from the checkpoint the
previous export carried; and the log's verifier key. Everything is checked by
:mod:`vaultd.verify` without the vault.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from vaultd import audit, merkle, note, tlogfmt
from vaultd.audit import SqlNodes
from vaultd.catalog.schema import audit_checkpoints, audit_entries
from vaultd.vault import Vault

DIR = "data/custody"


@dataclass(frozen=True)
class Custody:
    files: dict[str, bytes]  # path in the bag -> bytes
    checkpoint_size: int
    entries: int


def build(vault: Vault, recording_ids: Sequence[str], export_entries: Sequence[int],
          previous_size: int | None) -> Custody:
    """Seal the log and gather the chain for ``recording_ids`` (the export's own
    entries are ``export_entries``); ``previous_size`` is the size of the
    checkpoint the previous export carried, if any."""
    signed = audit.current_checkpoint(vault)
    cp = audit.checkpoint_of(vault, signed)
    files: dict[str, bytes] = {}
    chains: dict[str, list[int]] = {}
    with vault.engine.connect() as conn:
        for rid in recording_ids:
            rows = conn.execute(select(audit_entries.c.idx).where(
                audit_entries.c.evidence_id == rid, audit_entries.c.idx < cp.size)
                .order_by(audit_entries.c.idx))
            chains[rid] = [int(r.idx) for r in rows]
        wanted = sorted({i for c in chains.values() for i in c} | set(export_entries))
        nodes = SqlNodes(conn)
        for index in wanted:
            files[f"{DIR}/entries/{index:012d}.json"] = audit.entry_bytes(conn, index)
            proof = merkle.inclusion_proof(index, cp.size, nodes)
            files[f"{DIR}/proofs/{index:012d}.tlog-proof"] = tlogfmt.format_tlog_proof(index, proof, signed)
        consistency = _consistency(conn, previous_size, cp.size)
    files[f"{DIR}/checkpoint.txt"] = signed
    files[f"{DIR}/log-key.txt"] = (note.verifier_key_string(audit.verifier(vault)) + "\n").encode("ascii")
    index_doc: dict[str, object] = {
        "checkpoint_size": cp.size, "export_entries": list(export_entries), "recordings": chains,
        "previous_checkpoint_size": None}
    if consistency is not None:
        old_note, proof_hashes = consistency
        files[f"{DIR}/previous-checkpoint.txt"] = old_note
        files[f"{DIR}/consistency.txt"] = tlogfmt.format_consistency_proof(proof_hashes).encode("ascii")
        index_doc["previous_checkpoint_size"] = previous_size
    files[f"{DIR}/index.json"] = json.dumps(index_doc, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    return Custody(files, cp.size, len(wanted))


def _consistency(conn: Connection, previous_size: int | None, size: int) -> tuple[bytes, list[bytes]] | None:
    if previous_size is None or not 0 < previous_size < size:
        return None
    row = conn.execute(select(audit_checkpoints.c.note).where(audit_checkpoints.c.size == previous_size)).first()
    if row is None:
        return None
    return bytes(row.note), merkle.consistency_proof(previous_size, size, SqlNodes(conn))
