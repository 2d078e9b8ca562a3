"""Issue 16 #10: one use of a grant is one complete copy of one recording.

The parts of one download (Range requests, a resume) count once; a range
past the end spends nothing; a read or an export that fails on the vault's
side gives its use back; a one-use grant for two recordings gives one copy of
each; two reads of the same bytes at once are one copy, not two. Every read
stays an audit entry with the bytes it sent.
"""

from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest
import test_api
from export_world import World as ExportWorld
from export_world import make_world
from test_api import API, World, logged, rec_bytes, refused

from vaultd import evidence, grantuse
from vaultd.catalog import approvals as appr_db
from vaultd.catalog import people as people_db
from vaultd.copies import Use
from vaultd.errors import AccessDeniedError, HashMismatchError
from vaultd.grantuse import Copy, Reading
from vaultd.model import Recording
from vaultd.people import principal_of
from vaultd.vault import Vault

world = test_api.world  # the API world of tests/test_api.py: its users, tokens and recordings


def uses_left(world: World, gid: str) -> dict[str, int]:
    items = {g["id"]: g for g in world.get("wang", "/access/grants").json()["items"]}
    return dict(items[gid]["uses_left_by_recording"])


def reads(vault: Vault, gid: str) -> list[dict[str, Any]]:
    return [e["details"] for e in logged(vault, "recording.get", grant=gid)
            + logged(vault, "recording.get.failed", grant=gid)]


def flip_last_byte(vault: Vault, rec: Recording) -> None:
    path = vault.store.object_path(rec.sha256)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    with open(path, "r+b") as f:
        f.seek(rec.size_bytes - 1)
        last = f.read(1)
        f.seek(rec.size_bytes - 1)
        f.write(bytes([last[0] ^ 0xFF]))


# -- over the API ------------------------------------------------------------------------------

def test_the_ranges_of_one_download_spend_one_use(world: World) -> None:
    rec = world.rec()
    gid = world.granted("wang", rec, "zhao", uses=1)
    data = rec_bytes(world.vault, rec)
    got = b""
    for header in ("bytes=0-999", "bytes=1000-1999", "bytes=2000-"):
        r = world.original("wang", rec, gid, Range=header)
        assert r.status_code == 206, r.text
        got += r.content
    assert got == data
    assert len(logged(world.vault, "grant.use", grant=gid)) == 1
    assert uses_left(world, gid) == {rec.id: 0}
    parts = reads(world.vault, gid)
    assert [p["sent"] for p in parts] == [[0, 999], [1000, 1999], [2000, rec.size_bytes - 1]]
    assert len({p["copy"] for p in parts}) == 1 and parts[-1]["copy_state"] == "complete"
    assert [p["out"].split(" ", 2)[2] for p in parts] == [
        "bytes 0-999", "bytes 1000-1999", f"bytes 2000-{rec.size_bytes - 1}"]
    refused(world.original("wang", rec, gid, Range="bytes=0-9"), 403, "grant-used-up")  # the copy is complete


def test_a_range_past_the_end_spends_nothing(world: World) -> None:
    rec = world.rec("photo")
    gid = world.granted("wang", rec, "zhao", uses=1)
    r = world.original("wang", rec, gid, Range=f"bytes={rec.size_bytes}-")
    assert r.status_code == 416
    assert not logged(world.vault, "grant.use", grant=gid)
    assert uses_left(world, gid) == {rec.id: 1}
    assert logged(world.vault, "recording.get.failed", grant=gid)  # still an audit entry
    whole = world.original("wang", rec, gid)
    assert whole.status_code == 200 and whole.content == rec_bytes(world.vault, rec)
    assert uses_left(world, gid) == {rec.id: 0}


def test_a_one_use_grant_for_two_recordings_gives_one_copy_of_each(world: World) -> None:
    video, photo = world.rec(), world.rec("photo")
    r = world.post("wang", "/access/requests", {"kind": "view-original", "recordings": [video.id, photo.id],
                                                "purpose": "案件 2026-017 复核", "uses": 1})
    assert r.status_code == 201, r.text
    gid = world.post("zhao", f"/access/requests/{r.json()['id']}/approve").json()["id"]
    assert uses_left(world, gid) == {video.id: 1, photo.id: 1}
    assert world.original("wang", video, gid).status_code == 200
    assert uses_left(world, gid) == {video.id: 0, photo.id: 1}
    second = world.original("wang", photo, gid)
    assert second.status_code == 200 and second.content == rec_bytes(world.vault, photo)
    assert uses_left(world, gid) == {video.id: 0, photo.id: 0}
    refused(world.original("wang", video, gid), 403, "grant-used-up")
    assert world.get("wang", "/access/grants").json()["items"][0]["uses_left"] == 0


