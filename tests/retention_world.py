"""Shared set-up for the #6 tests: users of each role and an ingested camera."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from vaultd import people
from vaultd.access import Level, Principal, Role
from vaultd.catalog import people as people_db
from vaultd.catalog import recordings as rec_db
from vaultd.catalog.schema import audit_entries, recordings
from vaultd.ingest import ingest_path
from vaultd.model import Actor, Recording
from vaultd.vault import Vault

UNIT = "城管一中队"
USERS: dict[str, tuple[tuple[Role, ...], dict[str, Any]]] = {
    "wang": ((Role.OFFICER,), {"unit": UNIT, "officer_number": "012345"}),  # the camera's officer
    "li": ((Role.OFFICER,), {"unit": UNIT, "officer_number": "054321"}),
    "zhao": ((Role.SUPERVISOR,), {"unit": UNIT}),
    "qian": ((Role.SUPERVISOR,), {"unit": UNIT}),
    "sun": ((Role.LEADER,), {}),
    "zhou": ((Role.LEGAL,), {"clearance": Level.SECRET}),
    "wu": ((Role.AUDITOR,), {}),
    "root": ((Role.ADMIN,), {}),
}


@dataclass
class World:
    vault: Vault
    who: dict[str, Principal]
    recs: list[Recording]


def make_world(vault: Vault, camera: Path) -> World:
    owner = people.local_owner()
    for name, (roles, kw) in USERS.items():
        people.add_user(vault, owner, people.NewUser(name, roles, **kw), None, "cli")
    ingest_path(vault, camera, actor=Actor.local())
    with vault.engine.connect() as conn:
        who = {n: people.principal_of(u) for n in USERS if (u := people_db.user_by_name(conn, n))}
        ids = [r.id for r in conn.execute(select(recordings.c.id).order_by(recordings.c.recorded_start,
                                                                           recordings.c.id))]
        recs = [rec_db.get(conn, i) for i in ids]
    return World(vault, who, recs)


def logged(vault: Vault, type_: str) -> list[dict[str, Any]]:
    with vault.engine.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.type == type_)
                            .order_by(audit_entries.c.idx)).all()
    return [json.loads(r.entry) for r in rows]
