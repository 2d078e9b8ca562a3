"""``recordings list`` as people search (#17.4): by unit and by case, officers by name, station time."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from compliance_fixtures import put_recording
from vaultd import cases, people
from vaultd.access import Role
from vaultd.api.app import create_app
from vaultd.cli import main
from vaultd.vault import Vault
from conftest import token_for

OWNER = people.local_owner()
UTC = timezone.utc


@pytest.fixture
def world(vault: Vault) -> dict[str, str]:
    people.add_user(vault, OWNER, people.NewUser("wang", (Role.OFFICER,), "一大队", "012345",
                                                 display_name="王小明"), None, "cli")
    people.add_user(vault, OWNER, people.NewUser("zhou", (Role.LEGAL,), None, None), None, "cli")
    a = put_recording(vault, officer="012345", unit="一大队", start=datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    b = put_recording(vault, officer="2001", unit="二大队", start=datetime(2026, 11, 3, 1, 0, tzinfo=UTC))
    c = put_recording(vault, officer="012345", unit="一大队", start=datetime(2026, 11, 4, 1, 0, tzinfo=UTC))
    cases.create(vault, OWNER, cases.NewCase("松执〔2026〕7号", "占道经营"))
    cases.link(vault, OWNER, "松执〔2026〕7号", [b.id, c.id])
    return {"a": a.id, "b": b.id, "c": c.id}


def _list(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["--home", str(home), "recordings", "list", *args]) == 0
    return capsys.readouterr().out


def test_cli_filters_by_unit_and_case(world: dict[str, str], home: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    ids = [d["id"] for d in json.loads(_list(home, capsys, "--unit", "一大队", "--json"))]
    assert ids == [world["a"], world["c"]]
    ids = [d["id"] for d in json.loads(_list(home, capsys, "--case", "松执〔2026〕7号", "--json"))]
    assert ids == [world["b"], world["c"]]
    ids = [d["id"] for d in json.loads(_list(home, capsys, "--case", "松执〔2026〕7号", "--unit", "一大队", "--json"))]
    assert ids == [world["c"]]
    assert json.loads(_list(home, capsys, "--case", "no such case", "--json")) == []


def test_cli_shows_officers_by_name_in_station_time(world: dict[str, str], home: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    docs = json.loads(_list(home, capsys, "--json"))
    assert docs[0]["officer_name"] == "王小明 (警号 012345, 一大队)" and docs[1]["officer_name"] is None
    assert docs[0]["recorded_start"] == "2026-11-02T09:00:00+08:00"  # JSON: ISO 8601 with its offset
    out = _list(home, capsys)
    assert "Asia/Shanghai" in out.splitlines()[0]
    line_a = next(x for x in out.splitlines() if x.startswith(world["a"]))
    assert "王小明" in line_a and "2026-11-02 09:00:00" in line_a
    line_b = next(x for x in out.splitlines() if x.startswith(world["b"]))
    assert " 2001 " in line_b  # no user with that 警号: the number
    assert main(["--home", str(home), "recordings", "show", world["a"]]) == 0
    shown = capsys.readouterr().out
    assert "王小明" in shown and "2026-11-02 09:00:00 (Asia/Shanghai)" in shown


def test_api_filters_by_unit_and_case_with_names(world: dict[str, str], vault: Vault) -> None:
    h = {"Authorization": f"Bearer {token_for(vault, 'zhou')}"}
    with TestClient(create_app(vault)) as client:
        r = client.get("/api/v1/recordings", headers=h, params={"unit": "二大队"})
        assert r.status_code == 200 and [d["id"] for d in r.json()["items"]] == [world["b"]]
        r = client.get("/api/v1/recordings", headers=h, params={"case": "松执〔2026〕7号", "unit": "一大队"})
        items = r.json()["items"]
        assert [d["id"] for d in items] == [world["c"]] and items[0]["officer_name"].startswith("王小明")
        r = client.get(f"/api/v1/recordings/{world['a']}", headers=h)
        assert r.json()["officer_name"] == "王小明 (警号 012345, 一大队)"
