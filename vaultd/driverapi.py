"""The one surface camera drivers import.

A driver is a plug-in found through the ``vaultd.drivers`` entry-point group
(see ``vaultd.registry``). It declares what it matches as data (a ``Match``),
and the registry picks the most specific driver for each docked device
(``specificity``). Drivers import this module and nothing else of vaultd;
the value types and errors they need are re-exported here.

The life of a docked camera, as the daemon drives it (every call goes through
``Registry.call`` or one of the registry's helpers, which fence driver errors):

1. ``identify`` (every driver): who the camera is.
2. ``Unlockable.unlock`` (optional): the password login of protocol cameras.
3. ``read_clock`` / ``power_state`` (every driver; ``None`` means "cannot").
4. ``StorageModeSwitch.enter_storage_mode`` (optional): protocol cameras are
   told to become mass storage; they re-enumerate as a block device on the
   same port, which the daemon mounts and hands back with ``mount_root`` set.
   A driver with this capability can only be talked to before the switch, so
   the daemon reads the clock and power state, records the offset and sets the
   clock *before* switching such a camera.
5. ``open_root`` (every driver): the folder to ingest.
6. ``RecordingLister`` (optional, no shipped driver has it): a driver that
   lists and opens recordings itself; without it the daemon walks
   ``open_root`` (the default for every mass-storage camera).
7. ``set_clock`` (every driver; ``False`` means "cannot").
8. ``wipe_allowed`` and the optional ``Wiper`` hook: without a hook the
   daemon deletes the verified files itself, on a read-write mount.

Everything in this module is pure: no I/O.
"""

from __future__ import annotations

import enum
import functools
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from vaultd.errors import DeviceGoneError, DriverError
from vaultd.model import CameraIdentity

__all__ = [
    "CameraIdentity", "CameraModel", "ClockReading", "DeviceGoneError", "DeviceInfo", "Driver",
    "DriverError", "Match", "OptionValue", "PowerState", "RecordingLister", "RecordingRef",
    "StorageModeSwitch", "UnlockResult", "Unlockable", "UsbId", "Wiper", "capabilities",
    "clean_text", "finite_seconds", "inquiry_key", "specificity",
]

# Weights of the criteria a Match can declare. Powers of two, so a match on a
# more significant criterion always beats any combination of weaker ones:
# USB id (16) > serial pattern (8) > SCSI inquiry (4) > identity file (2) > fs label (1);
# USB id + serial (24) beats USB id alone (16).
_W_USB = 16
_W_SERIAL = 8
_W_INQUIRY = 4
_W_IDENTITY_FILE = 2
_W_FS_LABEL = 1

_MAX_PATTERN_CHARS = 512
MAX_TEXT_CHARS = 128


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
        if not sep or not vendor or not product or len(vendor) > 4 or len(product) > 4:
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


def inquiry_key(vendor: str | None, model: str | None, rev: str | None = None) -> str | None:
    """The SCSI INQUIRY identification as one key: vendor+model+revision, lower case,
    all whitespace removed (``"DV16", "DEVICE V1.00"`` -> ``"dv16devicev1.00"``).

    This is how the vendors' own PC tools compare it, and it does not depend on
    where the device split the text between the 8-byte vendor and 16-byte
    product fields. None when the device reported none of them.
    """
    parts = [p for p in (vendor, model, rev) if p]
    if not parts:
        return None
    return re.sub(r"\s+", "", "".join(parts)).lower()


