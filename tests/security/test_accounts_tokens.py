"""#16.2: an admin cannot become anyone. A token is made by its own user (signed
in) or, for a service user (no password, no evidence role), by an admin; roles
that approve or see other people's recordings, given over the API, wait for a
leader or a second admin."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import token_for
from vaultd import people
from vaultd.access import Level, Role
from vaultd.api import create_app
from vaultd.catalog.schema import audit_entries
from vaultd.vault import Vault

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API = "/api/v1"
PASSWORD = "correct horse battery"
USERS: dict[str, tuple[tuple[Role, ...], dict[str, Any], bool]] = {  # roles, fields, has a password
    "offa": ((Role.OFFICER,), {"unit": "一大队", "officer_number": "012345"}, True),
    "li": ((Role.SUPERVISOR,), {"unit": "一大队"}, False),
    "sun": ((Role.LEADER,), {}, False),
    "zhao": ((Role.LEGAL,), {"clearance": Level.CONFIDENTIAL}, False),
    "wu": ((Role.AUDITOR,), {}, True),  # a person: signs in
    "probe": ((Role.AUDITOR,), {}, False),  # a service user: token only
    "root": ((Role.ADMIN,), {}, False),
    "root2": ((Role.ADMIN,), {}, False),
}


@dataclass
class World:
    vault: Vault
    client: TestClient
    tokens: dict[str, str]

    def call(self, who: str, method: str, path: str, body: Any = None) -> Any:
        return self.client.request(method, API + path, headers={"Authorization": f"Bearer {self.tokens[who]}"},
                                   json=body)


@pytest.fixture
def world(vault: Vault) -> Iterator[World]:
    owner = people.local_owner()
    for name, (roles, kw, password) in USERS.items():
        people.add_user(vault, owner, people.NewUser(name, roles, **kw), PASSWORD if password else None, "cli")
    tokens = {n: token_for(vault, n) for n in USERS}
    with TestClient(create_app(vault)) as client:
        yield World(vault, client, tokens)


def entries(vault: Vault, type_: str) -> list[dict[str, Any]]:
    with vault.engine.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.type == type_)).all()
    return [json.loads(r.entry) for r in rows]


@pytest.mark.parametrize("target", ["offa", "li", "sun", "zhao"])
def test_an_admin_gets_no_token_for_a_person_with_an_evidence_role(world: World, target: str) -> None:
    r = world.call("root", "POST", "/tokens", {"user": target, "expires_days": 1})
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["rule"] == "evidence-role" and "vaultd login" in err["message"]
    denied = [e for e in entries(world.vault, "access.denied") if e["details"].get("user") == target]
    assert denied and denied[0]["actor"]["name"] == "root" and denied[0]["details"]["rule"] == "evidence-role"
    assert not [e for e in entries(world.vault, "token.create") if e["details"]["user"] == target]


def test_an_admin_gets_no_token_for_a_person_who_signs_in(world: World) -> None:
    r = world.call("root", "POST", "/tokens", {"user": "wu", "expires_days": 1})
    assert r.status_code == 403 and r.json()["error"]["rule"] == "person-signs-in"


def test_an_admin_makes_a_token_for_a_service_user(world: World) -> None:
    r = world.call("root", "POST", "/tokens", {"user": "probe", "expires_days": 1})
    assert r.status_code == 201, r.text
    (made,) = people.list_tokens(world.vault, people.local_owner(), "cli", everyone=True)[:1]
    assert made.user == "probe" and made.origin == "service"


def test_a_person_makes_their_own_token(world: World) -> None:
    r = world.call("offa", "POST", "/tokens", {"user": "offa", "expires_days": 1})
    assert r.status_code == 201
    assert people.authenticate(world.vault, r.json()["token"], "test").name == "offa"


def test_others_get_no_token_for_anyone(world: World) -> None:
    r = world.call("li", "POST", "/tokens", {"user": "offa", "expires_days": 1})
    assert r.status_code == 403 and r.json()["error"]["rule"] == "role"


def test_the_station_owner_gets_no_token_for_a_person(home: Path, world: World) -> None:
    r = subprocess.run([sys.executable, "-m", "vaultd.cli", "--home", str(home), "tokens", "create", "offa"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 7 and not r.stdout
    assert "vaultd login" in r.stderr and "vdt_" not in r.stderr


def test_a_supervisor_made_over_the_api_waits_for_a_leader_or_a_second_admin(world: World) -> None:
    r = world.call("root", "POST", "/users", {"name": "fake", "role": ["supervisor"], "unit": "一大队",
                                              "password": PASSWORD})
    assert r.status_code == 201, r.text
    assert r.json()["roles"] == [] and r.json()["pending_roles"] == ["supervisor"]
    fake = token_for(world.vault, "fake")  # as if root signed in with the password he chose
    assert people.authenticate(world.vault, fake, "test").roles == frozenset()  # no supervisor yet
    assert [u["name"] for u in world.call("sun", "GET", "/users/pending").json()["items"]] == ["fake"]
    same = world.call("root", "POST", "/users/fake/approve")
    assert same.status_code == 403 and same.json()["error"]["rule"] == "same-admin"
    officer = world.call("offa", "POST", "/users/fake/approve")
    assert officer.status_code == 403
    ok = world.call("root2", "POST", "/users/fake/approve")
    assert ok.status_code == 200 and ok.json()["roles"] == ["supervisor"] and ok.json()["pending_roles"] == []
    assert people.authenticate(world.vault, fake, "test").roles == frozenset({Role.SUPERVISOR})
    (approved,) = entries(world.vault, "user.roles_approved")
    assert approved["actor"]["name"] == "root2" and approved["details"]["given_by"] == "root"


def test_a_leader_approves_a_role_given_by_an_edit(world: World) -> None:
    r = world.call("root", "PATCH", "/users/offa", {"role": ["officer", "leader"]})
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["officer"] and r.json()["pending_roles"] == ["leader"]
    assert world.call("sun", "POST", "/users/offa/approve").json()["roles"] == ["leader", "officer"]


def test_nobody_edits_their_own_roles(world: World) -> None:
    r = world.call("root", "PATCH", "/users/root", {"role": ["admin", "legal"]})
    assert r.status_code == 403 and r.json()["error"]["rule"] == "own-account"


def test_a_service_user_gets_no_evidence_role(world: World) -> None:
    """Else an admin would make a service token, then turn its user into an officer."""
    r = world.call("root", "PATCH", "/users/probe", {"role": ["officer"], "officer_number": "054321"})
    assert r.status_code == 403 and r.json()["error"]["rule"] == "service-user-evidence-role"


def test_the_station_owner_gives_roles_at_once(vault: Vault) -> None:
    row = people.add_user(vault, people.local_owner(), people.NewUser("li", (Role.SUPERVISOR,), "一大队"),
                          None, "cli")
    assert row.roles == ("supervisor",) and row.pending_roles == ()
    (added,) = entries(vault, "user.add")
    assert added["details"]["roles"] == ["supervisor"]
