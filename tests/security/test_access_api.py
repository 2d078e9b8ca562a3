"""Refusals through the HTTP API for #16: approval follows the recordings' units
(R5), no media for roles without media rights, R9 through cases, holds across
units, and what the audit log must say. Two units, 一大队 and 二大队, as in the
probe that found the holes."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from starlette.exceptions import StarletteDeprecationWarning

from vaultd import people
from vaultd.access import Level, Role
from vaultd.api import create_app
from vaultd.catalog import recordings as rec_db
from vaultd.catalog.schema import access_requests, grants, recordings, users
from vaultd.ingest import ingest_path
from vaultd.model import Actor, Recording
from vaultd.vault import Vault, utcnow
from apicheck import logged, refused
from conftest import token_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
U1, U2 = "一大队", "二大队"
NOTICE = "盘执调〔2026〕17号"
USERS: dict[str, tuple[tuple[Role, ...], dict[str, Any]]] = {
    "wang": ((Role.OFFICER,), {"unit": U1, "officer_number": "012345"}),  # the camera's officer
    "liu": ((Role.OFFICER,), {"unit": U2, "officer_number": "022222"}),
    "zhao": ((Role.SUPERVISOR,), {"unit": U1}),
    "qian": ((Role.SUPERVISOR,), {"unit": U2}),
    "sun": ((Role.LEADER,), {"clearance": Level.SECRET}),
    "zhou": ((Role.LEGAL,), {"unit": U1, "clearance": Level.CONFIDENTIAL}),  # legal staff of 一大队
    "wu": ((Role.AUDITOR,), {}),
    "root": ((Role.ADMIN,), {}),
}


@dataclass
class World:
    vault: Vault
    client: TestClient
    tokens: dict[str, str]
    u1: list[Recording]  # wang's, of 一大队
    u2: list[Recording]  # liu's, of 二大队

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, who: str, path: str, **kw: Any) -> Any:
        return self.client.get(API + path, headers=self.h(who), **kw)

    def post(self, who: str, path: str, body: Any = None) -> Any:
        return self.client.post(API + path, headers=self.h(who), json=body)

    def ask(self, who: str, kind: str, *recs: Recording, **extra: Any) -> Any:
        return self.post(who, "/access/requests", {"kind": kind, "recordings": [r.id for r in recs],
                                                   "purpose": "案件 2026-017 复核", **extra})

    def original(self, who: str, rec: Recording, grant: str | None, reason: str = "复核") -> Any:
        return self.get(who, f"/recordings/{rec.id}/original",
                        params={"reason": reason, **({"grant": grant} if grant else {})})

    def pending(self, who: str) -> dict[str, dict[str, Any]]:
        return {p["id"]: p for p in self.get(who, "/access/pending").json()["items"]}


@pytest.fixture
def world(vault: Vault, camera: Path) -> Iterator[World]:
    owner = people.local_owner()
    for name, (roles, kw) in USERS.items():
        people.add_user(vault, owner, people.NewUser(name, roles, **kw), None, "cli")
    ingest_path(vault, camera, actor=Actor.local())
    with vault.engine.begin() as conn:
        ids = [r.id for r in conn.execute(select(recordings.c.id).order_by(recordings.c.recorded_start,
                                                                           recordings.c.id))]
        moved = ids[1::2]  # every other recording becomes liu's, of 二大队
        conn.execute(update(recordings).where(recordings.c.id.in_(moved)).values(officer_id="022222", unit=U2))
        recs = [rec_db.get(conn, i) for i in ids]
    tokens = {n: token_for(vault, n) for n in USERS}
    with TestClient(create_app(vault)) as client:
        yield World(vault, client, tokens, [r for r in recs if r.unit == U1], [r for r in recs if r.unit == U2])



def not_found(r: Any) -> None:
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"


# -- 1. approval follows the recordings' units (R5) ----------------------------------------

def test_another_units_recording_is_a_retrieval_only_a_leader_approves(world: World) -> None:
    rec = world.u2[0]
    r = world.ask("zhou", "copy", rec)  # legal of 一大队 asks for a 二大队 recording
    assert r.status_code == 201, r.text
    q = r.json()["id"]
    assert world.get("zhao", f"/recordings/{rec.id}").status_code == 404  # zhao does not see it ...
    refused(world.post("zhao", f"/access/requests/{q}/approve"), 403, "other-department")  # ... nor approves it
    refused(world.post("zhao", f"/access/requests/{q}/deny", {"reason": "x"}), 403, "other-department")
    assert q not in world.pending("zhao")
    seen = world.pending("qian")[q]  # the unit whose recording it is hears of it
    assert (seen["may_decide"], seen["rule"]) == (False, "other-department")
    refused(world.post("qian", f"/access/requests/{q}/approve"), 403, "other-department")
    assert world.pending("sun")[q]["may_decide"] is True
    g = world.post("sun", f"/access/requests/{q}/approve")
    assert g.status_code == 200, g.text
    got = world.original("zhou", rec, g.json()["id"])
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == rec.sha256
    assert logged(world.vault, "access.denied", actor="zhao", rule="other-department", request=q,
                  recordings=[rec.id])
    assert logged(world.vault, "access.approve", actor="sun", rule="leader", request=q)


def test_a_mixed_request_is_a_retrieval_too(world: World) -> None:
    r = world.ask("zhou", "view-original", world.u1[0], world.u2[0])
    q = r.json()["id"]
    refused(world.post("zhao", f"/access/requests/{q}/approve"), 403, "other-department")
    refused(world.post("qian", f"/access/requests/{q}/approve"), 403, "other-department")
    assert q in world.pending("zhao") and q in world.pending("qian")  # both units hear of it
    assert world.post("sun", f"/access/requests/{q}/approve").status_code == 200


def test_the_units_own_request_is_the_units_supervisors(world: World) -> None:
    rec = world.u1[0]
    q = world.ask("wang", "view-original", rec).json()["id"]
    assert q not in world.pending("qian")
    refused(world.post("qian", f"/access/requests/{q}/approve"), 403, "other-unit")
    assert world.pending("zhao")[q]["may_decide"] is True
    g = world.post("zhao", f"/access/requests/{q}/approve")
    assert g.status_code == 200 and g.json()["approved_by"] == "zhao"


def test_a_request_by_case_across_units_needs_a_leader(world: World) -> None:
    number = "案2026-跨单位"
    assert world.post("zhou", "/cases", {"number": number, "title": "跨单位"}).status_code == 201
    linked = world.post("zhou", "/case/link", {"case": number, "recordings": [world.u1[0].id, world.u2[0].id]})
    assert linked.status_code == 200, linked.text
    r = world.post("zhou", "/access/requests", {"kind": "copy", "case": number, "purpose": "移送"})
    assert r.status_code == 201 and set(r.json()["recordings"]) == {world.u1[0].id, world.u2[0].id}
    refused(world.post("zhao", f"/access/requests/{r.json()['id']}/approve"), 403, "other-department")
    assert world.post("sun", f"/access/requests/{r.json()['id']}/approve").status_code == 200


# -- 3. no media for roles without media rights -------------------------------------------

@pytest.mark.parametrize("who", ["wu", "root"])
def test_auditor_and_admin_may_not_ask_for_media(world: World, who: str) -> None:
    refused(world.ask(who, "external-retrieval", world.u1[0], notice=NOTICE), 403, "no-media-rights")
    refused(world.ask(who, "view-original", world.u1[0]), 403, "no-media-rights")
    assert logged(world.vault, "access.denied", actor=who, rule="no-media-rights")


@pytest.mark.parametrize("who", ["wu", "root"])
def test_a_grant_gives_no_media_to_auditor_or_admin(world: World, who: str) -> None:
    rec = world.u1[0]
    with world.vault.engine.begin() as conn:  # a grant made before the rule, or by any other means
        uid = conn.execute(select(users.c.id).where(users.c.name == who)).scalar_one()
        sun = conn.execute(select(users.c.id).where(users.c.name == "sun")).scalar_one()
        now = utcnow()
        conn.execute(insert(access_requests).values(
            id="qold", kind="external-retrieval", requester_id=uid, requester_unit=None, purpose="x",
            notice_number=NOTICE, case_number=None, recording_ids=json.dumps([rec.id]), expires_days=1, uses=5,
            status="approved", created_at=now))
        conn.execute(insert(grants).values(
            id="gold", request_id="qold", grantee_id=uid, kind="external-retrieval",
            recording_ids=json.dumps([rec.id]), purpose="x", expires_at=now + timedelta(days=1), uses_total=5,
            uses_left=5, approved_by=sun, created_at=now))
    refused(world.original(who, rec, "gold"), 403, "no-media-rights")
    got = world.get(who, f"/recordings/{rec.id}/preview/main")
    assert got.status_code in (403, 404), got.text
    if got.status_code == 403:
        assert got.json()["error"]["rule"] == "no-media-rights"
    assert logged(world.vault, "access.denied", actor=who, rule="no-media-rights", evidence=rec.id)
    with world.vault.engine.connect() as conn:
        assert conn.execute(select(grants.c.uses_left).where(grants.c.id == "gold")).scalar_one() == 5


# -- 5. R9 through cases, and a recording's own level --------------------------------------

def test_a_confidential_case_makes_its_recordings_confidential(world: World) -> None:
    rec = world.u1[0]
    gid = world.post("zhao", f"/access/requests/{world.ask('wang', 'view-original', rec, uses=5).json()['id']}"
                             "/approve").json()["id"]
    assert world.original("wang", rec, gid).status_code == 200
    number = "案2026-密"
    assert world.post("zhou", "/cases", {"number": number, "title": "涉密", "confidentiality": "confidential"}
                      ).status_code == 201
    assert world.post("zhou", "/case/link", {"case": number, "recordings": [rec.id]}).status_code == 200
    shown = world.get("zhou", f"/recordings/{rec.id}").json()
    assert (shown["confidentiality"], shown["own_confidentiality"], shown["case_confidentiality"]) == (
        "confidential", "normal", "confidential")
    for who in ("wang", "zhao"):  # normal clearance: the recording is gone for them, grant or not
        for path in (f"/recordings/{rec.id}", f"/recordings/{rec.sha256[:12]}", f"/recordings/{rec.id}/label",
                     f"/recordings/{rec.id}/preview"):
            not_found(world.get(who, path))
        assert rec.id not in [r["id"] for r in world.get(who, "/recordings", params={"limit": 2}).json()["items"]]
    not_found(world.original("wang", rec, gid))
    assert logged(world.vault, "access.denied", actor="wang", rule="clearance", evidence=rec.id)
    assert world.get("zhao", "/recordings").json()["items"]  # the unit's other recordings stay


def test_setting_a_recordings_own_level(world: World) -> None:
    rec = world.u1[1] if len(world.u1) > 1 else world.u1[0]
    body = {"level": "confidential", "reason": "涉及个人隐私"}
    refused(world.post("wang", f"/recordings/{rec.id}/confidentiality", body), 403, "role")
    refused(world.post("zhao", f"/recordings/{rec.id}/confidentiality", body), 403, "clearance")
    not_found(world.post("qian", f"/recordings/{rec.id}/confidentiality", body))  # not qian's unit
    r = world.post("zhou", f"/recordings/{rec.id}/confidentiality", {**body, "reason": " "})
    assert r.status_code in (400, 422)
    r = world.post("zhou", f"/recordings/{rec.id}/confidentiality", body)
    assert r.status_code == 200 and r.json()["confidentiality"] == "confidential", r.text
    entry = logged(world.vault, "recording.confidentiality", evidence=rec.id)
    assert [(e["actor"]["name"], e["details"]["old"], e["details"]["new"], e["details"]["reason"])
            for e in entry] == [("zhou", "normal", "confidential", "涉及个人隐私")]
    not_found(world.get("wang", f"/recordings/{rec.id}"))
    not_found(world.get("zhao", f"/recordings/{rec.id}"))
    not_found(world.post("zhao", f"/recordings/{rec.id}/confidentiality", {**body, "level": "normal"}))
    r = world.post("sun", f"/recordings/{rec.id}/confidentiality", {"level": "normal", "reason": "已解密"})
    assert r.status_code == 200 and r.json()["confidentiality"] == "normal"  # a leader may lower it
    assert world.get("wang", f"/recordings/{rec.id}").status_code == 200


def test_confidentiality_from_the_command_line(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    from vaultd.cli import main

    rec = world.u2[0]
    home = str(world.vault.layout.root)
    assert main(["--home", home, "recordings", "confidentiality", rec.id, "secret", "--reason", "商业秘密"]) == 0
    assert f"{rec.id}: own level secret, applies secret" in capsys.readouterr().out
    assert main(["--home", home, "recordings", "confidentiality", rec.id, "secret", "--reason", "x"]) == 2
    assert "secret already" in capsys.readouterr().err
    not_found(world.get("qian", f"/recordings/{rec.id}"))


# -- 11. holds across units ------------------------------------------------------------------

def test_holds_follow_the_recordings_visibility(world: World) -> None:
    rec, theirs = world.u1[0], world.u2[0]
    hold = {"reason": "complaint", "note": "当事人投诉"}
    missing = "0" * 12 if not rec.sha256.startswith("0" * 12) else "f" * 12
    for ref in (rec.id, rec.sha256[:12], rec.sha256, missing):  # by id or sha256 prefix: as if it were missing
        r = world.post("qian", "/holds", {**hold, "recording": ref})
        not_found(r)
        assert r.json()["error"]["message"] == f"no recording {ref}"
    assert logged(world.vault, "access.denied", actor="qian", evidence=rec.id)
    made = world.post("zhao", "/holds", {**hold, "recording": rec.sha256[:12]})
    assert made.status_code == 201, made.text
    hid = made.json()["id"]
    assert world.post("sun", "/holds", {**hold, "recording": theirs.id}).status_code == 201  # a leader: any unit
    listed = {who: [h["recording"] for h in world.get(who, "/holds").json()["items"]]
              for who in ("zhao", "qian", "sun", "wu", "root", "zhou")}
    assert listed["zhao"] == [rec.id] and listed["qian"] == [theirs.id]
    assert sorted(listed["sun"]) == sorted(listed["wu"]) == sorted(listed["zhou"]) == sorted([rec.id, theirs.id])
    assert listed["root"] == []  # the admin sees no recordings
    not_found(world.post("qian", f"/holds/{hid}/release", {"note": "x"}))
    assert world.post("sun", f"/holds/{hid}/release", {"note": "已结案"}).status_code == 200


# -- 12. audit gaps ---------------------------------------------------------------------------

def test_reading_a_label_is_logged(world: World) -> None:
    rec = world.u1[0]
    assert world.get("wang", f"/recordings/{rec.id}/label").status_code == 200
    assert logged(world.vault, "label.show", actor="wang", evidence=rec.id)


def test_reading_a_preview_state_is_logged(world: World) -> None:
    rec = world.u1[0]
    assert world.get("wang", f"/recordings/{rec.id}/preview", params={"request": "false"}).status_code == 200
    assert logged(world.vault, "preview.status", actor="wang", evidence=rec.id)


def audit_of(world: World, rec: Recording) -> list[tuple[str, str]]:
    r = world.get("sun", "/audit/entries", params={"recording": rec.id})
    assert r.status_code == 200, r.text
    return [(e["type"], e["actor"]["name"]) for e in r.json()["items"]]


def test_who_asked_approved_and_denied_shows_under_each_recording(world: World) -> None:
    a, b = world.u1[0], world.u1[-1]
    q = world.ask("wang", "copy", a, b).json()["id"]
    assert world.post("zhao", f"/access/requests/{q}/approve").status_code == 200
    q2 = world.ask("wang", "view-original", a).json()["id"]
    assert world.post("zhao", f"/access/requests/{q2}/deny", {"reason": "理由不足"}).status_code == 200
    for rec in (a, b):
        got = audit_of(world, rec)
        assert ("access.request", "wang") in got and ("access.approve", "zhao") in got
    assert ("access.deny", "zhao") in audit_of(world, a) and ("access.deny", "zhao") not in audit_of(world, b)
    deny = logged(world.vault, "access.deny", evidence=a.id)[0]["details"]
    assert deny["reason"] == "理由不足" and deny["recordings"] == [a.id] and deny["request"] == q2


def test_a_refused_download_keeps_the_reason_given(world: World) -> None:
    rec = world.u1[0]
    refused(world.original("wang", rec, None, reason="想先看看"), 403, "no-grant")
    not_found(world.original("liu", rec, None, reason="好奇"))
    assert logged(world.vault, "access.denied", actor="wang", evidence=rec.id, reason="想先看看")
    assert logged(world.vault, "access.denied", actor="liu", evidence=rec.id, reason="好奇")
