"""udev -> dock events: the pure decisions as tables, the pyudev glue under umockdev.

umockdev fakes /sys and udev's database for a subprocess without root; its
testbed (driven through libumockdev with ctypes, tests/data/hotplug_events.py)
delivers add/remove uevents to a default 'udev' netlink monitor.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vaultd.driverapi import UsbId
from vaultd.hotplug import Deduplicator, DockEvent, decide, decide_usb, dock_key, port_of

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent

CAM_PORT = "pci-0000:00:14.0-usb-0:2"
CAM_KEY = f"{CAM_PORT}|4255:0001|ZFY0001234"

PARTITION = {
    "SUBSYSTEM": "block", "DEVTYPE": "partition", "DEVNAME": "/dev/sdb1", "DISKSEQ": "17",
    "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host3/target3:0:0/3:0:0:0/block/sdb/sdb1",
    "ID_BUS": "usb", "ID_PATH": f"{CAM_PORT}:1.0-scsi-0:0:0:0", "ID_FS_TYPE": "vfat",
    "ID_FS_USAGE": "filesystem", "ID_FS_LABEL": "CAM01",
    "ID_VENDOR_ID": "4255", "ID_MODEL_ID": "0001", "ID_SERIAL_SHORT": "ZFY0001234",
}
USB_PARENT = {"idVendor": "4255", "idProduct": "0001", "serial": "ZFY0001234", "ID_PATH": CAM_PORT,
              "busnum": "1", "devnum": "7", "scsi_vendor": "DV16    ", "scsi_model": "DEVICE V1.00",
              "sg_device": "/dev/sg1"}


def with_(base: dict[str, str], **changes: str | None) -> dict[str, str]:
    out = dict(base)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


# (why, action, props, usb parent) -> expected key, or None when ignored
DECISIONS = [
    ("camera partition", "add", PARTITION, USB_PARENT, CAM_KEY),
    ("remove: sysfs gone, identity from udev's properties, same key", "remove", PARTITION, None, CAM_KEY),
    ("media inserted (change) counts as add", "change", PARTITION, USB_PARENT, CAM_KEY),
    ("exFAT card without a partition table (whole disk)", "add",
     with_(PARTITION, DEVTYPE="disk", ID_FS_TYPE="exfat"), USB_PARENT, CAM_KEY),
    ("the disk holding a partition table: no filesystem of its own", "add",
     with_(PARTITION, DEVTYPE="disk", ID_FS_TYPE=None, ID_PART_TABLE_TYPE="dos"), USB_PARENT, None),
    ("a partition without a filesystem", "add", with_(PARTITION, ID_FS_TYPE=None), USB_PARENT, None),
    ("ntfs is no camera filesystem", "add", with_(PARTITION, ID_FS_TYPE="ntfs"), USB_PARENT, None),
    ("ext4 is no camera filesystem", "add", with_(PARTITION, ID_FS_TYPE="ext4"), USB_PARENT, None),
    ("vfat inside a RAID member is not a filesystem to mount", "add",
     with_(PARTITION, ID_FS_USAGE="raid"), USB_PARENT, None),
    ("internal SATA disk with an EFI partition", "add",
     with_(PARTITION, ID_BUS="ata", ID_PATH="pci-0000:00:17.0-ata-1.0",
           DEVPATH="/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1"), None, None),
    ("a bind event is not a dock", "bind", PARTITION, USB_PARENT, None),
    ("a usb_interface is not a block device", "add",
     with_(PARTITION, SUBSYSTEM="usb", DEVTYPE="usb_interface"), USB_PARENT, None),
    ("no serial anywhere: '-' in the key", "add", with_(PARTITION, ID_SERIAL_SHORT=None),
     with_(USB_PARENT, serial=None), f"{CAM_PORT}|4255:0001|-"),
    ("no ID_PATH: the port comes from the kernel path", "add", with_(PARTITION, ID_PATH=None), None,
     "usb-1-2|4255:0001|ZFY0001234"),
    ("a garbage vendor id is not a USB id", "add", with_(PARTITION, ID_VENDOR_ID="zz!", ID_MODEL_ID="1"),
     None, f"{CAM_PORT}|-|ZFY0001234"),
]


@pytest.mark.parametrize("why,action,props,usb,expected", DECISIONS, ids=[d[0] for d in DECISIONS])
def test_decide_table(why: str, action: str, props: dict[str, str], usb: dict[str, str] | None,
                      expected: str | None) -> None:
    ev = decide(action, props, usb)
    assert (ev.key if ev else None) == expected, why
    if ev is not None:
        assert ev.action == ("remove" if action == "remove" else "add")
        assert ev.device.mount_root is None and ev.kind == "storage"


def test_decide_fills_the_device_info_from_the_usb_parent() -> None:
    ev = decide("add", PARTITION, USB_PARENT)
    assert ev is not None
    dev = ev.device
    assert (dev.usb, dev.usb_serial, dev.port) == (UsbId(0x4255, 0x0001), "ZFY0001234", CAM_PORT)
    assert (dev.fs_type, dev.fs_label) == ("vfat", "CAM01")
    assert (dev.usb_bus, dev.usb_address, dev.sg_device) == (1, 7, "/dev/sg1")
    assert dev.inquiry == "dv16devicev1.00"  # vendor and model, whitespace dropped, lower case
    assert (ev.devnode, ev.diskseq) == ("/dev/sdb1", "17")
    assert ev.sys_path == "/sys" + PARTITION["DEVPATH"]


def test_the_usb_serial_wins_over_udevs_sanitised_copy() -> None:
    ev = decide("add", with_(PARTITION, ID_SERIAL_SHORT="ZFY_0001"), with_(USB_PARENT, serial="ZFY 0001"))
    assert ev is not None and ev.device.usb_serial == "ZFY 0001"


def test_labels_are_decoded_from_udevs_escapes() -> None:
    ev = decide("add", with_(PARTITION, ID_FS_LABEL="DV_CAM", ID_FS_LABEL_ENC=r"DV\x20CAM\xe6\x89\x8b"), None)
    assert ev is not None and ev.device.fs_label == "DV CAM手"


@pytest.mark.parametrize("props,usb,port", [
    ({"ID_PATH": "pci-0000:00:14.0-usb-0:1.4.2:1.0-scsi-0:0:0:0"}, None, "pci-0000:00:14.0-usb-0:1.4.2"),
    ({"ID_PATH": "pci-0000:00:14.0-usb-0:3:1.0"}, None, "pci-0000:00:14.0-usb-0:3"),
    ({"ID_PATH": "x"}, {"ID_PATH": "pci-0000:00:14.0-usb-0:9"}, "pci-0000:00:14.0-usb-0:9"),
    ({"ID_PATH": "platform-xhci-hcd.0-usb-0:1:1.0-scsi-0:0:0:0"}, None, "platform-xhci-hcd.0-usb-0:1"),
    ({"DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb2/2-1.3/2-1.3:1.0/host1"}, None, "usb-2-1.3"),
    ({"DEVPATH": "/devices/virtual/block/loop0"}, None, None),
])
def test_port_is_the_usb_devices_place_not_the_scsi_host(props: dict[str, str], usb: dict[str, str] | None,
                                                         port: str | None) -> None:
    assert port_of(props, usb) == port


def test_two_cameras_with_one_serial_on_two_ports_get_two_keys() -> None:
    a = decide("add", with_(PARTITION, ID_PATH="pci-0000:00:14.0-usb-0:3:1.0-scsi-0:0:0:0"), None)
    b = decide("add", with_(PARTITION, ID_PATH="pci-0000:00:14.0-usb-0:4:1.0-scsi-0:0:0:0"), None)
    assert a is not None and b is not None
    assert a.device.usb_serial == b.device.usb_serial and a.key != b.key


def test_usb_device_events_only_for_watched_ids() -> None:
    props = {"SUBSYSTEM": "usb", "DEVTYPE": "usb_device", "DEVNAME": "/dev/bus/usb/001/007",
             "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-2", "ID_PATH": CAM_PORT,
             "ID_VENDOR_ID": "4255", "ID_MODEL_ID": "0001"}
    attrs = {"idVendor": "4255", "idProduct": "0001", "serial": "ZFY0001234"}
    watched = frozenset({UsbId(0x4255, 0x0001)})
    ev = decide_usb("add", props, attrs, watched)
    assert ev is not None and ev.kind == "usb" and ev.key == CAM_KEY  # same key as its storage later
    assert decide_usb("add", props, attrs, frozenset()) is None
    assert decide_usb("add", with_(props, DEVTYPE="usb_interface"), attrs, watched) is None
    gone = decide_usb("remove", props, None, watched)
    assert gone is not None and gone.action == "remove" and gone.device.usb_serial is None


def test_dedup_drops_repeats_and_ends_the_session_it_started() -> None:
    d = Deduplicator()
    add = decide("add", PARTITION, USB_PARENT)
    assert add is not None
    assert d.admit(add) == add
    assert d.admit(add) is None  # enumeration and the monitor both saw it
    new_media = decide("add", with_(PARTITION, DISKSEQ="18"), USB_PARENT)
    assert new_media is not None and d.admit(new_media) == new_media  # a new DISKSEQ is new media
    bare_remove = DockEvent(action="remove", key="whatever", device=add.device, devnode=None,
                            sys_path=add.sys_path)
    removed = d.admit(bare_remove)
    assert removed is not None and removed.key == CAM_KEY and removed.diskseq == "18"
    assert d.vanished(add.sys_path) is None  # already gone
    assert dock_key("p", None, None) == "p|-|-"


# -- under umockdev -------------------------------------------------------------------

def _umockdev() -> None:
    if shutil.which("umockdev-run") is None or ctypes.util.find_library("umockdev") is None:
        pytest.skip("umockdev is not installed (./run tests installs it)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


ENUMERATE = """
import json
from vaultd.hotplug import UdevSource
events = []
source = UdevSource()
source.start(events.append)
source.stop()
print(json.dumps([[e.action, e.key, e.devnode, e.device.fs_type, e.device.fs_label, e.device.sg_device,
                   e.device.inquiry] for e in events]))
