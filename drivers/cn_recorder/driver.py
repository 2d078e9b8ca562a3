"""The common Chinese body-camera (执法记录仪) protocols, one driver.

Three families (README.md has the frames and where each fact comes from):

- ``dv16``: JieLi "DV16" cameras, a locked mass-storage front end driven by
  vendor SCSI commands over SG_IO (``/dev/sgN``); matched by SCSI INQUIRY.
- ``amba_ctrl``: Ambarella 4255:0001, vendor control transfers (login, disk mode).
- ``amba_ascii``: Ambarella 4255:0001, ASCII commands over bulk endpoints
  (device ID, clock, storage mode).

The family comes from the configured model's ``options.protocol`` or, by
default, from the device: a SCSI generic node -> dv16; a USB camera with bulk
endpoints 0x01/0x81 -> amba_ascii, else amba_ctrl. Each call opens the
camera, talks, and closes it again; the driver keeps no state between calls.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from drivers.cn_recorder import frames
from drivers.cn_recorder.frames import Dv16, ProtocolError, TextEncoding
from drivers.cn_recorder.transport import PyUsbLink, ScsiLink, SgIoLink, UsbLink
from vaultd.driverapi import (
    CameraIdentity,
    ClockReading,
    DeviceInfo,
    DriverError,
    Match,
    PowerState,
    UnlockResult,
    UsbId,
    clean_text,
)

log = logging.getLogger(__name__)

AMBARELLA = UsbId(0x4255, 0x0001)
DEFAULT_CAMERA_TZ = "Asia/Shanghai"
PROTOCOLS = ("auto", "dv16", "amba_ctrl", "amba_ascii")
_NO_PASSWORD = "00000000"  # the placeholder the ASCII handshake sends


class _Family(Protocol):
    """One protocol family, talking to one opened camera."""

    def identify(self) -> tuple[str | None, frames.ZfyInfo | None]: ...  # (device id, issued-to info)

    def unlock(self, password: str | None) -> UnlockResult: ...

    def enter_storage(self, password: str | None) -> bool: ...

    def read_clock(self) -> datetime | None: ...  # naive camera wall-clock time

    def set_clock(self, local: datetime) -> bool: ...

    def battery(self) -> int | None: ...

    def close(self) -> None: ...


class CnRecorder:
    """Driver for JieLi DV16 and Ambarella 4255:0001 body cameras."""

    name = "cn_recorder"
    match = Match(usb=(AMBARELLA,))
    models = (Match(inquiry_pattern=r"dv16device.*"),)

    def __init__(self, usb_backend: Any = None,
                 scsi_opener: Callable[[str], ScsiLink] = SgIoLink.open,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._usb_backend = usb_backend  # None: pyusb picks libusb
        self._scsi_opener = scsi_opener
        self._clock = clock

    # --- the Driver protocol ---------------------------------------------------

    def identify(self, dev: DeviceInfo) -> CameraIdentity:
        model = dev.model
        base = CameraIdentity(model=model.name if model else _default_model(dev),
                              vendor=model.vendor if model else None,
                              camera_tz=model.camera_tz if model else None)
        if dev.mount_root is not None and _protocol(dev) != "dv16":
            # already mass storage: the vendor interface is gone; the USB serial is all there is
            return dataclasses.replace(base, serial=_need_serial(clean_text(dev.usb_serial)))
        with _open(self, dev) as fam:
            device_id, info = fam.identify()
        serial = (info.serial if info else None) or device_id or clean_text(dev.usb_serial)
        return dataclasses.replace(
            base, serial=_need_serial(serial), officer_id=info.officer_id if info else None,
            officer_name=info.officer_name if info else None, unit=info.unit_name if info else None,
            unit_id=info.unit_id if info else None, device_id=device_id,
        )

    def open_root(self, dev: DeviceInfo) -> Path:
        if dev.mount_root is None:
            raise DriverError("the camera is not in mass-storage mode yet",
                              hint="the daemon switches it with enter_storage_mode and mounts "
                                   "the block device that appears on the same port")
        return dev.mount_root

    def read_clock(self, dev: DeviceInfo) -> ClockReading | None:
        if dev.mount_root is not None and _protocol(dev) != "dv16":
            return None
        with _open(self, dev) as fam:
            local = fam.read_clock()
        station = self._clock()
        if local is None:
            return None
        return ClockReading(camera_time=local.replace(tzinfo=_zone(dev)), station_time=station)

    def set_clock(self, dev: DeviceInfo, now: datetime) -> bool:
        if now.tzinfo is None:
            raise ValueError("set_clock needs a timezone-aware time")
        if dev.mount_root is not None and _protocol(dev) != "dv16":
            return False
        with _open(self, dev) as fam:
            return fam.set_clock(now.astimezone(_zone(dev)).replace(tzinfo=None))

    def power_state(self, dev: DeviceInfo) -> PowerState | None:
        battery: int | None = None
        if dev.mount_root is None or _protocol(dev) == "dv16":
            with _open(self, dev) as fam:
                battery = fam.battery()
        free = total = None
        if dev.mount_root is not None:
            st = os.statvfs(dev.mount_root)
            free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
        if battery is None and total is None:
            return None
        return PowerState(battery_percent=battery, storage_free_bytes=free, storage_total_bytes=total)

    def wipe_allowed(self, dev: DeviceInfo) -> bool:
        """Only where the configured model says ``wipe_allowed = true``."""
        return dev.model is not None and dev.model.wipe_allowed is True

    # --- optional capabilities ----------------------------------------------------

    def unlock(self, dev: DeviceInfo, password: str | None) -> UnlockResult:
        if dev.mount_root is not None and _protocol(dev) != "dv16":
            return UnlockResult.NOT_NEEDED
        with _open(self, dev) as fam:
            return fam.unlock(password)

    def enter_storage_mode(self, dev: DeviceInfo, password: str | None) -> bool:
        if dev.mount_root is not None:
            return False
        with _open(self, dev) as fam:
            return fam.enter_storage(password)


class _open:
    """``with _open(driver, dev) as family``: the right family on an opened link, closed after."""

    def __init__(self, driver: CnRecorder, dev: DeviceInfo) -> None:
        self._driver, self._dev = driver, dev
        self._fam: _Family | None = None

    def __enter__(self) -> _Family:
        dev, protocol = self._dev, _protocol(self._dev)
        encoding = _encoding(dev)
        if protocol == "dv16":
            if dev.sg_device is None:
                raise DriverError("no SCSI generic node (/dev/sgN) for this DV16 camera",
                                  hint="the dock passes it from udev; is the sg module loaded?")
            self._fam = Dv16Family(self._driver._scsi_opener(dev.sg_device), encoding, _zfy_size(dev))
            return self._fam
        link = PyUsbLink.open(dev, self._driver._usb_backend)
        try:
            ascii_ok = protocol == "amba_ascii" or (
                protocol == "auto" and link.has_bulk(frames.AMBA_EP_OUT, frames.AMBA_EP_IN))
        except BaseException:
            link.close()
            raise
        self._fam = AmbaAsciiFamily(link) if ascii_ok else AmbaCtrlFamily(link)
        return self._fam

    def __exit__(self, *exc: object) -> None:
        if self._fam is not None:
            try:
                self._fam.close()
            except OSError:
                log.debug("closing the camera failed (it may be gone)", exc_info=True)


# --- JieLi DV16: vendor SCSI ------------------------------------------------------

class Dv16Family:
    """DV16 over a ``ScsiLink``. The password is read from the camera and compared
    here, on the host: it keeps honest stations honest and is no security boundary."""

    def __init__(self, link: ScsiLink, encoding: TextEncoding, zfy_bytes: int) -> None:
        self._link, self._encoding, self._zfy_bytes = link, encoding, zfy_bytes

    def _read(self, command: Dv16, length: int) -> bytes:
        data = self._link.read(frames.dv16_cdb(command, write=False, length=length), length)
        self._check(command)
        return data

    def _write(self, command: Dv16, data: bytes = b"") -> None:
        self._link.write(frames.dv16_cdb(command, write=True, length=len(data)), data)
        self._check(command)

    def _check(self, command: Dv16) -> None:
        raw = self._link.read(frames.dv16_cdb(Dv16.RETURN_STATUS, write=False, length=frames.STATUS_BYTES),
                              frames.STATUS_BYTES)
        status = frames.decode_status(raw)
        if status != 0:
            raise ProtocolError(f"the camera reported status {status} for {command.name}")

    def identify(self) -> tuple[str | None, frames.ZfyInfo | None]:
        self._write(Dv16.INIT)
        device_id = frames.decode_id_code(self._read(Dv16.ID_CODE, frames.ID_CODE_BYTES))
        info = frames.decode_zfy_info(self._read(Dv16.GET_DEV_INFO, self._zfy_bytes), self._encoding)
        return device_id, info

    def unlock(self, password: str | None) -> UnlockResult:
        if password is None:
            return UnlockResult.NOT_NEEDED  # the camera does not enforce it; nothing to compare
        stored = frames.decode_password(self._read(Dv16.GET_JL_PASSWORD, frames.PASSWORD_BYTES))
        return UnlockResult.UNLOCKED if hmac.compare_digest(stored, password.encode("utf-8")) \
            else UnlockResult.REFUSED

    def enter_storage(self, password: str | None) -> bool:
        if self.unlock(password) is UnlockResult.REFUSED:  # as the vendor tool does before SET_MSDC
            raise DriverError("the camera's admin password is not the one configured; not switching it",
                              hint="check password_env / password_file of this model in devices.toml")
        if not frames.decode_sd_present(self._read(Dv16.SD_STATUS, frames.STATUS_BYTES)):
            raise DriverError("the camera has no memory card; there is nothing to ingest")
        self._link.write(frames.dv16_cdb(Dv16.SET_MSDC, write=True, length=0), b"")
        return True  # the vendor tool reads no status after SET_MSDC: the camera is leaving

    def read_clock(self) -> datetime | None:
        return None  # the DV16 command set can set the clock but not read it

    def set_clock(self, local: datetime) -> bool:
        self._write(Dv16.SYNC_DEV_TIME, frames.encode_sys_time(local))
        return True

    def battery(self) -> int | None:
        return frames.decode_battery(self._read(Dv16.BATTERY, frames.BATTERY_BYTES))

    def close(self) -> None:
        self._link.close()


# --- Ambarella: control transfers ----------------------------------------------------

class AmbaCtrlFamily:
    """4255:0001 with vendor control requests: login and disk mode only."""

    def __init__(self, link: UsbLink) -> None:
        self._link = link

    def _status(self) -> bytes:
        return self._link.control_in(frames.AMBA_REQ_LOGIN, frames.AMBA_VALUE, 0, frames.AMBA_REPLY_BYTES)

    def identify(self) -> tuple[str | None, frames.ZfyInfo | None]:
        return None, None  # no identity command in this variant: the USB serial names it

    def unlock(self, password: str | None) -> UnlockResult:
        if password is None:
            return UnlockResult.NEEDS_PASSWORD
        self._link.control_out(frames.AMBA_REQ_LOGIN, frames.AMBA_VALUE, 0, frames.amba_login_frame(password))
        return UnlockResult.UNLOCKED if frames.amba_reply_ok(self._status()) else UnlockResult.REFUSED

    def enter_storage(self, password: str | None) -> bool:
        if self.unlock(password) is not UnlockResult.UNLOCKED:
            raise DriverError("the camera did not accept the password, so it stays locked",
                              hint="set password_env or password_file for this model in devices.toml")
        self._link.control_out(frames.AMBA_REQ_DISK, frames.AMBA_VALUE, 0, frames.amba_disk_mode_frame())
        try:
            self._status()
        except OSError:
            log.debug("no status after disk mode: the camera is already re-enumerating", exc_info=True)
        return True

    def read_clock(self) -> datetime | None:
        return None

    def set_clock(self, local: datetime) -> bool:
        return False

    def battery(self) -> int | None:
        return None

    def close(self) -> None:
        self._link.close()


# --- Ambarella: ASCII over bulk ---------------------------------------------------------

class AmbaAsciiFamily:
    """4255:0001 with ``@Cmd;len;payload;#`` frames on bulk endpoints 0x01/0x81."""

    def __init__(self, link: UsbLink) -> None:
        self._link = link
        self._greeted = False

    def _ask(self, frame: bytes, expect: str) -> frames.AsciiReply:
        if not self._greeted:
            self._greeted = True
            hello = self._send(frames.ascii_frame("Ver", _NO_PASSWORD), "Ver")
            if "OK" not in hello.fields:
                raise ProtocolError(f"the camera did not answer the @Ver handshake with OK: {hello.fields!r}")
        return self._send(frame, expect)

    def _send(self, frame: bytes, expect: str) -> frames.AsciiReply:
        self._link.bulk_write(frames.AMBA_EP_OUT, frame)
        return frames.parse_ascii_reply(self._link.bulk_read(frames.AMBA_EP_IN, frames.ASCII_REPLY_BYTES), expect)

    def identify(self) -> tuple[str | None, frames.ZfyInfo | None]:
        reply = self._ask(frames.ascii_frame("Gdv", _NO_PASSWORD), "Gdv")
        return clean_text(frames.ascii_value(reply, "device ID")), None

    def unlock(self, password: str | None) -> UnlockResult:
        return UnlockResult.NOT_NEEDED  # the password travels with @ATH (enter_storage)

    def enter_storage(self, password: str | None) -> bool:
        if password is None:
            raise DriverError("switching this camera to storage mode needs its password",
                              hint="set password_env or password_file for this model in devices.toml")
        frames.amba_login_frame(password)  # validates: printable ASCII
        reply = self._ask(frames.ascii_frame("ATH", password), "ATH")
        if not reply.ok:
            raise DriverError("the camera refused the password for storage mode")
        return True

    def read_clock(self) -> datetime | None:
        day = self._ask(frames.ascii_frame("Gdt", _NO_PASSWORD), "Gdt")
        if not day.ok:
            return None  # ASSUMED command; a camera without it says ERROR
        tod = self._ask(frames.ascii_frame("Gtm", _NO_PASSWORD), "Gtm")
        if not tod.ok:
            return None
        return frames.parse_ascii_clock(frames.ascii_value(day, "camera date"), frames.ascii_value(tod, "camera time"))

    def set_clock(self, local: datetime) -> bool:
        for frame, cmd in zip(frames.ascii_clock_frames(local), ("Sdt", "Stm"), strict=True):
            if not self._ask(frame, cmd).ok:
                raise DriverError(f"the camera refused @{cmd} (setting its clock)")
        return True

    def battery(self) -> int | None:
        return None

    def close(self) -> None:
        self._link.close()


