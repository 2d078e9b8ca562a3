"""Shared set-up for the #6 tests: users of each role and an ingested camera.

The world is built once per test module (``world_template``) and each test
gets its own copy of that home (``world_home``, ``w``): copying is much
cheaper than ingesting again.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import TEST_CONFIG

from vaultd import people
from vaultd.access import Level, Principal, Role
from vaultd.catalog import people as people_db
from vaultd.catalog import recordings as rec_db
from vaultd.catalog.schema import audit_entries, recordings
from vaultd.ingest import ingest_path
from vaultd.model import Actor, Recording
from vaultd.vault import Vault, init_vault, open_vault

UNIT = "城管一中队"
USERS: dict[str, tuple[tuple[Role, ...], dict[str, Any]]] = {
    "wang": ((Role.OFFICER,), {"unit": UNIT, "officer_number": "012345"}),  # the camera's officer
    "li": ((Role.OFFICER,), {"unit": UNIT, "officer_number": "054321"}),
    "zhao": ((Role.SUPERVISOR,), {"unit": UNIT}),
    "qian": ((Role.SUPERVISOR,), {"unit": UNIT}),
    "feng": ((Role.SUPERVISOR,), {"unit": "城管二中队"}),  # a supervisor of another unit
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
    return load_world(vault)


def load_world(vault: Vault) -> World:
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


@pytest.fixture(scope="module")
def world_template(tmp_path_factory: pytest.TempPathFactory, _sim_camera_master: Path) -> Path:
    base = tmp_path_factory.mktemp("world")
    home, camera = base / "home", base / "camera"
    shutil.copytree(_sim_camera_master, camera, symlinks=True)
    init_vault(home)
    (home / "vaultd.toml").write_text(TEST_CONFIG, encoding="utf-8")
    vault = open_vault(home)
    try:
        make_world(vault, camera)
    finally:
        vault.close()
    return home


@pytest.fixture
def world_home(world_template: Path, tmp_path: Path) -> Path:
    """A private copy of the world's home: users of each role, one camera ingested."""
    home = tmp_path / "home"
    shutil.copytree(world_template, home, symlinks=True)
    return home


@pytest.fixture
def w(world_home: Path) -> Iterator[World]:
    vault = open_vault(world_home)
    try:
        yield load_world(vault)
    finally:
        vault.close()