def _get_and_go_away(world: World, rec: Recording, gid: str) -> int:
    """A client that reads the first chunk of the original, then goes away; the bytes it got."""
    app = world.client.app
    got: list[bytes] = []
    asked: list[bool] = []

    async def go() -> None:
        first = anyio.Event()

        async def receive() -> dict[str, Any]:
            if not asked:
                asked.append(True)
                return {"type": "http.request", "body": b"", "more_body": False}
            await first.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                if first.is_set():
                    await anyio.sleep(5)  # the disconnect wins before a second chunk goes out
                got.append(message["body"])
                first.set()

        path = f"{API}/recordings/{rec.id}/original"
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
                 "query_string": f"reason=test&grant={gid}".encode(), "server": ("127.0.0.1", 8470),
                 "client": ("127.0.0.1", 40000), "app": app,
                 "headers": [(b"authorization", f"Bearer {world.tokens['wang']}".encode())]}
        await app(scope, receive, send)  # type: ignore[arg-type]

    anyio.run(go)
    return sum(len(b) for b in got)


def test_a_resume_after_a_cut_is_the_same_copy(world: World) -> None:
    rec = world.rec()
    gid = world.granted("wang", rec, "zhao", uses=1)
    world.vault.store.chunk_bytes = 4096  # several chunks: the cut comes after the first
    got = _get_and_go_away(world, rec, gid)
    assert 0 < got < rec.size_bytes
    cut = logged(world.vault, "recording.get.failed", grant=gid)
    assert len(cut) == 1 and cut[0]["details"]["sent"] == [0, got - 1]
    assert cut[0]["details"]["copy_state"] == "open"
    rest = world.original("wang", rec, gid, Range=f"bytes={got}-")  # curl -C -, wget -c
    assert rest.status_code == 206 and rest.content == rec_bytes(world.vault, rec)[got:]
    assert len(logged(world.vault, "grant.use", grant=gid)) == 1
    done = logged(world.vault, "recording.get", grant=gid)
    assert done[-1]["details"]["copy_state"] == "complete" and done[-1]["details"]["copy"] == cut[0]["details"]["copy"]
    refused(world.original("wang", rec, gid), 403, "grant-used-up")


def test_a_client_gone_before_the_first_byte_gets_its_use_back(world: World) -> None:
    rec = world.rec()
    gid = world.granted("wang", rec, "zhao", uses=1)
    world.vault.store.chunk_bytes = rec.size_bytes  # one chunk: nothing arrives before the disconnect
    app = world.client.app
    sent: list[dict[str, Any]] = []

    async def go() -> None:
        started = anyio.Event()

        async def receive() -> dict[str, Any]:
            if not started.is_set() and not sent:
                return {"type": "http.request", "body": b"", "more_body": False}
            await started.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                await anyio.sleep(5)
            sent.append(message)
            if message["type"] == "http.response.start":
                started.set()

        path = f"{API}/recordings/{rec.id}/original"
        await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",  # type: ignore[arg-type]
                   "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
                   "query_string": f"reason=test&grant={gid}".encode(), "server": ("127.0.0.1", 8470),
                   "client": ("127.0.0.1", 40000), "app": app,
                   "headers": [(b"authorization", f"Bearer {world.tokens['wang']}".encode())]}, receive, send)

    anyio.run(go)
    assert [e["details"]["why"] for e in logged(world.vault, "grant.return", grant=gid)] == ["nothing-sent"]
    assert uses_left(world, gid) == {rec.id: 1}


def test_a_read_the_vault_fails_gives_the_use_back(world: World) -> None:
    rec = world.rec()
    gid = world.granted("wang", rec, "zhao", uses=1)
    flip_last_byte(world.vault, rec)
    r = world.original("wang", rec, gid)
    assert r.status_code == 200 and len(r.content) < rec.size_bytes  # cut, never complete
    assert [e["details"]["why"] for e in logged(world.vault, "grant.return", grant=gid)] == ["vault-failure"]
    assert uses_left(world, gid) == {rec.id: 1}
    failed = logged(world.vault, "recording.get.failed", grant=gid)
    assert len(failed) == 1 and failed[0]["details"]["copy_state"] == "returned"


def test_two_reads_of_the_same_bytes_at_once_are_not_two_copies(world: World) -> None:
    rec = world.rec()
    gid = world.granted("wang", rec, "zhao", uses=2)
    with world.vault.engine.connect() as conn:
        user = people_db.user_by_name(conn, "wang")
    assert user is not None
    wang = principal_of(user)

    def begin(first: int, last: int) -> Use:
        return evidence.authorise_original(world.vault, wang, rec.id, "复核", gid, "api",
                                           span_of=lambda r: (first, last))[1]

    whole = begin(0, rec.size_bytes - 1)
    with pytest.raises(AccessDeniedError) as err:  # a second whole download while the first runs
        begin(0, rec.size_bytes - 1)
    assert err.value.rule == "copy-in-progress"
    assert logged(world.vault, "access.denied", grant=gid, rule="copy-in-progress")
    assert uses_left(world, gid) == {rec.id: 1}  # one copy begun, the refusal spent nothing
    evidence.finish_read(world.vault, wang, rec, whole, reason="复核", where="test", problem=None,
                         sent=(0, rec.size_bytes - 1), fault=False, via="api")
    half = begin(0, 999)  # a new copy (the first is complete)
    other = begin(1000, rec.size_bytes - 1)  # another part of it, at the same time: the same copy
    assert half.copy == other.copy and uses_left(world, gid) == {rec.id: 0}


