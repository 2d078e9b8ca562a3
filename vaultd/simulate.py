"""A simulated body camera: a storage tree laid out like a real Chinese camera.

``simulate_camera`` writes real media (H.264 + AAC MP4 clips, JPEG photos, a
WAV recording) plus a device log and a GPS track, with the camera's clock
running ``clock_offset_s`` ahead of true time. Everything the camera stamps
(file names in Asia/Shanghai, creation_time tags, log lines, file mtimes)
uses camera time; the GPS track carries satellite UTC (true time), as a real
GNSS receiver would, which lets later work estimate the clock offset.

Used by ``vaultd simulate camera DIR`` and by the tests.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import re
import shutil
import struct
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vaultd import media
from vaultd.errors import UsageError
from vaultd.i18n import _

log = logging.getLogger(__name__)

__all__ = ["CAMERA_TZ", "IDENTITY_FILE", "SimulatedCamera", "SimulatedFile", "simulate_camera"]

IDENTITY_FILE = "vaultd-camera.json"
CAMERA_TZ = "Asia/Shanghai"

_GAP_S = 180.0            # the interruption after the first half of the clips
_CUT_FRACTION = 0.6       # damaged clips keep this share of their bytes
_AUDIO_MAX_S = 10.0
_MAX_WORKERS = 4         # ffmpeg processes at once
_PHOTO_SIZE = (640, 360)
_ID_PATTERN = re.compile(r"[0-9A-Za-z]{1,32}")
_GPS_ORIGIN = (41.1200, 122.0700)   # Panjin, Liaoning (degrees N, E)


@dataclass(frozen=True)
class SimulatedFile:
    rel_path: str
    kind: str
    damaged: bool
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class SimulatedCamera:
    root: Path
    serial: str
    officer_id: str
    model: str
    clock_offset_s: float
    files: tuple[SimulatedFile, ...]


@dataclass(frozen=True)
class _Clip:
    seq: int
    start: datetime          # true time, UTC
    seconds: float
    important: bool
    damaged: bool
    faststart: bool

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class _Written:
    rel_path: str
    kind: str
    damaged: bool = False


@dataclass(frozen=True)
class _Setup:
    root: Path
    serial: str
    officer_id: str
    model: str
    offset: timedelta
    zone: tzinfo
    progress: Callable[[str], None] | None

    def camera_time(self, true_time: datetime) -> datetime:
        """What the camera's clock shows at ``true_time``, in its local zone."""
        return (true_time + self.offset).astimezone(self.zone)

    def stamp(self, true_time: datetime) -> str:
        return self.camera_time(true_time).strftime("%Y%m%d%H%M%S")

    def day(self, true_time: datetime) -> str:
        return self.camera_time(true_time).strftime("%Y%m%d")

    def finish(self, rel_path: str, true_mtime: datetime) -> None:
        """Set the file's mtime to camera time (the clip end, the photo moment)."""
        stamp = self.camera_time(true_mtime).timestamp()
        os.utime(self.root / rel_path, (stamp, stamp))

    def report(self, written: _Written) -> _Written:
        if self.progress is not None:
            self.progress(written.rel_path)
        return written


