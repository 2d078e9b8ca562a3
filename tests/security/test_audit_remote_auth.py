"""Refusals around verifying the log over the API (#17.1): only the roles that
may read the log (auditor, legal, leader) fetch its entries, subtree hashes
and the catalog's hashes; no token, a bad token or another role is refused,
and each refusal and each read is in the log."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.exceptions import StarletteDeprecationWarning

from serving import vaultd_serve
from vaultd import audit, note, people
from vaultd.access import Role
from vaultd.api import create_app
from vaultd.catalog.schema import audit_entries
from vaultd.cli import main
from vaultd.errors import AccessDeniedError, AuthenticationError
from vaultd.vault import Vault
from conftest import token_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
OWNER = people.local_owner()
USERS = {"kong": Role.AUDITOR, "zhao": Role.LEGAL, "sun": Role.LEADER,
         "wang": Role.OFFICER, "li": Role.SUPERVISOR, "root": Role.ADMIN}
READERS = ("kong", "zhao", "sun")
OTHERS = ("wang", "li", "root")
FETCHES = ("/audit/range?start=0&end=3", "/audit/nodes?level=0&start=0&end=3", "/audit/recordings")


@pytest.fixture
def tokens(vault: Vault) -> dict[str, str]:
    out = {}
    for name, role in USERS.items():
        people.add_user(vault, OWNER, people.NewUser(name, (role,), "一大队"), None, "cli")
        out[name] = token_for(vault, name)
    audit.seal(vault)
    return out


@pytest.fixture
def api(vault: Vault) -> Iterator[TestClient]:
    with TestClient(create_app(vault)) as client:
        yield client


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def last_entries(vault: Vault, n: int) -> list[dict[str, Any]]:
    with vault.engine.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.idx.desc()).limit(n)).all()
    return [json.loads(r.entry) for r in reversed(rows)]


@pytest.mark.parametrize("path", FETCHES)
def test_no_token_or_a_bad_one_is_refused(api: TestClient, tokens: dict[str, str], path: str) -> None:
    assert api.get(API + path).status_code == 401
    assert api.get(API + path, headers=h("vdt_not-a-real-token")).status_code == 401


@pytest.mark.parametrize("path", FETCHES)
@pytest.mark.parametrize("who", OTHERS)
def test_roles_that_may_not_read_the_log_are_refused_and_logged(api: TestClient, vault: Vault,
                                                                tokens: dict[str, str], who: str, path: str) -> None:
    resp = api.get(API + path, headers=h(tokens[who]))
    assert resp.status_code == 403, resp.text
    [denied] = last_entries(vault, 1)
    assert denied["type"] == "access.denied" and denied["actor"]["name"] == who
    assert denied["details"]["action"] == "read-audit"


@pytest.mark.parametrize("who", READERS)
def test_each_fetch_by_a_reader_is_logged(api: TestClient, vault: Vault, tokens: dict[str, str], who: str) -> None:
    for path in FETCHES:
        resp = api.get(API + path, headers=h(tokens[who]))
        assert resp.status_code == 200, resp.text
        [read] = last_entries(vault, 1)
        assert read["type"] == "audit.read" and read["actor"] == {"kind": "user", "name": who, "via": "api"}


def test_a_single_entry_read_is_logged_too(api: TestClient, vault: Vault, tokens: dict[str, str]) -> None:
    resp = api.get(API + "/audit/entries/0", headers=h(tokens["kong"]))
    assert resp.status_code == 200
    [read] = last_entries(vault, 1)
    assert read["type"] == "audit.read" and read["details"]["filter"] == {"start": 0, "end": 1}


@pytest.mark.parametrize("query", ["start=0&end=10001", "start=5&end=5", "start=9&end=3", "start=-1&end=3",
                                   "start=0", "start=x&end=3"])
def test_out_of_bounds_ranges_are_refused(api: TestClient, tokens: dict[str, str], query: str) -> None:
    resp = api.get(f"{API}/audit/range?{query}", headers=h(tokens["kong"]))
    assert resp.status_code in (400, 422), resp.text
    assert resp.json()["error"]["message"]


@pytest.mark.parametrize("query", ["level=64&start=0&end=1", "level=0&start=0&end=65537", "level=-1&start=0&end=1"])
def test_out_of_bounds_node_ranges_are_refused(api: TestClient, tokens: dict[str, str], query: str) -> None:
    resp = api.get(f"{API}/audit/nodes?{query}", headers=h(tokens["kong"]))
    assert resp.status_code in (400, 422), resp.text


def test_the_head_and_checkpoints_need_a_token(api: TestClient, tokens: dict[str, str]) -> None:
    for path in ("/audit/head", "/audit/checkpoints"):
        assert api.get(API + path).status_code == 401
        assert api.get(API + path, headers=h(tokens["wang"])).status_code == 200  # public by design


# -- the command line at an auditor's computer ---------------------------------------------------


@pytest.fixture
def served(home: Path, tokens: dict[str, str]) -> Iterator[str]:
    with vaultd_serve(home) as url:
        yield url


@pytest.fixture
def log_key(vault: Vault, tmp_path: Path) -> Path:
    key = tmp_path / "log-key.txt"
    key.write_text(note.verifier_key_string(audit.verifier(vault)), encoding="utf-8")
    return key


def verify_as(url: str, token: str | None, key: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--url", url, *(["--token", token] if token else []), "audit", "verify", "--log-key", str(key)])
    out, err = capsys.readouterr()
    return code, out + err


def test_remote_verify_refusals(served: str, tokens: dict[str, str], log_key: Path, vault: Vault,
                                capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULTD_HOME", raising=False)
    monkeypatch.delenv("VAULTD_TOKEN", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")
    code, text = verify_as(served, None, log_key, capsys)
    assert code == AuthenticationError.exit_code and "intact" not in text, text
    code, text = verify_as(served, tokens["wang"], log_key, capsys)
    assert code == AccessDeniedError.exit_code and "may not read the audit log" in text, text
    assert "intact" not in text
    [denied] = last_entries(vault, 1)
    assert denied["type"] == "access.denied" and denied["actor"]["name"] == "wang"
    code, text = verify_as(served, tokens["kong"], log_key, capsys)
    assert code == 0 and "intact" in text, text
