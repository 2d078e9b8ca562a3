"""The HTTP API as its users meet it: officers, supervisors, leaders, legal,
auditors, admins, and a department from outside. Every refusal must come
back with a stable code and rule, and be in the audit log."""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest
from sqlalchemy import select, update
from starlette.exceptions import StarletteDeprecationWarning

import vaultd
from vaultd import audit, people
from vaultd.access import Level, Role
from vaultd.api import create_app
from vaultd.api.app import parse_listen
from vaultd.catalog.schema import grants, recordings
from vaultd.errors import ConfigError
from vaultd.ingest import ingest_path
from vaultd.model import Actor, Recording
from vaultd.vault import Vault, utcnow
from apicheck import logged, refused
from conftest import token_for

with warnings.catch_warnings():  # "install httpx2": the project uses httpx
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
PASSWORD = "correct horse battery"
UNIT_1, UNIT_2 = "一大队", "二大队"
NOTICE = "盘执调〔2026〕17号"


@dataclass
class World:
    vault: Vault
    client: TestClient
    tokens: dict[str, str]
    recs: list[Recording]  # wang's, oldest first

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, who: str, path: str, **kw: Any) -> Any:
        return self.client.get(API + path, headers={**self.h(who), **kw.pop("headers", {})}, **kw)

    def post(self, who: str, path: str, body: Any = None) -> Any:
        return self.client.post(API + path, headers=self.h(who), json=body)

    def rec(self, media_type: str = "video") -> Recording:
        return next(r for r in self.recs if r.media_type.value == media_type)

    def request(self, who: str, kind: str, rec: Recording, **extra: Any) -> Any:
        return self.post(who, "/access/requests", {"kind": kind, "recordings": [rec.id],
                                                   "purpose": "案件 2026-017 复核", **extra})

    def granted(self, who: str, rec: Recording, approver: str, uses: int = 1) -> str:
        r = self.request(who, "view-original", rec, uses=uses)
        assert r.status_code == 201, r.text
        g = self.post(approver, f"/access/requests/{r.json()['id']}/approve")
        assert g.status_code == 200, g.text
        return str(g.json()["id"])

    def original(self, who: str, rec: Recording, grant: str | None, **headers: str) -> Any:
        params = {"reason": "复核 case 2026-017", **({"grant": grant} if grant else {})}
        return self.get(who, f"/recordings/{rec.id}/original", params=params, headers=headers)


USERS: dict[str, tuple[tuple[Role, ...], dict[str, Any]]] = {
    "wang": ((Role.OFFICER,), {"unit": UNIT_1, "officer_number": "012345"}),  # the camera's officer
    "li": ((Role.OFFICER,), {"unit": UNIT_1, "officer_number": "054321"}),
    "zhao": ((Role.SUPERVISOR,), {"unit": UNIT_1}),
    "qian": ((Role.SUPERVISOR,), {"unit": UNIT_2}),
    "sun": ((Role.LEADER,), {}),
    "zhou": ((Role.LEGAL,), {"clearance": Level.CONFIDENTIAL}),
    "wu": ((Role.AUDITOR,), {}),
    "root": ((Role.ADMIN,), {}),
    "feng": ((Role.OFFICER,), {"unit": "外单位", "officer_number": "099999"}),  # another department
}


@pytest.fixture
def world(vault: Vault, camera: Path) -> Iterator[World]:
    owner = people.local_owner()
    for name, (roles, kw) in USERS.items():  # officers before ingest: recordings take their unit
        password = PASSWORD if name == "wang" else None  # argon2 is slow on purpose; tokens suffice
        people.add_user(vault, owner, people.NewUser(name, roles, **kw), password, "cli")
    ingest_path(vault, camera, actor=Actor.local())
    tokens = {n: token_for(vault, n) for n in USERS}
    with vault.engine.connect() as conn:
        rows = conn.execute(select(recordings.c.id).order_by(recordings.c.recorded_start, recordings.c.id))
        ids = [r.id for r in rows]
    from vaultd.catalog import recordings as rec_db

    with vault.engine.connect() as conn:
        recs = [rec_db.get(conn, i) for i in ids]
    assert recs and all(r.officer_id == "012345" and r.unit == UNIT_1 for r in recs)
    with TestClient(create_app(vault)) as client:
        yield World(vault, client, tokens, recs)



