"""Frames of the common Chinese recorder protocols: pure encoders and decoders.

No I/O here. Every decoder takes bytes from the device and either returns a
typed value or raises ``ProtocolError`` (a ``DriverError``) saying what was
wrong with the reply; nothing from the device can crash it. See README.md for
the byte layouts and where each fact comes from.
"""

from __future__ import annotations

import codecs
import enum
import re
import struct
from dataclasses import dataclass
from datetime import datetime

from vaultd.driverapi import DriverError, clean_text


class ProtocolError(DriverError):
    """The camera's reply does not fit the protocol."""

    def __init__(self, message: str) -> None:
        super().__init__(message, hint="the camera answered something this driver does not understand; "
                         "re-dock it, and report its model if this repeats")


# --- text from fixed-size fields ---------------------------------------------

class TextEncoding(str, enum.Enum):
    AUTO = "auto"  # UTF-8 if the bytes are valid UTF-8, else GB18030 (a superset of GBK/GB2312)
    GB18030 = "gb18030"
    UTF8 = "utf-8"


def decode_text(raw: bytes, encoding: TextEncoding = TextEncoding.AUTO) -> str | None:
    """A C string from a fixed-size field, decoded without losing Chinese text.

    The field ends at the first NUL (or fills the field). A multi-byte
    character cut by the end of the field is dropped; bytes that are not text
    in any candidate encoding become U+FFFD, so the rest survives. Padding
    (0xFF, spaces) is trimmed. None when nothing is left.
    """
    data = raw.split(b"\0", 1)[0].rstrip(b"\xff ")
    if not data:
        return None
    candidates = {TextEncoding.AUTO: ("utf-8", "gb18030"), TextEncoding.GB18030: ("gb18030",),
                  TextEncoding.UTF8: ("utf-8",)}[encoding]
    for codec in candidates:
        decoder = codecs.getincrementaldecoder(codec)("strict")
        try:
            text = decoder.decode(data, final=False)  # a cut-off last character stays buffered
        except UnicodeDecodeError:
            continue
        return clean_text(text)
    return clean_text(data.decode(candidates[-1], errors="replace"))


def encode_text(text: str, size: int, encoding: str = "gb18030") -> bytes:
    """``text`` into a NUL-padded field of ``size`` bytes (for fakes and WRITE_DEV_INFO)."""
    data = text.encode(encoding)
    if len(data) > size:
        raise ValueError(f"{text!r} does not fit in {size} bytes as {encoding}")
    return data.ljust(size, b"\0")


# --- JieLi "DV16": vendor SCSI commands ----------------------------------------

CDB_LEN = 16
DV16_READ = (0xFD, 0x81)  # ISD_TOOL_READ, USER_CMD_READ
DV16_WRITE = (0xFB, 0x82)  # ISD_TOOL_WRITE, USER_CMD_WRITE
#: What the vendor's PC tool compares the SCSI INQUIRY with (spaces removed, lower case).
DV16_INQUIRY = "dv16devicev1.00"


class Dv16(enum.IntEnum):
    """Command numbers (cdb[5])."""

    INIT = 1
    ID_CODE = 2
    GET_DEV_INFO = 3
    WRITE_DEV_INFO = 4
    SYNC_DEV_TIME = 5
    SET_MSDC = 6
    READ_DEV_RES = 7
    BATTERY = 8
    WRITE_ALL_DEV_INFO = 9
    SET_PASSWORD = 10
    SET_ID_CODE = 11
    SD_STATUS = 12
    GET_JL_PASSWORD = 13
    RETURN_STATUS = 14


ID_CODE_BYTES = 6
PASSWORD_BYTES = 16
STATUS_BYTES = 4
BATTERY_BYTES = 4
SYS_TIME_BYTES = 8  # u16 year, u8 month, day, hour, minute, second, 1 pad byte (2-byte alignment)


def dv16_cdb(command: Dv16, *, write: bool, length: int) -> bytes:
    """The 16-byte CDB: opcode, sub-opcode, cdb[5] = command, cdb[6..7] = length (big-endian)."""
    if not 0 <= length <= 0xFFFF:
        raise ValueError("DV16 transfer length must fit in 16 bits")
    op, sub = DV16_WRITE if write else DV16_READ
    cdb = bytearray(CDB_LEN)
    cdb[0], cdb[1], cdb[5] = op, sub, int(command)
    cdb[6:8] = length.to_bytes(2, "big")
    return bytes(cdb)


def parse_dv16_cdb(cdb: bytes) -> tuple[Dv16, bool, int]:
    """(command, write?, length) of a DV16 CDB; for the fake device and for logs."""
    if len(cdb) != CDB_LEN or (cdb[0], cdb[1]) not in (DV16_READ, DV16_WRITE):
        raise ProtocolError(f"not a DV16 vendor CDB: {cdb.hex()}")
    try:
        command = Dv16(cdb[5])
    except ValueError:
        raise ProtocolError(f"unknown DV16 command number {cdb[5]}") from None
    return command, (cdb[0], cdb[1]) == DV16_WRITE, int.from_bytes(cdb[6:8], "big")


