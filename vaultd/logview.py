"""Reading the audit log and its proofs, as a service with access checks.

Reading the log is itself logged (``audit.read_entries``)."""

from __future__ import annotations

import logging

from vaultd import audit
from vaultd.access import Action, Principal
from vaultd.approvals import visible_recording
from vaultd.audit import AuditFilter, Event, EvidenceRef, LoggedEntry
from vaultd.errors import LogTamperedError
from vaultd.i18n import _
from vaultd.logcheck import StoredEntry, StoredNode
from vaultd.people import actor_of, require
from vaultd.vault import Vault

log = logging.getLogger(__name__)


def list_entries(vault: Vault, actor: Principal, flt: AuditFilter, via: str) -> list[LoggedEntry]:
    require(vault, actor, Action.READ_AUDIT, via, _("read the audit log"))
    return audit.read_entries(vault, actor_of(actor, via), flt)


def entry(vault: Vault, actor: Principal, index: int, via: str) -> bytes:
    require(vault, actor, Action.READ_AUDIT, via, _("read the audit log"))
    with vault.engine.begin() as conn:
        data = audit.entry_bytes(conn, index)
        audit.append(conn, Event("audit.read", actor_of(actor, via),
                                 {"filter": {"start": index, "end": index + 1}, "returned": 1}))
    return data


def entry_range(vault: Vault, actor: Principal, start: int, end: int, via: str) -> list[StoredEntry]:
    """Entries ``start <= idx < end`` as stored, for recomputing the log elsewhere."""
    require(vault, actor, Action.READ_AUDIT, via, _("read the audit log"))
    return audit.read_range(vault, actor_of(actor, via), start, end)


def nodes(vault: Vault, actor: Principal, level: int, start: int, end: int, via: str) -> list[StoredNode]:
    """Stored subtree hashes, to compare with the ones recomputed elsewhere."""
    require(vault, actor, Action.READ_AUDIT, via, _("read the audit log"))
    return audit.read_nodes(vault, actor_of(actor, via), level, start, end)


def recording_hashes(vault: Vault, actor: Principal, after: str, limit: int,
                     via: str) -> tuple[int, list[tuple[str, str]]]:
    """The log size and the catalog's (id, sha256) pairs, to check against the
    ingest entries (which name the same ids and hashes)."""
    require(vault, actor, Action.READ_AUDIT, via, _("read the audit log"))
    return audit.recording_hashes(vault, actor_of(actor, via), after, limit)


def log_state(vault: Vault) -> tuple[int, bytes | None]:
    """The log size and the checkpoint kept outside the database, after sealing
    a checkpoint over every entry where the log allows it. Public by design.

    A log that no longer extends the outside checkpoint is not sealed (the
    caller's own verification finds out why); everything else is answered."""
    try:
        audit.seal(vault)
    except LogTamperedError as exc:
        log.error("the audit log was not sealed: %s", exc.message)
    return audit.state(vault)


def checkpoints(vault: Vault, after: int, upto: int | None, limit: int) -> list[tuple[int, bytes]]:
    """Stored checkpoints by size: public by design, like the latest one."""
    return audit.checkpoints(vault, after, upto, limit)


def checkpoint(vault: Vault) -> bytes:
    """The latest signed checkpoint: public by design (it reveals only a size and a hash)."""
    return audit.current_checkpoint(vault)


def consistency(vault: Vault, old_size: int, new_size: int | None) -> list[bytes]:
    """A consistency proof: public by design, like the checkpoints it links."""
    audit.seal(vault)
    return audit.consistency(vault, old_size, new_size)


def receipt(vault: Vault, actor: Principal, ref: str, via: str) -> bytes:
    """The tlog-proof of a recording's ingest entry, for whoever may see the recording."""
    with audit.logging_refusals(vault), vault.engine.connect() as conn:
        rec = visible_recording(conn, vault, actor, ref, via)
        index = audit.ingest_entry_index(conn, rec.id)
    proof = audit.inclusion_receipt(vault, index)
    with vault.engine.begin() as conn:
        audit.append(conn, Event("recording.receipt", actor_of(actor, via), {"entry": index},
                                 EvidenceRef.of(rec)))
    return proof