# -- authentication -------------------------------------------------------------------

def test_health_and_schema_need_no_token(world: World) -> None:
    assert world.client.get(API + "/health").json() == {"status": "ok", "version": vaultd.__version__}
    schema = world.client.get("/openapi.json").json()
    assert schema["info"] == {"title": "vaultd", "version": vaultd.__version__,
                              "description": schema["info"]["description"]}
    assert "/api/v1/recordings/{rec_id}/original" in schema["paths"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer vdt_not-a-token"},
                                     {"Authorization": "Basic d2FuZzpwdw=="}, {"Authorization": "Bearer "}])
def test_no_or_bad_token_is_401(world: World, headers: dict[str, str]) -> None:
    r = world.client.get(API + "/recordings", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "unauthenticated"


def test_bad_token_is_logged_with_the_client(world: World) -> None:
    world.client.get(API + "/recordings", headers={"Authorization": "Bearer vdt_guess"})
    assert logged(world.vault, "auth.failed", via="api", source="testclient:50000")


def test_login_gives_a_token_that_works(world: World) -> None:
    r = world.client.post(API + "/login", json={"name": "wang", "password": PASSWORD, "expires_days": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"].startswith("vdt_") and body["id"].startswith("t")
    r = world.client.get(API + "/recordings", headers={"Authorization": f"Bearer {body['token']}"})
    assert r.status_code == 200 and len(r.json()["items"]) == len(world.recs)
    assert logged(world.vault, "auth.login", actor="wang", token=body["id"])


def test_failed_logins_slow_the_source_with_retry_after(world: World) -> None:
    wrong = {"name": "wang", "password": "wrong password"}
    for _i in range(12):  # until the wait outlasts an argon2 verify on a busy machine
        r = world.client.post(API + "/login", json=wrong)
        if r.status_code == 429 and int(r.headers["retry-after"]) >= 4:
            break
        assert r.status_code in (401, 429), r.text
    assert r.json()["error"]["code"] == "too_many_attempts"
    r = world.client.post(API + "/login", json={"name": "wang", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    with TestClient(create_app(world.vault), client=("10.1.1.1", 50000)) as clean:  # the owner's own PC
        assert clean.post(API + "/login", json={"name": "wang", "password": PASSWORD}).status_code == 200
    assert len(logged(world.vault, "auth.failed", actor="wang")) == 1  # the rest are counted (#16.9)


def test_a_revoked_token_and_a_disabled_user_are_refused(world: World) -> None:
    issued = world.post("li", "/tokens", {"user": "li", "expires_days": 1})
    assert issued.status_code == 201, issued.text
    li = {"Authorization": f"Bearer {issued.json()['token']}"}
    assert world.client.get(API + "/access/grants", headers=li).status_code == 200
    assert world.client.delete(API + f"/tokens/{issued.json()['id']}", headers=world.h("root")).status_code == 204
    assert world.client.get(API + "/access/grants", headers=li).status_code == 401
    assert world.post("root", "/users/li/disable").json() == {"name": "li", "disabled": True}
    assert world.get("li", "/access/grants").status_code == 401


# -- R5/R9: who sees what -----------------------------------------------------------

def test_officer_cannot_fetch_another_officers_recording_by_guessing_its_id(world: World) -> None:
    rec = world.rec()
    assert world.get("li", "/recordings").json()["items"] == []
    missing = world.get("li", "/recordings/r000000000000")
    for path in (f"/recordings/{rec.id}", f"/recordings/{rec.id}/receipt"):
        r = world.get("li", path)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
        assert r.json()["error"]["message"].replace(rec.id, "X") == \
            missing.json()["error"]["message"].replace("r000000000000", "X")
    assert world.original("li", rec, None).status_code == 404
    denied = logged(world.vault, "access.denied", actor="li", evidence=rec.id)
    assert len(denied) == 3 and all(d["details"]["rule"] == "role" and d["actor"]["via"] == "api"
                                    for d in denied)
    assert world.get("wang", f"/recordings/{rec.id}").status_code == 200  # the owner does see it


def test_secret_recording_is_invisible_to_legal_with_confidential_clearance(world: World) -> None:
    secret = world.rec()
    with world.vault.engine.begin() as conn:
        conn.execute(update(recordings).where(recordings.c.id == secret.id).values(confidentiality="secret"))
    listed = [r["id"] for r in world.get("zhou", "/recordings", params={"limit": 1000}).json()["items"]]
    assert secret.id not in listed and len(listed) == len(world.recs) - 1
    searched = world.get("zhou", "/recordings", params={"device": "3201001", "media_type": "video"})
    assert secret.id not in [r["id"] for r in searched.json()["items"]] and searched.json()["items"]
    for path in (f"/recordings/{secret.id}", f"/recordings/{secret.id}/receipt",
                 f"/recordings/{secret.sha256[:12]}"):
        assert world.get("zhou", path).status_code == 404
    assert world.original("zhou", secret, None).status_code == 404
    assert world.request("zhou", "copy", secret).status_code == 404
    denied = logged(world.vault, "access.denied", actor="zhou", evidence=secret.id)
    assert len(denied) == 5 and {d["details"]["rule"] for d in denied} == {"clearance"}
    assert world.get("zhou", f"/recordings/{world.recs[-1].id}").status_code == 200


# -- R5: requests and approvals -------------------------------------------------------

def test_supervisor_cannot_approve_their_own_request(world: World) -> None:
    r = world.request("zhao", "view-original", world.rec())
    assert r.status_code == 201, r.text
    refused(world.post("zhao", f"/access/requests/{r.json()['id']}/approve"), 403, "own-request")
    assert logged(world.vault, "access.denied", actor="zhao", rule="own-request", request=r.json()["id"])


def test_supervisor_cannot_approve_another_units_request(world: World) -> None:
    r = world.request("wang", "view-original", world.rec())
    assert r.status_code == 201, r.text
    assert world.get("qian", "/access/pending").json()["items"] == []
    refused(world.post("qian", f"/access/requests/{r.json()['id']}/approve"), 403, "other-unit")
    assert logged(world.vault, "access.denied", actor="qian", rule="other-unit")
    refused(world.post("qian", f"/access/requests/{r.json()['id']}/deny", {"reason": "不是本单位"}),
            403, "other-unit")


def test_external_retrieval_without_a_notice_number_is_refused(world: World) -> None:
    r = world.request("feng", "external-retrieval", world.rec())
    refused(r, 403, "notice-number-required")
    assert logged(world.vault, "access.denied", actor="feng", rule="notice-number-required")
    refused(world.request("feng", "external-retrieval", world.rec(), notice="   "), 403, "notice-number-required")


def test_external_retrieval_needs_the_principal_leader(world: World) -> None:
    rec = world.rec()
    r = world.request("feng", "external-retrieval", rec, notice=NOTICE)
    assert r.status_code == 201 and r.json()["notice_number"] == NOTICE
    refused(world.post("zhao", f"/access/requests/{r.json()['id']}/approve"), 403, "leader-only")
    assert logged(world.vault, "access.denied", actor="zhao", rule="leader-only")
    assert [p["id"] for p in world.get("sun", "/access/pending").json()["items"]] == [r.json()["id"]]
    g = world.post("sun", f"/access/requests/{r.json()['id']}/approve")
    assert g.status_code == 200 and g.json()["kind"] == "external-retrieval"
    got = world.original("feng", rec, g.json()["id"])
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == rec.sha256


def test_denied_request_gives_no_grant(world: World) -> None:
    r = world.request("wang", "copy", world.rec())
    d = world.post("zhao", f"/access/requests/{r.json()['id']}/deny", {"reason": "理由不足"})
    assert d.status_code == 200 and d.json()["status"] == "denied" and d.json()["decided_by"] == "zhao"
    assert world.get("wang", "/access/grants").json()["items"] == []
    r2 = world.post("zhao", f"/access/requests/{r.json()['id']}/approve")
    refused(r2, 403, "not-pending")


def test_expired_grant_is_refused(world: World) -> None:
    rec = world.rec()
    gid = world.granted("wang", rec, "zhao", uses=3)
    with world.vault.engine.begin() as conn:
        conn.execute(update(grants).where(grants.c.id == gid).values(expires_at=utcnow() - timedelta(hours=1)))
    refused(world.original("wang", rec, gid), 403, "grant-expired")
    assert logged(world.vault, "access.denied", actor="wang", rule="grant-expired", grant=gid)
    assert not logged(world.vault, "grant.use", grant=gid)


def test_used_up_grant_is_refused(world: World) -> None:
    rec = world.rec()
    gid = world.granted("wang", rec, "zhao", uses=1)
    assert world.original("wang", rec, gid).status_code == 200
    refused(world.original("wang", rec, gid), 403, "grant-used-up")
    assert logged(world.vault, "access.denied", actor="wang", rule="grant-used-up", grant=gid)
    assert world.get("wang", "/access/grants").json()["items"][0]["uses_left"] == 0


def test_reading_an_original_needs_a_grant_even_for_its_officer(world: World) -> None:
    refused(world.original("wang", world.rec(), None), 403, "no-grant")
    other = world.granted("wang", world.rec("photo"), "zhao")
    refused(world.original("wang", world.rec(), other), 403, "grant-other-recording")
    refused(world.original("wang", world.rec(), "gnope"), 403, "no-grant")
    assert world.original("li", world.rec("photo"), other).status_code == 404  # not li's to see


# -- the whole walk: request, approve, download with ranges ------------------------------

def test_request_approve_download_with_ranges_all_in_the_log(world: World) -> None:
    rec = world.rec()
    r = world.request("wang", "view-original", rec, uses=4, expires_days=3)
    assert r.status_code == 201
    req = r.json()
    assert req["purpose"] == "案件 2026-017 复核" and req["status"] == "pending" and req["uses"] == 4
    assert "案件 2026-017 复核".encode() in r.content  # UTF-8 on the wire, not \u escapes
    assert [p["id"] for p in world.get("zhao", "/access/pending").json()["items"]] == [req["id"]]
    grant = world.post("zhao", f"/access/requests/{req['id']}/approve").json()
    assert grant["grantee"] == "wang" and grant["approved_by"] == "zhao" and grant["uses_left"] == 4
    assert grant["recordings"] == [rec.id]
    data = rec_bytes(world.vault, rec)

    part = world.original("wang", rec, grant["id"], Range="bytes=100-1099")
    assert part.status_code == 206 and part.content == data[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{rec.size_bytes}"
    assert part.headers["content-length"] == "1000"
    tail = world.original("wang", rec, grant["id"], Range="bytes=-500")
    assert tail.status_code == 206 and tail.content == data[-500:]
    whole = world.original("wang", rec, grant["id"])
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert hashlib.sha256(whole.content).hexdigest() == rec.sha256 == whole.headers["x-content-sha256"]
    assert whole.headers["etag"] == f'"{rec.sha256}"'
    assert whole.headers["content-type"] == "application/octet-stream"
    assert whole.headers["content-disposition"] == "attachment; filename*=UTF-8''" + quote(rec.original_name)
    # the first three reads are one copy (the whole file was sent by then): one use; the fourth begins another
    rest = world.original("wang", rec, grant["id"], Range=f"bytes={rec.size_bytes - 10}-")
    assert rest.status_code == 206 and rest.content == data[-10:]
    assert world.get("wang", "/access/grants").json()["items"][0]["uses_left"] == 2

    assert logged(world.vault, "access.request", actor="wang", request=req["id"], via="api")
    assert logged(world.vault, "access.approve", actor="zhao", request=req["id"], grant=grant["id"])
    assert [u["details"]["uses_left"] for u in logged(world.vault, "grant.use", grant=grant["id"])] == [3, 2]
    reads = logged(world.vault, "recording.get", actor="wang", evidence=rec.id, grant=grant["id"])
    assert [e["details"]["out"].split(" ", 2)[2] for e in reads] == [
        "bytes 100-1099", f"bytes {rec.size_bytes - 500}-{rec.size_bytes - 1}", "whole",
        f"bytes {rec.size_bytes - 10}-{rec.size_bytes - 1}"]
    assert all(e["details"]["problem"] is None and e["details"]["reason"] == "复核 case 2026-017" for e in reads)
    # the auditor sees every step through the API too
    entries = world.get("wu", "/audit/entries", params={"recording": rec.id}).json()["items"]
    types = [e["type"] for e in entries]
    assert types.count("grant.use") == 2 and types.count("recording.get") == 4
    steps = world.get("wu", "/audit/entries", params={"type": "access.*"}).json()["items"]
    assert {"access.request", "access.approve"} <= {e["type"] for e in steps}


def rec_bytes(vault: Vault, rec: Recording) -> bytes:
    fd = vault.store.open_original(rec.sha256)
    try:
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


@pytest.mark.parametrize("header,status,sl", [
    ("bytes=0-0", 206, slice(0, 1)),
    ("bytes=0-99999999", 206, slice(None)),
    ("bytes=-99999999", 206, slice(None)),
    ("bytes=5-", 206, slice(5, None)),
    ("items=0-1", 200, slice(None)),  # another unit: ignored
    ("bytes=0-1,5-6", 200, slice(None)),  # several ranges: ignored
])
def test_range_forms(world: World, header: str, status: int, sl: slice) -> None:
    rec = world.rec("photo")
    gid = world.granted("wang", rec, "zhao")
    r = world.original("wang", rec, gid, Range=header)
    assert r.status_code == status and r.content == rec_bytes(world.vault, rec)[sl]


def test_unsatisfiable_range_is_416_and_spends_nothing(world: World) -> None:
    rec = world.rec("photo")
    gid = world.granted("wang", rec, "zhao")
    r = world.original("wang", rec, gid, Range=f"bytes={rec.size_bytes}-")
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{rec.size_bytes}"
    assert r.json()["error"]["code"] == "range_not_satisfiable"
    failed = logged(world.vault, "recording.get.failed", grant=gid)
    assert len(failed) == 1 and "lies past the end" in failed[0]["details"]["problem"]


@pytest.mark.parametrize("header", ["bytes=9-1", "bytes=abc", "bytes=-", "bytes=1-2-3"])
def test_malformed_range_is_400_before_any_use_is_spent(world: World, header: str) -> None:
    rec = world.rec("photo")
    gid = world.granted("wang", rec, "zhao")
    r = world.original("wang", rec, gid, Range=header)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_input"
    assert world.get("wang", "/access/grants").json()["items"][0]["uses_left"] == 1


def test_if_range_with_another_etag_sends_everything(world: World) -> None:
    rec = world.rec("photo")
    gid = world.granted("wang", rec, "zhao", uses=2)
    r = world.original("wang", rec, gid, Range="bytes=0-9", **{"If-Range": '"0000"'})
    assert r.status_code == 200 and len(r.content) == rec.size_bytes
    r = world.original("wang", rec, gid, Range="bytes=0-9", **{"If-Range": f'"{rec.sha256}"'})
    assert r.status_code == 206 and len(r.content) == 10


def test_chinese_file_name_is_quoted_in_content_disposition(world: World) -> None:
    rec = next(r for r in world.recs if r.original_name.startswith("现场照片"))
    gid = world.granted("wang", rec, "zhao")
    r = world.original("wang", rec, gid)
    assert r.headers["content-disposition"] == \
        "attachment; filename*=UTF-8''%E7%8E%B0%E5%9C%BA%E7%85%A7%E7%89%87_caf%C3%A9_%C3%85ngstr%C3%B6m.JPG"
    assert world.get("wang", f"/recordings/{rec.id}").json()["original_name"] == rec.original_name


def test_a_corrupt_original_is_never_delivered_whole(world: World) -> None:
    rec = world.rec()
    gid = world.granted("wang", rec, "zhao", uses=2)
    path = world.vault.store.object_path(rec.sha256)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    with open(path, "r+b") as f:
        f.seek(rec.size_bytes - 1)
        last = f.read(1)
        f.seek(rec.size_bytes - 1)
        f.write(bytes([last[0] ^ 0xFF]))
    r = world.original("wang", rec, gid)
    assert r.status_code == 200 and len(r.content) < rec.size_bytes  # cut short, never complete
    failed = logged(world.vault, "recording.get.failed", grant=gid)
    assert len(failed) == 1 and "does not match" in failed[0]["details"]["problem"]


def test_a_client_that_goes_away_leaves_a_failed_read_in_the_log(world: World) -> None:
    rec = world.rec()
    gid = world.granted("wang", rec, "zhao")
    app = world.client.app
    sent: list[dict[str, Any]] = []

    async def go() -> None:
        started = anyio.Event()

        async def receive() -> dict[str, Any]:
            if not started.is_set() and not sent:
                return {"type": "http.request", "body": b"", "more_body": False}
            await started.wait()
            return {"type": "http.disconnect"}  # gone as soon as the headers came

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                await anyio.sleep(0.5)  # a slow network: the disconnect wins
            sent.append(message)
            if message["type"] == "http.response.start":
                started.set()

        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": f"{API}/recordings/{rec.id}/original",
                 "raw_path": f"{API}/recordings/{rec.id}/original".encode(), "root_path": "",
                 "query_string": f"reason=test&grant={gid}".encode(), "server": ("127.0.0.1", 8470),
                 "client": ("127.0.0.1", 40000), "app": app,
                 "headers": [(b"authorization", f"Bearer {world.tokens['wang']}".encode())]}
        await app(scope, receive, send)  # type: ignore[arg-type]

    anyio.run(go)
    assert sent[0]["status"] == 200
    assert sum(len(m.get("body", b"")) for m in sent) < rec.size_bytes
    failed = logged(world.vault, "recording.get.failed", grant=gid)
    assert len(failed) == 1 and "went away" in failed[0]["details"]["problem"]
    assert failed[0]["details"]["out"].startswith("http 127.0.0.1:40000")
    assert not logged(world.vault, "recording.get", grant=gid)


# -- recordings: list and show ---------------------------------------------------------

def test_supervisor_lists_unit_recordings_with_filters_and_paging(world: World) -> None:
    page = world.get("zhao", "/recordings", params={"limit": 2, "offset": 1}).json()
    assert page["limit"] == 2 and page["offset"] == 1
    assert [r["id"] for r in page["items"]] == [r.id for r in world.recs[1:3]]
    photos = world.get("zhao", "/recordings", params={"media_type": "photo"}).json()["items"]
    assert photos and {r["media_type"] for r in photos} == {"photo"}
    assert world.get("qian", "/recordings").json()["items"] == []
    first = world.recs[0].recorded_start
    assert first is not None
    since = world.get("zhao", "/recordings", params={"since": (first + timedelta(seconds=1)).isoformat()})
    assert world.recs[0].id not in [r["id"] for r in since.json()["items"]]
    naive = world.get("zhao", "/recordings", params={"until": "2000-01-01T00:00:00"}).json()["items"]
    assert naive == []
    assert world.get("zhao", "/recordings", params={"limit": 1001}).status_code == 422
    assert logged(world.vault, "recording.list", actor="zhao", via="api")


def test_show_gives_the_views_json_and_sightings(world: World) -> None:
    rec = world.rec()
    body = world.get("wang", f"/recordings/{rec.id}").json()
    assert body["id"] == rec.id and body["sha256"] == rec.sha256 and body["unit"] == UNIT_1
    assert body["recorded_start"].endswith("+08:00")  # the station's zone
    assert body["sightings"] and body["sightings"][0]["device_serial"] == "3201001"
    assert logged(world.vault, "recording.show", actor="wang", evidence=rec.id, via="api")


def test_receipt_is_a_tlog_proof(world: World) -> None:
    r = world.get("wang", f"/recordings/{world.rec().id}/receipt")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith("c2sp.org/tlog-proof@v1\n")


# -- audit -----------------------------------------------------------------------------

def test_audit_entries_need_a_reader_and_are_exact(world: World) -> None:
    refused(world.get("wang", "/audit/entries"), 403, "role")
    assert logged(world.vault, "access.denied", actor="wang", action="read-audit")
    items = world.get("wu", "/audit/entries", params={"limit": 5}).json()["items"]
    assert [e["index"] for e in items] == [0, 1, 2, 3, 4]
    raw = world.get("wu", "/audit/entries/3")
    assert raw.headers["content-type"] == "application/json"
    with world.vault.engine.connect() as conn:
        assert raw.content == audit.entry_bytes(conn, 3)
    assert world.get("wu", "/audit/entries/999999").status_code == 404
    assert logged(world.vault, "audit.read", actor="wu", via="api")


def test_checkpoint_and_consistency(world: World) -> None:
    cp = world.get("wang", "/audit/checkpoint")
    assert cp.status_code == 200 and cp.text.splitlines()[0].startswith("vaultd/")
    size = int(cp.text.splitlines()[1])
    proof = world.get("wang", "/audit/consistency", params={"old": 3, "new": size})
    assert proof.status_code == 200 and proof.text.strip()
    assert all(len(line) == 44 for line in proof.text.splitlines())
    bad = world.get("wang", "/audit/consistency", params={"old": size + 100})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_input"
    assert world.client.get(API + "/audit/checkpoint").status_code == 401


# -- admin ---------------------------------------------------------------------------

def test_admin_manages_users_tokens_and_devices(world: World) -> None:
    r = world.post("root", "/users", {"name": "chen", "role": ["officer"], "unit": UNIT_2,
                                      "officer_number": "077777", "password": PASSWORD})
    assert r.status_code == 201 and r.json()["roles"] == ["officer"] and r.json()["unit"] == UNIT_2
    users = world.get("root", "/users").json()["items"]
    assert "chen" in [u["name"] for u in users] and not any("password" in k for u in users for k in u)
    dup = world.post("root", "/users", {"name": "chen", "role": ["officer"], "password": PASSWORD})
    assert dup.status_code == 400 and dup.json()["error"]["code"] == "bad_input"
    short = world.post("root", "/users", {"name": "ma", "role": ["legal"], "password": "short"})
    assert short.status_code == 400 and short.json()["error"]["hint"]
    a = world.post("root", "/devices/3201001/assign", {"officer_number": "077777"})
    assert a.status_code == 200 and a.json() == {"device_serial": "3201001", "officer_number": "077777"}
    assert logged(world.vault, "device.assign", actor="root", via="api", device_serial="3201001")
    assert world.post("root", "/users/nobody/disable").status_code == 404
    assert world.client.delete(API + "/tokens/tnope", headers=world.h("root")).status_code == 404


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/users", None),
    ("POST", "/users", {"name": "x1", "role": ["admin"], "password": PASSWORD}),
    ("POST", "/users/wang/disable", None),
    ("POST", "/tokens", {"user": "wang", "expires_days": 1}),
    ("POST", "/devices/3201001/assign", {"officer_number": "054321"}),
])
def test_only_admins_administer(world: World, method: str, path: str, body: Any) -> None:
    r = world.client.request(method, API + path, headers=world.h("zhao"), json=body)
    refused(r, 403, "role")
    assert logged(world.vault, "access.denied", actor="zhao", rule="role")


def test_a_user_makes_their_own_token(world: World) -> None:
    r = world.post("li", "/tokens", {"user": "li", "expires_days": 5})
    assert r.status_code == 201
    assert world.client.delete(API + f"/tokens/{r.json()['id']}", headers=world.h("li")).status_code == 204


# -- errors --------------------------------------------------------------------------

def test_error_bodies_have_stable_codes(world: World) -> None:
    cases = [
        (world.client.get(API + "/recordings"), 401, "unauthenticated"),
        (world.get("li", "/recordings/r000000000000"), 404, "not_found"),
        (world.get("li", "/recordings", params={"limit": "many"}), 422, "invalid_request"),
        (world.post("li", "/access/requests", {"kind": "copy", "recordings": [], "purpose": "x"}),
         422, "invalid_request"),
        (world.post("li", "/access/requests", {"kind": "copy", "recordings": ["r1"], "purpose": " "}),
         400, "bad_input"),
        (world.get("li", "/audit/entries"), 403, "access_denied"),
        (world.client.get(API + "/no/such/path"), 404, "not_found"),
        (world.client.put(API + "/health"), 405, "method_not_allowed"),
    ]
    for r, status, code in cases:
        assert r.status_code == status, r.text
        body = r.json()
        assert set(body) == {"error"} and body["error"]["code"] == code
        assert {"code", "message", "hint", "rule"} <= set(body["error"])
        assert r.headers["content-type"] == "application/json"


def test_validation_errors_do_not_echo_passwords(world: World) -> None:
    r = world.client.post(API + "/login", json={"name": "wang", "password": "p" * 2000})
    assert r.status_code == 422 and "ppppp" not in r.text


def test_unexpected_errors_are_a_generic_500(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from vaultd import approvals

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(approvals, "my_grants", broken)
    r = world.get("wang", "/access/grants")
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert "secret internals" not in r.text


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:8470") == ("127.0.0.1", 8470)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    for bad in ("8470", "host:", "host:99999", ":80"):
        with pytest.raises(ConfigError):
            parse_listen(bad)


def test_an_external_request_does_not_reveal_whether_a_recording_exists(world: World) -> None:
    hidden = world.request("feng", "external-retrieval", world.rec())  # exists, feng cannot see it
    missing = world.post("feng", "/access/requests", {"kind": "external-retrieval", "recordings": ["r000000000000"],
                                                      "purpose": "案件 2026-017 复核"})
    assert hidden.status_code == missing.status_code
