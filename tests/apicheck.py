"""What API tests ask of an answer and of the audit log (shared by tests/test_api.py and the
security tests)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from vaultd.catalog.schema import audit_entries
from vaultd.vault import Vault


def logged(vault: Vault, type_: str, **where: Any) -> list[dict[str, Any]]:
    """Audit entries of a type whose fields (details flattened in, with actor, via and
    evidence) match ``where``."""
    with vault.engine.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.type == type_)
                            .order_by(audit_entries.c.idx)).all()
    out = []
    for row in rows:
        doc = json.loads(row.entry)
        flat = {**doc["details"], "actor": doc["actor"]["name"], "via": doc["actor"]["via"],
                "evidence": (doc["evidence"] or {}).get("id")}
        if all(flat.get(k) == v for k, v in where.items()):
            out.append(doc)
    return out


def refused(r: Any, status: int, rule: str) -> None:
    """An access refusal: ``status`` with code access_denied and the deciding ``rule``."""
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == "access_denied" and err["rule"] == rule, err
