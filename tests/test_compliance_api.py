"""The compliance API: the same services and rules as the command line."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from compliance_fixtures import Month
from vaultd import people
from vaultd.access import Role
from vaultd.api.app import create_app
from vaultd.vault import Vault
from conftest import token_for

OWNER = people.local_owner()


def test_reports_spot_checks_and_stats_over_http(vault: Vault) -> None:
    m = Month(vault)
    tokens = {}
    for name, role, unit in (("sup", Role.SUPERVISOR, "二中队"), ("zhou", Role.LEGAL, None),
                             ("wang", Role.OFFICER, "一中队")):
        people.add_user(vault, OWNER, people.NewUser(name, (role,), unit, "1001" if name == "wang" else None),
                        None, "cli")
        tokens[name] = {"Authorization": f"Bearer {token_for(vault, name)}"}
    with TestClient(create_app(vault)) as client:
        r = client.get("/api/v1/compliance/report", headers=tokens["sup"],
                       params={"since": "2026-10-01T00:00:00", "until": "2026-11-01T00:00:00"})
        assert r.status_code == 200, r.text
        assert r.json()["unit"] == "二中队" and r.json()["total"]["recordings"] == 7
        r = client.get("/api/v1/compliance/report", headers=tokens["sup"], params={"unit": "一中队"})
        assert r.status_code == 403 and r.json()["error"]["rule"] == "other-unit"
        r = client.get("/api/v1/compliance/report", headers=tokens["wang"])
        assert r.status_code == 403
        r = client.post(f"/api/v1/compliance/late/{m.cam1_late[0]}", headers=tokens["wang"],
                        json={"reason": "连续执勤"})
        assert r.status_code == 200 and r.json()["reason"] == "连续执勤"
        r = client.post(f"/api/v1/gaps/{m.c3[3]}/note", headers=tokens["sup"], json={"text": "故障"})
        assert r.status_code == 200 and r.json()["note"] == "故障"
        r = client.get("/api/v1/gaps", headers=tokens["sup"], params={"unnoted": "true"})
        assert r.status_code == 200 and [g["id"] for g in r.json()] == [m.c3[1]]
        r = client.post("/api/v1/spotchecks", headers=tokens["zhou"], json={"percent": 10, "seed": "abc"})
        assert r.status_code == 200 and len(r.json()["sample"]) == 4
        check = r.json()
        r = client.post(f"/api/v1/spotchecks/{check['id']}/findings", headers=tokens["zhou"],
                        json={"recording_id": check["sample"][0], "item": "recorded", "result": "pass"})
        assert r.status_code == 200
        assert client.post("/api/v1/spotchecks", headers=tokens["sup"], json={"percent": 10}).status_code == 403
        r = client.get("/api/v1/report/stats.csv", headers=tokens["zhou"], params={"year": 2026})
        assert r.status_code == 200
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert rows[0]["recordings"] == "31"
        r = client.get("/api/v1/scrub", headers=tokens["zhou"])
        assert r.status_code == 200 and r.json()["alarms"] == [] and r.json()["files"] == 31
