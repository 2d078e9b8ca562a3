"""How the driver talks to a camera: USB transfers (pyusb) and vendor SCSI (SG_IO).

Two small Protocols, ``UsbLink`` and ``ScsiLink``, and their real
implementations. Tests give ``PyUsbLink`` a fake pyusb backend (the documented
``usb.core.find(backend=...)`` mechanism) and the driver a fake ``ScsiLink``.
Errors keep their errno (pyusb's ``USBError`` is an ``OSError``), so the
registry can tell "device gone" (ENODEV, EIO...) from other failures.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
from typing import Any, Protocol

import usb.core  # type: ignore[import-untyped]
import usb.util  # type: ignore[import-untyped]

from vaultd.driverapi import DeviceInfo, DriverError

USB_TIMEOUT_MS = 3000
SCSI_TIMEOUT_MS = 10_000
_SG_PATH = re.compile(r"/dev/sg[0-9]{1,4}")


class UsbLink(Protocol):
    """Transfers to one opened USB camera."""

    def control_out(self, request: int, value: int, index: int, data: bytes) -> None: ...

    def control_in(self, request: int, value: int, index: int, length: int) -> bytes: ...

    def has_bulk(self, ep_out: int, ep_in: int) -> bool: ...

    def bulk_write(self, ep: int, data: bytes) -> None: ...

    def bulk_read(self, ep: int, length: int) -> bytes: ...

    def close(self) -> None: ...


class ScsiLink(Protocol):
    """Vendor SCSI commands to one camera."""

    def read(self, cdb: bytes, length: int) -> bytes: ...

    def write(self, cdb: bytes, data: bytes) -> None: ...

    def close(self) -> None: ...


# --- pyusb -------------------------------------------------------------------

class PyUsbLink:
    """``UsbLink`` over a pyusb device (the libusb backend, or any ``IBackend``)."""

    def __init__(self, device: Any) -> None:
        self._dev = device
        self._configured = False

    @classmethod
    def open(cls, dev: DeviceInfo, backend: Any = None) -> PyUsbLink:
        """The pyusb device for ``dev``: same VID:PID and, when known, bus and address.

        Two cameras can report the same USB serial; without bus and address
        the serial alone must name exactly one device, else this refuses to guess.
        """
        if dev.usb is None:
            raise DriverError("the device has no USB id; it is not a USB camera")
        found = list(usb.core.find(find_all=True, backend=backend,
                                   idVendor=dev.usb.vendor, idProduct=dev.usb.product) or ())
        if dev.usb_bus is not None and dev.usb_address is not None:
            found = [d for d in found if (d.bus, d.address) == (dev.usb_bus, dev.usb_address)]
        elif dev.usb_serial is not None and len(found) > 1:
            found = [d for d in found if _serial(d) == dev.usb_serial]
        if not found:
            raise OSError(errno.ENODEV, f"USB camera {dev.usb} is no longer on the bus")
        if len(found) > 1:
            raise DriverError(f"{len(found)} USB devices {dev.usb} match and nothing tells them apart",
                              hint="the dock must pass the USB bus and address of the camera")
        return cls(found[0])

    def _configure(self) -> None:
        if not self._configured:
            self._dev.set_configuration()
            self._configured = True

    def control_out(self, request: int, value: int, index: int, data: bytes) -> None:
        sent = self._dev.ctrl_transfer(0x40, request, value, index, data, USB_TIMEOUT_MS)
        if sent != len(data):
            raise DriverError(f"control request 0x{request:02x}: {sent} of {len(data)} bytes sent")

    def control_in(self, request: int, value: int, index: int, length: int) -> bytes:
        return bytes(self._dev.ctrl_transfer(0xC0, request, value, index, length, USB_TIMEOUT_MS))

    def has_bulk(self, ep_out: int, ep_in: int) -> bool:
        self._configure()
        intf = self._dev.get_active_configuration()[(0, 0)]
        addresses = {e.bEndpointAddress for e in intf.endpoints()
                     if usb.util.endpoint_type(e.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK}
        return {ep_out, ep_in} <= addresses

    def bulk_write(self, ep: int, data: bytes) -> None:
        self._configure()
        sent = self._dev.write(ep, data, USB_TIMEOUT_MS)
        if sent != len(data):
            raise DriverError(f"bulk write: {sent} of {len(data)} bytes sent")

    def bulk_read(self, ep: int, length: int) -> bytes:
        self._configure()
        return bytes(self._dev.read(ep, length, USB_TIMEOUT_MS))

    def close(self) -> None:
        usb.util.dispose_resources(self._dev)


def _serial(device: Any) -> str | None:
    try:
        value = device.serial_number
    except (ValueError, usb.core.USBError):
        return None
    return value if isinstance(value, str) else None


# --- SG_IO -------------------------------------------------------------------

SG_IO = 0x2285
SG_DXFER_TO_DEV = -2
SG_DXFER_FROM_DEV = -3
SG_INFO_OK_MASK = 0x1
SENSE_BYTES = 32


class SgIoHdr(ctypes.Structure):
    """``struct sg_io_hdr`` from <scsi/sg.h> (interface 'S')."""

    _fields_ = [
        ("interface_id", ctypes.c_int), ("dxfer_direction", ctypes.c_int),
        ("cmd_len", ctypes.c_ubyte), ("mx_sb_len", ctypes.c_ubyte), ("iovec_count", ctypes.c_ushort),
        ("dxfer_len", ctypes.c_uint), ("dxferp", ctypes.c_void_p), ("cmdp", ctypes.c_void_p),
        ("sbp", ctypes.c_void_p), ("timeout", ctypes.c_uint), ("flags", ctypes.c_uint),
        ("pack_id", ctypes.c_int), ("usr_ptr", ctypes.c_void_p),
        ("status", ctypes.c_ubyte), ("masked_status", ctypes.c_ubyte), ("msg_status", ctypes.c_ubyte),
        ("sb_len_wr", ctypes.c_ubyte), ("host_status", ctypes.c_ushort), ("driver_status", ctypes.c_ushort),
        ("resid", ctypes.c_int), ("duration", ctypes.c_uint), ("info", ctypes.c_uint),
    ]


class SgIoLink:
    """``ScsiLink`` over ``/dev/sgN`` with the SG_IO ioctl.

    Vendor opcodes (0xFB/0xFD) are refused by the kernel without
    CAP_SYS_RAWIO (``blk_verify_command``), so the daemon needs that
    capability for this family.
    """

    def __init__(self, fd: int, path: str) -> None:
        self._fd = fd
        self.path = path

    @classmethod
    def open(cls, path: str) -> SgIoLink:
        if not _SG_PATH.fullmatch(path):
            raise DriverError(f"{path!r} is not a SCSI generic device (/dev/sgN)")
        return cls(os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC), path)

    def read(self, cdb: bytes, length: int) -> bytes:
        buf = ctypes.create_string_buffer(max(length, 1))
        got = self._io(cdb, SG_DXFER_FROM_DEV, buf, length)
        return buf.raw[:got]

    def write(self, cdb: bytes, data: bytes) -> None:
        buf = ctypes.create_string_buffer(data, max(len(data), 1))
        self._io(cdb, SG_DXFER_TO_DEV if data else -1, buf, len(data))

    def _io(self, cdb: bytes, direction: int, buf: Any, length: int) -> int:
        cdb_buf = ctypes.create_string_buffer(cdb, len(cdb))
        sense = ctypes.create_string_buffer(SENSE_BYTES)
        hdr = SgIoHdr(interface_id=ord("S"), dxfer_direction=direction, cmd_len=len(cdb),
                      mx_sb_len=SENSE_BYTES, dxfer_len=length, dxferp=ctypes.addressof(buf),
                      cmdp=ctypes.addressof(cdb_buf), sbp=ctypes.addressof(sense), timeout=SCSI_TIMEOUT_MS)
        fcntl.ioctl(self._fd, SG_IO, hdr)  # OSError with the kernel's errno (ENODEV when unplugged)
        if hdr.info & SG_INFO_OK_MASK:
            raise DriverError(f"SCSI command 0x{cdb[0]:02x}/{cdb[5]} failed on {self.path}: status "
                              f"0x{hdr.status:02x}, host 0x{hdr.host_status:x}, driver 0x{hdr.driver_status:x}, "
                              f"sense {sense.raw[:hdr.sb_len_wr].hex() or '-'}")
        return max(0, length - int(hdr.resid))

    def close(self) -> None:
        os.close(self._fd)
