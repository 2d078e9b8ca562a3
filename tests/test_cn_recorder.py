"""The cn_recorder driver against fake cameras (a real pyusb backend, a fake SCSI link)."""

from __future__ import annotations

import ctypes
import errno
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.cn_recorder import frames
from drivers.cn_recorder.driver import CnRecorder
from drivers.cn_recorder.frames import Dv16, ProtocolError, TextEncoding, ZfyInfo
from drivers.cn_recorder.transport import SgIoHdr, SgIoLink
from fake_usb import FakeAmbarella, FakeDv16, FakeStation, FakeUsbBackend
from vaultd.driverapi import (
    CameraModel,
    DeviceInfo,
    Match,
    StorageModeSwitch,
    UnlockResult,
    Unlockable,
    UsbId,
    capabilities,
    inquiry_key,
)
from vaultd.errors import DeviceGoneError, DriverError
from vaultd.registry import Registry, load_drivers

AMBA = UsbId(0x4255, 0x0001)
STATION = datetime(2026, 3, 1, 2, 0, 0, tzinfo=UTC)  # 10:00 in Shanghai
ZHANG = ZfyInfo(serial="3201001", officer_id="012345", officer_name="张三丰",
                unit_id="320100000000", unit_name="南京市城市管理行政执法局")


def _dv16_dev(sg: str = "/dev/sg3", model: CameraModel | None = None) -> DeviceInfo:
    return DeviceInfo(usb=UsbId(0x1234, 0x5678), usb_serial="0123456789", port="pci-0:2",
                      sg_device=sg, inquiry=inquiry_key("DV16", "DEVICE V1.00"), model=model)


def _amba_dev(cam: FakeAmbarella, model: CameraModel | None = None) -> DeviceInfo:
    return DeviceInfo(usb=AMBA, usb_serial=cam.usb_serial, port=f"usb-0:{cam.address}",
                      usb_bus=cam.bus, usb_address=cam.address, model=model)


def _setup(*cams: FakeAmbarella, dv16: dict[str, FakeDv16] | None = None,
           station: FakeStation | None = None) -> tuple[Registry, CnRecorder]:
    drv = CnRecorder(usb_backend=FakeUsbBackend(*cams), scsi_opener=lambda path: (dv16 or {})[path],
                     clock=station or FakeStation(STATION))
    reg = Registry()
    reg.add(drv)
    return reg, drv


def _model(**kw: object) -> CameraModel:
    base: dict[str, object] = {"name": "Test cam", "driver": "cn_recorder", "match": Match(usb=(AMBA,))}
    base.update(kw)
    return CameraModel(**base)  # type: ignore[arg-type]


# --- frames: encoders and decoders -------------------------------------------------

def test_dv16_cdb_layout() -> None:
    cdb = frames.dv16_cdb(Dv16.GET_DEV_INFO, write=False, length=89)
    assert cdb == bytes([0xFD, 0x81, 0, 0, 0, 3, 0, 89]) + bytes(8)
    assert frames.dv16_cdb(Dv16.SYNC_DEV_TIME, write=True, length=8)[:8] == bytes([0xFB, 0x82, 0, 0, 0, 5, 0, 8])
    assert frames.parse_dv16_cdb(cdb) == (Dv16.GET_DEV_INFO, False, 89)
    with pytest.raises(ProtocolError):
        frames.parse_dv16_cdb(bytes(16))


def test_ambarella_frames() -> None:
    login = frames.amba_login_frame("1234")
    assert len(login) == 64 and login.startswith(bytes.fromhex("a1120012") + b"1234") and login[8:] == bytes(56)
    assert frames.amba_disk_mode_frame() == bytes.fromhex("a1230023") + bytes(60)
    for bad in ("", "密码", "x" * 61, "a\nb"):
        with pytest.raises(ValueError):
            frames.amba_login_frame(bad)
    day, tod = frames.ascii_clock_frames(datetime(2026, 3, 1, 10, 5, 9))
    assert (day, tod) == (b"@Sdt;8;20260301;#", b"@Stm;6;10050900;#")  # @Stm declares 6 for 8 characters
    assert frames.ascii_frame("Gdv", "00000000") == b"@Gdv;8;00000000;#"