def simulate_camera(
    dest: Path,
    *,
    serial: str = "3201001",
    officer_id: str = "012345",
    clips: int = 4,
    seconds: float = 10.0,
    start: datetime | None = None,
    clock_offset_s: float = 0.0,
    damaged: int = 0,
    odd_names: bool = False,
    model: str = "DSJ-SIM1",
    unit: str = "示例执法大队",
    progress: Callable[[str], None] | None = None,
) -> SimulatedCamera:
    """Write a simulated camera tree under ``dest`` (new or empty) and list what was written."""
    _check_options(dest, serial=serial, officer_id=officer_id, clips=clips, seconds=seconds,
                   start=start, clock_offset_s=clock_offset_s, damaged=damaged, model=model)
    if start is None:
        start = (datetime.now(timezone.utc) - timedelta(hours=2)).replace(microsecond=0)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    setup = _Setup(dest, serial, officer_id, model, timedelta(seconds=clock_offset_s), _camera_zone(), progress)
    plan = _plan_clips(start.astimezone(timezone.utc), clips, seconds, damaged)
    photo_times = [plan[0].start + timedelta(seconds=seconds / 2), plan[-1].end + timedelta(seconds=20)]
    audio_start = plan[-1].end + timedelta(seconds=60)
    audio_s = min(seconds, _AUDIO_MAX_S)
    jobs: list[Callable[[], _Written]] = [functools.partial(_write_clip, setup, clip) for clip in plan]
    jobs += [functools.partial(_write_photo, setup, seq, when) for seq, when in enumerate(photo_times, start=1)]
    jobs.append(functools.partial(_write_audio, setup, audio_start, audio_s))
    # each job is one ffmpeg process; running a few at once keeps both cores of a small box busy
    with ThreadPoolExecutor(max_workers=max(1, min(_MAX_WORKERS, os.cpu_count() or 1))) as pool:
        written = [setup.report(done) for done in pool.map(lambda job: job(), jobs)]
    power_off = audio_start + timedelta(seconds=audio_s + 10)
    written.append(setup.report(_write_log(setup, plan, photo_times, (audio_start, audio_s), power_off)))
    written.append(setup.report(_write_gps(setup, plan)))
    if odd_names:
        written += [setup.report(w) for w in _write_odd_names(setup, written, power_off)]
    _write_identity(setup, unit, clock_offset_s)
    files = tuple(sorted((_describe(dest, w) for w in written), key=lambda f: f.rel_path))
    log.info("simulated camera %s with %d files under %s", serial, len(files), dest)
    return SimulatedCamera(dest, serial, officer_id, model, clock_offset_s, files)


def _check_options(
    dest: Path, *, serial: str, officer_id: str, clips: int, seconds: float, start: datetime | None,
    clock_offset_s: float, damaged: int, model: str,
) -> None:
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(_("%(path)s exists and is not an empty folder") % {"path": dest},
                         hint=_("choose an empty or new folder"))
    for option, value in (("serial", serial), ("officer_id", officer_id)):
        if not _ID_PATTERN.fullmatch(value):
            raise UsageError(_("%(option)s must be 1 to 32 letters or digits, got %(value)r")
                             % {"option": option, "value": value})
    if not model or not model.isprintable():
        raise UsageError(_("model must be printable text, got %(value)r") % {"value": model})
    if clips < 1:
        raise UsageError(_("clips must be at least 1, got %(n)d") % {"n": clips})
    if not (math.isfinite(seconds) and seconds > 0):
        raise UsageError(_("seconds must be greater than 0, got %(s)s") % {"s": seconds})
    if not math.isfinite(clock_offset_s):
        raise UsageError(_("clock_offset_s must be a finite number of seconds"))
    if damaged < 0 or damaged > clips:
        raise UsageError(_("damaged must be between 0 and clips (%(clips)d), got %(n)d")
                         % {"clips": clips, "n": damaged})
    if start is not None and start.utcoffset() is None:
        raise UsageError(_("start must include a time zone, got %(start)s") % {"start": start.isoformat()})


def _camera_zone() -> tzinfo:
    try:
        return ZoneInfo(CAMERA_TZ)
    except ZoneInfoNotFoundError:
        # no tzdata: China has kept UTC+8 without DST since 1991
        return timezone(timedelta(hours=8), CAMERA_TZ)


def _plan_clips(start: datetime, clips: int, seconds: float, damaged: int) -> list[_Clip]:
    """Consecutive clips with one gap after the first half; the last ``damaged`` clips are cut."""
    gap_before = (clips + 1) // 2 if clips >= 2 else -1
    first_damaged = clips - damaged
    plan: list[_Clip] = []
    at = start
    for index in range(clips):
        if index == gap_before:
            at += timedelta(seconds=_GAP_S)
        is_damaged = index >= first_damaged
        # healthy clips alternate layouts too; damaged ones alternate faststart / tail moov
        faststart = (index - first_damaged) % 2 == 0 if is_damaged else index % 2 == 0
        plan.append(_Clip(index + 1, at, seconds, index % 3 == 2, is_damaged, faststart))
        at += timedelta(seconds=seconds)
    return plan


# --------------------------------------------------------------------------
# the files


