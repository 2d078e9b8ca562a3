"""Driver discovery, matching and the error fence around driver code."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drivers.generic_msc.driver import GenericMassStorage
from drivers.sim.driver import SimulatedCamera
from vaultd.driverapi import (
    CameraIdentity,
    ClockReading,
    DeviceInfo,
    Driver,
    Match,
    PowerState,
    UsbId,
    specificity,
)
from vaultd.errors import ConfigError, DeviceGoneError, DriverError
from vaultd.registry import Registry, load_drivers

CAM = UsbId(0x4255, 0x0001)
OTHER = UsbId(0x0781, 0x5567)
DEV = DeviceInfo(usb=CAM, usb_serial="AB12CD34", port="pci-0000:00:14.0-usb-0:2:1.0",
                 fs_label="CAM01", fs_type="vfat", mount_root=Path("/nonexistent"),
                 root_names=frozenset({"DCIM", "vaultd-camera.json"}))

USB_SERIAL = Match(usb=(CAM,), serial_pattern=r"AB[0-9A-F]+")
USB_ONLY = Match(usb=(CAM,))
SERIAL_ONLY = Match(serial_pattern=r"AB.*")
IDENTITY = Match(identity_file="vaultd-camera.json")
LABEL = Match(fs_label_pattern=r"CAM[0-9]{2}")


# --- specificity -------------------------------------------------------------

def test_specificity_ranks_usb_serial_over_usb_over_identity_over_label() -> None:
    scores = [specificity(m, DEV) for m in (USB_SERIAL, USB_ONLY, IDENTITY, LABEL)]
    assert None not in scores
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert len(set(scores)) == 4


def test_serial_pattern_alone_ranks_between_usb_and_identity_file() -> None:
    s = specificity(SERIAL_ONLY, DEV)
    assert s is not None
    assert specificity(USB_ONLY, DEV) > s > specificity(IDENTITY, DEV)  # type: ignore[operator]


@pytest.mark.parametrize("match, dev", [
    (Match(), DEV),                                                    # declares nothing
    (Match(usb=(OTHER,)), DEV),                                        # other VID:PID
    (USB_ONLY, DeviceInfo(usb=None)),                                  # no USB id seen
    (USB_SERIAL, DeviceInfo(usb=CAM, usb_serial="ZZ99")),              # serial differs
    (USB_SERIAL, DeviceInfo(usb=CAM, usb_serial=None)),                # serial missing
    (Match(serial_pattern="AB"), DEV),                                 # fullmatch, not search
    (IDENTITY, DeviceInfo(root_names=frozenset({"DCIM"}))),            # file absent
    (LABEL, DeviceInfo(fs_label="NO NAME")),                           # label differs
    (LABEL, DeviceInfo(fs_label=None)),                                # no label
    (Match(usb=(CAM,), fs_label_pattern="XYZ"), DEV),                  # every criterion must hold
])
def test_specificity_non_match_is_none(match: Match, dev: DeviceInfo) -> None:
    assert specificity(match, dev) is None


def test_specificity_equal_matches_tie() -> None:
    assert specificity(Match(usb=(OTHER, CAM)), DEV) == specificity(USB_ONLY, DEV)
    assert specificity(Match(fs_label_pattern=r"CAM\d+"), DEV) == specificity(LABEL, DEV)


def test_extra_criteria_add_specificity() -> None:
    both = Match(identity_file="vaultd-camera.json", fs_label_pattern="CAM01")
    assert specificity(both, DEV) > specificity(IDENTITY, DEV)  # type: ignore[operator]
    assert specificity(both, DEV) < specificity(SERIAL_ONLY, DEV)  # type: ignore[operator]


@pytest.mark.parametrize("kwargs", [
    {"serial_pattern": "(unclosed"},
    {"fs_label_pattern": "[z-a]"},
    {"identity_file": "../etc/passwd"},
    {"identity_file": ".."},
    {"usb": ("4255:0001",)},
])
def test_bad_match_data_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Match(**kwargs)


def test_usb_id_parse_and_range() -> None:
    assert UsbId.parse("4255:0001") == CAM
    assert str(CAM) == "4255:0001"
    for bad in ("42550001", "zz:01", ":01"):
        with pytest.raises(ValueError):
            UsbId.parse(bad)
    with pytest.raises(ValueError):
        UsbId(0x10000, 1)


def test_clock_reading_offset_and_awareness() -> None:
    station = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    reading = ClockReading(camera_time=station.replace(second=30), station_time=station)
    assert reading.offset_s == 30.0
    with pytest.raises(ValueError):
        ClockReading(camera_time=datetime(2024, 5, 1), station_time=station)


# --- fake drivers ------------------------------------------------------------

@dataclass
class FakeDriver:
    """Implements the Driver protocol; ``fault`` is raised from identify."""

    name: str
    match: Match
    fault: BaseException | None = None
    calls: list[str] = field(default_factory=list)

    def identify(self, dev: DeviceInfo) -> CameraIdentity:
        self.calls.append("identify")
        if self.fault is not None:
            raise self.fault
        return CameraIdentity(serial=dev.usb_serial)

    def open_root(self, dev: DeviceInfo) -> Path:
        return dev.mount_root or Path("/")

    def read_clock(self, dev: DeviceInfo) -> ClockReading | None:
        return None

    def set_clock(self, dev: DeviceInfo, now: datetime) -> bool:
        return False

    def power_state(self, dev: DeviceInfo) -> PowerState | None:
        return None

    def wipe_allowed(self, dev: DeviceInfo) -> bool:
        return False


def _registry(*drivers: Driver) -> Registry:
    reg = Registry()
    for d in drivers:
        reg.add(d)
    return reg


def test_choose_picks_the_most_specific_driver() -> None:
    fakes = [FakeDriver("a_label", LABEL), FakeDriver("b_ident", IDENTITY),
             FakeDriver("c_usb", USB_ONLY), FakeDriver("d_usb_serial", USB_SERIAL),
             FakeDriver("e_other", Match(usb=(OTHER,)))]
    reg = _registry(*fakes)
    assert reg.choose(DEV) is fakes[3]
    # the same camera with another serial falls back to the VID:PID driver
    assert reg.choose(DeviceInfo(usb=CAM, usb_serial="ZZ", fs_label="CAM01")) is fakes[2]
    # a folder with the identity file and a label: identity file wins
    assert reg.choose(DeviceInfo(fs_label="CAM01", root_names=frozenset({"vaultd-camera.json"}))) is fakes[1]


def test_choose_ties_are_broken_by_name() -> None:
    zed, alpha = FakeDriver("zed", USB_ONLY), FakeDriver("alpha", Match(usb=(OTHER, CAM)))
    assert _registry(zed, alpha).choose(DEV) is alpha
    assert _registry(alpha, zed).choose(DEV) is alpha


def test_unknown_usb_storage_gets_no_driver() -> None:
    reg = _registry(FakeDriver("cam", USB_SERIAL), SimulatedCamera(), GenericMassStorage())
    stick = DeviceInfo(usb=OTHER, usb_serial="4C530001", fs_label="KINGSTON", fs_type="vfat",
                       root_names=frozenset({"photos"}))
    assert reg.choose(stick) is None


def test_duplicate_driver_name_is_refused() -> None:
    reg = _registry(FakeDriver("x", LABEL))
    with pytest.raises(ConfigError):
        reg.add(FakeDriver("x", USB_ONLY))
    assert len(reg.drivers) == 1


# --- the error fence ---------------------------------------------------------

def test_driver_exception_becomes_driver_error() -> None:
    bad = FakeDriver("bad", USB_ONLY, fault=KeyError("serial"))
    with pytest.raises(DriverError) as caught:
        _registry(bad).call(bad, "identify", DEV)
    assert not isinstance(caught.value, DeviceGoneError)
    assert isinstance(caught.value.__cause__, KeyError)
    assert "bad" in caught.value.message and "identify" in caught.value.message


@pytest.mark.parametrize("code", [errno.EIO, errno.ENODEV, errno.ENXIO, errno.ENOTCONN])
def test_device_gone_errnos_become_device_gone(code: int) -> None:
    bad = FakeDriver("bad", USB_ONLY, fault=OSError(code, os.strerror(code)))
    with pytest.raises(DeviceGoneError) as caught:
        _registry(bad).call(bad, "identify", DEV)
    assert caught.value.__cause__ is bad.fault


def test_device_gone_found_in_the_cause_chain() -> None:
    try:
        try:
            raise OSError(errno.EIO, "I/O error")
        except OSError as inner:
            raise RuntimeError("read failed") from inner
    except RuntimeError as outer:
        fault = outer
    bad = FakeDriver("bad", USB_ONLY, fault=fault)
    with pytest.raises(DeviceGoneError):
        _registry(bad).call(bad, "identify", DEV)


def test_other_os_errors_are_plain_driver_errors() -> None:
    bad = FakeDriver("bad", USB_ONLY, fault=PermissionError(errno.EACCES, "denied"))
    with pytest.raises(DriverError) as caught:
        _registry(bad).call(bad, "identify", DEV)
    assert type(caught.value) is DriverError


def test_call_returns_the_driver_result() -> None:
    good = FakeDriver("good", USB_ONLY)
    assert _registry(good).call(good, "identify", DEV) == CameraIdentity(serial="AB12CD34")


# --- loading -----------------------------------------------------------------

@dataclass
class FakeEntryPoint:
    name: str
    value: str
    target: Any

    def load(self) -> Any:
        if isinstance(self.target, BaseException):
            raise self.target
        return self.target


def test_broken_entry_points_are_skipped_and_listed(caplog: pytest.LogCaptureFixture) -> None:
    def broken_constructor() -> Driver:
        raise RuntimeError("needs hardware")

    eps = [
        FakeEntryPoint("broken_import", "nowhere.driver:Cam", ImportError("No module named 'nowhere'")),
        FakeEntryPoint("broken_init", "x.driver:Cam", broken_constructor),
        FakeEntryPoint("not_a_driver", "x.driver:Thing", object),
        FakeEntryPoint("sim", "drivers.sim.driver:SimulatedCamera", SimulatedCamera),
    ]
    with caplog.at_level(logging.ERROR, logger="vaultd.registry"):
        reg = load_drivers(eps)
    assert [d.name for d in reg.drivers] == ["sim"]
    assert [name for name, _ in reg.failed] == ["broken_import", "broken_init", "not_a_driver"]
    assert "No module named" in reg.failed[0][1]
    assert "needs hardware" in reg.failed[1][1]
    assert sum("failed to load" in r.getMessage() for r in caplog.records) == 3
    assert all(r.exc_info for r in caplog.records)


def test_installed_entry_points_are_found() -> None:
    reg = load_drivers()
    names = {d.name for d in reg.drivers}
    assert {"sim", "generic_msc"} <= names
    assert reg.failed == []
    assert isinstance(reg.get("sim"), SimulatedCamera)


# --- generic mass storage ----------------------------------------------------

def test_generic_msc_matches_nothing_by_default() -> None:
    reg = _registry(GenericMassStorage())
    for dev in (DEV, DeviceInfo(usb=OTHER, usb_serial="1", fs_label="NO NAME"), DeviceInfo()):
        assert reg.choose(dev) is None


def test_generic_msc_configured_model_matches_and_identifies() -> None:
    drv = GenericMassStorage(models=[Match(usb=(OTHER,)), Match(fs_label_pattern=r"CAM\d\d")])
    reg = _registry(drv, FakeDriver("vendor", USB_SERIAL))
    assert reg.choose(DeviceInfo(usb=OTHER, usb_serial="S1")) is drv
    assert reg.choose(DeviceInfo(fs_label="CAM07")) is drv
    assert reg.choose(DEV) is not drv  # the vendor driver is more specific for its camera
    ident = drv.identify(DeviceInfo(usb=OTHER, usb_serial="S1"))
    assert (ident.serial, ident.model) == ("S1", "0781:5567")
    assert drv.identify(DeviceInfo(fs_label="CAM07")).serial == "CAM07"
    assert drv.read_clock(DEV) is None
    assert drv.set_clock(DEV, datetime.now(UTC)) is False


# --- the simulated camera ----------------------------------------------------

def _sim_device(root: Path) -> DeviceInfo:
    return DeviceInfo(mount_root=root, fs_type="dir", root_names=frozenset(os.listdir(root)))


@pytest.mark.slow
def test_sim_driver_against_a_simulated_camera(tmp_path: Path) -> None:
    from vaultd.simulate import simulate_camera

    cam = simulate_camera(tmp_path / "cam", clips=1, seconds=1.0, clock_offset_s=30)
    dev = _sim_device(cam.root)
    reg = load_drivers([FakeEntryPoint("sim", "drivers.sim.driver:SimulatedCamera", SimulatedCamera),
                        FakeEntryPoint("generic_msc", "drivers.generic_msc.driver:GenericMassStorage",
                                       GenericMassStorage)])
    drv = reg.choose(dev)
    assert isinstance(drv, SimulatedCamera)

    ident = reg.call(drv, "identify", dev)
    assert (ident.serial, ident.officer_id, ident.clock_offset_s) == ("3201001", "012345", 30.0)
    assert ident.simulated
    assert reg.call(drv, "open_root", dev) == dev.mount_root

    reading = reg.call(drv, "read_clock", dev)
    assert reading.offset_s == pytest.approx(30.0, abs=1.0)

    assert reg.call(drv, "set_clock", dev, datetime.now(UTC)) is True
    assert reg.call(drv, "read_clock", dev).offset_s == pytest.approx(0.0, abs=1.0)
    assert reg.call(drv, "identify", dev).clock_offset_s == 0.0
    doc = json.loads((tmp_path / "cam" / "vaultd-camera.json").read_text(encoding="utf-8"))
    assert doc["serial"] == "3201001" and doc["clock_offset_s"] == 0
    assert sorted(p.name for p in (tmp_path / "cam").iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("content, expected", [
    (b"[1, 2]", DriverError),                                      # not an object
    (b"{not json", DriverError),
    (b'{"serial": "' + b"9" * 70000 + b'"}', DriverError),          # over the size cap
    (json.dumps({"serial": ["x"], "model": "M"}).encode(), DriverError),  # serial wrong type
])
def test_sim_driver_refuses_bad_identity_files(tmp_path: Path, content: bytes,
                                               expected: type[Exception]) -> None:
    (tmp_path / "vaultd-camera.json").write_bytes(content)
    drv = SimulatedCamera()
    with pytest.raises(expected):
        _registry(drv).call(drv, "identify", _sim_device(tmp_path))


def test_sim_driver_types_device_fields(tmp_path: Path) -> None:
    doc = {"serial": 3201001, "model": "M\u202e1", "officer_id": "x" * 500,
           "clock_offset_s": True, "unit": "un\u0007it"}
    (tmp_path / "vaultd-camera.json").write_text(json.dumps(doc), encoding="utf-8")
    ident = SimulatedCamera().identify(_sim_device(tmp_path))
    assert ident.serial == "3201001"
    assert ident.model is None and ident.officer_id is None and ident.unit is None
    assert ident.clock_offset_s is None  # a bool is not a number of seconds
    (tmp_path / "vaultd-camera.json").write_text('{"serial": "1", "clock_offset_s": NaN}', encoding="utf-8")
    assert SimulatedCamera().identify(_sim_device(tmp_path)).clock_offset_s is None
    assert SimulatedCamera().read_clock(_sim_device(tmp_path)) is None


def test_sim_driver_does_not_follow_a_symlinked_identity_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"serial": "stolen"}', encoding="utf-8")
    cam = tmp_path / "cam"
    cam.mkdir()
    (cam / "vaultd-camera.json").symlink_to(secret)
    drv = SimulatedCamera()
    with pytest.raises(DriverError):
        _registry(drv).call(drv, "identify", _sim_device(cam))


# --- camera models from devices.toml ---------------------------------------------

REFERENCE = Path(__file__).resolve().parents[1] / "config" / "devices.toml"
STICK = DeviceInfo(usb=OTHER, usb_serial="4C530001", fs_label="KINGSTON", fs_type="vfat",
                   root_names=frozenset({"DCIM"}))


def _devices_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "devices.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_reference_devices_file_is_valid_commented_and_its_examples_parse() -> None:
    from vaultd import devicemodels

    assert devicemodels.load(REFERENCE) == ()  # every example is commented out
    text = REFERENCE.read_text(encoding="utf-8")
    uncommented = "\n".join(line[2:] if re.match(r"# (\[\[?model|[a-z_]+ = )", line) else line
                            for line in text.splitlines())
    models = devicemodels.parse(uncommented, "reference")
    assert [m.driver for m in models] == ["generic_msc", "cn_recorder", "cn_recorder"]
    assert models[2].option("text_encoding") == "gb18030"
    reg = load_drivers()
    for m in models:
        reg.add_model(m)


def test_a_model_added_in_toml_matches_what_no_shipped_driver_did(tmp_path: Path) -> None:
    reg = load_drivers()
    assert reg.select(STICK) is None
    path = _devices_file(tmp_path, """