@dataclass(frozen=True)
class Match:
    """What a driver (or one configured camera model) matches, as data.

    Every criterion that is declared must hold; a Match that declares nothing
    matches nothing. Patterns are regular expressions matched against the
    whole value (``re.fullmatch``); ``inquiry_pattern`` is matched, ignoring
    case, against ``inquiry_key`` of the device.
    """

    usb: tuple[UsbId, ...] = ()
    serial_pattern: str | None = None  # against the USB serial
    fs_label_pattern: str | None = None  # against the filesystem label
    identity_file: str | None = None  # a file name at the filesystem root
    inquiry_pattern: str | None = None  # against DeviceInfo.inquiry (SCSI vendor+model+rev)

    def __post_init__(self) -> None:
        usb = tuple(self.usb)
        if not all(isinstance(u, UsbId) for u in usb):
            raise ValueError("Match.usb must hold UsbId values")
        object.__setattr__(self, "usb", usb)
        _check_pattern("serial_pattern", self.serial_pattern)
        _check_pattern("fs_label_pattern", self.fs_label_pattern)
        _check_pattern("inquiry_pattern", self.inquiry_pattern)
        name = self.identity_file
        if name is not None and (not isinstance(name, str) or not name or name in (".", "..")
                                 or "/" in name or "\\" in name or "\0" in name):
            raise ValueError(f"identity_file must be a plain file name, not {name!r}")

    @property
    def empty(self) -> bool:
        return not self.usb and self.serial_pattern is None and self.fs_label_pattern is None \
            and self.identity_file is None and self.inquiry_pattern is None


#: A driver-specific model option from ``config/devices.toml`` (``[model.options]``).
OptionValue = str | int | float | bool


@dataclass(frozen=True)
class CameraModel:
    """One camera model an agency configured in ``devices.toml`` (no code needed).

    ``driver`` names the driver that handles it; ``match`` says which devices
    are this model; the rest are settings the driver may use. The password
    itself is never here: the registry resolves ``password_env`` /
    ``password_file`` when a driver needs it (``Registry.unlock``).
    """

    name: str
    driver: str
    match: Match
    vendor: str | None = None
    camera_tz: str | None = None  # zone of the camera's wall clock, e.g. "Asia/Shanghai"
    name_patterns: tuple[str, ...] = ()  # file-name regexes (groups: serial, officer, ts, seq, imp)
    wipe_allowed: bool | None = None  # None: the driver's default
    password_env: str | None = None
    password_file: str | None = None
    options: tuple[tuple[str, OptionValue], ...] = ()  # sorted (key, value) pairs
    source: str = ""  # where it was configured ("FILE: model NAME"), for messages

    def option(self, key: str, default: OptionValue | None = None) -> OptionValue | None:
        """A driver-specific option, or ``default``."""
        for k, v in self.options:
            if k == key:
                return v
        return default

    @property
    def needs_password(self) -> bool:
        return self.password_env is not None or self.password_file is not None


@dataclass(frozen=True)
class DeviceInfo:
    """What the dock saw of one device. All of it comes from the device: data, not trust.

    ``model`` is not seen on the device: the registry sets it (``Registry.select``)
    to the configured model that matched, None when a driver's own match did.
    """

    usb: UsbId | None = None
    usb_serial: str | None = None
    port: str | None = None  # udev ID_PATH: the dock port
    fs_label: str | None = None
    fs_type: str | None = None
    mount_root: Path | None = None
    root_names: frozenset[str] = field(default_factory=frozenset)  # names at the fs root
    usb_bus: int | None = None  # libusb bus number (busnum in sysfs)
    usb_address: int | None = None  # libusb device address (devnum in sysfs)
    sg_device: str | None = None  # the SCSI generic node, e.g. "/dev/sg2"
    inquiry: str | None = None  # inquiry_key(vendor, model, rev) of a SCSI device
    model: CameraModel | None = None


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


class UnlockResult(str, enum.Enum):
    """What a password login came to."""

    UNLOCKED = "unlocked"  # the camera accepted the password
    NOT_NEEDED = "not_needed"  # nothing to unlock (or the device does not enforce it)
    REFUSED = "refused"  # the camera (or the host-side check) refused the password
    NEEDS_PASSWORD = "needs_password"  # a password is required and none is configured


@dataclass(frozen=True)
class RecordingRef:
    """One recording a ``RecordingLister`` driver offers: a name, never a path of ours."""

    name: str  # the camera's own relative name, "/"-separated; data, not a path
    size_bytes: int
    modified: datetime | None = None  # aware


