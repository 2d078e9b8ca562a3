"""Deciding what a recording is and when it was made. Pure: no I/O.

Inputs are what ffprobe, the box walker, the file name and the camera file's
times say; the output says which source was trusted (``time_source``) and
flags what cannot be trusted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vaultd.config import TimeConfig
from vaultd.model import CameraIdentity, MediaType, TimeSource

_EXT_TYPES = {
    MediaType.VIDEO: {"mp4", "mov", "avi", "mkv", "ts", "3gp", "m4v", "mts", "asf", "wmv", "h264", "h265"},
    MediaType.AUDIO: {"wav", "m4a", "aac", "mp3", "amr", "ogg", "opus", "flac", "wma"},
    MediaType.PHOTO: {"jpg", "jpeg", "png", "heic", "bmp", "tif", "tiff", "webp"},
}
_AGREE = timedelta(seconds=120)


def media_type_for(display_name: str) -> MediaType:
    ext = display_name.rsplit(".", 1)[-1].lower() if "." in display_name else ""
    for media_type, exts in _EXT_TYPES.items():
        if ext in exts:
            return media_type
    return MediaType.OTHER


@dataclass(frozen=True)
class TimeEvidence:
    """What each source claims, as read (camera clock, uncorrected)."""

    container: datetime | None  # aware; MP4 creation_time
    name_local: datetime | None  # naive, camera-local, from the file name
    mtime: datetime | None  # aware; the camera file's modification time
    duration_s: float | None


@dataclass(frozen=True)
class TimeDecision:
    start: datetime | None
    end: datetime | None
    source: TimeSource
    clock_offset_s: float | None
    flags: tuple[str, ...]


def decide_times(ev: TimeEvidence, media: MediaType, identity: CameraIdentity,
                 cfg: TimeConfig, now: datetime) -> TimeDecision:
    tz = _zone(identity.camera_tz, cfg.camera_tz)
    name_utc = ev.name_local.replace(tzinfo=tz).astimezone(timezone.utc) if ev.name_local else None
    flags: list[str] = []
    start, source = _pick_start(ev.container, name_utc, ev.mtime, tz, flags)
    end = _end(start, ev, media)
    offset = identity.clock_offset_s
    if offset is not None and start is not None:
        shift = timedelta(seconds=offset)
        start, end = start - shift, (end - shift if end else None)
        if abs(offset) > cfg.max_clock_skew_s:
            flags.append("clock-skewed")
    elif offset is None:
        flags.append("clock-offset-unknown")
    flags.extend(_plausibility(start, cfg, now))
    return TimeDecision(start, end, source, offset, tuple(dict.fromkeys(flags)))


def _pick_start(container: datetime | None, name_utc: datetime | None, mtime: datetime | None,
                tz: ZoneInfo, flags: list[str]) -> tuple[datetime | None, TimeSource]:
    if container is not None and _plausible_year(container):
        if name_utc is None or abs(container - name_utc) <= _AGREE:
            return container, TimeSource.CONTAINER
        local_as_utc = container.replace(tzinfo=None).replace(tzinfo=tz).astimezone(timezone.utc)
        if abs(local_as_utc - name_utc) <= _AGREE:
            flags.append("container-time-was-local")
            return name_utc, TimeSource.FILENAME
        flags.append("time-sources-disagree")
        return container, TimeSource.CONTAINER
    if name_utc is not None:
        return name_utc, TimeSource.FILENAME
    return mtime, TimeSource.FILE_MTIME


def _end(start: datetime | None, ev: TimeEvidence, media: MediaType) -> datetime | None:
    if start is None:
        return None
    if ev.duration_s is not None and ev.duration_s >= 0 and media in (MediaType.VIDEO, MediaType.AUDIO):
        return start + timedelta(seconds=ev.duration_s)
    if media is MediaType.OTHER and ev.mtime is not None and ev.mtime >= start:
        return ev.mtime
    return start


def _plausible_year(t: datetime) -> bool:
    return t.year >= 2000


def _plausibility(start: datetime | None, cfg: TimeConfig, now: datetime) -> list[str]:
    if start is None:
        return ["no-time"]
    flags = []
    if start.date() < date.fromisoformat(cfg.earliest_plausible):
        flags.append("before-earliest-plausible")
    if start > now + timedelta(seconds=cfg.max_future_s):
        flags.append("in-future")
    return flags


def _zone(preferred: str | None, fallback: str) -> ZoneInfo:
    for name in (preferred, fallback):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def deadline(end: datetime | None, hours: float) -> datetime | None:
    return end + timedelta(hours=hours) if end is not None else None


# -- R1: the ingest deadline, and trips away from the station that move it ------------

class Trip(Protocol):
    """A recorded trip away from the station (officer's or device's)."""

    @property
    def id(self) -> int: ...
    @property
    def officer_number(self) -> str | None: ...
    @property
    def device_serial(self) -> str | None: ...
    @property
    def left_at(self) -> datetime: ...
    @property
    def returned_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class Deadline:
    at: datetime | None  # None: no end time, or the trip is still open
    trip_id: int | None = None  # the trip that moved it
    away: bool = False  # the trip that covers it has not ended


def whose(trip: Trip, officer: str | None, serial: str | None) -> bool:
    """The trip is the officer's or the device's."""
    return ((trip.officer_number is not None and trip.officer_number == officer)
            or (trip.device_serial is not None and trip.device_serial == serial))


def covers(trip: Trip, officer: str | None, serial: str | None, when: datetime) -> bool:
    """The officer or device was away on ``trip`` at ``when``."""
    return (whose(trip, officer, serial) and trip.left_at <= when
            and (trip.returned_at is None or when <= trip.returned_at))


def ingest_deadline(end: datetime | None, officer: str | None, serial: str | None,
                    trips: Iterable[Trip], hours: float) -> Deadline:
    """R1: end + hours, or the latest covering trip's return + hours."""
    if end is None:
        return Deadline(None)
    best = Deadline(deadline(end, hours))
    for trip in trips:
        if not covers(trip, officer, serial, end):
            continue
        if trip.returned_at is None:
            return Deadline(None, trip.id, away=True)
        moved = trip.returned_at + timedelta(hours=hours)
        if best.at is not None and moved > best.at:
            best = Deadline(moved, trip.id)
    return best


def making_method(media: MediaType, identity: CameraIdentity) -> str:
    """R3 making method, bilingual, filled from the device."""
    what = {
        MediaType.VIDEO: "执法记录仪录像 / body-worn camera video recording",
        MediaType.AUDIO: "执法记录仪录音 / body-worn camera audio recording",
        MediaType.PHOTO: "执法记录仪拍照 / body-worn camera photograph",
        MediaType.OTHER: "执法记录仪设备文件 / body-worn camera device file",
    }[media]
    device = ", ".join(
        p for p in (identity.model, f"serial {identity.serial}" if identity.serial else None) if p
    )
    return f"{what} ({device})" if device else what