[[model]]
name = "Agency cam 7"
driver = "generic_msc"
usb = ["0781:5567"]
fs_label_pattern = "KING.*"
vendor = "SanDisk OEM"
camera_tz = "Asia/Urumqi"
wipe_allowed = true
name_patterns = ['^(?P<officer>\\d{6})_(?P<ts>\\d{14})\\.mp4$']
""")
    reg.load_models(path)
    sel = reg.select(STICK)
    assert sel is not None and sel.driver.name == "generic_msc" and sel.model is not None
    assert sel.model.name == "Agency cam 7" and sel.device.model == sel.model
    ident = reg.call(sel.driver, "identify", sel.device)
    assert (ident.serial, ident.model, ident.vendor, ident.camera_tz) == \
        ("4C530001", "Agency cam 7", "SanDisk OEM", "Asia/Urumqi")
    assert reg.call(sel.driver, "wipe_allowed", sel.device) is True
    assert reg.call(sel.driver, "wipe_allowed", STICK) is False  # not without the model
    from vaultd import devicemodels
    pats = devicemodels.name_patterns(reg.models)
    assert [p.model for p in pats] == ["Agency cam 7"]


def test_most_specific_match_wins_across_drivers_and_models(tmp_path: Path) -> None:
    reg = load_drivers()
    amba = DeviceInfo(usb=CAM, usb_serial="AB12CD34", fs_label="CAM01")
    assert reg.choose(amba) is reg.get("cn_recorder")  # built-in match on 4255:0001
    reg.load_models(_devices_file(tmp_path, """