def test_sys_time_round_trip() -> None:
    t = datetime(2026, 3, 1, 10, 5, 9)
    raw = frames.encode_sys_time(t)
    assert raw == bytes([0xEA, 0x07, 3, 1, 10, 5, 9, 0])
    assert frames.decode_sys_time(raw) == t
    with pytest.raises(ProtocolError, match="not a real time"):
        frames.decode_sys_time(bytes([0xEA, 0x07, 13, 1, 10, 5, 9, 0]))


@pytest.mark.parametrize("encoding", ["gb18030", "gbk", "utf-8"])
@pytest.mark.parametrize("sizes", [frames.ZFY_PACKED, frames.ZFY_WITH_NUL])
def test_zfy_info_keeps_chinese_names(encoding: str, sizes: tuple[int, ...]) -> None:
    raw = frames.encode_zfy_info(ZHANG if encoding != "utf-8" else
                                 ZfyInfo("3201001", "012345", "张三丰", "320100000000", "南京城管"), sizes, encoding)
    info = frames.decode_zfy_info(raw)
    assert info.officer_name == "张三丰"
    assert (info.serial, info.officer_id, info.unit_id) == ("3201001", "012345", "320100000000")
    assert info.unit_name in ("南京市城市管理行政执法局", "南京城管")


def test_text_cut_mid_character_and_bad_bytes() -> None:
    name = "南京市城市管理行政执法局".encode("gb18030")  # 24 bytes
    assert frames.decode_text(name[:23]) == "南京市城市管理行政执法"  # the cut half character is dropped
    utf8 = "城市管理".encode()
    assert frames.decode_text(utf8[:-1]) == "城市管"
    assert frames.decode_text(b"\xff\xfe\x80abc") is not None  # junk: replaced, never a crash
    assert "\ufffd" in (frames.decode_text(b"ab\x81\x20cd", TextEncoding.GB18030) or "")
    assert frames.decode_text(b"\0junk after NUL") is None
    assert frames.decode_text("李\u202e四".encode()) == "李\ufffd四"  # bidi override neutralised, name kept
    assert frames.decode_text("张三".encode("gbk"), TextEncoding.UTF8) is not None


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=120))
def test_device_info_decoder_never_crashes(raw: bytes) -> None:
    try:
        info = frames.decode_zfy_info(raw)
    except ProtocolError:
        return
    for value in (info.serial, info.officer_name, info.unit_name):
        assert value is None or isinstance(value, str)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=70), st.sampled_from(["Gdv", "Ver", "Stm"]))
def test_ascii_reply_parser_never_crashes(raw: bytes, cmd: str) -> None:
    try:
        frames.ascii_value(frames.parse_ascii_reply(raw, cmd), "x")
    except ProtocolError:
        pass


# --- DV16 over vendor SCSI --------------------------------------------------------------

def test_dv16_identity_with_chinese_names_through_the_registry() -> None:
    cam = FakeDv16(ZHANG)
    reg, drv = _setup(dv16={"/dev/sg3": cam})
    sel = reg.select(_dv16_dev())
    assert sel is not None and sel.driver is drv
    ident = reg.call(drv, "identify", sel.device)
    assert ident.serial == "3201001" and ident.officer_id == "012345"
    assert ident.officer_name == "张三丰" and ident.unit == "南京市城市管理行政执法局"
    assert ident.unit_id == "320100000000" and ident.device_id == "JL2300" and ident.model == "DV16"
    assert cam.log == ["INIT", "ID_CODE", "GET_DEV_INFO"] and cam.closed == 1


def test_dv16_utf8_camera_and_94_byte_layout() -> None:
    cam = FakeDv16(ZfyInfo("3201001", "012345", "张三丰", "320100000000", "南京城管支队"),
                   layout=frames.ZFY_WITH_NUL, text_encoding="utf-8")
    model = _model(match=Match(inquiry_pattern="dv16device.*"), options=(("zfy_layout", "with_nul"),))
    reg, drv = _setup(dv16={"/dev/sg3": cam})
    reg.add_model(model)
    sel = reg.select(_dv16_dev())
    assert sel is not None and sel.model == model
    ident = reg.call(drv, "identify", sel.device)
    assert (ident.officer_name, ident.model) == ("张三丰", "Test cam")


