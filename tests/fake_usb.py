"""Fake cameras for the cn_recorder driver: a real pyusb backend and a fake SCSI link.

``FakeUsbBackend`` is a ``usb.backend.IBackend`` subclass, handed to
``usb.core.find(backend=...)`` the way pyusb documents it; pyusb itself (its
Device, descriptors, string descriptors, ctrl_transfer/read/write) runs for
real on top of it. Each ``FakeAmbarella`` emulates one camera of the control
or ASCII variant; ``FakeDv16`` emulates the vendor SCSI command set.

Fault scripts: ``script`` is a list consumed one entry per protocol transfer
(descriptor reads do not count): ``ok``, ``gone`` (unplugged: ENODEV now and
for ever after, and the device leaves the bus), ``timeout``, ``garbage`` (the
reply is junk), ``short`` (the reply is cut to 2 bytes), ``error`` (the
command is answered with an error).
"""

from __future__ import annotations

import array
import errno
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import usb.backend
import usb.core

from drivers.cn_recorder import frames
from drivers.cn_recorder.frames import Dv16

SHANGHAI = ZoneInfo("Asia/Shanghai")
GARBAGE = bytes(range(0xA0, 0xE0))


class _Desc:
    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)
        self.extra_descriptors: list[int] = []


def _gone() -> usb.core.USBError:
    return usb.core.USBError("No such device (it may have been disconnected)", -4, errno.ENODEV)


