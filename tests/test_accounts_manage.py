"""#17.3: accounts an admin can manage: tokens listed without secrets and
revoked by id, users edited field by field, recordings moved to another unit;
each an audit entry."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import token_for
from vaultd import people
from vaultd.access import Level, Role
from vaultd.api import create_app
from vaultd.catalog.schema import audit_entries, recordings
from vaultd.ingest import ingest_path
from vaultd.model import Actor
from vaultd.vault import Vault

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API = "/api/v1"


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vaultd.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120)


def entries(vault: Vault, type_: str) -> list[dict[str, Any]]:
    with vault.engine.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.type == type_)
                            .order_by(audit_entries.c.idx)).all()
    return [json.loads(r.entry) for r in rows]


def add(vault: Vault, name: str, role: Role, password: str | None = None, **kw: Any) -> None:
    people.add_user(vault, people.local_owner(), people.NewUser(name, (role,), **kw), password, "cli")


def test_tokens_list_shows_ones_own_and_an_admin_all_without_secrets(vault: Vault) -> None:
    add(vault, "wang", Role.OFFICER, unit="一大队", officer_number="012345", display_name="王小明")
    add(vault, "root", Role.ADMIN)
    wang, root = token_for(vault, "wang"), token_for(vault, "root")
    with TestClient(create_app(vault)) as client:
        mine = client.get(API + "/tokens", headers={"Authorization": f"Bearer {wang}"})
        assert mine.status_code == 200
        assert [t["user"] for t in mine.json()["items"]] == ["wang"]
        assert mine.json()["items"][0]["user_label"] == "王小明 (警号 012345, 一大队)"
        refused = client.get(API + "/tokens", params={"all": "true"}, headers={"Authorization": f"Bearer {wang}"})
        assert refused.status_code == 403
        every = client.get(API + "/tokens", params={"all": "true"}, headers={"Authorization": f"Bearer {root}"})
        assert sorted(t["user"] for t in every.json()["items"]) == ["root", "wang"]
        assert wang not in every.text and root not in every.text and "sha256" not in every.text
        tid = mine.json()["items"][0]["id"]
        assert client.delete(API + f"/tokens/{tid}", headers={"Authorization": f"Bearer {root}"}).status_code == 204
        again = client.get(API + "/tokens", params={"all": "true"}, headers={"Authorization": f"Bearer {root}"})
        assert {t["id"]: t["state"] for t in again.json()["items"]}[tid] == "revoked"
    assert entries(vault, "token.revoke")[-1]["details"] == {"token": tid, "user": "wang"}


def test_tokens_list_and_revoke_on_the_station(home: Path, vault: Vault) -> None:
    add(vault, "wang", Role.OFFICER, display_name="王小明")
    secret = token_for(vault, "wang")
    r = cli(home, "tokens", "list", "--all")
    assert r.returncode == 0 and "王小明" in r.stdout and "live" in r.stdout and secret not in r.stdout
    tid = r.stdout.split()[0]
    assert cli(home, "tokens", "revoke", tid).returncode == 0
    assert "revoked" in cli(home, "tokens", "list", "--all").stdout


def test_users_edit_changes_each_field_with_an_audit_entry(home: Path, vault: Vault) -> None:
    add(vault, "wang", Role.OFFICER, "officer password 1", unit="一大队", officer_number="012345")
    r = cli(home, "users", "edit", "wang", "--unit", "二大队", "--officer-number", "012346", "--clearance",
            "confidential", "--display-name", "王小明", "--role", "officer", "--role", "supervisor")
    assert r.returncode == 0, r.stderr
    (edit,) = entries(vault, "user.edit")
    assert edit["details"]["changes"] == {
        "unit": ["一大队", "二大队"], "officer_number": ["012345", "012346"],
        "clearance": ["normal", "confidential"], "display_name": [None, "王小明"],
        "roles": [["officer"], ["officer", "supervisor"]], "pending_roles": [[], []]}
    (row,) = people.list_users(vault, people.local_owner(), "cli")
    assert (row.unit, row.officer_number, row.clearance, row.display_name, row.roles) == (
        "二大队", "012346", Level.CONFIDENTIAL.value, "王小明", ("officer", "supervisor"))
    assert cli(home, "users", "edit", "wang", "--display-name", "").returncode == 0
    assert people.list_users(vault, people.local_owner(), "cli")[0].display_name is None
    nothing = cli(home, "users", "edit", "wang")
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr


def test_only_admins_edit_users(vault: Vault) -> None:
    add(vault, "wang", Role.OFFICER)
    add(vault, "li", Role.SUPERVISOR, unit="一大队")
    with TestClient(create_app(vault)) as client:
        r = client.patch(API + "/users/wang", json={"unit": "一大队"},
                         headers={"Authorization": f"Bearer {token_for(vault, 'li')}"})
    assert r.status_code == 403 and r.json()["error"]["rule"] == "role"


@pytest.fixture
def ingested(vault: Vault, camera: Path) -> list[str]:
    add(vault, "wang", Role.OFFICER, unit="一大队", officer_number="012345")
    ingest_path(vault, camera, actor=Actor.local())
    with vault.engine.connect() as conn:
        return [r.id for r in conn.execute(select(recordings.c.id).order_by(recordings.c.recorded_start))]


def test_recordings_move_to_another_unit_with_a_reason(home: Path, vault: Vault, ingested: list[str]) -> None:
    one = cli(home, "recordings", "reassign", ingested[0], "--unit", "二大队", "--reason", "调岗 2026-11")
    assert one.returncode == 0, one.stderr
    assert "1 recordings moved to 二大队" in one.stdout
    rest = cli(home, "recordings", "reassign", "--officer", "012345", "--since", "2000-01-01", "--unit", "二大队",
               "--reason", "调岗 2026-11", "--json")
    assert rest.returncode == 0, rest.stderr
    assert sorted(m["recording_id"] for m in json.loads(rest.stdout)) == sorted(ingested[1:])
    with vault.engine.connect() as conn:
        assert {r.unit for r in conn.execute(select(recordings.c.unit))} == {"二大队"}
    moved = entries(vault, "recording.unit_change")
    assert sorted(e["evidence"]["id"] for e in moved) == sorted(ingested)
    assert moved[0]["details"] == {"unit_before": "一大队", "unit_after": "二大队", "reason": "调岗 2026-11",
                                   "officer": "012345"}
    no_reason = cli(home, "recordings", "reassign", ingested[0], "--unit", "一大队", "--reason", " ")
    assert no_reason.returncode == 2 and "reason" in no_reason.stderr


def test_only_admins_move_recordings(vault: Vault, ingested: list[str]) -> None:
    add(vault, "li", Role.SUPERVISOR, unit="一大队")
    with TestClient(create_app(vault)) as client:
        r = client.post(API + "/recordings/reassign", json={"recording": ingested[0], "unit": "一大队",
                                                            "reason": "mine now"},
                        headers={"Authorization": f"Bearer {token_for(vault, 'li')}"})
    assert r.status_code == 403
    assert not entries(vault, "recording.unit_change")
