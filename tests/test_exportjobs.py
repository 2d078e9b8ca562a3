"""Export jobs (the service behind exports over the API): progress while a build
runs, nothing half built listed as done, cut-off builds found, kept files
removed after their time, and archives that unpack to exactly the station's
package folder."""

from __future__ import annotations

import filecmp
import json
import tarfile
import threading
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from export_world import World, make_world, pinned, run_verify
from vaultd import archive, export, exportjobs, faults
from vaultd.catalog import exports as db
from vaultd.catalog.exports import ExportRow
from vaultd.catalog.schema import audit_entries
from vaultd.errors import NotFoundError, StorageError

pytestmark = pytest.mark.slow


@pytest.fixture
def world(tmp_path: Path, _sim_camera_master: Path) -> World:
    return make_world(tmp_path, _sim_camera_master)


def _ids(world: World) -> list[str]:
    video = next(r for r in world.recs if r.media_type.value == "video" and not r.damaged)
    chinese = next(r for r in world.recs if "现场" in r.original_name)
    return [video.id, chinese.id]


def _start(world: World, ids: list[str], **kw: object) -> exportjobs.JobStatus:
    req = exportjobs.JobRequest(grant_id=world.grant(ids), recording_refs=tuple(ids), **kw)  # type: ignore[arg-type]
    return exportjobs.start_job(world.vault, world.who("li"), req)


def logged(world: World, type_: str, **where: Any) -> list[dict[str, Any]]:
    """Audit entries of a type whose details match ``where``."""
    with world.vault.engine.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.type == type_)
                            .order_by(audit_entries.c.idx)).all()
    docs = [json.loads(r.entry) for r in rows]
    return [d for d in docs if all(d["details"].get(k) == v for k, v in where.items())]


def test_progress_is_reported_while_the_build_runs(world: World) -> None:
    ids = _ids(world)
    seen: list[exportjobs.JobStatus] = []
    go_on = threading.Event()

    def look() -> None:  # the worker stops here, after packing, until the test has looked
        seen.append(exportjobs.job_status(world.vault, world.who("li"), seen_id[0]))
        go_on.wait(60)

    faults.hooks["exportjob.archived"] = look
    seen_id: list[str] = []
    first = _start(world, ids, iso=True, disc="cd")
    seen_id.append(first.export_id)
    assert first.state == "building" and first.artefacts == ()
    go_on.set()
    assert exportjobs.wait(first.export_id, 120)
    mid = seen[0]
    assert mid.state == "building" and mid.stage == "archive" and mid.artefacts == ()
    assert mid.files_total >= 2 and mid.files_done == mid.files_total
    assert 0 < mid.bytes_total == mid.bytes_done
    done = exportjobs.job_status(world.vault, world.who("li"), first.export_id)
    assert done.state == "complete" and done.stage == "done"
    assert [a.kind for a in done.artefacts] == ["archive", "disc-image"]
    assert done.keep_until is not None
    folder = world.home / "exports" / first.export_id
    assert sorted(p.name for p in folder.iterdir()) == sorted(a.name for a in done.artefacts)  # no folder left


def test_a_failed_build_leaves_nothing_listed_as_done(world: World) -> None:
    def fail() -> None:
        raise StorageError("disk gone (test)")

    faults.hooks["exportjob.archived"] = fail
    job = _start(world, _ids(world), iso=True, disc="cd")
    assert exportjobs.wait(job.export_id, 120)
    st = exportjobs.job_status(world.vault, world.who("li"), job.export_id)
    assert st.state == "failed" and "disk gone" in (st.problem or "") and st.artefacts == ()
    assert not (world.home / "exports" / job.export_id).exists()
    with world.vault.engine.connect() as conn:
        row = db.get(conn, job.export_id)
    assert row is not None and row.status == "failed" and row.packages == ()
    with pytest.raises(NotFoundError):
        exportjobs.authorise_download(world.vault, world.who("li"), job.export_id, f"{job.export_id}.zip")


def _row(status: str, finished: datetime | None) -> ExportRow:
    return ExportRow("EXP-1", status, datetime(2026, 1, 1, tzinfo=timezone.utc), finished, "user:li", "G", "li",
                     "sun", "p", None, (), "/h/exports/EXP-1", (), 0, None, None, None)


def test_what_is_done_with_each_kept_folder() -> None:
    now = datetime(2026, 12, 8, tzinfo=timezone.utc)
    fresh, old = now - timedelta(days=6, hours=23), now - timedelta(days=7)
    assert exportjobs.decide(_row("building", None), True, now, 7) == "keep"  # a build runs
    assert exportjobs.decide(_row("building", None), False, now, 7) == "abandoned"  # cut off
    assert exportjobs.decide(None, False, now, 7) == "remove"
    assert exportjobs.decide(None, True, now, 7) == "keep"  # being made right now
    assert exportjobs.decide(_row("failed", old), False, now, 7) == "remove"
    assert exportjobs.decide(_row("complete", fresh), False, now, 7) == "keep"
    assert exportjobs.decide(_row("complete", old), False, now, 7) == "expired"