@dataclass
class FakeStation:
    """The station's clock, shared by the fakes and the driver under test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeAmbarella:
    """One Ambarella 4255:0001 camera: ``variant`` "ctrl" or "ascii"."""

    station: FakeStation
    bus: int = 1
    address: int = 5
    usb_serial: str = "AMBA0001"
    variant: str = "ctrl"
    password: str = "12345678"
    device_id: str = "A9CAM042"
    clock_offset_s: float = 0.0
    clock_readable: bool = True  # answers the (assumed) @Gdt/@Gtm commands
    script: list[str] = field(default_factory=list)
    gone: bool = False
    logged_in: bool = False
    disk_mode: bool = False
    log: list[str] = field(default_factory=list)
    _reply: bytes = b""
    _set_date: str = ""

    def fault(self) -> str:
        if self.gone:
            raise _gone()
        step = self.script.pop(0) if self.script else "ok"
        if step == "gone":
            self.gone = True
            raise _gone()
        if step == "timeout":
            raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)
        return step

    def camera_now(self) -> datetime:
        return (self.station.now + timedelta(seconds=self.clock_offset_s)).astimezone(SHANGHAI)

    # control variant
    def control(self, request_type: int, request: int, data: bytes | int) -> bytes | int:
        step = self.fault()
        if request_type == frames.AMBA_OUT:
            assert isinstance(data, bytes) and len(data) == frames.AMBA_FRAME_BYTES
            if request == frames.AMBA_REQ_LOGIN:
                ok = data[:4] == bytes.fromhex("a1120012") and \
                    data[4:].rstrip(b"\0") == self.password.encode()
                self.logged_in = ok
                self.log.append("login ok" if ok else "login refused")
                self._reply = bytes([0, 0, 1 if ok else 0]) + bytes(7)
            elif request == frames.AMBA_REQ_DISK and data[:4] == bytes.fromhex("a1230023"):
                self.disk_mode = self.logged_in
                self.log.append("disk mode" if self.disk_mode else "disk mode refused")
                self._reply = bytes([0, 0, 1 if self.disk_mode else 0]) + bytes(7)
            return len(data)
        reply = self._reply
        return _mangle(step, reply)

    # ASCII variant
    def bulk_in(self, frame: bytes) -> None:
        step = self.fault()
        text = frame.decode("ascii")
        assert text.startswith("@") and text.endswith(";#"), text
        cmd, _length, payload = text[1:-2].split(";")
        self.log.append(f"@{cmd}")
        if step == "error":
            reply = f"@{cmd};ERROR;#"
        elif cmd == "Ver":
            reply = "@Ver;OK;#"
        elif cmd == "Gdv":
            reply = f"@Gdv;{len(self.device_id)};{self.device_id};#"
        elif cmd == "ATH":
            self.disk_mode = payload == self.password
            reply = "@ATH;OK;#" if self.disk_mode else "@ATH;ERROR;#"
        elif cmd in ("Gdt", "Gtm") and self.clock_readable:
            now = self.camera_now()
            value = now.strftime("%Y%m%d") if cmd == "Gdt" else now.strftime("%H%M%S") + "00"
            reply = f"@{cmd};{len(value)};{value};#"
        elif cmd == "Sdt":
            self._set_date = payload
            reply = "@Sdt;OK;#"
        elif cmd == "Stm":
            wall = datetime.strptime(self._set_date + payload[:6], "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI)
            self.clock_offset_s = (wall - self.station.now).total_seconds()
            reply = "@Stm;OK;#"
        else:
            reply = f"@{cmd};ERROR;#"
        self._reply = _mangle(step, reply.encode("ascii"))

    def bulk_out(self) -> bytes:
        self.fault()
        reply, self._reply = self._reply, b""
        return reply


def _mangle(step: str, reply: bytes) -> bytes:
    if step == "garbage":
        return GARBAGE[:len(reply) or 10]
    if step == "short":
        return reply[:2]
    return reply


class FakeUsbBackend(usb.backend.IBackend):  # type: ignore[misc]
    """A pyusb backend whose bus holds the given fake cameras."""

    def __init__(self, *cameras: FakeAmbarella) -> None:
        super().__init__()
        self.cameras = list(cameras)

    def enumerate_devices(self) -> Any:
        return [c for c in self.cameras if not c.gone]

    def get_parent(self, dev: FakeAmbarella) -> None:
        return None

    def get_device_descriptor(self, dev: FakeAmbarella) -> _Desc:
        return _Desc(bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0,
                     bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=0x4255, idProduct=0x0001,
                     bcdDevice=0x0100, iManufacturer=0, iProduct=0, iSerialNumber=3, bNumConfigurations=1,
                     address=dev.address, bus=dev.bus, port_number=dev.address, port_numbers=(dev.address,),
                     speed=3)

    def get_configuration_descriptor(self, dev: FakeAmbarella, config: int) -> _Desc:
        return _Desc(bLength=9, bDescriptorType=2, wTotalLength=32, bNumInterfaces=1, bConfigurationValue=1,
                     iConfiguration=0, bmAttributes=0x80, bMaxPower=50)

    def get_interface_descriptor(self, dev: FakeAmbarella, intf: int, alt: int, config: int) -> _Desc:
        eps = 2 if dev.variant == "ascii" else 0
        return _Desc(bLength=9, bDescriptorType=4, bInterfaceNumber=0, bAlternateSetting=0, bNumEndpoints=eps,
                     bInterfaceClass=0xFF, bInterfaceSubClass=0, bInterfaceProtocol=0, iInterface=0)

    def get_endpoint_descriptor(self, dev: FakeAmbarella, ep: int, intf: int, alt: int, config: int) -> _Desc:
        address = (frames.AMBA_EP_OUT, frames.AMBA_EP_IN)[ep]
        return _Desc(bLength=7, bDescriptorType=5, bEndpointAddress=address, bmAttributes=0x02,
                     wMaxPacketSize=512, bInterval=0, bRefresh=0, bSynchAddress=0)

    def open_device(self, dev: FakeAmbarella) -> FakeAmbarella:
        if dev.gone:
            raise _gone()
        return dev

    def close_device(self, handle: FakeAmbarella) -> None:
        pass

    def set_configuration(self, handle: FakeAmbarella, value: int) -> None:
        if handle.gone:
            raise _gone()

    def get_configuration(self, handle: FakeAmbarella) -> int:
        return 1

    def claim_interface(self, handle: FakeAmbarella, intf: int) -> None:
        pass

    def release_interface(self, handle: FakeAmbarella, intf: int) -> None:
        pass

    def ctrl_transfer(self, handle: FakeAmbarella, bmRequestType: int, bRequest: int, wValue: int,
                      wIndex: int, data: array.array[int], timeout: int) -> Any:
        if bmRequestType == 0x80 and bRequest == 6:  # GET_DESCRIPTOR (strings)
            if (wValue & 0xFF) == 0:
                desc = bytes([4, 3, 0x09, 0x04])
            else:
                text = handle.usb_serial.encode("utf-16-le")
                desc = bytes([2 + len(text), 3]) + text
            data[:len(desc)] = array.array("B", desc[:len(data)])
            return min(len(desc), len(data))
        if bmRequestType & 0x80:
            reply = handle.control(bmRequestType, bRequest, len(data))
            assert isinstance(reply, bytes)
            n = min(len(reply), len(data))
            data[:n] = array.array("B", reply[:n])
            return n
        return handle.control(bmRequestType, bRequest, data.tobytes())

    def bulk_write(self, handle: FakeAmbarella, ep: int, intf: int, data: array.array[int], timeout: int) -> int:
        handle.bulk_in(data.tobytes())
        return len(data)

    def bulk_read(self, handle: FakeAmbarella, ep: int, intf: int, buff: array.array[int], timeout: int) -> int:
        reply = handle.bulk_out()[:len(buff)]
        buff[:len(reply)] = array.array("B", reply)
        return len(reply)


# --- DV16 over SCSI --------------------------------------------------------------------

@dataclass
class FakeDv16:
    """A JieLi DV16 camera behind ``/dev/sgN``: implements the driver's ScsiLink."""

    info: frames.ZfyInfo
    password: str = "000000"
    id_code: bytes = b"JL2300"
    battery: int = 76
    sd_present: bool = True
    layout: tuple[int, ...] = frames.ZFY_PACKED
    text_encoding: str = "gb18030"
    script: list[str] = field(default_factory=list)
    gone: bool = False
    msdc: bool = False
    time_set: datetime | None = None
    closed: int = 0
    log: list[str] = field(default_factory=list)
    _status: int = 0

    def _step(self) -> str:
        if self.gone:
            raise OSError(errno.ENODEV, "No such device")
        step = self.script.pop(0) if self.script else "ok"
        if step == "gone":
            self.gone = True
            raise OSError(errno.ENODEV, "No such device")
        return step

    def read(self, cdb: bytes, length: int) -> bytes:
        step = self._step()
        command, write, declared = frames.parse_dv16_cdb(cdb)
        assert not write and declared == length, (command, write, declared, length)
        if command is not Dv16.RETURN_STATUS:
            self.log.append(command.name)
        if command is Dv16.RETURN_STATUS:
            data = bytes([1 if step == "error" else self._status]) + bytes(3)
        elif command is Dv16.ID_CODE:
            data = self.id_code
        elif command is Dv16.GET_DEV_INFO:
            data = frames.encode_zfy_info(self.info, self.layout, self.text_encoding)
        elif command is Dv16.GET_JL_PASSWORD:
            data = self.password.encode().ljust(16, b"\0")
        elif command is Dv16.BATTERY:
            data = struct.pack("<i", self.battery)
        elif command is Dv16.SD_STATUS:
            data = bytes([1 if self.sd_present else 0]) + bytes(3)
        else:
            raise AssertionError(f"unexpected read {command.name}")
        return _mangle(step, data)

    def write(self, cdb: bytes, data: bytes) -> None:
        self._step()
        command, write, declared = frames.parse_dv16_cdb(cdb)
        assert write and declared == len(data)
        self.log.append(command.name)
        if command is Dv16.SYNC_DEV_TIME:
            self.time_set = frames.decode_sys_time(data)
        elif command is Dv16.SET_MSDC:
            self.msdc = True

    def close(self) -> None:
        self.closed += 1
