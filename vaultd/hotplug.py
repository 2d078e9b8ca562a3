"""udev events -> dock events.

A *dock event* says that a camera's storage appeared on (``add``) or left
(``remove``) a dock port. Sources of dock events implement the
``DockEventSource`` protocol; the daemon starts one or more of them with a
sink and runs one ingest session per ``DockEvent.key``:

- ``UdevSource`` (here) follows the kernel through udev (pyudev);
- the simulated dock folder (``vaultd.daemon``) follows a watched folder.

The decision "is this udev device a camera filesystem, and who is it?" is
pure (``decide``) and apart from the pyudev glue (``UdevSource``), so it can be
tested as a table. Facts about udev behaviour: ``/work/shared/DEVICES.md`` §2.

Identity comes from the device and is data, never trust: the session key is
built from the dock port (udev ``ID_PATH`` of the USB device), the USB
vendor:product and the USB serial, so a camera that re-enumerates on the same
port (a mode switch, a new device node, a new scsi host number) keeps its key,
and two cameras with the same serial on different ports do not share one.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from vaultd.driverapi import DeviceInfo, UsbId, inquiry_key

log = logging.getLogger(__name__)

__all__ = [
    "FS_TYPES", "DockEvent", "DockEventSink", "DockEventSource", "UdevSource",
    "decide", "decide_usb", "dock_key", "port_of",
]

FS_TYPES = frozenset({"vfat", "exfat"})
"""Filesystems a body camera presents (SDXC cards are exFAT)."""

@dataclass(frozen=True)
class DockEvent:
    """A camera's storage (or, for ``kind="usb"``, a watched USB device) came or went.

    ``key`` names the session: the same camera on the same port keeps the same
    key across re-enumeration. ``device`` is what the dock saw (its
    ``mount_root`` is None: mounting is the daemon's next step).
    ``diskseq`` is the kernel's DISKSEQ where present (a new one per media).
    """

    action: str  # "add" or "remove"
    key: str
    device: DeviceInfo
    devnode: str | None
    sys_path: str
    diskseq: str | None = None
    kind: str = "storage"  # "storage" (a filesystem) or "usb" (a watched USB device)


DockEventSink = Callable[[DockEvent], None]


class DockEventSource(Protocol):
    """Something that reports docks and undocks.

    ``start(sink)`` begins reporting: it first reports (``add``) every device
    already present, then follows changes until ``stop()``. ``sink`` may be
    called from another thread than the one that called ``start``; it must be
    quick and thread-safe (put the event on a queue, or hand it to an event
    loop with ``call_soon_threadsafe``). ``stop()`` stops reporting and returns
    once no more calls to ``sink`` will be made; it is idempotent. A source
    never raises out of its own thread: it logs and carries on.
    """

    def start(self, sink: DockEventSink) -> None: ...

    def stop(self) -> None: ...


# ---------------------------------------------------------------------------
# pure decisions

# ID_PATH of a USB block device is the USB device's ID_PATH followed by the
# interface (":<config>.<interface>") and the transport ("-scsi-0:0:0:0").
_BLOCK_ID_PATH = re.compile(r"^(?P<port>.*-usb-\d+:[0-9.]+):\d+\.\d+(?:-.*)?$")
# DEVPATH .../usb1/1-2.3/1-2.3:1.0/... : the USB device is "<bus>-<port path>"
_DEVPATH_USB = re.compile(r"/usb\d+/(?P<dev>\d+-[0-9.]+)(?:/|$)")
_HEX_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")
_HEX4 = re.compile(r"^[0-9a-fA-F]{1,4}$")


def _clean(value: str | None) -> str | None:
    """A device-supplied string, stripped; None when empty."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def port_of(props: Mapping[str, str], usb: Mapping[str, str] | None = None) -> str | None:
    """The dock port of a USB device: the USB device's ``ID_PATH``.

    Prefers the USB parent's ``ID_PATH``; else derives it from the block
    device's ``ID_PATH`` (dropping interface and transport); else from the
    kernel device path (``usb-1-2``). None when it is no USB device.
    """
    if usb is not None and _clean(usb.get("ID_PATH")):
        return _clean(usb.get("ID_PATH"))
    id_path = _clean(props.get("ID_PATH"))
    if id_path:
        m = _BLOCK_ID_PATH.match(id_path)
        return m.group("port") if m else id_path
    m = _DEVPATH_USB.search(props.get("DEVPATH", ""))
    return f"usb-{m.group('dev')}" if m else None


def _usb_id(props: Mapping[str, str], usb: Mapping[str, str] | None) -> UsbId | None:
    """vendor:product from the USB parent's attributes, else udev's ID_*_ID properties."""
    candidates: list[tuple[str | None, str | None]] = []
    if usb is not None:
        candidates.append((usb.get("idVendor"), usb.get("idProduct")))
    candidates.append((props.get("ID_USB_VENDOR_ID"), props.get("ID_USB_MODEL_ID")))
    candidates.append((props.get("ID_VENDOR_ID"), props.get("ID_MODEL_ID")))
    for vendor, product in candidates:
        vendor, product = _clean(vendor), _clean(product)
        if vendor and product and _HEX4.match(vendor) and _HEX4.match(product):
            return UsbId(int(vendor, 16), int(product, 16))
    return None


def _usb_serial(props: Mapping[str, str], usb: Mapping[str, str] | None) -> str | None:
    if usb is not None and _clean(usb.get("serial")):
        return _clean(usb.get("serial"))
    return _clean(props.get("ID_USB_SERIAL_SHORT")) or _clean(props.get("ID_SERIAL_SHORT"))


def _fs_label(props: Mapping[str, str]) -> str | None:
    """The filesystem label, decoding udev's ``\\xNN`` escapes of ``ID_FS_LABEL_ENC``."""
    enc = props.get("ID_FS_LABEL_ENC")
    if enc:
        raw = _HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), enc.encode("utf-8", "surrogateescape"))
        return _clean(raw.decode("utf-8", "replace"))
    return _clean(props.get("ID_FS_LABEL"))