@pytest.mark.parametrize("configured, expected", [
    ("000000", UnlockResult.UNLOCKED), ("999999", UnlockResult.REFUSED), (None, UnlockResult.NOT_NEEDED),
])
def test_dv16_password_is_compared_on_the_host(monkeypatch: pytest.MonkeyPatch, configured: str | None,
                                               expected: UnlockResult) -> None:
    reg, drv = _setup(dv16={"/dev/sg3": FakeDv16(ZHANG, password="000000")})
    model = _model(match=Match(inquiry_pattern="dv16.*"), password_env="CN_TEST_PW")
    if configured is None:
        monkeypatch.delenv("CN_TEST_PW", raising=False)
    else:
        monkeypatch.setenv("CN_TEST_PW", configured)
    assert reg.unlock(drv, _dv16_dev(model=model)) is expected


def test_dv16_storage_mode_clock_and_battery() -> None:
    cam = FakeDv16(ZHANG)
    reg, drv = _setup(dv16={"/dev/sg3": cam})
    dev = _dv16_dev()
    assert reg.call(drv, "read_clock", dev) is None  # the command set cannot read the clock
    assert reg.call(drv, "set_clock", dev, STATION) is True
    assert cam.time_set == datetime(2026, 3, 1, 10, 0, 0)  # the camera's wall clock, Shanghai
    assert reg.call(drv, "power_state", dev).battery_percent == 76
    assert reg.enter_storage_mode(drv, dev) is True and cam.msdc
    assert reg.enter_storage_mode(drv, DeviceInfo(mount_root=Path("/mnt"), sg_device="/dev/sg3")) is False


def test_dv16_with_another_password_is_not_switched(monkeypatch: pytest.MonkeyPatch) -> None:
    cam = FakeDv16(ZHANG, password="000000")
    reg, drv = _setup(dv16={"/dev/sg3": cam})
    monkeypatch.setenv("CN_TEST_PW", "123456")
    model = _model(match=Match(inquiry_pattern="dv16.*"), password_env="CN_TEST_PW")
    with pytest.raises(DriverError, match="not the one configured"):
        reg.enter_storage_mode(drv, _dv16_dev(model=model))
    assert not cam.msdc
    monkeypatch.setenv("CN_TEST_PW", "000000")
    assert reg.enter_storage_mode(drv, _dv16_dev(model=model)) is True and cam.msdc


def test_dv16_without_a_memory_card_is_not_switched() -> None:
    cam = FakeDv16(ZHANG, sd_present=False)
    reg, drv = _setup(dv16={"/dev/sg3": cam})
    with pytest.raises(DriverError, match="no memory card"):
        reg.enter_storage_mode(drv, _dv16_dev())
    assert not cam.msdc


@pytest.mark.parametrize("cam, method, message", [
    (FakeDv16(ZHANG, battery=250), "power_state", "battery level 250"),
    (FakeDv16(ZHANG, id_code=b"\x01\x02ab\xff\x00"), "identify", "ID code"),
    (FakeDv16(ZHANG, script=["ok", "ok", "ok", "ok", "short"]), "identify", "device info is 2 bytes"),
    (FakeDv16(ZHANG, script=["ok", "error"]), "identify", "status 1 for INIT"),
    (FakeDv16(ZfyInfo(None, "1", None, None, None), id_code=bytes(6)), "identify", "no serial"),
])
def test_dv16_malformed_replies_are_driver_errors(cam: FakeDv16, method: str, message: str) -> None:
    reg, drv = _setup(dv16={"/dev/sg3": cam})
    dev = _dv16_dev()
    dev = DeviceInfo(sg_device=dev.sg_device, inquiry=dev.inquiry) if "serial" in message else dev
    with pytest.raises(DriverError, match=message) as caught:
        reg.call(drv, method, dev)
    assert not isinstance(caught.value, DeviceGoneError)


def test_dv16_unplugged_mid_identify_is_device_gone() -> None:
    cam = FakeDv16(ZHANG, script=["ok", "ok", "ok", "gone"])
    reg, drv = _setup(dv16={"/dev/sg3": cam})
    with pytest.raises(DeviceGoneError):
        reg.call(drv, "identify", _dv16_dev())
    assert cam.closed == 1  # closed even so


def test_sg_io_link_refuses_other_paths_and_matches_the_kernel_struct() -> None:
    with pytest.raises(DriverError, match="not a SCSI generic device"):
        SgIoLink.open("/etc/passwd")
    if ctypes.sizeof(ctypes.c_void_p) == 8:
        assert ctypes.sizeof(SgIoHdr) == 88  # sizeof(struct sg_io_hdr) on 64-bit Linux


