"""Real previews with ffmpeg from a simulated camera: every media type, marked, with
provenance; damaged clips end in a preview or a clear failed state; the CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from preview_fakes import logged

from vaultd import cli, media, preview
from vaultd.catalog import previews as db
from vaultd.catalog import recordings as rec_db
from vaultd.ingest import ingest_path
from vaultd.model import Actor, MediaType, Recording
from vaultd.people import local_owner
from vaultd.previewwork import Worker
from vaultd.vault import Vault, init_vault, open_vault

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, _sim_camera_master: Path
         ) -> Iterator[tuple[Vault, list[Recording]]]:
    """One vault for the module: the simulated camera plus a zero-length clip, previews made."""
    from conftest import TEST_CONFIG

    root = tmp_path_factory.mktemp("previews")
    home, camera = root / "home", root / "camera"
    shutil.copytree(_sim_camera_master, camera, symlinks=True)
    init_vault(home)
    (home / "vaultd.toml").write_text(
        TEST_CONFIG + "[preview]\nheight = 240\nsprite_every_s = 1.0\nmax_attempts = 1\n", encoding="utf-8")
    empty = next(camera.rglob("*.MP4")).with_name("3201001_012345_20261121083000_0099.MP4")
    empty.write_bytes(b"")  # a zero-length clip
    vault = open_vault(home)
    ingest_path(vault, camera, actor=Actor.local())
    with vault.engine.connect() as conn:
        recs = [rec_db.get(conn, r[0]) for r in rec_db.all_hashes(conn)]
    preview.enqueue_new(vault, [r.id for r in recs])
    Worker(vault).run_until_idle()
    yield vault, recs
    vault.close()


class _NONE:
    state = "none"


def _state(vault: Vault, rec: Recording) -> tuple[db.PreviewRow | None, db.JobRow | None]:
    with vault.engine.connect() as conn:
        return db.get(conn, rec.id), db.job_of(conn, rec.id)


def test_every_media_type_gets_a_marked_preview_with_provenance(made: tuple[Vault, list[Recording]]) -> None:
    vault, recs = made
    kinds = set()
    for rec in recs:
        row, job = _state(vault, rec)
        if rec.media_type is MediaType.OTHER:
            assert row is None and job is None
            continue
        assert job is not None
        if row is None or row.state == "stills":  # a damaged original: a clear failed state with the reason
            assert rec.damaged and job.state == "failed" and job.last_error, (rec, job)
            continue
        assert row.state == "ready" and job.state == "done" and row.original_sha256 == rec.sha256
        assert row.tools["ffmpeg"].startswith("ffmpeg version")
        folder = preview.folder_of(vault, rec.id)
        for name, meta in row.files.items():
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == meta["sha256"]
        marking = row.params["marking"]
        font, cjk = media.find_font()
        assert marking == ("cjk" if cjk else "latin-only")
        kinds.add(row.kind)
        main = folder / row.main_file
        info = media.probe(main)
        assert info.ok
        if row.kind == "video":
            assert info.video_codec == "h264" and info.height == 240
            assert info.audio_codec == "aac"
            data = main.read_bytes()
            assert data.index(b"moov") < data.index(b"mdat")  # fast start: plays while it loads
            assert info.raw["format"]["tags"]["comment"] == "PREVIEW / 预览 - not evidence"
            strip = row.params["spec"]["strip"]
            assert rec.id in strip and ("预览" in strip if cjk else "PREVIEW" in strip)
            assert "drawtext" in " ".join(row.params["argv"]["video.mp4"])
            # the provenance names every setting that decided the bytes, the cheap ones included
            spec = row.params["spec"]
            assert (spec["x264_params"], spec["scaler"], spec["skip_loop_filter"]) == ("me=dia:subme=1:partitions=i8x8,i4x4", "area", True)
            assert spec["audio_copy"] == (rec.audio_codec == "aac") and spec["x264_params"] in row.params["argv"][
                "video.mp4"]
            assert "poster.jpg" in row.files or rec.damaged
            assert row.incomplete == rec.damaged
        elif row.kind == "audio":
            assert info.audio_codec == "aac" and "waveform.png" in row.files
        else:
            assert info.video_codec == "mjpeg" and info.height is not None and info.height <= 720
            assert rec.id in row.params["strip"]
    assert kinds == {"video", "audio", "photo"}
    ready = [e for e in logged(vault, "preview.made") if e["details"]["state"] == "ready"]
    assert len(ready) == sum(1 for r in recs if (_state(vault, r)[0] or _NONE).state == "ready")


def test_damaged_clips_end_in_a_preview_or_a_reason(made: tuple[Vault, list[Recording]]) -> None:
    vault, recs = made
    damaged = [r for r in recs if r.damaged and r.media_type is MediaType.VIDEO]
    assert len(damaged) >= 3  # two truncated clips and the zero-length one
    outcomes = {}
    for rec in damaged:
        row, job = _state(vault, rec)
        assert job is not None and job.state in ("done", "failed")
        outcomes[rec.id] = "preview" if row else job.last_error
        if row is not None:
            assert row.incomplete  # made from what could be read, and said so
    zero = next(r for r in damaged if r.size_bytes == 0)
    assert outcomes[zero.id] != "preview" and "cannot be read" in str(outcomes[zero.id])
    failed = logged(vault, "preview.failed")
    assert zero.id in [e["evidence"]["id"] for e in failed]


def test_a_job_over_its_time_limit_is_stopped_and_kept_as_failed(home: Path, camera: Path) -> None:
    with open(home / "vaultd.toml", "a", encoding="utf-8") as fh:
        fh.write("[preview]\ntimeout_base_s = 0.05\ntimeout_per_media_s = 0.001\nmax_attempts = 1\n")
    vault = open_vault(home)
    try:
        ingest_path(vault, camera, actor=Actor.local())
        with vault.engine.connect() as conn:
            rec = next(rec_db.get(conn, r[0]) for r in rec_db.all_hashes(conn)
                       if rec_db.get(conn, r[0]).media_type is MediaType.VIDEO and not rec_db.get(conn, r[0]).damaged)
        preview.enqueue_new(vault, [rec.id])
        Worker(vault).run_once()
        _row, job = _state(vault, rec)
        assert job is not None and job.state == "failed" and "timed out" in (job.last_error or "")
    finally:
        vault.close()


def test_cli_preview_status_rebuild_and_run(home: Path, camera: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    vault = open_vault(home)
    ingest_path(vault, camera, actor=Actor.local())
    with vault.engine.connect() as conn:
        photo = next(rec_db.get(conn, r[0]) for r in rec_db.all_hashes(conn)
                     if rec_db.get(conn, r[0]).media_type is MediaType.PHOTO)
    vault.close()
    h = ["--home", str(home)]
    out = tmp_path / "photo-preview.jpg"
    assert cli.main([*h, "recordings", "preview", photo.id, "--out", str(out)]) == 4  # none yet: queued
    assert "no preview" in capsys.readouterr().err
    assert cli.main([*h, "recordings", "preview", photo.id, "--out", str(out), "--wait"]) == 0
    assert out.read_bytes()[:2] == b"\xff\xd8"
    assert cli.main([*h, "recordings", "preview", photo.id, "--out", str(out)]) == 2  # never overwritten
    capsys.readouterr()
    assert cli.main([*h, "previews", "status", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["jobs"] == {"done": 1} and st["previews"] == 1
    assert cli.main([*h, "previews", "rebuild"]) == 2
    assert cli.main([*h, "previews", "rebuild", photo.id]) == 0
    assert cli.main([*h, "previews", "run"]) == 0
    assert "preview jobs run" in capsys.readouterr().out
    vault = open_vault(home)
    try:
        st2 = preview.status(vault, local_owner())
        assert st2.counts.get("queued", 0) == 0 and st2.previews >= 1
        views = logged(vault, "preview.view")
        assert [e["evidence"]["id"] for e in views] == [photo.id]
        assert views[0]["details"]["where"] == str(out)
    finally:
        vault.close()


def test_a_hardware_encoder_that_fails_falls_back_to_software(made: tuple[Vault, list[Recording]]) -> None:
    from vaultd.previewwork import FfmpegMaker

    vault, recs = made
    video = next(r for r in recs if r.media_type is MediaType.VIDEO and not r.damaged)
    preview.rebuild(vault, local_owner(), video.id)
    Worker(vault, maker=FfmpegMaker(encoder=media.Encoder("h264_nvenc"))).run_once(video.id)
    row, job = _state(vault, video)
    assert row is not None and job is not None and job.state == "done"
    if media.nvidia_present() and "h264_nvenc" in media.available_encoders():
        assert row.params["spec"]["encoder"]["name"] == "h264_nvenc"  # a real GPU here: it was used
    else:
        assert row.params["spec"]["encoder"]["name"] == "libx264" and "h264_nvenc failed" in row.params["fallback"]