def test_a_cut_off_build_is_recorded_failed_and_removed(world: World) -> None:
    """A server killed mid-build leaves a 'building' record and an unlocked folder."""
    ids = _ids(world)
    folder = world.home / "exports" / "EXP-20261208-ABCDEF"
    folder.mkdir(parents=True)
    (folder / exportjobs.LOCK_NAME).touch()
    req = export.ExportRequest(out_dir=folder, grant_id=world.grant(ids), recording_refs=tuple(ids))
    export.start_export(world.vault, world.who("li"), req, "api", export_id=folder.name)  # never run
    (folder / folder.name).mkdir()  # a half package
    st = exportjobs.job_status(world.vault, world.who("li"), folder.name)
    assert st.state == "failed" and "cut off" in (st.problem or "")
    assert not folder.exists()
    assert logged(world, "export.failed", export=folder.name)


def test_kept_files_are_removed_after_keep_days(world: World) -> None:
    job = _start(world, _ids(world))
    assert exportjobs.wait(job.export_id, 120)
    st = exportjobs.job_status(world.vault, world.who("li"), job.export_id)
    assert st.keep_until is not None and st.artefacts
    exportjobs.reap(world.vault, st.keep_until - timedelta(seconds=1))
    assert st.artefacts[0].path.is_file()
    exportjobs.reap(world.vault, st.keep_until)
    assert not (world.home / "exports" / job.export_id).exists()
    with pytest.raises(NotFoundError, match="removed"):
        exportjobs.authorise_download(world.vault, world.who("li"), job.export_id, st.artefacts[0].name)
    removed = logged(world, "export.removed", export=job.export_id)
    assert len(removed) == 1 and removed[0]["details"]["files"] == [st.artefacts[0].name]
    with world.vault.engine.connect() as conn:
        row = db.get(conn, job.export_id)
    assert row is not None and row.status == "complete"  # the record stays


@pytest.mark.parametrize("fmt", archive.FORMATS)
def test_an_archive_unpacks_to_exactly_the_station_package(world: World, tmp_path: Path, fmt: str) -> None:
    ids = _ids(world)
    pkg = world.export(ids, world.grant(ids)).packages[0]
    made = archive.write_archive(pkg, tmp_path / f"pkg.{fmt}", fmt)
    out = tmp_path / f"unpacked-{fmt}"
    out.mkdir()
    if fmt == "zip":
        with zipfile.ZipFile(made.path) as zf:
            names = zf.infolist()
            assert all(i.compress_type == zipfile.ZIP_STORED for i in names)
            assert any("现场" in i.filename and i.flag_bits & 0x800 for i in names)  # UTF-8 names
            assert not any(i.flag_bits & 0x08 for i in names)  # sizes in the local headers
            zf.extractall(out)
    else:
        with tarfile.open(made.path) as tf:
            tf.extractall(out, filter="data")
    copy = out / pkg.name
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == sorted(p.relative_to(pkg) for p in pkg.rglob("*"))
    for p in pkg.rglob("*"):
        if p.is_file():
            assert filecmp.cmp(p, copy / p.relative_to(pkg), shallow=False), p
    code, text = run_verify(copy, *pinned(world))
    assert code == 0 and "PASS" in text, text


def test_an_export_split_over_discs_has_an_archive_and_an_image_per_disc(world: World, tmp_path: Path) -> None:
    ids = _ids(world)
    room = (12 << 20) + (400 << 10)  # each disc's usable room holds one of the two recordings, not both
    job = _start(world, ids, iso=True, disc_bytes=int(room / 0.98) + 1, archive="tar")
    assert exportjobs.wait(job.export_id, 120)
    st = exportjobs.job_status(world.vault, world.who("li"), job.export_id)
    assert st.state == "complete", st.problem
    e = job.export_id
    assert [a.name for a in st.artefacts] == [f"{e}-disc1of2.tar", f"{e}-disc1of2.iso",
                                               f"{e}-disc2of2.tar", f"{e}-disc2of2.iso"]
    for a in st.artefacts:
        if a.kind == "archive":
            with tarfile.open(a.path) as tf:
                tf.extractall(tmp_path, filter="data")
            pkg = tmp_path / a.name.removesuffix(".tar")
        else:
            pkg = a.path
        code, text = run_verify(pkg, *pinned(world))
        assert code == 0 and "PASS" in text, text
