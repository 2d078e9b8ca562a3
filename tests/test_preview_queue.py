"""The preview queue and worker with a fake maker: priorities, restarts, retries,
failures kept, rebuilds, and who may watch a preview (every view audited)."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from preview_fakes import FakeMaker, folder_files, logged
from sqlalchemy import update

from vaultd import people, preview
from vaultd.access import Level, Principal, Role
from vaultd.catalog import previews as db
from vaultd.catalog import recordings as rec_db
from vaultd.catalog.schema import preview_jobs
from vaultd.errors import AccessDeniedError, NotFoundError, UsageError
from vaultd.ingest import ingest_path
from vaultd.model import Actor, MediaType, Recording
from vaultd.previewwork import Worker
from vaultd.vault import Vault, open_vault, utcnow

UNIT = "一大队"
USERS = {
    "wang": ((Role.OFFICER,), {"unit": UNIT, "officer_number": "012345"}),  # the camera's officer
    "li": ((Role.OFFICER,), {"unit": UNIT, "officer_number": "054321"}),
    "zhao": ((Role.SUPERVISOR,), {"unit": UNIT}),
    "qian": ((Role.SUPERVISOR,), {"unit": "二大队"}),
    "zhou": ((Role.LEGAL,), {}),
    "wu": ((Role.AUDITOR,), {}),
}


class World:
    def __init__(self, vault: Vault, recs: list[Recording]) -> None:
        self.vault, self.recs = vault, recs
        self.owner = people.local_owner()

    def who(self, name: str) -> Principal:
        with self.vault.engine.connect() as conn:
            from vaultd.catalog import people as people_db

            user = people_db.user_by_name(conn, name)
        assert user is not None
        return people.principal_of(user)

    def of(self, kind: str) -> Recording:
        return next(r for r in self.recs if r.media_type.value == kind and not r.damaged)

    def job(self, rec: Recording) -> db.JobRow:
        with self.vault.engine.connect() as conn:
            job = db.job_of(conn, rec.id)
        assert job is not None
        return job

    def row(self, rec: Recording) -> db.PreviewRow | None:
        with self.vault.engine.connect() as conn:
            return db.get(conn, rec.id)


@pytest.fixture
def world(home: Path, camera: Path) -> Iterator[World]:
    with open(home / "vaultd.toml", "a", encoding="utf-8") as fh:
        fh.write("[preview]\nmax_attempts = 2\nretry_base_s = 60.0\n")
    vault = open_vault(home)
    owner = people.local_owner()
    for name, (roles, kw) in USERS.items():
        people.add_user(vault, owner, people.NewUser(name, roles, **kw), None, "cli")  # type: ignore[arg-type]
    ingest_path(vault, camera, actor=Actor.local())
    with vault.engine.connect() as conn:
        recs = [rec_db.get(conn, i) for i in rec_db.ids_exist(conn, [r[0] for r in rec_db.all_hashes(conn)])]
    yield World(vault, sorted(recs, key=lambda r: r.id))
    vault.close()


def _ids(recs: list[Recording]) -> list[str]:
    return [r.id for r in recs]


def test_every_media_type_gets_a_preview_with_its_provenance(world: World) -> None:
    vault, maker = world.vault, FakeMaker()
    queued = preview.enqueue_new(vault, _ids(world.recs))
    previewable = [r for r in world.recs if r.media_type is not MediaType.OTHER]
    assert queued == len(previewable) and {r.media_type for r in previewable} >= {
        MediaType.VIDEO, MediaType.AUDIO, MediaType.PHOTO}
    assert Worker(vault, maker=maker).run_until_idle() == len(previewable)
    for rec in world.recs:
        row = world.row(rec)
        if rec.media_type is MediaType.OTHER:
            assert row is None  # logs and GPS tracks get none
            continue
        assert row is not None and row.state == "ready" and row.original_sha256 == rec.sha256
        folder = preview.folder_of(vault, rec.id)
        assert folder_files(folder) == set(row.files) | {"provenance.json"}
        for name, meta in row.files.items():
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == meta["sha256"]
        prov = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
        assert prov["original_sha256"] == rec.sha256 and prov["tools"] == {"ffmpeg": "fake ffmpeg 0.0"}
        assert prov["notice"] == "PREVIEW / 预览 - not evidence" and prov["files"] == row.files
    made = [e for e in logged(vault, "preview.made") if e["details"]["state"] == "ready"]
    assert sorted(e["evidence"]["id"] for e in made) == sorted(_ids(previewable))
    # videos got their poster first (cheap things first), then the whole preview
    stills = [e["evidence"]["id"] for e in logged(vault, "preview.made") if e["details"]["state"] == "stills"]
    assert sorted(stills) == sorted(r.id for r in previewable if r.media_type is MediaType.VIDEO)
    assert all(maker.calls.index((v, "stills")) < maker.calls.index((v, "full")) for v in stills)
    # previews are kept apart from the evidence store, which they never touch
    assert not preview.root_of(vault).is_relative_to(vault.layout.store_dir)
    assert sorted(vault.store.iter_objects()) == sorted({r.sha256 for r in world.recs})


def test_what_a_person_asks_for_jumps_the_queue(world: World) -> None:
    vault, maker = world.vault, FakeMaker()
    video, photo, audio = world.of("video"), world.of("photo"), world.of("audio")
    preview.enqueue_backlog(vault)
    preview.enqueue_new(vault, [audio.id])
    rec, row, job = preview.describe(vault, world.who("wang"), video.id, request=True)
    assert row is None and job is not None and job.priority == preview.ON_DEMAND and job.first_part
    worker = Worker(vault, maker=maker)
    for _ in range(3):
        worker.run_once()
    # the waiting person's video first (its first seconds, then the whole), then the new ingest
    assert maker.calls[:3] == [(video.id, "first"), (video.id, "full"), (audio.id, "full")]
    worker.run_until_idle()
    assert (photo.id, "full") in maker.calls
    assert [e["evidence"]["id"] for e in logged(vault, "preview.request")] == [video.id]


def test_first_part_is_playable_before_the_whole(world: World) -> None:
    vault = world.vault
    video = world.of("video")

    class Watching(FakeMaker):
        seen: list[str | None] = []

        def make(self, task):  # type: ignore[no-untyped-def]
            if task.part == "full":  # while the whole is being made, the first part is served
                got = preview.open_file(vault, world.who("wang"), video.id, None, where="test")
                self.seen.append(got.name)
            return super().make(task)

    preview.describe(vault, world.who("wang"), video.id, request=True)
    maker = Watching()
    worker = Worker(vault, maker=maker)
    assert worker.run_once() and maker.calls == [(video.id, "first")]  # the quick lane
    assert worker.run_once() and maker.calls[-1] == (video.id, "full")
    assert maker.seen == ["first.mp4"]
    assert preview.open_file(vault, world.who("wang"), video.id, None, where="test").name == "video.mp4"


def test_the_first_part_comes_even_while_the_whole_is_being_made(world: World) -> None:
    vault, video = world.vault, world.of("video")
    preview.enqueue_backlog(vault)
    with vault.engine.begin() as conn:  # a backlog worker is already making it
        db.claim(conn, now=utcnow(), worker="elsewhere:1", recording_id=video.id)
    preview.describe(vault, world.who("wang"), video.id, request=True)  # then someone opens it
    maker = FakeMaker()
    assert Worker(vault, maker=maker).run_first_part()
    assert maker.calls == [(video.id, "first")] and world.row(video).state == "partial"  # type: ignore[union-attr]
    assert world.job(video).state == "running"  # the whole one carries on where it runs


def test_a_job_running_when_its_process_died_is_queued_again(world: World) -> None:
    vault, video, photo = world.vault, world.of("video"), world.of("photo")
    preview.enqueue_new(vault, [video.id, photo.id])
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    with vault.engine.begin() as conn:
        db.claim(conn, now=utcnow(), worker=f"{host}:{dead.pid}", recording_id=video.id)
        db.claim(conn, now=utcnow(), worker=f"{host}:1", recording_id=photo.id)  # alive: left alone
    half_made = preview.root_of(vault) / ".work" / f"{dead.pid}-{video.id}-dead"
    half_made.mkdir(parents=True)
    (half_made / "video.mp4").write_bytes(b"half")
    worker = Worker(vault, maker=FakeMaker())
    assert worker.recover() == 1
    assert world.job(video).state == "queued" and world.job(video).attempts == 0
    assert world.job(photo).state == "running"
    assert not half_made.exists()
    worker.run_until_idle()
    assert world.job(video).state == "done" and world.row(video) is not None


def test_failures_are_retried_with_backoff_then_kept(world: World) -> None:
    vault, video = world.vault, world.of("video")
    maker = FakeMaker(script={video.id: ["fail", "fail"]})
    preview.enqueue_new(vault, [video.id])
    worker = Worker(vault, maker=maker)
    assert worker.run_once()
    job = world.job(video)
    assert job.state == "queued" and job.attempts == 1 and "simulated transient" in (job.last_error or "")
    assert job.not_before >= utcnow() + timedelta(seconds=50)  # retry_base_s = 60
    assert not worker.run_once()  # nothing may run before the back-off ends
    with vault.engine.begin() as conn:
        conn.execute(update(preview_jobs).values(not_before=utcnow() - timedelta(seconds=1)))
    assert worker.run_once()
    job = world.job(video)
    assert job.state == "failed" and job.attempts == 2 and "simulated transient" in (job.last_error or "")
    assert [e["details"]["attempts"] for e in logged(vault, "preview.failed")] == [2]
    st = preview.status(vault, world.owner)
    assert [j.recording_id for j in st.failed] == [video.id] and st.counts["failed"] == 1
    # it stays failed, its reason shown, when someone opens it; a rebuild gives it a fresh start
    with pytest.raises(preview.PreviewPendingError, match="could not be made: .*simulated transient"):
        preview.open_file(vault, world.who("wang"), video.id, None, where="test")
    assert world.job(video).state == "failed"
    preview.rebuild(vault, world.owner, video.id)
    assert world.job(video).state == "queued" and world.job(video).attempts == 0


def test_unreadable_original_fails_at_once_with_the_reason(world: World) -> None:
    vault, video = world.vault, world.of("video")
    preview.enqueue_new(vault, [video.id])
    Worker(vault, maker=FakeMaker(script={video.id: ["unreadable"]})).run_until_idle()
    job = world.job(video)
    assert job.state == "failed" and job.attempts == 1 and "moov atom not found" in (job.last_error or "")
    with pytest.raises(NotFoundError, match="could not be made: .*moov atom"):
        preview.open_file(vault, world.owner, video.id, None, where="test")


def test_rebuild_makes_previews_again_and_is_admin_only(world: World) -> None:
    vault, maker = world.vault, FakeMaker()
    preview.enqueue_new(vault, _ids(world.recs))
    first = Worker(vault, maker=maker).run_until_idle()
    with pytest.raises(AccessDeniedError):
        preview.rebuild(vault, world.who("zhao"), None)
    assert preview.rebuild(vault, world.owner, None) == first
    assert Worker(vault, maker=maker).run_until_idle() == first
    assert preview.rebuild(vault, world.owner, world.of("photo").id) == 1
    assert [e["details"]["all"] for e in logged(vault, "preview.rebuild")] == [True, False]


def test_a_deleted_preview_is_made_again_when_asked_for(world: World) -> None:
    vault, photo = world.vault, world.of("photo")
    preview.enqueue_new(vault, [photo.id])
    Worker(vault, maker=FakeMaker()).run_until_idle()
    shutil.rmtree(preview.folder_of(vault, photo.id))
    with pytest.raises(preview.PreviewPendingError):
        preview.open_file(vault, world.who("wang"), photo.id, None, where="test")
    assert world.row(photo) is None and world.job(photo).state == "queued"
    Worker(vault, maker=FakeMaker()).run_until_idle()
    assert preview.open_file(vault, world.who("wang"), photo.id, None, where="test").name == "photo.jpg"


@pytest.mark.parametrize(("who", "allowed"), [
    ("wang", True), ("zhao", True), ("zhou", True),  # own officer, unit supervisor, legal
    ("li", False), ("qian", False), ("wu", False),  # another officer, another unit, the auditor
])
def test_who_may_watch_a_preview_and_every_view_is_audited(world: World, who: str, allowed: bool) -> None:
    vault, photo = world.vault, world.of("photo")
    preview.enqueue_new(vault, [photo.id])
    Worker(vault, maker=FakeMaker()).run_until_idle()
    actor = world.who(who)
    if allowed:
        got = preview.open_file(vault, actor, photo.id, None, where="test")
        assert got.path.read_bytes().startswith(b"full preview")
        views = logged(vault, "preview.view")
        assert [(e["actor"]["name"], e["evidence"]["id"], e["details"]["file"]) for e in views] == [
            (who, photo.id, "photo.jpg")]
        return
    # the auditor sees the metadata but not the picture; the others do not see the recording at all
    error = AccessDeniedError if who == "wu" else NotFoundError
    with pytest.raises(error):
        preview.open_file(vault, actor, photo.id, None, where="test")
    denied = logged(vault, "access.denied")
    assert denied and denied[-1]["actor"]["name"] == who and denied[-1]["evidence"]["id"] == photo.id
    assert not logged(vault, "preview.view")


def test_clearance_limits_legal(world: World) -> None:
    vault, photo = world.vault, world.of("photo")
    with vault.engine.begin() as conn:
        from vaultd.catalog.schema import recordings

        conn.execute(update(recordings).where(recordings.c.id == photo.id).values(
            confidentiality=Level.SECRET.value))
    preview.enqueue_new(vault, [photo.id])
    Worker(vault, maker=FakeMaker()).run_until_idle()
    with pytest.raises(NotFoundError):
        preview.open_file(vault, world.who("zhou"), photo.id, None, where="test")


def test_copy_out_writes_the_preview_and_never_overwrites(world: World, tmp_path: Path) -> None:
    vault, video = world.vault, world.of("video")
    preview.enqueue_new(vault, [video.id])
    Worker(vault, maker=FakeMaker()).run_until_idle()
    out = tmp_path / "p.mp4"
    got = preview.write_copy(vault, world.who("wang"), video.id, out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == got.sha256 == world.row(video).sha256  # type: ignore[union-attr]
    with pytest.raises(UsageError, match="already exists"):
        preview.write_copy(vault, world.who("wang"), video.id, out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == got.sha256
    poster = preview.write_copy(vault, world.who("wang"), video.id, tmp_path / "poster.jpg", "poster.jpg")
    assert poster.content_type == "image/jpeg"
    with pytest.raises(NotFoundError, match="has no file"):
        preview.write_copy(vault, world.who("wang"), video.id, tmp_path / "x", "sprite.png")


def test_the_daemon_service_survives_a_restart_mid_queue(world: World) -> None:
    import threading
    import time

    from preview_fakes import FakeMaker as Base

    from vaultd.previewwork import PreviewService

    vault = world.vault
    started, release = threading.Event(), threading.Event()

    class Blocking(Base):
        def make(self, task):  # type: ignore[no-untyped-def]
            started.set()
            release.wait(10)
            return super().make(task)

    ids = [r.id for r in world.recs if r.media_type is not MediaType.OTHER][:3]
    preview.enqueue_new(vault, ids)
    first = PreviewService(vault, workers=1, maker=Blocking())
    first.start()
    assert started.wait(10)
    threading.Timer(0.2, release.set).start()
    first.stop()  # the job under way finishes; the rest stays queued in the catalog
    states = [world.job(r).state for r in world.recs if r.id in ids]
    assert states.count("done") == 1 and states.count("queued") == 2
    second = PreviewService(vault, workers=2, maker=FakeMaker())  # the backlog is found as well
    second.start()
    deadline = time.monotonic() + 20
    previewable = len([r for r in world.recs if r.media_type is not MediaType.OTHER])
    while time.monotonic() < deadline and second.status()["jobs"].get("done", 0) < previewable:
        time.sleep(0.05)
    second.stop()
    assert second.status()["jobs"] == {"done": previewable} and not second.status()["running"]


def test_background_previews_wait_while_ingest_runs(world: World) -> None:
    import threading
    import time

    from vaultd import media
    from vaultd.previewwork import PreviewService

    vault, photo, video = world.vault, world.of("photo"), world.of("video")
    ingesting = threading.Event()
    ingesting.set()
    preview.enqueue_new(vault, [photo.id])
    service = PreviewService(vault, workers=1, maker=FakeMaker(), busy=ingesting.is_set)
    service.worker.cfg = replace(service.worker.cfg, pause_during_ingest=True)  # stopped outright
    service.start()
    try:
        time.sleep(1.5)  # the gate looks every second
        assert world.job(photo).state == "queued" and service.status()["paused_for_ingest"]
        preview.describe(vault, world.who("wang"), video.id, request=True)  # a person still gets the start
        deadline = time.monotonic() + 10
        while world.row(video) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert world.row(video).state == "partial"  # type: ignore[union-attr]
        ingesting.clear()
        while world.job(photo).state != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert world.job(photo).state == "done"
    finally:
        service.stop()
    assert not media.background_paused() and not media.background_held()
