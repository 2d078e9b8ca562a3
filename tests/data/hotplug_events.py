"""Drive UdevSource through a umockdev testbed; print the dock events as JSON lines.

Run under the umockdev preload library (``LD_PRELOAD=libumockdev-preload.so.0``);
``tests/test_hotplug.py`` does. The testbed is driven through libumockdev's C
API with ctypes, so no GObject introspection (python3-gi) is needed.

argv[1]: the initial device file; argv[2]: a device file for the camera coming
back after a mode switch (new scsi host, new device node, new DISKSEQ).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import queue
import sys

from vaultd.hotplug import DockEvent, UdevSource

lib = ctypes.CDLL("libumockdev.so.0")
gobject = ctypes.CDLL("libgobject-2.0.so.0")
lib.umockdev_testbed_new.restype = ctypes.c_void_p
lib.umockdev_testbed_add_from_file.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
lib.umockdev_testbed_add_from_file.restype = ctypes.c_int
lib.umockdev_testbed_uevent.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
lib.umockdev_testbed_remove_device.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
gobject.g_object_unref.argtypes = [ctypes.c_void_p]

PARTITION = ("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host3/target3:0:0/3:0:0:0"
             "/block/sdb/sdb1")
DISK = PARTITION.rsplit("/", 1)[0]
AGAIN = ("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host7/target7:0:0/7:0:0:0"
         "/block/sdf/sdf1")


def add_file(tb: int, path: str) -> None:
    if not lib.umockdev_testbed_add_from_file(tb, path.encode(), None):
        raise SystemExit(f"umockdev could not load {path}")


def main() -> None:
    tb = lib.umockdev_testbed_new()
    add_file(tb, sys.argv[1])
    events: queue.Queue[DockEvent] = queue.Queue()
    source = UdevSource()
    source.start(events.put)

    def emit(what: str, timeout_s: float = 10.0) -> None:
        try:
            ev = events.get(timeout=timeout_s)
        except queue.Empty:
            print(json.dumps({"step": what, "event": None}), flush=True)
            return
        d = dataclasses.asdict(ev)
        d["device"]["usb"] = str(ev.device.usb) if ev.device.usb else None
        print(json.dumps({"step": what, "event": d}, default=str), flush=True)

    emit("present at start")
    lib.umockdev_testbed_uevent(tb, PARTITION.encode(), b"add")  # a repeat: dropped
    lib.umockdev_testbed_uevent(tb, DISK.encode(), b"change")  # disk, no filesystem: ignored
    lib.umockdev_testbed_uevent(tb, PARTITION.encode(), b"remove")
    emit("unplugged (repeat add and disk change before it are dropped)")
    lib.umockdev_testbed_remove_device(tb, PARTITION.encode())
    lib.umockdev_testbed_remove_device(tb, DISK.encode())
    add_file(tb, sys.argv[2])  # umockdev announces each device it adds ("add" uevents)
    lib.umockdev_testbed_uevent(tb, AGAIN.encode(), b"add")  # a repeat: dropped
    emit("back after a mode switch")
    lib.umockdev_testbed_uevent(tb, AGAIN.encode(), b"remove")
    emit("gone again")
    lib.umockdev_testbed_uevent(tb, AGAIN.encode(), b"add")
    emit("plugged in once more")
    source.stop()
    lib.umockdev_testbed_uevent(tb, AGAIN.encode(), b"remove")
    emit("after stop", timeout_s=0.5)
    gobject.g_object_unref(tb)


if __name__ == "__main__":
    main()
