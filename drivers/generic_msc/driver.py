"""Generic USB mass-storage cameras.

Matches nothing unless models are configured: unknown USB storage is never
ingested. Models come from ``devices.toml`` (``driver = "generic_msc"``; they
reach the driver as ``dev.model``) or, in code, as ``Match`` values passed to
the constructor. The camera is identified by its USB serial, else its
filesystem label. Such cameras expose no clock, so it is neither read nor set.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from vaultd.driverapi import CameraIdentity, ClockReading, DeviceInfo, Match, PowerState

MAX_FIELD_CHARS = 128


class GenericMassStorage:
    """Driver for plain mass-storage cameras, enabled per model by config."""

    name = "generic_msc"
    match = Match()  # matches nothing by itself; see ``models``

    def __init__(self, models: Iterable[Match] = ()) -> None:
        self.models: tuple[Match, ...] = tuple(models)
        for m in self.models:
            if not isinstance(m, Match):
                raise TypeError(f"models must be Match values, not {type(m).__name__}")

    def identify(self, dev: DeviceInfo) -> CameraIdentity:
        serial = _clean(dev.usb_serial) or _clean(dev.fs_label)
        if serial is None:
            raise ValueError("the device reports neither a USB serial nor a filesystem label")
        usb = str(dev.usb) if dev.usb is not None else None
        vendor = f"{dev.usb.vendor:04x}" if dev.usb is not None else None
        if dev.model is not None:  # a model configured in devices.toml names it
            return CameraIdentity(serial=serial, model=dev.model.name, vendor=dev.model.vendor or vendor,
                                  camera_tz=dev.model.camera_tz)
        return CameraIdentity(serial=serial, model=usb, vendor=vendor)

    def open_root(self, dev: DeviceInfo) -> Path:
        if dev.mount_root is None:
            raise ValueError("the device's filesystem is not mounted")
        return dev.mount_root

    def read_clock(self, dev: DeviceInfo) -> ClockReading | None:
        return None

    def set_clock(self, dev: DeviceInfo, now: datetime) -> bool:
        return False

    def power_state(self, dev: DeviceInfo) -> PowerState | None:
        return None

    def wipe_allowed(self, dev: DeviceInfo) -> bool:
        """Only where the configured model says ``wipe_allowed = true``."""
        return dev.model is not None and dev.model.wipe_allowed is True


def _clean(value: str | None) -> str | None:
    """A printable, bounded identifier from device data, else None."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_FIELD_CHARS or not value.isprintable():
        return None
    return value