# --- helpers ---------------------------------------------------------------------------

def _protocol(dev: DeviceInfo) -> str:
    value = dev.model.option("protocol", "auto") if dev.model else "auto"
    if value not in PROTOCOLS:
        raise DriverError(f"{dev.model.source if dev.model else ''}: options.protocol must be one of "
                          f"{', '.join(PROTOCOLS)}, not {value!r}")
    if value == "auto" and dev.sg_device is not None and (dev.usb != AMBARELLA):
        return "dv16"
    return str(value)


def _encoding(dev: DeviceInfo) -> TextEncoding:
    value = dev.model.option("text_encoding", "auto") if dev.model else "auto"
    try:
        return TextEncoding(value)
    except ValueError:
        raise DriverError(f"options.text_encoding must be auto, gb18030 or utf-8, not {value!r}") from None


def _zfy_size(dev: DeviceInfo) -> int:
    value = dev.model.option("zfy_layout", "packed") if dev.model else "packed"
    if value not in ("packed", "with_nul"):
        raise DriverError(f"options.zfy_layout must be packed or with_nul, not {value!r}")
    return sum(frames.ZFY_PACKED if value == "packed" else frames.ZFY_WITH_NUL)


def _zone(dev: DeviceInfo) -> ZoneInfo:
    return ZoneInfo(dev.model.camera_tz if dev.model and dev.model.camera_tz else DEFAULT_CAMERA_TZ)


def _default_model(dev: DeviceInfo) -> str:
    if dev.inquiry and dev.inquiry.startswith("dv16"):
        return "DV16"
    return str(dev.usb) if dev.usb else "cn_recorder"


def _need_serial(serial: str | None) -> str:
    if not serial:
        raise ProtocolError("the camera reports no serial (产品序号), no device ID and no USB serial")
    return serial
