"""People have names (#17.2): a display name in Unicode beside the ASCII login,
shown with 警号 and unit wherever people are named."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from vaultd import people
from vaultd.access import Role
from vaultd.api import create_app
from vaultd.catalog.people import display_label
from vaultd.errors import UsageError
from vaultd.vault import Vault

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

WANG = "王小明"


def _cli(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vaultd.cli", "--home", str(home), *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_display_label_reads_as_people_write_it() -> None:
    assert display_label("wang", WANG, "012345", "一大队") == "王小明 (警号 012345, 一大队)"
    assert display_label("li", None, None, "一大队") == "li (一大队)"
    assert display_label("sun") == "sun"


def test_users_add_keeps_the_display_name_without_loss(home: Path) -> None:
    name = "王小明\u0301𠮷"  # a combining mark and a character outside the BMP stay as typed
    r = _cli(home, "users", "add", "wang", "--role", "officer", "--unit", "一大队", "--officer-number",
             "012345", "--display-name", name, "--no-password")
    assert r.returncode == 0, r.stderr
    listed = _cli(home, "users", "list")
    assert name in listed.stdout and "012345" in listed.stdout
    import json
    rows = json.loads(_cli(home, "users", "list", "--json").stdout)
    assert rows[0]["display_name"] == name and rows[0]["label"] == f"{name} (警号 012345, 一大队)"


def test_directory_maps_logins_and_officer_numbers(vault: Vault) -> None:
    owner = people.local_owner()
    people.add_user(vault, owner, people.NewUser("wang", (Role.OFFICER,), "一大队", "012345",
                                                 display_name=WANG), None, "cli")
    people.add_user(vault, owner, people.NewUser("sun", (Role.LEADER,)), None, "cli")
    d = people.directory(vault)
    assert d.name("wang") == d.officer("012345") == "王小明 (警号 012345, 一大队)"
    assert d.display_names == {"wang": WANG, "sun": "sun"}
    assert d.name("sun") == "sun" and d.name("ghost") == "ghost" and d.officer("999") == "999"
    assert d.name(None) == "-"


@pytest.mark.parametrize("login", ["王小明", "wang\u202e", "ｗａｎｇ"])
def test_non_ascii_login_names_are_refused_with_a_clear_message(vault: Vault, login: str) -> None:
    with pytest.raises(UsageError) as err:
        people.add_user(vault, people.local_owner(), people.NewUser(login, (Role.OFFICER,)), None, "cli")
    assert "not ASCII" in err.value.message and "--display-name" in (err.value.hint or "")


@pytest.mark.parametrize("login", ["wang\x1b[2J", "wang\r\n", "wang li", ""])
def test_control_characters_and_spaces_in_login_names_are_refused(vault: Vault, login: str) -> None:
    with pytest.raises(UsageError) as err:
        people.add_user(vault, people.local_owner(), people.NewUser(login, (Role.OFFICER,)), None, "cli")
    assert "\x1b" not in err.value.message and "\r" not in err.value.message  # shown escaped


@pytest.mark.parametrize("shown", ["王\x1b[2J", "王\u202e小明", "王\n小明", "王\x00"])
def test_control_and_bidi_characters_in_display_names_are_refused(vault: Vault, shown: str) -> None:
    with pytest.raises(UsageError, match="control or formatting"):
        people.add_user(vault, people.local_owner(),
                        people.NewUser("wang", (Role.OFFICER,), display_name=shown), None, "cli")


def test_the_api_takes_and_shows_display_names(vault: Vault) -> None:
    owner = people.local_owner()
    people.add_user(vault, owner, people.NewUser("root", (Role.ADMIN,)), None, "cli")
    token = people.create_token(vault, owner, "root", 1, "cli").secret
    h = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(vault)) as client:
        r = client.post("/api/v1/users", headers=h, json={
            "name": "wang", "role": ["officer"], "unit": "一大队", "officer_number": "012345",
            "display_name": WANG, "password": None})
        assert r.status_code == 201, r.text
        assert r.json()["display_name"] == WANG
        r = client.post("/api/v1/users", headers=h, json={"name": "王", "role": ["officer"], "password": None})
        assert r.status_code == 400 and "not ASCII" in r.json()["error"]["message"]
        items = client.get("/api/v1/users", headers=h).json()["items"]
    assert [u["label"] for u in items if u["name"] == "wang"] == ["王小明 (警号 012345, 一大队)"]


def test_access_pending_names_the_requester(vault: Vault, camera: Path) -> None:
    from zoneinfo import ZoneInfo

    from conftest import token_for
    from vaultd.cli_access import pending_line
    from vaultd.ingest import ingest_path
    from vaultd.model import Actor

    owner = people.local_owner()
    people.add_user(vault, owner, people.NewUser("wang", (Role.OFFICER,), "一大队", "012345", display_name=WANG),
                    None, "cli")
    people.add_user(vault, owner, people.NewUser("li", (Role.SUPERVISOR,), "一大队"), None, "cli")
    ingest_path(vault, camera, actor=Actor.local())
    wang, li = ({"Authorization": f"Bearer {token_for(vault, n)}"} for n in ("wang", "li"))
    with TestClient(create_app(vault)) as client:
        rec = client.get("/api/v1/recordings", headers=wang).json()["items"][0]["id"]
        r = client.post("/api/v1/access/requests", headers=wang, json={
            "kind": "view-original", "recordings": [rec], "purpose": "复核"})
        assert r.status_code == 201, r.text
        (item,) = client.get("/api/v1/access/pending", headers=li).json()["items"]
    assert item["requester_label"] == "王小明 (警号 012345, 一大队)"
    assert "王小明 (警号 012345, 一大队) [wang]" in pending_line(item, ZoneInfo("Asia/Shanghai"))
