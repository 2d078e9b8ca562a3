"""Setting up a vault and keeping its configuration on the record."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import delete, insert, select

from vaultd import audit, note
from vaultd.audit import Event
from vaultd.catalog.schema import vault_meta
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
    with vault.engine.connect() as conn:
        logged = conn.execute(select(vault_meta.c.value).where(vault_meta.c.key == _CONFIG_KEY)).scalar()
    if logged == digest:
        return False
    with vault.engine.begin() as conn:
        audit.append(conn, Event("config.changed", actor, {
            "source": vault.config.source, "sha256": digest, "text": text}))
        conn.execute(delete(vault_meta).where(vault_meta.c.key == _CONFIG_KEY))
        conn.execute(insert(vault_meta).values(key=_CONFIG_KEY, value=digest))
    return True


_CONFIG_KEY = "logged_config_sha256"