# -- exports -------------------------------------------------------------------------------------

@pytest.fixture
def export_world(tmp_path: Path, _sim_camera_master: Path) -> ExportWorld:
    return make_world(tmp_path, _sim_camera_master)


def test_a_failed_export_gives_its_uses_back(export_world: ExportWorld) -> None:
    w = export_world
    rec = next(r for r in w.recs if r.media_type.value == "photo" and not r.damaged)
    gid = w.grant([rec.id], uses=1)
    flip_last_byte(w.vault, rec)
    with pytest.raises(HashMismatchError):
        w.export([rec.id], gid)
    with w.vault.engine.connect() as conn:
        grant = appr_db.get_grant(conn, gid)
    assert grant is not None and grant.uses_left_by_recording == {rec.id: 1}
    returned = logged(w.vault, "grant.return", grant=gid)
    assert len(returned) == 1 and returned[0]["details"]["why"] == "export-failed"
    flip_last_byte(w.vault, rec)  # mended: the export is made with the use given back
    made = w.export([rec.id], gid, case_number="again")
    assert made.export.status == "complete"
    with pytest.raises(AccessDeniedError) as err:
        w.export([rec.id], gid, case_number="third")
    assert err.value.rule == "grant-used-up"


# -- the rules, pure -----------------------------------------------------------------------------

NOW = datetime(2026, 12, 8, 1, 0, tzinfo=timezone.utc)


def _copy(delivered: tuple[tuple[int, int], ...] = (), reading: tuple[Reading, ...] = (),
          last_at: datetime = NOW) -> Copy:
    return Copy(1, "g1", "r1", "download", "open", delivered, reading, NOW, last_at)


def test_copy_rules() -> None:
    assert grantuse.merge([(5, 9), (0, 4), (20, 30), (25, 40)]) == ((0, 9), (20, 40))
    assert grantuse.covers(((0, 99),), 100) and not grantuse.covers(((0, 98),), 100)
    assert grantuse.covers((), 0)
    busy = _copy(reading=(Reading("a", 0, 99, NOW),))
    assert grantuse.start_read(busy, (50, 60), NOW) is grantuse.Start.BUSY
    assert grantuse.start_read(busy, (100, 199), NOW) is grantuse.Start.JOIN
    assert grantuse.start_read(None, (0, 9), NOW) is grantuse.Start.NEW
    lapsed = _copy(last_at=NOW - grantuse.COPY_IDLE)
    assert grantuse.start_read(lapsed, (0, 9), NOW) is grantuse.Start.NEW  # the use stays spent
    stale = _copy(reading=(Reading("a", 0, 99, NOW - timedelta(hours=2)),))
    assert grantuse.start_read(stale, (0, 9), NOW) is grantuse.Start.JOIN  # a crashed read holds nothing
    one = _copy(reading=(Reading("a", 0, 99, NOW),))
    assert grantuse.end_read(one, "a", (0, 49), ok=False, fault=False, size_bytes=100, now=NOW).state == "open"
    assert grantuse.end_read(one, "a", None, ok=False, fault=False, size_bytes=100, now=NOW).state == "returned"
    assert grantuse.end_read(one, "a", (0, 49), ok=False, fault=True, size_bytes=100, now=NOW).state == "returned"
    assert grantuse.end_read(one, "a", (0, 99), ok=True, fault=False, size_bytes=100, now=NOW).state == "complete"
    part = _copy(delivered=((0, 49),), reading=(Reading("b", 50, 99, NOW),))
    assert grantuse.end_read(part, "b", (50, 99), ok=True, fault=False, size_bytes=100, now=NOW).state == "complete"
    empty = _copy(reading=(Reading("z", 0, -1, NOW),))
    assert grantuse.end_read(empty, "z", None, ok=True, fault=False, size_bytes=0, now=NOW).state == "complete"


# -- grants made before copies were counted (migration 0014) ------------------------------------

def test_a_grant_from_before_keeps_its_spent_uses_against_each_recording(world: World) -> None:
    from alembic import command
    from sqlalchemy import update

    from vaultd.catalog.db import _alembic_config
    from vaultd.catalog.schema import grants

    video, photo = world.rec(), world.rec("photo")
    r = world.post("wang", "/access/requests", {"kind": "view-original", "recordings": [video.id, photo.id],
                                                "purpose": "案件 2026-017 复核", "uses": 3})
    gid = world.post("zhao", f"/access/requests/{r.json()['id']}/approve").json()["id"]
    cfg = _alembic_config(world.vault.engine)
    with world.vault.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013")
        conn.execute(update(grants).where(grants.c.id == gid).values(uses_left=1))  # two reads, recordings unknown
        command.upgrade(cfg, "head")
    assert uses_left(world, gid) == {video.id: 1, photo.id: 1}  # never more than was granted
    assert world.original("wang", photo, gid).status_code == 200
    assert uses_left(world, gid) == {video.id: 1, photo.id: 0}