def _media_name(setup: _Setup, true_time: datetime, seq: int, suffix: str) -> str:
    return f"{setup.serial}_{setup.officer_id}_{setup.stamp(true_time)}_{seq:04d}{suffix}"


def _write_clip(setup: _Setup, clip: _Clip) -> _Written:
    name = _media_name(setup, clip.start, clip.seq, "_IMP.MP4" if clip.important else ".MP4")
    rel = f"DCIM/{setup.day(clip.start)}/{name}"
    path = setup.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    shown = setup.camera_time(clip.start)
    label = f"{setup.serial} {setup.officer_id} {shown:%Y-%m-%d %H:%M:%S} #{clip.seq:04d}"
    media.make_video(path, seconds=clip.seconds, creation_time=shown.astimezone(timezone.utc),
                     faststart=clip.faststart, label=label)
    if clip.damaged:
        os.truncate(path, int(path.stat().st_size * _CUT_FRACTION))
    setup.finish(rel, clip.end)
    return _Written(rel, "video", clip.damaged)


def _write_photo(setup: _Setup, seq: int, when: datetime) -> _Written:
    rel = f"PHOTO/{setup.day(when)}/{_media_name(setup, when, seq, '.JPG')}"
    path = setup.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = _PHOTO_SIZE
    media.make_photo(path, width=width, height=height, when=setup.camera_time(when))
    setup.finish(rel, when)
    return _Written(rel, "photo")


def _write_audio(setup: _Setup, start: datetime, seconds: float) -> _Written:
    rel = f"AUDIO/{setup.day(start)}/{_media_name(setup, start, 1, '.WAV')}"
    path = setup.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    media.make_audio(path, seconds=seconds, creation_time=setup.camera_time(start).astimezone(timezone.utc))
    setup.finish(rel, start + timedelta(seconds=seconds))
    return _Written(rel, "audio")


def _write_text(setup: _Setup, rel: str, lines: list[str], true_mtime: datetime) -> _Written:
    path = setup.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(line + "\r\n" for line in lines).encode("ascii"))
    setup.finish(rel, true_mtime)
    return _Written(rel, "other")


def _write_log(
    setup: _Setup, plan: list[_Clip], photo_times: list[datetime],
    audio: tuple[datetime, float], power_off: datetime,
) -> _Written:
    """The device log, in the camera's local clock; a damaged clip ends in a power loss."""
    events: list[tuple[datetime, str]] = []
    power_on = plan[0].start - timedelta(seconds=20)
    battery = 96
    events.append((power_on, f"POWER ON battery={battery}% model={setup.model} serial={setup.serial} "
                             f"officer={setup.officer_id}"))
    for clip in plan:
        name = _media_name(setup, clip.start, clip.seq, "_IMP.MP4" if clip.important else ".MP4")
        events.append((clip.start, f"REC START {name}"))
        if clip.damaged:
            died = clip.start + timedelta(seconds=clip.seconds * _CUT_FRACTION)
            events.append((died, "BATTERY 1% LOW"))
            events.append((died, "POWER LOST"))
            # back on (charger) before the next recording starts
            events.append((clip.start + timedelta(seconds=clip.seconds * 0.8), "POWER ON battery=35% (external power)"))
            battery = 35
            continue
        battery = max(2, battery - 1)
        events.append((clip.end, f"REC STOP {name} duration={clip.seconds:g}s"))
        events.append((clip.end, f"BATTERY {battery}%"))
    for seq, when in enumerate(photo_times, start=1):
        events.append((when, f"PHOTO {_media_name(setup, when, seq, '.JPG')}"))
    audio_start, audio_s = audio
    audio_name = _media_name(setup, audio_start, 1, ".WAV")
    events.append((audio_start, f"AUDIO START {audio_name}"))
    events.append((audio_start + timedelta(seconds=audio_s), f"AUDIO STOP {audio_name}"))
    events.append((power_off, f"POWER OFF battery={battery}%"))
    events.sort(key=lambda event: event[0])
    lines = [f"{setup.camera_time(when):%Y-%m-%d %H:%M:%S} {text}" for when, text in events]
    return _write_text(setup, f"LOG/{setup.serial}_{setup.day(power_on)}.LOG", lines, power_off)