# --- Ambarella, control transfers -------------------------------------------------------

@pytest.mark.parametrize("configured, expected", [
    ("12345678", UnlockResult.UNLOCKED), ("87654321", UnlockResult.REFUSED), (None, UnlockResult.NEEDS_PASSWORD),
])
def test_ambarella_login(monkeypatch: pytest.MonkeyPatch, configured: str | None, expected: UnlockResult) -> None:
    cam = FakeAmbarella(FakeStation(STATION))
    reg, drv = _setup(cam)
    if configured is None:
        monkeypatch.delenv("CN_TEST_PW", raising=False)
    else:
        monkeypatch.setenv("CN_TEST_PW", configured)
    sel = reg.select(_amba_dev(cam))
    assert sel is not None
    assert reg.unlock(drv, _amba_dev(cam, _model(password_env="CN_TEST_PW"))) is expected
    assert cam.logged_in is (expected is UnlockResult.UNLOCKED)


def test_ambarella_disk_mode_switch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cam = FakeAmbarella(FakeStation(STATION))
    reg, drv = _setup(cam)
    pw = tmp_path / "pw"
    pw.write_text("12345678\n")
    pw.chmod(0o600)
    model = _model(password_file=str(pw))
    dev = _amba_dev(cam, model)
    ident = reg.call(drv, "identify", dev)
    assert (ident.serial, ident.model) == ("AMBA0001", "Test cam")
    assert reg.call(drv, "read_clock", dev) is None and reg.call(drv, "set_clock", dev, STATION) is False
    assert reg.enter_storage_mode(drv, dev) is True
    assert cam.disk_mode and cam.log == ["login ok", "disk mode"]
    mounted = DeviceInfo(usb=AMBA, usb_serial="AMBA0001", mount_root=tmp_path, model=model)
    assert reg.call(drv, "open_root", mounted) == tmp_path
    assert reg.call(drv, "power_state", mounted).storage_total_bytes > 0


def test_ambarella_wrong_password_keeps_it_locked(monkeypatch: pytest.MonkeyPatch) -> None:
    cam = FakeAmbarella(FakeStation(STATION))
    reg, drv = _setup(cam)
    monkeypatch.setenv("CN_TEST_PW", "nope")
    with pytest.raises(DriverError, match="did not accept the password"):
        reg.enter_storage_mode(drv, _amba_dev(cam, _model(password_env="CN_TEST_PW")))
    assert not cam.disk_mode


def test_open_root_before_the_switch_says_what_to_do() -> None:
    cam = FakeAmbarella(FakeStation(STATION))
    reg, drv = _setup(cam)
    with pytest.raises(DriverError, match="not in mass-storage mode"):
        reg.call(drv, "open_root", _amba_dev(cam))


@pytest.mark.parametrize("script, gone", [(["gone"], True), (["ok", "gone"], True), (["ok", "timeout"], False),
                                          (["ok", "short"], False)])
def test_ambarella_faults_mid_login(monkeypatch: pytest.MonkeyPatch, script: list[str], gone: bool) -> None:
    cam = FakeAmbarella(FakeStation(STATION), script=list(script))
    reg, drv = _setup(cam)
    monkeypatch.setenv("CN_TEST_PW", "12345678")
    with pytest.raises(DriverError) as caught:
        reg.unlock(drv, _amba_dev(cam, _model(password_env="CN_TEST_PW")))
    assert isinstance(caught.value, DeviceGoneError) is gone
    assert caught.value.message.startswith("driver 'cn_recorder' failed") or "status reply is 2 bytes" \
        in caught.value.message


def test_password_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    cam = FakeAmbarella(FakeStation(STATION))
    reg, drv = _setup(cam)
    pw = tmp_path / "pw"
    pw.write_text("12345678")
    pw.chmod(0o644)
    with pytest.raises(Exception, match="chmod 600"):
        reg.unlock(drv, _amba_dev(cam, _model(password_file=str(pw))))


# --- Ambarella, ASCII over bulk ------------------------------------------------------------

