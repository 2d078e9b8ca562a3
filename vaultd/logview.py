"""Reading the audit log and its proofs, as a service with access checks.

Reading the log is itself logged (``audit.read_entries``)."""

from __future__ import annotations

from vaultd import audit
from vaultd.access import Action, Principal
from vaultd.approvals import visible_recording
from vaultd.audit import AuditFilter, Event, EvidenceRef, LoggedEntry
from vaultd.i18n import _
from vaultd.people import actor_of, require
from vaultd.vault import Vault


def list_entries(vault: Vault, actor: Principal, flt: AuditFilter, via: str) -> list[LoggedEntry]:
    require(vault, actor, Action.READ_AUDIT, via, _("read the audit log"))
    return audit.read_entries(vault, actor_of(actor, via), flt)


def entry(vault: Vault, actor: Principal, index: int, via: str) -> bytes:
    require(vault, actor, Action.READ_AUDIT, via, _("read the audit log"))
    with vault.engine.connect() as conn:
        return audit.entry_bytes(conn, index)


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