def _write_gps(setup: _Setup, plan: list[_Clip]) -> _Written:
    """$GPRMC fixes at each clip's start and end, stamped with satellite (true) UTC."""
    fixes = sorted({t for clip in plan for t in (clip.start, clip.end)})
    lines = [_gprmc(when, index) for index, when in enumerate(fixes)]
    rel = f"GPS/{setup.serial}_{setup.day(plan[0].start)}.NMEA"
    return _write_text(setup, rel, lines, fixes[-1])


def _gprmc(when: datetime, step: int) -> str:
    utc = when.astimezone(timezone.utc)
    lat, lon = _GPS_ORIGIN[0] + step * 0.0001, _GPS_ORIGIN[1] + step * 0.0001
    lat_text = f"{int(lat):02d}{(lat % 1) * 60:07.4f}"
    lon_text = f"{int(lon):03d}{(lon % 1) * 60:07.4f}"
    body = (f"GPRMC,{utc:%H%M%S}.00,A,{lat_text},N,{lon_text},E,0.8,45.0,{utc:%d%m%y},,,A")
    checksum = 0
    for char in body.encode("ascii"):
        checksum ^= char
    return f"${body}*{checksum:02X}"


def _write_odd_names(setup: _Setup, written: list[_Written], power_off: datetime) -> list[_Written]:
    """Hostile-but-legal names: right-to-left override, NFD text, a control character, a backslash.

    Each file is a copy of a photo or of the device log made unique (a JPEG
    comment, one more log line), so after ingest each is a recording of its
    own, known by its odd name, not a duplicate sighting of its source.
    """
    photo = next(w for w in written if w.kind == "photo")
    device_log = next(w for w in written if w.rel_path.startswith("LOG/"))
    odd = [
        (f"{setup.serial}_\u202e4PM.JPG", photo),
        (unicodedata.normalize("NFD", "现场照片_café_Ångström.JPG"), photo),
        ("bell\x07.LOG", device_log),
        ("..\\..\\evil.LOG", device_log),
    ]
    (setup.root / "DCIM" / "ODD").mkdir(parents=True, exist_ok=True)
    out: list[_Written] = []
    for number, (name, source) in enumerate(odd, start=1):
        rel = f"DCIM/ODD/{name}"
        data = (setup.root / source.rel_path).read_bytes()
        note = f"vaultd-sim copy {number} of {source.rel_path}"
        if source.kind == "photo":
            data = _with_jpeg_comment(data, note)
        else:
            data += f"{setup.camera_time(power_off):%Y-%m-%d %H:%M:%S} NOTE {note}\r\n".encode("ascii")
        (setup.root / rel).write_bytes(data)
        shutil.copystat(setup.root / source.rel_path, setup.root / rel)  # the source's mtime
        out.append(_Written(rel, source.kind))
    return out


def _with_jpeg_comment(jpeg: bytes, text: str) -> bytes:
    """Insert a COM segment after SOI and the APPn segments (JFIF, Exif) that readers expect first."""
    payload = text.encode("ascii")
    comment = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
    at = 2
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF and 0xE0 <= jpeg[at + 1] <= 0xEF:
        at += 2 + struct.unpack(">H", jpeg[at + 2: at + 4])[0]
    return jpeg[:at] + comment + jpeg[at:]


def _write_identity(setup: _Setup, unit: str, clock_offset_s: float) -> None:
    identity = {
        "simulated": True,
        "serial": setup.serial,
        "model": setup.model,
        "officer_id": setup.officer_id,
        "unit": unit,
        "clock_offset_s": clock_offset_s,
        "camera_tz": CAMERA_TZ,
        "vendor": "vaultd-sim",
    }
    text = json.dumps(identity, ensure_ascii=False, indent=2) + "\n"
    # written under a hidden name, then renamed: a dock folder watcher that sees the
    # identity file appear must never read it empty or half written
    tmp = setup.root / f".{IDENTITY_FILE}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, setup.root / IDENTITY_FILE)


def _describe(root: Path, written: _Written) -> SimulatedFile:
    digest = hashlib.sha256()
    size = 0
    with open(root / written.rel_path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return SimulatedFile(written.rel_path, written.kind, written.damaged, digest.hexdigest(), size)