def test_ascii_camera_identity_clock_offset_and_sync() -> None:
    station = FakeStation(STATION)
    cam = FakeAmbarella(station, variant="ascii", clock_offset_s=90)
    reg, drv = _setup(cam, station=station)
    dev = _amba_dev(cam)
    ident = reg.call(drv, "identify", dev)
    assert (ident.serial, ident.device_id) == ("A9CAM042", "A9CAM042")
    assert cam.log == ["@Ver", "@Gdv"]
    assert reg.call(drv, "read_clock", dev).offset_s == 90.0
    assert reg.call(drv, "set_clock", dev, STATION) is True
    assert cam.clock_offset_s == 0.0
    assert reg.call(drv, "read_clock", dev).offset_s == 0.0


def test_ascii_camera_without_clock_read_says_cannot() -> None:
    cam = FakeAmbarella(FakeStation(STATION), variant="ascii", clock_readable=False)
    reg, drv = _setup(cam)
    assert reg.call(drv, "read_clock", _amba_dev(cam)) is None


def test_ascii_storage_mode_needs_the_right_password(monkeypatch: pytest.MonkeyPatch) -> None:
    cam = FakeAmbarella(FakeStation(STATION), variant="ascii")
    reg, drv = _setup(cam)
    model = _model(password_env="CN_TEST_PW")
    monkeypatch.delenv("CN_TEST_PW", raising=False)
    with pytest.raises(DriverError, match="needs its password"):
        reg.enter_storage_mode(drv, _amba_dev(cam, model))
    monkeypatch.setenv("CN_TEST_PW", "00000000")
    with pytest.raises(DriverError, match="refused the password"):
        reg.enter_storage_mode(drv, _amba_dev(cam, model))
    monkeypatch.setenv("CN_TEST_PW", "12345678")
    assert reg.enter_storage_mode(drv, _amba_dev(cam, model)) is True and cam.disk_mode


@pytest.mark.parametrize("script, message", [
    (["ok", "ok", "garbage"], "reply to @Gdv is not ASCII"),
    (["ok", "ok", "short"], "not a '@...#' frame"),
    (["ok", "ok", "error"], "refused @Gdv"),
    (["garbage"], "@Ver"),
])
def test_ascii_malformed_replies_are_clear_driver_errors(script: list[str], message: str) -> None:
    cam = FakeAmbarella(FakeStation(STATION), variant="ascii", script=list(script))
    reg, drv = _setup(cam)
    with pytest.raises(DriverError, match=message):
        reg.call(drv, "identify", _amba_dev(cam))


def test_unplug_mid_transfer_is_device_gone_and_it_leaves_the_bus() -> None:
    cam = FakeAmbarella(FakeStation(STATION), variant="ascii", script=["ok", "ok", "gone"])
    reg, drv = _setup(cam)
    with pytest.raises(DeviceGoneError) as caught:
        reg.call(drv, "identify", _amba_dev(cam))
    assert isinstance(caught.value.__cause__, OSError) and caught.value.__cause__.errno == errno.ENODEV
    with pytest.raises(DeviceGoneError):  # docked again under the old address: not there any more
        reg.call(drv, "identify", _amba_dev(cam))


# --- two cameras with the same serial ------------------------------------------------------------

def test_two_cameras_with_the_same_serial_are_never_mixed_up() -> None:
    station = FakeStation(STATION)
    one = FakeAmbarella(station, variant="ascii", address=5, usb_serial="SAME", device_id="CAM00001")
    two = FakeAmbarella(station, variant="ascii", address=9, usb_serial="SAME", device_id="CAM00002")
    reg, drv = _setup(one, two)
    assert reg.call(drv, "identify", _amba_dev(one)).device_id == "CAM00001"
    assert reg.call(drv, "identify", _amba_dev(two)).device_id == "CAM00002"
    by_serial_only = DeviceInfo(usb=AMBA, usb_serial="SAME")
    with pytest.raises(DriverError, match="nothing tells them apart"):
        reg.call(drv, "identify", by_serial_only)


# --- registration --------------------------------------------------------------------------------

def test_installed_and_chosen_for_its_devices() -> None:
    reg = load_drivers()
    drv = reg.get("cn_recorder")
    assert isinstance(drv, CnRecorder)
    assert capabilities(drv) == {"unlock", "storage_mode"}
    assert isinstance(drv, Unlockable) and isinstance(drv, StorageModeSwitch)
    assert reg.choose(DeviceInfo(usb=AMBA)) is drv
    assert reg.choose(_dv16_dev()) is drv
    assert reg.choose(DeviceInfo(inquiry=inquiry_key("Kingston", "DataTraveler 3.0"))) is None