def _exact(what: str, raw: bytes, size: int) -> bytes:
    if len(raw) != size:
        raise ProtocolError(f"{what}: expected {size} bytes from the camera, got {len(raw)}")
    return raw


def decode_status(raw: bytes) -> int:
    """GET_RETURN_STATUS: the first byte; 0 means the previous command succeeded."""
    return _exact("return status", raw, STATUS_BYTES)[0]


def decode_id_code(raw: bytes) -> str | None:
    """GET_ID_CODE: 6 bytes of ASCII, the maker and model code (shared by a model's units)."""
    data = _exact("ID code", raw, ID_CODE_BYTES).split(b"\0", 1)[0]
    if not data:
        return None
    if not all(0x20 < b < 0x7F for b in data):
        raise ProtocolError(f"ID code is not printable ASCII: {data.hex()}")
    return data.decode("ascii")


def decode_password(raw: bytes) -> bytes:
    """GET_JL_PASSWORD: a NUL-terminated string in 16 bytes (the host compares it)."""
    return _exact("password", raw, PASSWORD_BYTES).split(b"\0", 1)[0]


def decode_battery(raw: bytes) -> int:
    """READ_BATTERY_VAL: a little-endian int32, the remaining charge in percent."""
    (value,) = struct.unpack("<i", _exact("battery", raw, BATTERY_BYTES))
    if not 0 <= value <= 100:
        raise ProtocolError(f"battery level {value} is not a percentage")
    return int(value)


def decode_sd_present(raw: bytes) -> bool:
    """GET_SD_STATUS: first byte non-zero when a memory card is in the camera."""
    return _exact("SD status", raw, STATUS_BYTES)[0] != 0


def encode_sys_time(local: datetime) -> bytes:
    """SYNC_DEV_TIME payload: the camera's wall-clock time (naive or in its zone)."""
    if not 2000 <= local.year <= 0xFFFF:
        raise ValueError(f"year {local.year} cannot be sent to the camera")
    return struct.pack("<HBBBBBx", local.year, local.month, local.day, local.hour, local.minute, local.second)


def decode_sys_time(raw: bytes) -> datetime:
    """The inverse of ``encode_sys_time`` (naive wall-clock time)."""
    year, month, day, hour, minute, second = struct.unpack("<HBBBBBx", _exact("time", raw, SYS_TIME_BYTES))
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise ProtocolError(f"camera time {year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:"
                            f"{second:02d} is not a real time") from exc


# --- ZFY_INFO: who the camera is issued to --------------------------------------

#: Field sizes in the two layouts seen in vendor SDKs: JieLi's packed struct
#: (USBJL.h, 89 bytes) and the "each plus a NUL" struct (LibBodycam, 94 bytes).
ZFY_FIELDS = ("serial", "officer_id", "officer_name", "unit_id", "unit_name")
ZFY_PACKED = (7, 6, 32, 12, 32)
ZFY_WITH_NUL = (8, 7, 33, 13, 33)
ZFY_LAYOUTS = {sum(ZFY_PACKED): ZFY_PACKED, sum(ZFY_WITH_NUL): ZFY_WITH_NUL}


@dataclass(frozen=True)
class ZfyInfo:
    """ZFY_INFO decoded: 产品序号, 警号, 使用者姓名, 单位编号, 单位名称."""

    serial: str | None
    officer_id: str | None
    officer_name: str | None
    unit_id: str | None
    unit_name: str | None


def decode_zfy_info(raw: bytes, encoding: TextEncoding = TextEncoding.AUTO) -> ZfyInfo:
    """ZFY_INFO in either layout, chosen by its length."""
    sizes = ZFY_LAYOUTS.get(len(raw))
    if sizes is None:
        raise ProtocolError(f"device info is {len(raw)} bytes; expected "
                            + " or ".join(str(n) for n in sorted(ZFY_LAYOUTS)))
    values: list[str | None] = []
    offset = 0
    for size in sizes:
        values.append(decode_text(raw[offset:offset + size], encoding))
        offset += size
    return ZfyInfo(*values)


def encode_zfy_info(info: ZfyInfo, sizes: tuple[int, ...] = ZFY_PACKED, encoding: str = "gb18030") -> bytes:
    """ZFY_INFO bytes (for fakes and WRITE_DEV_INFO)."""
    return b"".join(encode_text(getattr(info, name) or "", size, encoding)
                    for name, size in zip(ZFY_FIELDS, sizes, strict=True))


# --- Ambarella 4255:0001, control-transfer variant -------------------------------

AMBA_OUT = 0x40  # vendor request, host to device, to the device
AMBA_IN = 0xC0  # vendor request, device to host
AMBA_REQ_LOGIN = 0x55  # also the request that reads the status reply
AMBA_REQ_DISK = 0x50
AMBA_VALUE = 0x0080
AMBA_FRAME_BYTES = 64
AMBA_REPLY_BYTES = 10
_AMBA_LOGIN_HEAD = bytes.fromhex("a1120012")
_AMBA_DISK_HEAD = bytes.fromhex("a1230023")


