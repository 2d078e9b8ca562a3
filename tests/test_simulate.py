"""The simulated camera: layout, names, clock, damage, identity, hostile names, options."""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from vaultd.containers import check_path
from vaultd.errors import UsageError
from vaultd.simulate import IDENTITY_FILE, SimulatedCamera, simulate_camera

START = datetime(2024, 5, 1, 2, 0, 0, tzinfo=timezone.utc)  # 10:00:00 in Shanghai
SHANGHAI = ZoneInfo("Asia/Shanghai")
VIDEO = re.compile(r"DCIM/(\d{8})/3201001_012345_(\d{14})_(\d{4})(_IMP)?\.MP4")
PHOTO = re.compile(r"PHOTO/(\d{8})/3201001_012345_(\d{14})_(\d{4})\.JPG")
AUDIO = re.compile(r"AUDIO/(\d{8})/3201001_012345_(\d{14})_(\d{4})\.WAV")
LOG = re.compile(r"LOG/3201001_(\d{8})\.LOG")
GPS = re.compile(r"GPS/3201001_(\d{8})\.NMEA")


def camera(tmp_path: Path, **options: object) -> SimulatedCamera:
    options.setdefault("seconds", 2.0)
    options.setdefault("start", START)
    return simulate_camera(tmp_path / "cam", **options)  # type: ignore[arg-type]