def _int(value: str | None) -> int | None:
    value = _clean(value)
    return int(value) if value is not None and value.isdigit() and len(value) < 10 else None


def dock_key(port: str, usb: UsbId | None, serial: str | None) -> str:
    """The session key: ``port|vvvv:pppp|serial`` (``-`` for what is unknown)."""
    return f"{port}|{usb if usb is not None else '-'}|{serial if serial is not None else '-'}"


def decide(action: str, props: Mapping[str, str], usb: Mapping[str, str] | None = None,
           *, sys_path: str | None = None) -> DockEvent | None:
    """Is this udev block event a camera filesystem coming or going? Pure.

    ``props`` are the block device's udev properties; ``usb`` the attributes
    of its ``usb``/``usb_device`` parent (``idVendor``, ``idProduct``,
    ``serial``, ``busnum``, ``devnum``) plus that parent's ``ID_PATH`` and, where
    there is one, the SCSI device's ``scsi_vendor``/``scsi_model``/``scsi_rev``
    and its ``sg_device`` node; or None when the parent cannot be reached (a
    ``remove``: sysfs is already gone). Acts on ``add`` and
    ``remove`` (``change`` counts as ``add``: media inserted in a reader) of a
    partition, or a whole disk without a partition table, whose
    ``ID_FS_TYPE`` is vfat or exfat, on USB. Everything else: None.
    """
    if action not in ("add", "remove", "change"):
        return None
    if props.get("SUBSYSTEM", "block") != "block" or props.get("DEVTYPE") not in ("disk", "partition"):
        return None
    fs_type = _clean(props.get("ID_FS_TYPE"))
    if fs_type not in FS_TYPES or props.get("ID_FS_USAGE", "filesystem") != "filesystem":
        return None
    if props.get("ID_BUS") != "usb" and usb is None:
        return None
    port = port_of(props, usb)
    if port is None:
        return None
    usb_id, serial = _usb_id(props, usb), _usb_serial(props, usb)
    extra = usb or {}
    info = DeviceInfo(usb=usb_id, usb_serial=serial, port=port, fs_label=_fs_label(props),
                      fs_type=fs_type, usb_bus=_int(extra.get("busnum")),
                      usb_address=_int(extra.get("devnum")),
                      sg_device=_clean(extra.get("sg_device")),
                      inquiry=inquiry_key(_clean(extra.get("scsi_vendor")), _clean(extra.get("scsi_model")),
                                          _clean(extra.get("scsi_rev"))))
    devpath = props.get("DEVPATH")
    return DockEvent(
        action="remove" if action == "remove" else "add",
        key=dock_key(port, usb_id, serial), device=info,
        devnode=_clean(props.get("DEVNAME")),
        sys_path=sys_path or (f"/sys{devpath}" if devpath else ""),
        diskseq=_clean(props.get("DISKSEQ")))


