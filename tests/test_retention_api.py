"""The #6 API as named users meet it: a two-person purge, a hold released by a
second person, a shorter class approved by a supervisor, Chinese text intact."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

pytest.register_assert_rewrite("retention_world")  # before its import: it is also a plugin here
from retention_world import World, logged
from vaultd import retention
from vaultd.api import create_app
from vaultd.vault import utcnow
from conftest import token_for

P = "/api/v1"

pytest_plugins = ("retention_world",)  # the w / world_home fixtures


class Api:
    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client, self.tokens = client, tokens

    def __call__(self, who: str, method: str, path: str, **kw: Any) -> Any:
        return self.client.request(method, P + path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, **kw)


@pytest.fixture
def api(w: World) -> Iterator[tuple[Api, World]]:
    vault = w.vault
    tokens = {n: token_for(vault, n) for n in w.who}
    with TestClient(create_app(vault)) as client:
        yield Api(client, tokens), w


def test_case_and_label_over_the_api(api: tuple[Api, World]) -> None:
    call, w = api
    rec = w.recs[0]
    r = call("wang", "POST", "/cases", json={"number": "案2026-1", "title": "噪音扰民", "party": "李四"})
    assert r.status_code == 201 and r.json()["party"] == "李四"
    assert call("wang", "POST", "/case/link", json={"case": "案2026-1", "recordings": [rec.id]}).json()["linked"]
    r = call("zhao", "POST", "/case/close", json={"case": "案2026-1"})
    assert r.status_code == 400 and "not labelled" in r.text
    r = call("wang", "POST", f"/recordings/{rec.id}/label",
             json={"case_number": "案2026-1", "party": "李四", "handler": "王五", "proves": "噪音超标"})
    assert r.status_code == 200 and r.json()["labelled"] and r.json()["party"] == "李四"
    assert call("zhao", "POST", "/case/close", json={"case": "案2026-1"}).json()["status"] == "closed"
    assert call("wu", "GET", "/case", params={"number": "案2026-1"}).json()["recordings"] == [rec.id]
    assert call("wu", "POST", f"/recordings/{rec.id}/label", json={"party": "x"}).status_code == 403


def test_two_person_purge_and_hold_release(api: tuple[Api, World]) -> None:
    call, w = api
    held = w.recs[0]
    r = call("zhao", "POST", "/holds", json={"recording": held.id, "reason": "obstruction", "note": "袭警"})
    assert r.status_code == 201
    hold_id = r.json()["id"]
    assert call("zhao", "POST", f"/holds/{hold_id}/release", json={}).json()["error"]["rule"] == "own-hold"
    batch = retention.create_batch(w.vault, w.who["root"], now=utcnow().replace(year=2030))
    assert batch is not None and held.id not in {i.recording_id for i in batch.items}
    r = call("root", "POST", f"/retention/batches/{batch.id}/purge")
    assert r.status_code == 403 and r.json()["error"]["rule"] == "approvals-missing"
    assert call("zhou", "POST", f"/retention/batches/{batch.id}/approve").status_code == 200
    assert call("zhou", "POST", f"/retention/batches/{batch.id}/approve").status_code == 400
    assert call("sun", "POST", f"/retention/batches/{batch.id}/approve").json()["approvers"] == ["zhou", "sun"]
    r = call("root", "POST", f"/retention/batches/{batch.id}/purge")  # run today: nothing has expired yet
    assert r.status_code == 200 and r.json()["purged"] == [] and r.json()["skipped"]
    assert all(w.vault.store.check(x.sha256).ok for x in w.recs)
    r = call("qian", "POST", f"/holds/{hold_id}/release", json={"note": "已结案"})
    assert r.status_code == 200 and r.json()["released_by"] == "qian"
    assert logged(w.vault, "hold.release")[0]["details"]["set_by"] == "zhao"


def test_shorter_class_through_the_api(api: tuple[Api, World]) -> None:
    call, w = api
    rec = w.recs[0]
    r = call("wang", "POST", f"/recordings/{rec.id}/class", json={"class": "routine", "reason": "日常巡查"})
    assert r.status_code == 200 and not r.json()["applied"]
    change = r.json()["change"]
    assert [c["id"] for c in call("zhao", "GET", "/retention/class-changes").json()["items"]] == [change]
    assert call("wang", "POST", f"/retention/class-changes/{change}/approve").status_code == 403
    assert call("zhao", "POST", f"/retention/class-changes/{change}/approve").json()["status"] == "approved"
    plan = call("wu", "GET", "/retention/plan", params={"all": "true"}).json()["items"]
    assert {d["recording"]: d["class"] for d in plan}[rec.id] == "routine"


def test_access_request_naming_a_case(api: tuple[Api, World]) -> None:
    call, w = api
    ids = [r.id for r in w.recs[:2]]
    call("wang", "POST", "/cases", json={"number": "案2026-9", "title": "复制证据"})
    call("wang", "POST", "/case/link", json={"case": "案2026-9", "recordings": ids})
    r = call("wang", "POST", "/access/requests", json={"kind": "copy", "case": "案2026-9", "purpose": "移送法院"})
    assert r.status_code == 201, r.text
    assert r.json()["case_number"] == "案2026-9" and sorted(r.json()["recordings"]) == sorted(ids)
    r = call("wang", "POST", "/access/requests", json={"kind": "copy", "case": "无此案", "purpose": "x"})
    assert r.status_code == 404
    r = call("li", "POST", "/access/requests", json={"kind": "copy", "case": "案2026-9", "purpose": "x"})
    assert r.status_code == 400  # li sees none of wang's recordings
    assert call("wang", "POST", "/access/requests", json={"kind": "copy", "purpose": "x"}).status_code == 422