@runtime_checkable
class Driver(Protocol):
    """A camera driver. The registry wraps every call into ``DriverError``.

    A driver that serves several built-in models may also expose
    ``models: Sequence[Match]``; the registry then considers ``match`` and
    each of ``models``, and the most specific one counts. Models configured
    in ``devices.toml`` arrive as ``dev.model`` (``CameraModel``).

    "Cannot" is an answer, not an error: ``read_clock``/``power_state``
    return None, ``set_clock``/``wipe_allowed`` return False. Raise only when
    something went wrong (a ``DriverError`` with a clear message, or any
    exception, which the registry wraps; EIO/ENODEV/ENXIO/ENOTCONN anywhere
    in the cause chain become ``DeviceGoneError``).
    """

    name: str
    match: Match

    def identify(self, dev: DeviceInfo) -> CameraIdentity:
        """Who the camera is: serial, model, officer, clock offset where known."""
        ...

    def open_root(self, dev: DeviceInfo) -> Path:
        """The folder to ingest (the mount root for mass storage).

        For a protocol camera not yet in mass-storage mode (no ``mount_root``)
        this raises ``DriverError``: call ``enter_storage_mode`` first.
        """
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


@runtime_checkable
class Unlockable(Protocol):
    """A camera with a password login (optional capability)."""

    def unlock(self, dev: DeviceInfo, password: str | None) -> UnlockResult:
        """Log in with ``password`` (None: none configured). Never raises for a wrong password."""
        ...


@runtime_checkable
class StorageModeSwitch(Protocol):
    """A protocol camera that must be told to become mass storage (optional capability)."""

    def enter_storage_mode(self, dev: DeviceInfo, password: str | None) -> bool:
        """Switch to mass-storage (U盘) mode.

        True: the command was accepted; the camera will leave the bus and come
        back as a block device on the same port (``dev.port``), which the
        daemon mounts and passes to ``open_root`` with this same driver and
        the identity read before the switch. False: the device is already
        mass storage (nothing to do).
        """
        ...


@runtime_checkable
class RecordingLister(Protocol):
    """A driver that lists and opens recordings itself (optional; none ships).

    Without it the daemon walks ``open_root`` with its own hardened walk,
    which is what every mass-storage camera needs.
    """

    def list_recordings(self, dev: DeviceInfo, root: Path) -> Sequence[RecordingRef]: ...

    def open_recording(self, dev: DeviceInfo, root: Path, ref: RecordingRef) -> BinaryIO: ...


@runtime_checkable
class Wiper(Protocol):
    """A driver with its own wipe step (optional; none ships).

    Without it, and when ``wipe_allowed`` is True, the daemon deletes the
    verified files itself on a read-write mount. Returns the names wiped.
    """

    def wipe(self, dev: DeviceInfo, root: Path, names: Sequence[str]) -> Sequence[str]: ...


_CAPABILITIES: tuple[tuple[str, type], ...] = (
    ("unlock", Unlockable), ("storage_mode", StorageModeSwitch),
    ("list_recordings", RecordingLister), ("wipe", Wiper),
)


def capabilities(driver: object) -> frozenset[str]:
    """The optional capabilities ``driver`` implements, by name (for status and logs)."""
    return frozenset(name for name, proto in _CAPABILITIES if isinstance(driver, proto))


def specificity(match: Match, dev: DeviceInfo) -> int | None:
    """How specifically ``match`` fits ``dev``: None when it does not match.

    Higher is more specific: USB id > serial pattern > SCSI inquiry > identity
    file > filesystem label, and each extra criterion adds. Every declared
    criterion must hold.
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
    if match.inquiry_pattern is not None:
        if dev.inquiry is None or not re.fullmatch(match.inquiry_pattern, dev.inquiry, re.IGNORECASE):
            return None
        score += _W_INQUIRY
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


def clean_text(value: str | None, max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """Device text made safe to store and show, nothing of it silently dropped.

    NFC-normalised and stripped; control and format characters (bidi overrides,
    NUL...) become U+FFFD so the rest survives; longer than ``max_chars`` is
    cut. None for nothing left.
    """
    if value is None:
        return None
    text = unicodedata.normalize("NFC", value).strip()
    text = "".join("\ufffd" if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text)
    text = text[:max_chars].strip()
    return text or None

