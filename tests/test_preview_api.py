"""Previews over HTTP for the web player: state, Range requests, refusals, the queue."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from preview_fakes import FakeMaker, logged
from starlette.exceptions import StarletteDeprecationWarning

from vaultd import people, preview
from vaultd.access import Role
from vaultd.api import create_app
from vaultd.catalog import recordings as rec_db
from vaultd.ingest import ingest_path
from vaultd.model import Actor, MediaType, Recording
from vaultd.previewwork import Worker
from vaultd.vault import Vault
from conftest import token_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
USERS = {"wang": ((Role.OFFICER,), {"unit": "一大队", "officer_number": "012345"}),
         "li": ((Role.OFFICER,), {"unit": "一大队", "officer_number": "054321"}),
         "wu": ((Role.AUDITOR,), {}), "root": ((Role.ADMIN,), {})}


class Web:
    def __init__(self, vault: Vault, client: TestClient, tokens: dict[str, str], video: Recording) -> None:
        self.vault, self.client, self.tokens, self.video = vault, client, tokens, video

    def get(self, who: str, path: str, **headers: str) -> Any:
        return self.client.get(API + path, headers={"Authorization": f"Bearer {self.tokens[who]}", **headers})


@pytest.fixture
def web(vault: Vault, camera: Path) -> Iterator[Web]:
    owner = people.local_owner()
    for name, (roles, kw) in USERS.items():
        people.add_user(vault, owner, people.NewUser(name, roles, **kw), None, "cli")  # type: ignore[arg-type]
    ingest_path(vault, camera, actor=Actor.local())
    tokens = {n: token_for(vault, n) for n in USERS}
    with vault.engine.connect() as conn:
        recs = [rec_db.get(conn, r[0]) for r in rec_db.all_hashes(conn)]
    video = next(r for r in recs if r.media_type is MediaType.VIDEO and not r.damaged)
    with TestClient(create_app(vault)) as client:
        yield Web(vault, client, tokens, video)


def test_opening_a_recording_queues_its_preview_then_serves_it_with_ranges(web: Web) -> None:
    vid = web.video.id
    state = web.get("wang", f"/recordings/{vid}/preview").json()
    assert state["state"] == "queued" and state["job"]["priority"] == preview.ON_DEMAND
    r = web.get("wang", f"/recordings/{vid}/preview/main")
    assert r.status_code == 404 and r.json()["error"]["code"] == "preview_pending"
    Worker(web.vault, maker=FakeMaker()).run_until_idle()
    state = web.get("wang", f"/recordings/{vid}/preview").json()
    assert state["state"] == "ready" and state["original_sha256"] == web.video.sha256
    assert state["notice"] == "PREVIEW / 预览 - not evidence"
    whole = web.get("wang", f"/recordings/{vid}/preview/main")
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["etag"] == f'"{state["sha256"]}"'
    assert whole.headers["x-preview"] == "derived copy, not evidence"
    body = whole.content
    part = web.get("wang", f"/recordings/{vid}/preview/video.mp4", range="bytes=10-109")
    assert part.status_code == 206 and part.content == body[10:110]
    assert part.headers["content-range"] == f"bytes 10-109/{len(body)}"
    tail = web.get("wang", f"/recordings/{vid}/preview/video.mp4", range="bytes=-5")
    assert tail.status_code == 206 and tail.content == body[-5:]
    past = web.get("wang", f"/recordings/{vid}/preview/video.mp4", range=f"bytes={len(body)}-")
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(body)}"
    bad = web.get("wang", f"/recordings/{vid}/preview/video.mp4", range="bytes=9-1")
    assert bad.status_code == 400
    poster = web.get("wang", f"/recordings/{vid}/preview/poster.jpg")
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"
    prov = web.get("wang", f"/recordings/{vid}/preview/provenance").json()
    assert prov["original_sha256"] == web.video.sha256
    views = [(e["details"]["file"], e["details"]["where"].split(" ", 2)[-1]) for e in logged(web.vault, "preview.view")]
    assert ("video.mp4", "whole") in views and ("video.mp4", "bytes 10-109") in views
    assert ("video.mp4", "bytes -5") in views and ("provenance.json", "whole") in views


def test_refusals_are_the_same_as_for_the_recording_and_audited(web: Web) -> None:
    vid = web.video.id
    Worker(web.vault, maker=FakeMaker()).run_once() or None
    assert web.get("li", f"/recordings/{vid}/preview").status_code == 404  # not his: not even seen
    r = web.get("wu", f"/recordings/{vid}/preview/main")  # the auditor sees metadata, not pictures
    assert r.status_code == 403 and r.json()["error"]["rule"] == "no-media-rights"
    denied = [(e["actor"]["name"], e["details"]["action"]) for e in logged(web.vault, "access.denied")]
    assert ("li", "view-metadata") in denied and ("wu", "view-preview") in denied
    assert web.get("wang", f"/recordings/{vid}/preview/..%2Fstore").status_code in (404, 422)


def test_queue_status_and_rebuild_are_for_admins(web: Web) -> None:
    preview.enqueue_new(web.vault, [web.video.id])
    assert web.get("wang", "/previews").status_code == 403
    st = web.get("root", "/previews").json()
    assert st["jobs"] == {"queued": 1} and st["waiting"][0]["recording"] == web.video.id
    r = web.client.post(API + "/previews/rebuild", json={"recording": web.video.id},
                        headers={"Authorization": f"Bearer {web.tokens['root']}"})
    assert r.status_code == 200 and r.json() == {"queued": 1}
