"""The one surface camera drivers import.

A driver is a plug-in found through the ``vaultd.drivers`` entry-point group
(see ``vaultd.registry``). It declares what it matches as data (a ``Match``),
and the registry picks the most specific driver for each docked device
(``specificity``). Drivers import this module and nothing else of vaultd;
the value types and errors they need are re-exported here.

Everything in this module is pure: no I/O.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from vaultd.errors import DeviceGoneError, DriverError
from vaultd.model import CameraIdentity

__all__ = [
    "CameraIdentity", "ClockReading", "DeviceGoneError", "DeviceInfo", "Driver",
    "DriverError", "Match", "PowerState", "UsbId", "finite_seconds", "specificity",
]

# Weights of the criteria a Match can declare. Powers of two, so a match on a
# more significant criterion always beats any combination of weaker ones:
# USB id + serial (12) > USB id (8) > serial alone (4) > identity file (2) > fs label (1).
_W_USB = 8
_W_SERIAL = 4
_W_IDENTITY_FILE = 2
_W_FS_LABEL = 1

_MAX_PATTERN_CHARS = 512


@dataclass(frozen=True)
class UsbId:
    """A USB vendor:product id."""

    vendor: int
    product: int

    def __post_init__(self) -> None:
        for what, value in (("vendor", self.vendor), ("product", self.product)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
                raise ValueError(f"USB {what} id must be an integer 0..0xFFFF, not {value!r}")

    def __str__(self) -> str:
        return f"{self.vendor:04x}:{self.product:04x}"

    @classmethod
    def parse(cls, text: str) -> UsbId:
        """``"4255:0001"`` (hex, as lsusb prints it) -> UsbId."""
        vendor, sep, product = text.strip().partition(":")
        if not sep or not vendor or not product:
            raise ValueError(f"USB id must look like 'vvvv:pppp' (hex), not {text!r}")
        try:
            return cls(int(vendor, 16), int(product, 16))
        except ValueError as exc:
            raise ValueError(f"USB id must look like 'vvvv:pppp' (hex), not {text!r}") from exc


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _check_pattern(what: str, pattern: str | None) -> None:
    if pattern is None:
        return
    if not isinstance(pattern, str) or len(pattern) > _MAX_PATTERN_CHARS:
        raise ValueError(f"{what} must be a regular expression of at most {_MAX_PATTERN_CHARS} characters")
    try:
        _compiled(pattern)
    except re.error as exc:
        raise ValueError(f"{what} is not a valid regular expression: {exc}") from exc


@dataclass(frozen=True)
class Match:
    """What a driver (or one configured camera model) matches, as data.

    Every criterion that is declared must hold; a Match that declares nothing
    matches nothing. Patterns are regular expressions matched against the
    whole value (``re.fullmatch``).
    """

    usb: tuple[UsbId, ...] = ()
    serial_pattern: str | None = None  # against the USB serial
    fs_label_pattern: str | None = None  # against the filesystem label
    identity_file: str | None = None  # a file name at the filesystem root

    def __post_init__(self) -> None:
        usb = tuple(self.usb)
        if not all(isinstance(u, UsbId) for u in usb):
            raise ValueError("Match.usb must hold UsbId values")
        object.__setattr__(self, "usb", usb)
        _check_pattern("serial_pattern", self.serial_pattern)
        _check_pattern("fs_label_pattern", self.fs_label_pattern)
        name = self.identity_file
        if name is not None and (not isinstance(name, str) or not name or name in (".", "..")
                                 or "/" in name or "\\" in name or "\0" in name):
            raise ValueError(f"identity_file must be a plain file name, not {name!r}")

    @property
    def empty(self) -> bool:
        return not self.usb and self.serial_pattern is None and self.fs_label_pattern is None \
            and self.identity_file is None


@dataclass(frozen=True)
class DeviceInfo:
    """What the dock saw of one device. All of it comes from the device: data, not trust."""

    usb: UsbId | None = None
    usb_serial: str | None = None
    port: str | None = None  # udev ID_PATH: the dock port
    fs_label: str | None = None
    fs_type: str | None = None
    mount_root: Path | None = None
    root_names: frozenset[str] = field(default_factory=frozenset)  # names at the fs root


@dataclass(frozen=True)
class ClockReading:
    """The camera's clock read against the station's, both timezone-aware."""

    camera_time: datetime
    station_time: datetime

    def __post_init__(self) -> None:
        if self.camera_time.tzinfo is None or self.station_time.tzinfo is None:
            raise ValueError("ClockReading times must be timezone-aware")

    @property
    def offset_s(self) -> float:
        """Camera clock minus station clock, in seconds (positive: camera runs ahead)."""
        return (self.camera_time - self.station_time).total_seconds()


@dataclass(frozen=True)
class PowerState:
    """Battery and storage state, where the driver can read them."""

    battery_percent: int | None = None
    storage_free_bytes: int | None = None
    storage_total_bytes: int | None = None


@runtime_checkable
class Driver(Protocol):
    """A camera driver. The registry wraps every call into ``DriverError``.

    A driver that serves several configured models may also expose
    ``models: Sequence[Match]``; the registry then considers ``match`` and
    each of ``models``, and the most specific one counts.
    """

    name: str
    match: Match

    def identify(self, dev: DeviceInfo) -> CameraIdentity:
        """Who the camera is: serial, model, officer, clock offset where known."""
        ...

    def open_root(self, dev: DeviceInfo) -> Path:
        """The folder to ingest (the mount root for mass storage)."""
        ...

    def read_clock(self, dev: DeviceInfo) -> ClockReading | None:
        """The camera's clock against the station's; None when it cannot be read."""
        ...

    def set_clock(self, dev: DeviceInfo, now: datetime) -> bool:
        """Set the camera's clock to ``now`` (aware); False when the driver cannot."""
        ...

    def power_state(self, dev: DeviceInfo) -> PowerState | None:
        """Battery and storage state; None when unknown."""
        ...

    def wipe_allowed(self, dev: DeviceInfo) -> bool:
        """Whether vaultd may wipe this camera after a verified ingest."""
        ...


def specificity(match: Match, dev: DeviceInfo) -> int | None:
    """How specifically ``match`` fits ``dev``: None when it does not match.

    Higher is more specific: USB id + serial pattern > USB id > identity file
    > filesystem label. Every declared criterion must hold.
    """
    if match.empty:
        return None
    score = 0
    if match.usb:
        if dev.usb is None or dev.usb not in match.usb:
            return None
        score += _W_USB
    if match.serial_pattern is not None:
        if dev.usb_serial is None or not _compiled(match.serial_pattern).fullmatch(dev.usb_serial):
            return None
        score += _W_SERIAL
    if match.identity_file is not None:
        if match.identity_file not in dev.root_names:
            return None
        score += _W_IDENTITY_FILE
    if match.fs_label_pattern is not None:
        if dev.fs_label is None or not _compiled(match.fs_label_pattern).fullmatch(dev.fs_label):
            return None
        score += _W_FS_LABEL
    return score


def finite_seconds(value: object) -> float | None:
    """A finite number of seconds from device data (bools and NaN refused), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) else None