def amba_login_frame(password: str) -> bytes:
    """``a1120012`` + the ASCII password, zero-padded to 64 bytes."""
    data = _ascii_secret(password, AMBA_FRAME_BYTES - len(_AMBA_LOGIN_HEAD))
    return (_AMBA_LOGIN_HEAD + data).ljust(AMBA_FRAME_BYTES, b"\0")


def amba_disk_mode_frame() -> bytes:
    """``a1230023`` zero-padded to 64 bytes: switch to mass storage."""
    return _AMBA_DISK_HEAD.ljust(AMBA_FRAME_BYTES, b"\0")


def amba_reply_ok(raw: bytes) -> bool:
    """The status reply: byte 2 is 1 on success."""
    if len(raw) < 3:
        raise ProtocolError(f"status reply is {len(raw)} bytes; expected {AMBA_REPLY_BYTES}")
    return raw[2] == 1


def _ascii_secret(password: str, max_bytes: int) -> bytes:
    if not password or not password.isascii() or not password.isprintable() or len(password) > max_bytes:
        raise ValueError(f"the camera password must be 1..{max_bytes} printable ASCII characters")
    return password.encode("ascii")


# --- Ambarella 4255:0001, ASCII-over-bulk variant --------------------------------

AMBA_EP_OUT = 0x01
AMBA_EP_IN = 0x81
ASCII_REPLY_BYTES = 64
_FIELD = re.compile(r"[0-9A-Za-z._:-]*")


def ascii_frame(command: str, payload: str, declared_len: int | None = None) -> bytes:
    """``@Cmd;<len>;<payload>;#``. ``declared_len`` for commands whose length field
    is not the payload's (``@Stm`` declares 6 for an 8-character payload)."""
    if not re.fullmatch(r"[A-Za-z]{3}", command) or not _FIELD.fullmatch(payload):
        raise ValueError(f"cannot frame {command!r} with {payload!r}")
    length = len(payload) if declared_len is None else declared_len
    return f"@{command};{length};{payload};#".encode("ascii")


@dataclass(frozen=True)
class AsciiReply:
    command: str
    fields: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not any("ERROR" in f.upper() for f in (self.command, *self.fields))


def parse_ascii_reply(raw: bytes, expect: str) -> AsciiReply:
    """A reply ``@Cmd;...;#`` (trailing NULs and whitespace ignored) to command ``expect``."""
    text_bytes = raw.rstrip(b"\0 \r\n\t")
    try:
        text = text_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(f"reply to @{expect} is not ASCII: {raw[:32].hex()}") from None
    if not text.isprintable() or not text.startswith("@") or not text.endswith("#"):
        raise ProtocolError(f"reply to @{expect} is not a '@...#' frame: {text[:40]!r}")
    parts = text[1:-1].split(";")
    if parts and parts[-1] == "":
        parts = parts[:-1]
    command = parts[0] if parts else ""
    reply = AsciiReply(command, tuple(parts[1:]))
    if reply.ok and command != expect:
        raise ProtocolError(f"reply to @{expect} is for @{command}")
    return reply


def ascii_value(reply: AsciiReply, what: str) -> str:
    """The payload of ``@Cmd;<len>;<payload>;#``, checked against its declared length."""
    if not reply.ok:
        raise ProtocolError(f"camera refused @{reply.command}: {';'.join(reply.fields)[:40]!r}")
    if len(reply.fields) != 2 or not reply.fields[0].isdigit():
        raise ProtocolError(f"{what}: reply @{reply.command} has fields {reply.fields!r}")
    value = reply.fields[1]
    if int(reply.fields[0]) != len(value) or not value or not _FIELD.fullmatch(value):
        raise ProtocolError(f"{what}: {value!r} does not match its declared length {reply.fields[0]}")
    return value


def ascii_clock_frames(local: datetime) -> tuple[bytes, bytes]:
    """``@Sdt;8;YYYYMMDD;#`` and ``@Stm;6;HHMMSS00;#`` (the length field says 6)."""
    return (ascii_frame("Sdt", local.strftime("%Y%m%d")),
            ascii_frame("Stm", local.strftime("%H%M%S") + "00", declared_len=6))


def parse_ascii_clock(date_value: str, time_value: str) -> datetime:
    """``YYYYMMDD`` + ``HHMMSS[00]`` -> naive wall-clock time (ASSUMED read format, see README)."""
    if not re.fullmatch(r"\d{8}", date_value) or not re.fullmatch(r"\d{6}(\d{2})?", time_value):
        raise ProtocolError(f"camera clock {date_value!r} {time_value!r} is not YYYYMMDD HHMMSS")
    try:
        return datetime.strptime(date_value + time_value[:6], "%Y%m%d%H%M%S")
    except ValueError:
        raise ProtocolError(f"camera clock {date_value} {time_value} is not a real time") from None
