"""The command line as a user runs it: exit codes, JSON fields, messages."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from vaultd.cli import main

pytestmark = pytest.mark.slow

REQUIRED = {"id", "sha256", "size_bytes", "original_name", "media_type", "device_serial", "officer_id",
            "recorded_start", "recorded_end", "time_source", "ingested_at", "ingest_deadline", "on_time",
            "duration_s", "video_codec", "width", "height", "damaged"}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_twice_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "h"
    code, out, _ = run(capsys, "--home", str(home), "init")
    assert code == 0 and "initialised" in out
    assert oct(home.stat().st_mode & 0o777) == "0o700"
    assert oct((home / "keys" / "log-ed25519.pem").stat().st_mode & 0o777) == "0o600"
    before = sorted((p, p.stat().st_mtime_ns) for p in (home / "keys").iterdir())
    code, out, _ = run(capsys, "--home", str(home), "init")
    assert code == 0 and "already initialised; nothing changed" in out
    assert sorted((p, p.stat().st_mtime_ns) for p in (home / "keys").iterdir()) == before


def test_uninitialised_home_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--home", str(tmp_path / "nope"), "recordings", "list")
    assert code == 2 and "not a vaultd home" in err and "init" in err


def test_ingest_list_show_get_scrub(home: Path, camera: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    h = ["--home", str(home)]
    code, out, _ = run(capsys, *h, "ingest", str(camera), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["complete"] and report["counts"]["new"] > 0
    code, out, _ = run(capsys, *h, "recordings", "list", "--json")
    recs = json.loads(out)
    assert recs and all(REQUIRED <= set(r) for r in recs)
    assert all(r["recorded_start"].endswith("+08:00") for r in recs)  # shown in the station zone
    video = next(r for r in recs if r["media_type"] == "video" and not r["damaged"])
    code, out, _ = run(capsys, *h, "recordings", "show", video["sha256"][:12], "--json")
    shown = json.loads(out)
    assert shown["id"] == video["id"] and shown["sightings"][0]["source_path"].startswith("DCIM/")
    out_file = tmp_path / "copy.mp4"
    code, out, _ = run(capsys, *h, "recordings", "get", video["id"], "--out", str(out_file),
                       "--reason", "案件 2026-017 复核")
    assert code == 0
    assert subprocess.run(["sha256sum", str(out_file)], capture_output=True, text=True,
                          check=True).stdout.split()[0] == video["sha256"]
    code, _, err = run(capsys, *h, "recordings", "get", video["id"], "--out", str(out_file), "--reason", "x")
    assert code == 2 and "already exists" in err
    code, _, err = run(capsys, *h, "recordings", "get", video["id"], "--out", str(tmp_path / "b"), "--reason", " ")
    assert code == 2 and "reason" in err
    code, out, _ = run(capsys, *h, "recordings", "list", "--device", "nope")
    assert code == 0 and "0 recordings" in out
    code, out, _ = run(capsys, *h, "scrub")
    assert code == 0 and f"{len(recs)} originals checked" in out


def test_unknown_recording_exit_4(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--home", str(home), "recordings", "show", "rnotthere0000")
    assert code == 4 and "no recording" in err


def test_bad_time_option(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--home", str(home), "recordings", "list", "--since", "someday")
    assert code == 2 and "--since" in err and "'someday'" in err and "yesterday" in err


def test_bad_config_names_key(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "vaultd.toml").write_text("[ingest]\nreserve = 5\n")
    code, _, err = run(capsys, "--home", str(home), "recordings", "list")
    assert code == 3 and "ingest.reserve" in err and "vaultd.toml" in err


def test_scrub_names_a_flipped_and_a_missing_original(home: Path, camera: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    h = ["--home", str(home)]
    run(capsys, *h, "ingest", str(camera))
    code, out, _ = run(capsys, *h, "recordings", "list", "--json")
    recs = json.loads(out)
    flipped, gone = recs[0], recs[1]
    store = home / "store" / "sha256"
    p = store / flipped["sha256"][:2] / flipped["sha256"][2:4] / flipped["sha256"]
    os.chmod(p, 0o644)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    q = store / gone["sha256"][:2] / gone["sha256"][2:4] / gone["sha256"]
    q.unlink()
    code, out, err = run(capsys, *h, "scrub")
    assert code == 8
    assert f"FAIL {flipped['id']}" in out and "hash differs" in out
    assert f"FAIL {gone['id']}" in out and "missing" in out
    assert "2 originals failed" in err
    # reading a damaged original refuses, and writes nothing
    code, _, err = run(capsys, *h, "recordings", "get", flipped["id"], "--out", str(home.parent / "x"),
                       "--reason", "check")
    assert code == 8 and not (home.parent / "x").exists()


def test_ingest_exit_1_when_incomplete(home: Path, camera: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "vaultd.toml").write_text("[ingest]\nsettle_s = 0.0\nreserve_bytes = 0\nmax_file_bytes = 1000\n")
    code, out, err = run(capsys, "--home", str(home), "ingest", str(camera))
    assert code == 1 and "limit:" in out and "max_file_bytes" in out


def test_simulate_refuses_non_empty_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x").write_text("x")
    code, _, err = run(capsys, "simulate", "camera", str(tmp_path))
    assert code == 2 and str(tmp_path) in err


def test_help_explains_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--help"], ["ingest", "--help"], ["recordings", "get", "--help"], ["audit", "verify", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--wipe" in out and "--reason" in out


def test_get_of_a_missing_original_fails_clearly_and_is_logged(home: Path, camera: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    h = ["--home", str(home)]
    run(capsys, *h, "ingest", str(camera))
    code, out, _ = run(capsys, *h, "recordings", "list", "--json")
    rec = json.loads(out)[0]
    obj = home / "store" / "sha256" / rec["sha256"][:2] / rec["sha256"][2:4] / rec["sha256"]
    obj.unlink()
    target = tmp_path / "out.bin"
    code, _, err = run(capsys, *h, "recordings", "get", rec["id"], "--out", str(target), "--reason", "check")
    assert code == 6 and "missing from the store" in err
    assert not target.exists()
    code, out, _ = run(capsys, *h, "audit", "list", "--recording", rec["id"], "--json")
    failed = [e for e in json.loads(out) if e["type"] == "recording.get.failed"]
    assert failed and "missing" in failed[0]["details"]["problem"]


def test_an_out_file_that_cannot_be_written_is_a_clear_error(home: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-folder"
    for args in (("audit", "checkpoint"), ("export", "ca")):
        code, _, err = run(capsys, "--home", str(home), *args, "--out", str(missing / "x.pem"))
        assert code == 2, args
        assert f"cannot write {missing / 'x.pem'}" in err


def test_main_in_process_leaves_sigpipe_alone(tmp_path: Path) -> None:
    """Only the ``vaultd`` process gives SIGPIPE its default action: ``main`` called in-process
    (tests, other programs) must not, or a later write to a closed pipe or socket kills the
    caller (``./run tests`` once ended with exit 141 and no summary, #17.6)."""
    import signal

    before = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        assert main(["--home", str(tmp_path / "h"), "init"]) == 0
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGPIPE, before)

