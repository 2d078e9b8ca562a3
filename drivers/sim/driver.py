"""The simulated camera: a folder made by ``vaultd simulate camera``.

Its identity (serial, model, officer, unit, clock offset) lives in
``vaultd-camera.json`` at the root. That file is device data: read with a
size cap, through ``O_NOFOLLOW``, every field type-checked, and nothing in it
is ever used as a path.
"""

from __future__ import annotations

import json
import os
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vaultd.driverapi import (
    CameraIdentity,
    ClockReading,
    DeviceInfo,
    Match,
    PowerState,
    finite_seconds,
)

IDENTITY_FILE = "vaultd-camera.json"
MAX_IDENTITY_BYTES = 64 * 1024
MAX_FIELD_CHARS = 128
_TEXT_FIELDS = ("serial", "model", "officer_id", "unit", "vendor", "camera_tz")


class SimulatedCamera:
    """Driver for the simulated dock's cameras (matched by their identity file)."""

    name = "sim"
    match = Match(identity_file=IDENTITY_FILE)

    def identify(self, dev: DeviceInfo) -> CameraIdentity:
        doc = _read_identity(_root(dev))
        fields = {key: _text(doc, key) for key in _TEXT_FIELDS}
        if fields["serial"] is None:
            raise ValueError(f"{IDENTITY_FILE} has no usable serial")
        return CameraIdentity(
            serial=fields["serial"], model=fields["model"], officer_id=fields["officer_id"],
            unit=fields["unit"], vendor=fields["vendor"], camera_tz=fields["camera_tz"],
            clock_offset_s=finite_seconds(doc.get("clock_offset_s")),
            simulated=True,
        )

    def open_root(self, dev: DeviceInfo) -> Path:
        return _root(dev)

    def read_clock(self, dev: DeviceInfo) -> ClockReading | None:
        offset_s = finite_seconds(_read_identity(_root(dev)).get("clock_offset_s"))
        if offset_s is None:
            return None
        station = datetime.now(UTC)
        return ClockReading(camera_time=station + timedelta(seconds=offset_s), station_time=station)

    def set_clock(self, dev: DeviceInfo, now: datetime) -> bool:
        """The simulated clock runs at station time + offset; setting it to ``now`` zeroes the offset."""
        if now.tzinfo is None:
            raise ValueError("set_clock needs a timezone-aware time")
        root = _root(dev)
        doc = _read_identity(root)
        doc["clock_offset_s"] = 0.0
        _replace_identity(root, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        return True

    def power_state(self, dev: DeviceInfo) -> PowerState | None:
        return PowerState(battery_percent=87, storage_free_bytes=48 * 2**30,
                          storage_total_bytes=64 * 2**30)

    def wipe_allowed(self, dev: DeviceInfo) -> bool:
        return True


def _root(dev: DeviceInfo) -> Path:
    if dev.mount_root is None:
        raise ValueError("the simulated camera has no root folder")
    return dev.mount_root


def _read_identity(root: Path) -> dict[str, Any]:
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = os.open(IDENTITY_FILE, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=root_fd)
    finally:
        os.close(root_fd)
    try:
        data = os.read(fd, MAX_IDENTITY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_IDENTITY_BYTES:
        raise ValueError(f"{IDENTITY_FILE} is larger than {MAX_IDENTITY_BYTES} bytes")
    doc = json.loads(data.decode("utf-8"))
    if not isinstance(doc, dict):
        raise TypeError(f"{IDENTITY_FILE} does not hold a JSON object")
    return doc


def _text(doc: dict[str, Any], key: str) -> str | None:
    """A short printable string from device data; anything else is None."""
    value = doc.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = unicodedata.normalize("NFC", value).strip()
    if not value or len(value) > MAX_FIELD_CHARS:
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        return None
    return value


def _replace_identity(root: Path, text: str) -> None:
    """Write the identity file atomically: temp file, fsync, rename, fsync the folder."""
    tmp = f".{IDENTITY_FILE}.{os.getpid()}.tmp"
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=root_fd)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, IDENTITY_FILE, src_dir_fd=root_fd, dst_dir_fd=root_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=root_fd)
            except OSError:
                pass
            raise
        os.fsync(root_fd)
    finally:
        os.close(root_fd)
