"""Value types shared across vaultd. No I/O here."""

from __future__ import annotations

from typing import Protocol

import enum
import getpass
from dataclasses import dataclass, field
from datetime import datetime


class MediaType(str, enum.Enum):
    VIDEO = "video"
    AUDIO = "audio"
    PHOTO = "photo"
    OTHER = "other"


class TimeSource(str, enum.Enum):
    """Where a recording's start time came from, most trusted first."""

    CONTAINER = "container"  # creation_time in the MP4 header
    FILENAME = "filename"  # timestamp in the camera's file name
    FILE_MTIME = "file_mtime"  # the file's modification time on the camera


class Outcome(str, enum.Enum):
    """What ingest did with one file found on a camera."""

    NEW = "new"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    FAILED = "failed"


@dataclass(frozen=True)
class Actor:
    """Who does something: a local Unix user, an API user, or a service."""

    kind: str  # "local" | "user" | "service"
    name: str
    via: str = "cli"  # "cli" | "api" | "daemon"

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"

    @staticmethod
    def local(via: str = "cli") -> "Actor":
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return Actor(kind="local", name=user, via=via)


@dataclass(frozen=True)
class CameraIdentity:
    """What is known about the docked camera (from its driver or simulation)."""

    serial: str | None = None
    model: str | None = None
    officer_id: str | None = None
    unit: str | None = None
    vendor: str | None = None
    clock_offset_s: float | None = None  # camera clock minus station clock
    camera_tz: str | None = None
    simulated: bool = False
    officer_name: str | None = None  # the user name the camera reports (e.g. 张三)
    unit_id: str | None = None  # the unit number the camera reports (单位编号)
    device_id: str | None = None  # a vendor device/ID code, where the protocol has one


@dataclass(frozen=True)
class NameInfo:
    """What a camera file name says (parsed with the configured patterns)."""

    serial: str | None = None
    officer_id: str | None = None
    local_time: datetime | None = None  # naive, camera-local
    seq: int | None = None
    important: bool = False


@dataclass(frozen=True)
class SafeName:
    """A device-supplied file name made safe for display, raw bytes kept."""

    display: str
    raw: bytes
    oddities: tuple[str, ...] = ()


LEVELS = ("normal", "confidential", "secret")  # R9 confidentiality, lowest first


@dataclass(frozen=True)
class Recording:
    """One original in the vault, as the catalog describes it."""

    id: str
    sha256: str
    size_bytes: int
    original_name: str
    original_name_raw: bytes
    name_oddities: tuple[str, ...]
    source_path: str
    media_type: MediaType
    device_serial: str | None
    device_model: str | None
    officer_id: str | None
    recorded_start: datetime | None
    recorded_end: datetime | None
    time_source: TimeSource
    clock_offset_s: float | None
    time_flags: tuple[str, ...]
    ingested_at: datetime
    ingest_deadline: datetime | None
    on_time: bool | None
    duration_s: float | None
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    damaged: bool
    damage_reasons: tuple[str, ...]
    important: bool
    making_method: str
    maker: str | None
    ingest_session: str
    extra: dict[str, object] = field(default_factory=dict)
    unit: str | None = None  # the accountable officer's unit when ingested
    confidentiality: str = "normal"  # R9: normal | confidential | secret (the recording's own level)
    case_confidentiality: str | None = None  # R9: the highest level of the cases it is linked to, if any

    @property
    def effective_confidentiality(self) -> str:
        """R9: the highest of its own level and its cases' (what access control applies)."""
        levels = [self.confidentiality, *([self.case_confidentiality] if self.case_confidentiality else [])]
        return max(levels, key=lambda lv: LEVELS.index(lv) if lv in LEVELS else len(LEVELS))


class Progress(Protocol):
    """Progress of long work (ingest, export): bytes and files, for a bar or a status line."""

    def begin(self, total_files: int, total_bytes: int) -> None: ...
    def file(self, display_path: str) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def end(self) -> None: ...