[[model]]
name = "label only"
driver = "generic_msc"
fs_label_pattern = "CAM[0-9]{2}"

[[model]]
name = "one batch by serial"
driver = "generic_msc"
usb = ["4255:0001"]
serial_pattern = "AB[0-9A-F]+"
"""))
    sel = reg.select(amba)
    assert sel is not None and sel.model is not None and sel.model.name == "one batch by serial"
    other_serial = DeviceInfo(usb=CAM, usb_serial="ZZ", fs_label="CAM01")
    sel = reg.select(other_serial)  # USB id (built-in) beats the label-only model
    assert sel is not None and sel.driver.name == "cn_recorder" and sel.model is None
    sel = reg.select(DeviceInfo(fs_label="CAM02"))
    assert sel is not None and sel.model is not None and sel.model.name == "label only"


def test_at_equal_specificity_the_configured_model_wins(tmp_path: Path) -> None:
    reg = load_drivers()
    reg.load_models(_devices_file(tmp_path, '[[model]]\nname = "plain A9"\ndriver = "generic_msc"\n'
                                            'usb = ["4255:0001"]\n'))
    sel = reg.select(DeviceInfo(usb=CAM))
    assert sel is not None and sel.driver.name == "generic_msc"


@pytest.mark.parametrize("text, where", [
    ("[[model]\nname = 'x'", ["devices.toml", "not valid TOML"]),
    ("colour = 'red'", ["devices.toml", "'colour'"]),
    ("[[model]]\nname = 'A'\ndriver = 'generic_msc'\nusb = ['4255:0001']\ncolour = 'red'",
     ["devices.toml", "'A'", "'colour'", "unknown key"]),
    ("[[model]]\nname = 'A'\ndriver = 'generic_msc'\nusb = ['4255-0001']", ["'A'", "'usb'", "4255-0001"]),
    ("[[model]]\nname = 'A'\ndriver = 'generic_msc'\nusb = ['42550:1']", ["'A'", "'usb'"]),
    ("[[model]]\nname = 'A'\ndriver = 'generic_msc'", ["'A'", "at least one of"]),
    ("[[model]]\ndriver = 'generic_msc'\nusb = ['4255:0001']", ["#1", "'name'", "required"]),
    ("[[model]]\nname = 'A'\ndriver = 'generic_msc'\nserial_pattern = '(x'", ["'A'", "'serial_pattern'"]),
    ("[[model]]\nname = 'A'\ndriver = 'generic_msc'\nusb = ['4255:0001']\nwipe_allowed = 'yes'",
     ["'wipe_allowed'"]),
    ("[[model]]\nname = 'A'\ndriver = 'generic_msc'\nusb = ['4255:0001']\nname_patterns = ['(?P<when>x)']",
     ["'name_patterns'", "'when'"]),
    ("[[model]]\nname = 'A'\ndriver = 'generic_msc'\nusb = ['4255:0001']\ncamera_tz = 'Mars/Base'",
     ["'camera_tz'"]),
    ("[[model]]\nname = 'A'\ndriver = 'generic_msc'\nusb = ['4255:0001']\npassword_env = 'X'\n"
     "password_file = '/p'", ["'password_file'", "not both"]),
    ("[[model]]\nname = 'A'\ndriver = 'generic_msc'\nusb = ['4255:0001']\n[model.options]\nx = [1]",
     ["'options.x'"]),
    ("[[model]]\nname = 'A'\ndriver = 'generic_msc'\nusb = ['4255:0001']\n"
     "[[model]]\nname = 'A'\ndriver = 'sim'\nusb = ['4255:0001']", ["'A'", "two models"]),
    ("[[model]]\nname = 'A'\ndriver = 'nosuch'\nusb = ['4255:0001']", ["devices.toml", "'A'", "'driver'", "nosuch"]),
])
def test_bad_devices_files_name_file_model_and_key(tmp_path: Path, text: str, where: list[str]) -> None:
    reg = load_drivers()
    with pytest.raises(ConfigError) as caught:
        reg.load_models(_devices_file(tmp_path, text))
    for part in where:
        assert part in str(caught.value), (part, str(caught.value))
    assert reg.models == ()


def test_a_model_whose_driver_failed_to_load_is_skipped(tmp_path: Path) -> None:
    reg = load_drivers([FakeEntryPoint("cn_recorder", "x:Y", ImportError("no pyusb"))])
    reg.load_models(_devices_file(tmp_path, '[[model]]\nname = "A9"\ndriver = "cn_recorder"\n'
                                            'usb = ["4255:0001"]\n'))
    assert reg.models == () and reg.skipped_models == [("A9", "driver 'cn_recorder' failed to load")]


def test_where_the_devices_file_is_looked_up(tmp_path: Path) -> None:
    from vaultd import devicemodels

    assert devicemodels.locate(tmp_path) is None
    home_file = _devices_file(tmp_path, "")
    assert devicemodels.locate(tmp_path) == home_file
    other = tmp_path / "other.toml"
    with pytest.raises(ConfigError, match="does not exist"):
        devicemodels.locate(tmp_path, other)
    other.write_text("")
    assert devicemodels.locate(tmp_path, other) == other
    from vaultd.registry import load_registry
    assert load_registry(devicemodels.locate(tmp_path)).models == ()


def test_a_bad_model_late_in_the_file_adds_none_of_it(tmp_path: Path) -> None:
    reg = load_drivers()
    text = ('[[model]]\nname = "good"\ndriver = "generic_msc"\nusb = ["0781:5567"]\n'
            '[[model]]\nname = "bad"\ndriver = "nosuch"\nusb = ["0781:5567"]\n')
    with pytest.raises(ConfigError):
        reg.load_models(_devices_file(tmp_path, text))
    assert reg.models == () and reg.select(STICK) is None