def decide_usb(action: str, props: Mapping[str, str], attrs: Mapping[str, str] | None,
               watched: frozenset[UsbId], *, sys_path: str | None = None) -> DockEvent | None:
    """A ``usb``/``usb_device`` event of a watched USB id (a locked camera): a ``kind="usb"`` event.

    Locked cameras show a vendor interface before they are switched to mass
    storage; a driver unlocks them. Other USB devices: None.
    """
    if action not in ("add", "remove") or props.get("DEVTYPE") != "usb_device":
        return None
    parent = dict(attrs or {})
    parent.setdefault("ID_PATH", props.get("ID_PATH", ""))
    usb_id = _usb_id(props, parent)
    if usb_id is None or usb_id not in watched:
        return None
    port = port_of(props, parent)
    if port is None:
        return None
    serial = _usb_serial(props, parent)
    devpath = props.get("DEVPATH")
    return DockEvent(
        action="remove" if action == "remove" else "add", key=dock_key(port, usb_id, serial),
        device=DeviceInfo(usb=usb_id, usb_serial=serial, port=port),
        devnode=_clean(props.get("DEVNAME")),
        sys_path=sys_path or (f"/sys{devpath}" if devpath else ""), kind="usb")


class Deduplicator:
    """Drops repeats: an ``add`` already reported for (sys_path, DISKSEQ); a ``remove`` of nothing.

    A ``remove`` is reported with the key and identity of the ``add`` it ends
    (udev's remove carries less: sysfs is gone), so the session it ends is found.
    Not thread-safe by itself; ``UdevSource`` serialises calls.
    """

    def __init__(self) -> None:
        self._present: dict[str, DockEvent] = {}

    def admit(self, event: DockEvent) -> DockEvent | None:
        seen = self._present.get(event.sys_path)
        if event.action == "add":
            if seen is not None and seen.diskseq == event.diskseq:
                return None
            self._present[event.sys_path] = event
            return event
        if seen is None:
            return event  # a remove of something added before we started: report it as seen
        del self._present[event.sys_path]
        return self._removal(seen)

    def vanished(self, sys_path: str) -> DockEvent | None:
        """A device reported before no longer carries a camera filesystem (media out): its remove."""
        seen = self._present.pop(sys_path, None)
        return self._removal(seen) if seen is not None else None

    @staticmethod
    def _removal(seen: DockEvent) -> DockEvent:
        return DockEvent(action="remove", key=seen.key, device=seen.device, devnode=seen.devnode,
                         sys_path=seen.sys_path, diskseq=seen.diskseq, kind=seen.kind)


# ---------------------------------------------------------------------------
# pyudev glue

def _props(device: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in device.properties.items()}


def _usb_parent(device: Any) -> dict[str, str] | None:
    """The attributes of the device's ``usb_device`` ancestor (plus its ID_PATH), or None."""
    try:
        parent = device if device.device_type == "usb_device" else device.find_parent("usb", "usb_device")
    except (OSError, KeyError, ValueError):
        return None
    if parent is None:
        return None
    out = _attrs(parent, {"idVendor": "idVendor", "idProduct": "idProduct", "serial": "serial",
                          "busnum": "busnum", "devnum": "devnum"})
    id_path = parent.properties.get("ID_PATH")
    if id_path:
        out["ID_PATH"] = str(id_path)
    if device.subsystem == "block":
        out.update(_scsi_facts(device))
    return out