"""


def test_enumeration_at_start_reports_cameras_and_ignores_the_rest() -> None:
    _umockdev()
    files = ["hotplug_camera.umockdev", "hotplug_stick.umockdev", "hotplug_twins.umockdev"]
    argv = ["umockdev-run"] + [a for f in files for a in ("-d", str(DATA / f))] + \
        ["--", sys.executable, "-c", ENUMERATE]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=_env(), check=True)
    events = {e[1]: e for e in json.loads(out.stdout)}
    assert events[CAM_KEY] == ["add", CAM_KEY, "/dev/sdb1", "vfat", "CAM01", "/dev/sg1", "dv16devicev1.00"]
    # twins: same USB serial on ports 3 and 4, two exFAT cards without partition tables: two sessions
    assert events["pci-0000:00:14.0-usb-0:3|4255:0001|ZFY0001234"][2:5] == ["/dev/sdd", "exfat", "DV CAM"]
    assert events["pci-0000:00:14.0-usb-0:4|4255:0001|ZFY0001234"][2] == "/dev/sde"
    # the USB stick's FAT partition is reported (the registry and enrollment decide it is no
    # camera); its NTFS partition, its partition-table disk and the internal SATA disk are not
    stick = "pci-0000:00:14.0-usb-0:5|0781:5567|4C530001230817115384"
    assert events[stick][2] == "/dev/sdc1"
    assert len(events) == 4
    assert not any(e[2] in ("/dev/sdc2", "/dev/sdc", "/dev/sda1", "/dev/sdb") for e in events.values())


def test_udev_events_unplug_and_replug_after_a_mode_switch_keep_the_key() -> None:
    _umockdev()
    preload = "libumockdev-preload.so.0"
    env = _env()
    env["LD_PRELOAD"] = (preload + " " + env["LD_PRELOAD"]).strip() if env.get("LD_PRELOAD") else preload
    out = subprocess.run([sys.executable, str(DATA / "hotplug_events.py"), str(DATA / "hotplug_camera.umockdev"),
                          str(DATA / "hotplug_camera_again.umockdev")],
                         capture_output=True, text=True, timeout=90, env=env, check=True)
    steps = [json.loads(line) for line in out.stdout.splitlines()]
    got = [(s["event"]["action"], s["event"]["key"], s["event"]["devnode"]) if s["event"] else None
           for s in steps]
    assert got == [
        ("add", CAM_KEY, "/dev/sdb1"),  # present before the monitor started
        ("remove", CAM_KEY, "/dev/sdb1"),  # the repeated add and the disk's change were dropped
        ("add", CAM_KEY, "/dev/sdf1"),  # new scsi host, node and DISKSEQ; same port and camera
        ("remove", CAM_KEY, "/dev/sdf1"),
        ("add", CAM_KEY, "/dev/sdf1"),
        None,  # stopped: nothing more reaches the sink
    ]
    assert steps[2]["event"]["diskseq"] == "42" and steps[2]["event"]["device"]["sg_device"] == "/dev/sg5"


WATCHED = """
import json
from vaultd.driverapi import UsbId
from vaultd.hotplug import UdevSource
events = []
source = UdevSource(watch_usb=[UsbId(0x4255, 0x0001)])
source.start(events.append)
source.stop()
print(json.dumps(sorted([e.kind, e.key, e.devnode] for e in events)))
"""


def test_a_watched_usb_id_also_reports_the_usb_device_of_a_locked_camera() -> None:
    _umockdev()
    argv = ["umockdev-run", "-d", str(DATA / "hotplug_camera.umockdev"), "-d", str(DATA / "hotplug_stick.umockdev"),
            "--", sys.executable, "-c", WATCHED]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=_env(), check=True)
    got = json.loads(out.stdout)
    assert ["usb", CAM_KEY, "/dev/bus/usb/001/007"] in got  # same key as the storage it turns into
    assert ["storage", CAM_KEY, "/dev/sdb1"] in got
    assert not any(kind == "usb" and "0781:5567" in key for kind, key, _node in got)  # the stick is not watched