def name_time(rel_path: str) -> datetime:
    stamp = re.search(r"_(\d{14})_", rel_path)
    assert stamp is not None
    return datetime.strptime(stamp.group(1), "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI)


def seq(rel_path: str) -> str:
    match = VIDEO.fullmatch(rel_path)
    assert match is not None, rel_path
    return match.group(3)


def videos(cam: SimulatedCamera) -> list[str]:
    """Video paths in recording order (by sequence number)."""
    return sorted((f.rel_path for f in cam.files if f.kind == "video"), key=seq)


@pytest.mark.slow
def test_layout_and_names(tmp_path: Path) -> None:
    cam = camera(tmp_path, clips=6)
    paths = [f.rel_path for f in cam.files]
    by_pattern = {p: [x for x in paths if p.fullmatch(x)] for p in (VIDEO, PHOTO, AUDIO, LOG, GPS)}
    assert len(by_pattern[VIDEO]) == 6
    assert len(by_pattern[PHOTO]) == 2
    assert len(by_pattern[AUDIO]) == len(by_pattern[LOG]) == len(by_pattern[GPS]) == 1
    assert sum(len(v) for v in by_pattern.values()) == len(paths)
    assert [seq(p) for p in videos(cam)] == ["0001", "0002", "0003", "0004", "0005", "0006"]
    important = [p for p in videos(cam) if p.endswith("_IMP.MP4")]
    assert [seq(p) for p in important] == ["0003", "0006"]
    for rel in paths:
        match = re.match(r"\w+/(\d{8})/", rel)
        if match:  # the day folder is the day in the file name
            assert match.group(1) == name_time(rel).strftime("%Y%m%d")
    on_disk = sorted(p.relative_to(cam.root).as_posix() for p in cam.root.rglob("*") if p.is_file())
    assert on_disk == sorted(paths + [IDENTITY_FILE])
    assert {f.kind for f in cam.files} == {"video", "photo", "audio", "other"}


@pytest.mark.slow
def test_clips_are_consecutive_with_one_gap(tmp_path: Path) -> None:
    cam = camera(tmp_path, clips=4, seconds=3.0)
    starts = [name_time(p) for p in videos(cam)]
    steps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
    assert steps[0] == steps[2] == 3.0
    assert 60 <= steps[1] - 3.0 <= 600
    assert starts[0] == START
    for rel in videos(cam):  # real media with the camera's creation_time, mtime at the clip end
        report = check_path(cam.root / rel)
        assert report.ok and report.creation_time == name_time(rel)
        assert (cam.root / rel).stat().st_mtime == (name_time(rel) + timedelta(seconds=3)).timestamp()


@pytest.mark.slow
def test_sha256_and_sizes_match_disk(tmp_path: Path) -> None:
    cam = camera(tmp_path, damaged=1, odd_names=True)
    for f in cam.files:
        data = (cam.root / f.rel_path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f.sha256
        assert len(data) == f.size_bytes


@pytest.mark.slow
def test_identity_file(tmp_path: Path) -> None:
    cam = camera(tmp_path, clips=1, serial="3209999", officer_id="778899", clock_offset_s=12.5, model="DSJ-X")
    raw = (cam.root / IDENTITY_FILE).read_bytes()
    assert "示例执法大队".encode() in raw  # readable, not \\u escapes
    assert json.loads(raw) == {
        "simulated": True, "serial": "3209999", "model": "DSJ-X", "officer_id": "778899",
        "unit": "示例执法大队", "clock_offset_s": 12.5, "camera_tz": "Asia/Shanghai", "vendor": "vaultd-sim",
    }
    assert IDENTITY_FILE not in {f.rel_path for f in cam.files}
    assert (cam.serial, cam.officer_id, cam.model, cam.clock_offset_s) == ("3209999", "778899", "DSJ-X", 12.5)


@pytest.mark.slow
def test_identity_file_appears_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dock folder counts a camera as docked when its identity file appears: written in
    place, a watcher could read it empty (``./run demo`` once failed so: JSONDecodeError). It
    is written under another name and renamed into place, and nothing is left beside it."""
    written: list[str] = []
    real_write_text = Path.write_text

    def spy(self: Path, *args: object, **kwargs: object) -> int:
        written.append(self.name)
        return real_write_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", spy)
    cam = camera(tmp_path, clips=1)
    assert IDENTITY_FILE not in written
    assert json.loads((cam.root / IDENTITY_FILE).read_bytes())["serial"] == cam.serial
    assert not [p.name for p in cam.root.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_damaged_clips_are_cut_both_ways(tmp_path: Path) -> None:
    cam = camera(tmp_path, clips=4, damaged=2)
    damaged = [f for f in cam.files if f.damaged]
    assert len(damaged) == 2 and all(f.kind == "video" for f in damaged)
    reports = {f.rel_path: check_path(cam.root / f.rel_path) for f in cam.files if f.kind == "video"}
    for f in cam.files:
        if f.kind == "video":
            assert reports[f.rel_path].ok is not f.damaged
    lost_moov = ["no 'moov' box" in reports[f.rel_path].problems for f in damaged]
    assert sorted(lost_moov) == [False, True]  # one faststart cut, one tail-moov cut
    log_text = next(cam.root.glob("LOG/*.LOG")).read_text()
    assert log_text.count("POWER LOST") == 2


@pytest.mark.slow
@pytest.mark.parametrize("offset_s", [3600.0, -125.0])
def test_clock_offset_in_names_tags_log_and_mtimes(tmp_path: Path, offset_s: float) -> None:
    cam = camera(tmp_path, clips=2, clock_offset_s=offset_s)
    offset = timedelta(seconds=offset_s)
    first = videos(cam)[0]
    assert name_time(first) == START + offset
    assert check_path(cam.root / first).creation_time == START + offset
    assert (cam.root / first).stat().st_mtime == (START + offset + timedelta(seconds=2)).timestamp()
    first_line = next(cam.root.glob("LOG/*.LOG")).read_text().splitlines()[0]
    power_on = datetime.strptime(first_line[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    assert power_on == START + offset - timedelta(seconds=20)
    # the GPS receiver keeps satellite time: true UTC, whatever the camera clock says
    first_fix = next(cam.root.glob("GPS/*.NMEA")).read_text().splitlines()[0]
    assert first_fix.startswith("$GPRMC,020000.00,A,") and ",010524," in first_fix


@pytest.mark.slow
def test_camera_clock_behind_crosses_midnight(tmp_path: Path) -> None:
    start = datetime(2024, 5, 1, 16, 0, 30, tzinfo=timezone.utc)  # 00:00:30 on 2 May in Shanghai
    cam = camera(tmp_path, clips=1, start=start, clock_offset_s=-60.0)
    (video,) = videos(cam)
    assert video.startswith("DCIM/20240501/3201001_012345_20240501235930_0001")


@pytest.mark.slow
def test_default_start_is_two_hours_ago(tmp_path: Path) -> None:
    before = datetime.now(timezone.utc)
    cam = simulate_camera(tmp_path / "cam", clips=1, seconds=1.0)
    started = name_time(videos(cam)[0])
    assert timedelta(hours=1, minutes=59) <= before - started <= timedelta(hours=2, minutes=1)


@pytest.mark.slow
def test_odd_names(tmp_path: Path) -> None:
    seen: list[str] = []
    cam = camera(tmp_path, clips=1, odd_names=True, progress=seen.append)
    odd = [f.rel_path.removeprefix("DCIM/ODD/") for f in cam.files if f.rel_path.startswith("DCIM/ODD/")]
    assert len(odd) == 4
    assert any("\u202e" in name for name in odd)
    assert any("\x07" in name for name in odd)
    assert any("\\" in name for name in odd)
    assert any(unicodedata.normalize("NFC", name) != name for name in odd)
    assert sorted(seen) == sorted(f.rel_path for f in cam.files)
    for name in odd:
        assert os.path.isfile(cam.root / "DCIM" / "ODD" / name)


@pytest.mark.slow
def test_odd_name_files_are_recordings_of_their_own(tmp_path: Path) -> None:
    cam = camera(tmp_path, clips=1, odd_names=True)
    odd = [f for f in cam.files if f.rel_path.startswith("DCIM/ODD/")]
    # no odd-name file has the content of any other file: ingest keeps each, under its odd name
    assert len({f.sha256 for f in cam.files}) == len(cam.files)
    assert sorted(f.kind for f in odd) == ["other", "other", "photo", "photo"]
    photos = [f for f in cam.files if f.kind == "photo" and f not in odd]
    device_log = next(f for f in cam.files if LOG.fullmatch(f.rel_path))
    log_bytes = (cam.root / device_log.rel_path).read_bytes()
    for f in odd:
        path = cam.root / f.rel_path
        data = path.read_bytes()
        if f.kind == "photo":  # the same picture, still a whole JPEG, with a comment of its own
            report = check_path(path)
            assert report.kind == "jpeg" and report.ok, report.problems
            assert (report.width, report.height) == (640, 360)
            assert data[:4] == b"\xff\xd8\xff\xe0"  # JFIF APP0 still leads
            comment = data.index(b"\xff\xfe")
            length = int.from_bytes(data[comment + 2: comment + 4], "big")
            without = data[:comment] + data[comment + 2 + length:]
            assert hashlib.sha256(without).hexdigest() in {p.sha256 for p in photos}
            assert path.stat().st_mtime in {(cam.root / p.rel_path).stat().st_mtime for p in photos}
        else:  # the device log plus one line in the log's own format
            assert data.startswith(log_bytes)
            extra = data[len(log_bytes):].decode("ascii")
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d NOTE [ -~]+\r\n", extra), extra
            assert extra[:19] == log_bytes.decode("ascii").splitlines()[-1][:19]  # stamped at power off
            assert path.stat().st_mtime == (cam.root / device_log.rel_path).stat().st_mtime


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"clips": 0}, "clips"),
        ({"seconds": 0.0}, "seconds"),
        ({"seconds": -1.0}, "seconds"),
        ({"seconds": float("nan")}, "seconds"),
        ({"damaged": 5, "clips": 4}, "damaged"),
        ({"damaged": -1}, "damaged"),
        ({"serial": "../x"}, "serial"),
        ({"officer_id": ""}, "officer_id"),
        ({"start": datetime(2024, 5, 1, 2, 0)}, "start"),
        ({"clock_offset_s": float("inf")}, "clock_offset_s"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, object], named: str) -> None:
    with pytest.raises(UsageError) as caught:
        simulate_camera(tmp_path / "cam", **options)  # type: ignore[arg-type]
    assert named in str(caught.value)
    assert not (tmp_path / "cam").exists()


def test_non_empty_or_file_destination_is_refused(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(UsageError) as caught:
        simulate_camera(tmp_path)
    assert str(tmp_path) in str(caught.value)
    assert "empty or new folder" in str(caught.value)
    with pytest.raises(UsageError):
        simulate_camera(tmp_path / "keep.txt")
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_empty_existing_destination_is_used(tmp_path: Path) -> None:
    cam = simulate_camera(tmp_path, clips=1, seconds=1.0, start=START)
    assert cam.root == tmp_path
    assert (tmp_path / IDENTITY_FILE).is_file()