def _attrs(device: Any, names: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for attr, key in names.items():
        try:
            out[key] = device.attributes.asstring(attr)
        except (KeyError, OSError, UnicodeDecodeError):
            continue
    return out


def _scsi_facts(device: Any) -> dict[str, str]:
    """INQUIRY strings and the SCSI generic node (``/dev/sgN``) of a block device's SCSI device."""
    try:
        scsi = device.find_parent("scsi", "scsi_device")
        if scsi is None:
            return {}
        out = _attrs(scsi, {"vendor": "scsi_vendor", "model": "scsi_model", "rev": "scsi_rev"})
        for child in scsi.children:
            if child.subsystem == "scsi_generic" and child.device_node:
                out["sg_device"] = str(child.device_node)
                break
        return out
    except (OSError, KeyError, ValueError):
        return {}


class UdevSource:
    """Dock events from udev through pyudev (the netlink ``'udev'`` source).

    ``start(sink)`` opens the monitor (filtered in the kernel to ``block`` and
    ``usb``/``usb_device``) and starts it FIRST, then reports every USB block
    device already present, then follows events on a daemon thread. Repeats
    are dropped on (sys_path, DISKSEQ). ``watch_usb`` lists USB ids of locked
    cameras whose ``usb_device`` events are reported too (``kind="usb"``).

    ``context`` is a ``pyudev.Context`` (one is made when None).
    """

    def __init__(self, *, watch_usb: Iterable[UsbId] = (), context: Any = None) -> None:
        self._watch = frozenset(watch_usb)
        self._context = context
        self._monitor: Any = None
        self._observer: Any = None
        self._sink: DockEventSink | None = None
        self._dedup = Deduplicator()
        self._lock = threading.Lock()

    def start(self, sink: DockEventSink) -> None:
        import pyudev  # type: ignore[import-untyped]

        if self._observer is not None:
            raise RuntimeError("UdevSource already started")
        context = self._context if self._context is not None else pyudev.Context()
        self._context = context
        self._sink = sink
        monitor = pyudev.Monitor.from_netlink(context)  # 'udev': devices are ready to use
        monitor.filter_by("block")
        monitor.filter_by("usb", "usb_device")
        monitor.start()  # before enumerating, so nothing falls between the two
        self._monitor = monitor
        for device in self._present(context):
            self._handle("add", device)
        self._observer = pyudev.MonitorObserver(monitor, callback=self._on_event, name="vaultd-udev")
        self._observer.daemon = True
        self._observer.start()

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()  # joins the thread (unless called from it): no sink call after this
        self._sink = None
        self._monitor = None  # the netlink socket closes with it

    def _present(self, context: Any) -> Iterable[Any]:
        yield from context.list_devices(subsystem="block", ID_BUS="usb")
        if self._watch:
            yield from context.list_devices(subsystem="usb", DEVTYPE="usb_device")

    def _on_event(self, device: Any) -> None:
        self._handle(str(device.action or ""), device)

    def _handle(self, action: str, device: Any) -> None:
        try:
            event = self._decide(action, device)
            with self._lock:
                if event is not None:
                    event = self._dedup.admit(event)
                elif action == "change":
                    event = self._dedup.vanished(str(device.sys_path))
            sink = self._sink
            if event is not None and sink is not None:
                log.info("dock event %s %s (%s)", event.action, event.key, event.devnode,
                         extra={"dock_key": event.key, "dock_action": event.action})
                sink(event)
        except Exception:  # a task boundary: one odd device must not stop the dock
            log.exception("udev event for %s not handled", getattr(device, "sys_path", "?"))

    def _decide(self, action: str, device: Any) -> DockEvent | None:
        props = _props(device)
        sys_path = str(device.sys_path)
        if device.subsystem == "usb":
            if not self._watch:
                return None
            attrs = _usb_parent(device) if action != "remove" else None
            return decide_usb(action, props, attrs, self._watch, sys_path=sys_path)
        usb = _usb_parent(device) if action != "remove" else None
        return decide(action, props, usb, sys_path=sys_path)
