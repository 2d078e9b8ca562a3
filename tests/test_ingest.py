"""Ingest end to end through the service layer, with its failure modes."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import camera_files
from vaultd import faults
from vaultd.catalog import recordings as rec_db
from vaultd.catalog.recordings import RecordingFilter
from vaultd.catalog.schema import ingest_intents, sightings
from vaultd.ingest import ingest_path
from vaultd.model import Actor, MediaType, Outcome
from vaultd.vault import Vault

pytestmark = pytest.mark.slow
ME = Actor.local()


def all_recordings(vault: Vault):
    with vault.engine.connect() as conn:
        return rec_db.search(conn, RecordingFilter())


def test_every_file_lands_byte_identical(vault: Vault, camera: Path) -> None:
    expected = camera_files(camera)
    report = ingest_path(vault, camera, actor=ME)
    assert report.complete, report
    stored = {r.sha256 for r in all_recordings(vault)}
    assert stored == set(expected.values())
    # compare with the standard tool, not our own hashing
    for sha in stored:
        out = subprocess.run(["sha256sum", str(vault.store.object_path(sha))],
                             capture_output=True, text=True, check=True).stdout
        assert out.split()[0] == sha
    assert list(vault.layout.staging_dir.iterdir()) == [vault.layout.staging_dir / ".sessions.lock"]


def test_metadata_of_a_simulated_camera(vault: Vault, camera: Path) -> None:
    ingest_path(vault, camera, actor=ME)
    recs = all_recordings(vault)
    videos = [r for r in recs if r.media_type is MediaType.VIDEO]
    assert len(videos) == 4
    assert sum(r.damaged for r in videos) == 2
    for r in recs:
        assert r.device_serial == "3201001"
        assert r.recorded_start is not None and r.recorded_start.tzinfo is not None
        assert r.ingest_deadline is not None and r.on_time is True
        assert r.clock_offset_s == 45.0 and "clock-skewed" in r.time_flags
    good = [r for r in videos if not r.damaged]
    for r in good:
        assert r.video_codec == "h264" and r.audio_codec == "aac"
        assert r.width and r.height and abs((r.duration_s or 0) - 2.0) < 0.5
    kinds = {r.media_type for r in recs}
    assert kinds == {MediaType.VIDEO, MediaType.AUDIO, MediaType.PHOTO, MediaType.OTHER}
    odd = [r for r in recs if r.name_oddities]
    assert odd, "odd names are reported on the recordings"


def test_reingest_records_sightings_not_copies(vault: Vault, camera: Path) -> None:
    ingest_path(vault, camera, actor=ME)
    n_objects = len(list(vault.store.iter_objects()))
    again = ingest_path(vault, camera, actor=ME)
    assert again.complete
    assert again.counts()["new"] == 0 and again.counts()["duplicate"] > 0
    assert len(list(vault.store.iter_objects())) == n_objects
    with vault.engine.connect() as conn:
        dup = conn.execute(select(func.count()).select_from(sightings)
                           .where(sightings.c.outcome == "duplicate")).scalar_one()
    assert dup >= again.counts()["duplicate"]


def test_symlinks_and_specials_are_reported_not_followed(vault: Vault, camera: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not evidence")
    (camera / "DCIM" / "link.MP4").symlink_to(secret)
    (camera / "DCIM" / "dirlink").symlink_to(tmp_path)
    os.mkfifo(camera / "DCIM" / "pipe.MP4")
    report = ingest_path(vault, camera, actor=ME)
    reasons = {r.path: r.reason for r in report.results if r.outcome is Outcome.SKIPPED}
    assert "symbolic link" in reasons["DCIM/link.MP4"]
    assert "symbolic link" in reasons["DCIM/dirlink"]
    assert "not a regular file" in reasons["DCIM/pipe.MP4"]
    assert report.complete  # links and pipes are not recordings
    import hashlib
    assert hashlib.sha256(b"not evidence").hexdigest() not in {r.sha256 for r in all_recordings(vault)}


def test_caps_are_reported_and_block_completion(home: Path, camera: Path) -> None:
    from vaultd.vault import open_vault
    (home / "vaultd.toml").write_text("[ingest]\nsettle_s = 0.0\nreserve_bytes = 0\nmax_files = 3\n")
    vault = open_vault(home)
    report = ingest_path(vault, camera, actor=ME)
    limited = [r for r in report.results if r.reason and r.reason.startswith("limit:")]
    assert limited and all("max_files=3" in (r.reason or "") for r in limited)
    assert not report.complete
    assert report.counts()["new"] + report.counts()["duplicate"] == 3


def test_file_changing_while_read_is_deferred_then_taken(vault: Vault, camera: Path) -> None:
    target = sorted((camera / "DCIM").rglob("*_0001.MP4"))[0]
    grown = []

    def grow() -> None:
        if not grown:
            grown.append(1)
            with open(target, "ab") as fh:
                fh.write(b"\0" * 1000)

    faults.hooks["stage.chunk"] = grow
    report = ingest_path(vault, camera, actor=ME)
    assert report.complete  # deferred once, stable on the retry
    final = camera_files(camera)[str(target.relative_to(camera))]
    assert final in {r.sha256 for r in all_recordings(vault)}


def test_file_that_keeps_changing_is_deferred_and_blocks(vault: Vault, camera: Path) -> None:
    target = sorted((camera / "DCIM").rglob("*_0002.MP4"))[0]

    def grow() -> None:
        with open(target, "ab") as fh:
            fh.write(b"\0")

    faults.hooks["stage.chunk"] = grow
    report = ingest_path(vault, camera, actor=ME, wipe=True)
    deferred = [r for r in report.results if r.outcome is Outcome.DEFERRED]
    assert deferred and "still being written" in (deferred[0].reason or "")
    assert not report.complete
    assert report.wipe_note and "skipped" in report.wipe_note
    assert target.exists()  # nothing wiped


def test_io_error_on_one_file_others_ingested(vault: Vault, camera: Path) -> None:
    calls = []

    def eio_once() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")

    faults.hooks["source.read"] = eio_once
    report = ingest_path(vault, camera, actor=ME)
    failed = [r for r in report.results if r.outcome is Outcome.FAILED]
    assert len(failed) == 1 and "Input/output error" in (failed[0].reason or "")
    assert report.counts()["new"] >= 5
    assert not report.complete
    assert ingest_path(vault, camera, actor=ME).complete  # next dock finishes it


def test_device_gone_stops_session_and_resumes(vault: Vault, camera: Path) -> None:
    calls = []

    def gone_after_some() -> None:
        calls.append(1)
        if len(calls) >= 4:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")

    def absent() -> None:
        raise OSError(errno.ENODEV, "No such device")

    faults.hooks["source.read"] = gone_after_some
    faults.hooks["source.present"] = absent
    report = ingest_path(vault, camera, actor=ME, wipe=True)
    assert report.error and "disappeared" in report.error
    assert not report.complete
    assert all(p.exists() for p in camera.rglob("*"))  # nothing wiped
    with vault.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ingest_intents)).scalar_one() == 0
    faults.hooks.clear()
    again = ingest_path(vault, camera, actor=ME)
    assert again.complete
    assert {r.sha256 for r in all_recordings(vault)} == set(camera_files(camera).values())


def test_wipe_deletes_only_verified_copies(vault: Vault, camera: Path) -> None:
    expected = camera_files(camera)
    report = ingest_path(vault, camera, actor=ME, wipe=True)
    assert report.complete
    assert camera_files(camera) == {}
    assert {r.sha256 for r in all_recordings(vault)} == set(expected.values())
    assert (camera / "vaultd-camera.json").exists()


def test_without_wipe_the_camera_is_never_written(vault: Vault, camera: Path) -> None:
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in camera.rglob("*")}
    ingest_path(vault, camera, actor=ME)
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in camera.rglob("*")} == before


def test_wipe_refuses_when_camera_file_changed_after_copy(vault: Vault, camera: Path) -> None:
    target = sorted((camera / "LOG").iterdir())[0]

    def tamper() -> None:
        os.chmod(target, 0o644)
        with open(target, "ab") as fh:
            fh.write(b"late line\n")
        faults.hooks.pop("ingest.before_wipe")

    faults.hooks["ingest.before_wipe"] = tamper
    report = ingest_path(vault, camera, actor=ME, wipe=True)
    assert target.exists()
    mine = next(r for r in report.results if r.path == str(target.relative_to(camera)))
    assert not mine.wiped
    assert sum(r.wiped for r in report.results) == report.counts()["new"] + report.counts()["duplicate"] - 1


def test_missing_path_is_a_clear_error(vault: Vault, tmp_path: Path) -> None:
    from vaultd.errors import UsageError
    with pytest.raises(UsageError, match="does not exist"):
        ingest_path(vault, tmp_path / "nope", actor=ME)


def test_unreadable_media_is_stored_and_marked_damaged(vault: Vault, camera: Path) -> None:
    junk = camera / "DCIM" / "JUNK_0001.MP4"
    junk.write_bytes(os.urandom(200_000))
    report = ingest_path(vault, camera, actor=ME)
    assert report.complete
    rec = next(r for r in all_recordings(vault) if r.original_name == "JUNK_0001.MP4")
    assert rec.damaged and "does not look like mp4" in rec.damage_reasons[0]
    assert vault.store.object_path(rec.sha256).read_bytes() == junk.read_bytes()


@pytest.mark.parametrize("returned_h, expect", [(-0.5, "moved"), (None, "away")])
def test_a_trip_recorded_before_ingest_moves_the_stored_deadline(vault: Vault, camera: Path,
                                                                 returned_h: float | None, expect: str) -> None:
    """R1's off-site exception holds from the first stamp, not only after the hourly compliance job."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import select

    from vaultd import compliance
    from vaultd.catalog.schema import recordings
    from vaultd.people import local_owner

    now = datetime.now(timezone.utc)
    returned = now + timedelta(hours=returned_h) if returned_h is not None else None
    compliance.add_trip(vault, local_owner(), officer_number="012345", device_serial=None,
                        left_at=now - timedelta(days=1), returned_at=returned, note="山区巡查")
    compliance.add_trip(vault, local_owner(), officer_number="099999", device_serial=None,  # someone else's
                        left_at=now - timedelta(days=1), returned_at=now + timedelta(days=3), note="培训")
    ingest_path(vault, camera, actor=Actor.local())
    with vault.engine.connect() as conn:
        rows = conn.execute(select(recordings.c.ingest_deadline, recordings.c.on_time, recordings.c.recorded_end,
                                   recordings.c.officer_id).where(recordings.c.media_type == "video")).all()
    assert rows and all(r.officer_id == "012345" and r.on_time for r in rows)
    for r in rows:
        if expect == "moved":
            assert returned is not None and r.ingest_deadline == returned + timedelta(hours=24)
        else:
            assert r.ingest_deadline is None  # still away: due 24 h after the return, whenever that is
