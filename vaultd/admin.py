"""Setting up a vault and keeping its configuration on the record."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import select

from vaultd import audit, note
from vaultd.audit import Event
from vaultd.catalog.schema import audit_entries
from vaultd.model import Actor
from vaultd.vault import InitResult, Vault, init_vault, open_vault


def initialise(home: Path, config_path: Path | None, actor: Actor) -> InitResult:
    """``vaultd init``: create what is missing and log what was created."""
    result = init_vault(home, config_path)
    if result.changed:
        vault = open_vault(home, config_path)
        try:
            with vault.engine.begin() as conn:
                audit.append(conn, Event("vault.init", actor, {
                    "created": list(result.created), "vault_id": vault.vault_id,
                    "log_origin": audit.origin(vault),
                    "log_key": note.verifier_key_string(audit.verifier(vault))}))
            record_config(vault, actor)
            audit.seal(vault)
        finally:
            vault.close()
    return result


def record_config(vault: Vault, actor: Actor) -> bool:
    """Log the effective configuration when it differs from the last one logged."""
    text = vault.config.text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    with vault.engine.begin() as conn:
        row = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.type == "config.changed")
                           .order_by(audit_entries.c.idx.desc()).limit(1)).first()
        if row is not None and json.loads(row.entry)["details"].get("sha256") == digest:
            return False
        audit.append(conn, Event("config.changed", actor, {
            "source": vault.config.source, "sha256": digest, "text": text}))
    return True
