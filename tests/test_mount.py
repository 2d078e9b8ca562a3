"""Mounting camera filesystems: the planner as a table, the failure modes through a fake
system, and real FAT and exFAT images through the FUSE tools (root)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from vaultd import mount as m
from vaultd.errors import DeviceGoneError, DriverError, StorageError

TOOLS = {"fusefat": "/usr/bin/fusefat", "mount.exfat-fuse": "/usr/sbin/mount.exfat-fuse"}
RO = m.MS_RDONLY | m.SAFE_FLAGS


# -- the planner -------------------------------------------------------------------

PLANS = [
    # (why, fs, readonly, kernel has, modules possible, tools) -> [(method, fs, flags, data/argv[2])]
    ("kernel has vfat: kernel first, FUSE as fallback", "vfat", True, {"vfat"}, False, TOOLS,
     [("kernel", RO, "utf8,shortname=mixed,tz=UTC,umask=0077"),
      ("fuse", RO, "ro,nosuid,nodev,noexec,noatime,umask=0077")]),
    ("no vfat yet but modules load on demand: still kernel first", "vfat", True, set(), True, TOOLS,
     [("kernel", RO, "utf8,shortname=mixed,tz=UTC,umask=0077"),
      ("fuse", RO, "ro,nosuid,nodev,noexec,noatime,umask=0077")]),
    ("kernel without vfat and without modules: FUSE only", "vfat", True, {"ext4"}, False, TOOLS,
     [("fuse", RO, "ro,nosuid,nodev,noexec,noatime,umask=0077")]),
    ("exFAT in the kernel: its own options", "exfat", True, {"exfat"}, False, TOOLS,
     [("kernel", RO, "iocharset=utf8,time_offset=0,umask=0077"),
      ("fuse", RO, "ro,nosuid,nodev,noexec,noatime,umask=0077")]),
    ("read-write for the wipe keeps nosuid,nodev,noexec", "vfat", False, {"vfat"}, False, TOOLS,
     [("kernel", m.SAFE_FLAGS, "utf8,shortname=mixed,tz=UTC,umask=0077"),
      ("fuse", m.SAFE_FLAGS, "rw+,nosuid,nodev,noexec,noatime,umask=0077")]),
    ("exFAT read-write through FUSE", "exfat", False, set(), False, TOOLS,
     [("fuse", m.SAFE_FLAGS, "rw,nosuid,nodev,noexec,noatime,umask=0077")]),
    ("no kernel support and no tool: nothing", "exfat", True, set(), False, {}, []),
    ("ntfs is no camera filesystem", "ntfs", True, {"ntfs", "ntfs3"}, True, TOOLS, []),
]


@pytest.mark.parametrize("why,fs,readonly,kernel,modules,tools,expected", PLANS, ids=[p[0] for p in PLANS])
def test_plan_mount_table(why: str, fs: str, readonly: bool, kernel: set[str], modules: bool,
                          tools: dict[str, str], expected: list[tuple[str, int, str]]) -> None:
    steps = m.plan_mount(fs, "/dev/sdb1", Path("/run/vaultd/media/x"), readonly=readonly,
                         kernel_fs=frozenset(kernel), modules_possible=modules, tools=tools)
    got = [(s.method, s.flags, s.data if s.method == "kernel" else s.argv[2]) for s in steps]
    assert got == expected, why
    for s in steps:
        assert s.flags & m.MS_NOSUID and s.flags & m.MS_NODEV and s.flags & m.MS_NOEXEC
        if s.method == "fuse":
            assert s.argv[-2:] == ("/dev/sdb1", "/run/vaultd/media/x")


def test_kernel_filesystems_and_mountinfo_parse() -> None:
    assert m.kernel_filesystems("nodev\tsysfs\n\text4\n\tfuseblk\nnodev\tfuse\n") == \
        frozenset({"sysfs", "ext4", "fuseblk", "fuse"})
    info = ("42 27 0:39 / /run/vaultd/media/a\\040b ro,nosuid,nodev,noexec,noatime - fuse.fusefat fusefat ro\n"
            "garbage line\n")
    (entry,) = m.parse_mountinfo(info)
    assert entry.target == "/run/vaultd/media/a b" and entry.fs_type == "fuse.fusefat"
    assert {"ro", "nosuid", "nodev", "noexec", "noatime"} <= entry.options


def test_safe_names_are_plain_distinct_and_stable() -> None:
    a = m.safe_name("pci-0000:00:14.0-usb-0:2|4255:0001|ZFY0001234")
    b = m.safe_name("pci-0000:00:14.0-usb-0:3|4255:0001|ZFY0001234")
    assert a != b and a == m.safe_name("pci-0000:00:14.0-usb-0:2|4255:0001|ZFY0001234")
    for name in (a, b, m.safe_name("../../etc"), m.safe_name("/"), m.safe_name("\0\n")):
        assert "/" not in name and name not in (".", "..") and name.isprintable() and len(name) <= 61


# -- failure modes through a fake system -----------------------------------------------

class FakeSystem:
    """A MountSystem whose kernel lacks filesystems or devices as told; records what it was asked."""

    def __init__(self, *, kernel_errno: int | None = None, fuse_status: int = 0, fuse_mounts: bool = True,
                 bind_errno: int | None = None,
                 filesystems: str = "\tvfat\n\texfat\n") -> None:
        self.filesystems = filesystems
        self.kernel_errno, self.fuse_status, self.fuse_mounts = kernel_errno, fuse_status, fuse_mounts
        self.bind_errno = bind_errno
        self.mounted: dict[str, str] = {}
        self.calls: list[tuple[object, ...]] = []

    def mount(self, source: str | None, target: str, fs_type: str | None, flags: int, data: str | None) -> None:
        self.calls.append(("mount", source, target, fs_type, flags, data))
        if flags & m.MS_BIND:
            if self.bind_errno:
                raise OSError(self.bind_errno, os.strerror(self.bind_errno))
            return
        if self.kernel_errno:
            raise OSError(self.kernel_errno, os.strerror(self.kernel_errno))
        self.mounted[target] = fs_type or "?"

    def umount(self, target: str, flags: int) -> None:
        self.calls.append(("umount", target, flags))
        if self.mounted.pop(target, None) is None:
            raise OSError(errno.EINVAL, "not mounted")

    def run(self, argv: Sequence[str], timeout_s: float) -> tuple[int, str]:
        self.calls.append(("run", *argv))
        if self.fuse_status == 0 and self.fuse_mounts:
            self.mounted[argv[-1]] = "fuse"
        return self.fuse_status, "" if self.fuse_status == 0 else "ERROR: exFAT file system is not found.\n"

    def read_text(self, path: str) -> str | None:
        if path == "/proc/self/mountinfo":
            return "".join(f"1 1 0:1 / {t} ro,nosuid - {fs} src ro\n" for t, fs in self.mounted.items())
        if path == "/proc/filesystems":
            return self.filesystems
        return None  # no /proc/modules


@pytest.fixture
def dev(tmp_path: Path) -> str:
    node = tmp_path / "sdb1"  # stands in for a device node: it exists
    node.write_bytes(b"")
    return str(node)


def test_the_kernel_lacking_the_filesystem_falls_back_to_fuse_with_flags_enforced(tmp_path: Path, dev: str) -> None:
    fake = FakeSystem(kernel_errno=errno.ENODEV)
    got = m.mount_readonly(dev, "vfat", "port|4255:0001|S1", base=tmp_path / "media", system=fake, tools=TOOLS)
    assert got.method == "fuse" and got.readonly and got.target.parent == tmp_path / "media"
    kinds = [c[0] for c in fake.calls]
    assert kinds == ["mount", "run", "mount"]  # kernel (ENODEV), fusefat, bind-remount with the flags
    assert fake.calls[2][4] == m.MS_REMOUNT | m.MS_BIND | RO
    assert oct(got.target.stat().st_mode & 0o777) == "0o700"


def test_a_vanished_device_is_device_gone_and_leaves_no_mount_point(tmp_path: Path) -> None:
    fake = FakeSystem()
    with pytest.raises(DeviceGoneError, match="gone"):
        m.mount_readonly(str(tmp_path / "sdz1"), "vfat", "k", base=tmp_path, system=fake, tools=TOOLS)
    assert fake.calls == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code,error,text", [
    (errno.ENXIO, DeviceGoneError, "gone"),
    (errno.EIO, DeviceGoneError, "gone"),
    (errno.EPERM, StorageError, "may not mount"),
    (errno.EINVAL, DriverError, "not a readable vfat filesystem"),
    (errno.EBUSY, DriverError, "busy"),
])
def test_kernel_mount_errors_are_clear(tmp_path: Path, dev: str, code: int, error: type[Exception],
                                       text: str) -> None:
    fake = FakeSystem(kernel_errno=code)
    with pytest.raises(error, match=text):
        m.mount_readonly(dev, "vfat", "k", base=tmp_path / "media", system=fake, tools=TOOLS)
    assert [c[0] for c in fake.calls] == ["mount"]  # never a FUSE retry on a real error, never fsck
    assert list((tmp_path / "media").iterdir()) == []


def test_unknown_filesystem_type_is_a_clear_error(tmp_path: Path, dev: str) -> None:
    fake = FakeSystem()
    with pytest.raises(DriverError, match="ntfs is not one a camera uses"):
        m.mount_readonly(dev, "ntfs", "k", base=tmp_path, system=fake, tools=TOOLS)
    with pytest.raises(DriverError, match="cannot mount exfat"):
        m.mount_readonly(dev, "exfat", "k", base=tmp_path, system=FakeSystem(filesystems=""), tools={})
    assert fake.calls == []


def test_a_fuse_tool_that_fails_reports_its_words(tmp_path: Path, dev: str) -> None:
    fake = FakeSystem(kernel_errno=errno.ENODEV, fuse_status=1)
    with pytest.raises(DriverError, match="exFAT file system is not found"):
        m.mount_readonly(dev, "exfat", "k", base=tmp_path / "media", system=fake, tools=TOOLS)


def test_flags_that_cannot_be_enforced_undo_the_mount(tmp_path: Path, dev: str) -> None:
    fake = FakeSystem(kernel_errno=errno.ENODEV, bind_errno=errno.EPERM)
    with pytest.raises(StorageError, match="ro,nosuid,nodev,noexec,noatime"):
        m.mount_readonly(dev, "vfat", "k", base=tmp_path / "media", system=fake, tools=TOOLS)
    assert fake.mounted == {} and list((tmp_path / "media").iterdir()) == []


def test_remount_read_write_for_the_wipe_and_back(tmp_path: Path, dev: str) -> None:
    fake = FakeSystem()
    ro = m.mount_readonly(dev, "vfat", "k", base=tmp_path, system=fake, tools=TOOLS)
    assert ro.method == "kernel"
    rw = m.remount(ro, readonly=False, system=fake)
    assert not rw.readonly and fake.calls[-1][4] == m.MS_REMOUNT | m.SAFE_FLAGS
    assert m.remount(rw, readonly=True, system=fake).readonly


def test_unmount_is_lazy_and_idempotent(tmp_path: Path, dev: str) -> None:
    fake = FakeSystem()
    got = m.mount_readonly(dev, "vfat", "k", base=tmp_path, system=fake, tools=TOOLS)
    m.unmount(got, system=fake)
    assert fake.calls[-1] == ("umount", str(got.target), m.MNT_DETACH) and not got.target.exists()
    m.unmount(got, system=fake)  # gone already: nothing to do, no error
    assert fake.calls[-1][0] == "umount"


def test_a_stale_mount_at_the_target_is_detached_first(tmp_path: Path, dev: str) -> None:
    fake = FakeSystem()
    target = tmp_path / m.safe_name("k")
    fake.mounted[str(target)] = "fuse"  # left by a daemon that was killed
    got = m.mount_readonly(dev, "vfat", "k", base=tmp_path, system=fake, tools=TOOLS)
    assert ("umount", str(target), m.MNT_DETACH) in fake.calls and got.target == target


# -- real images through FUSE (root) ---------------------------------------------------------

def _need(*tools: str) -> None:
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.skip("needs root and /dev/fuse")
    for tool in tools:
        if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
            pytest.skip(f"{tool} is not installed (./run tests installs it)")


def _flags_at(target: Path) -> frozenset[str]:
    (entry,) = m.mounts_at(target, Path("/proc/self/mountinfo").read_text())
    return entry.options


@pytest.fixture
def fat_image(tmp_path: Path) -> Path:
    _need("mkfs.vfat", "mcopy", "fusefat")
    img = tmp_path / "cam.img"
    with img.open("wb") as f:
        f.truncate(8 << 20)
    subprocess.run(["mkfs.vfat", "-n", "CAM01", str(img)], check=True, capture_output=True)
    (tmp_path / "clip.mp4").write_bytes(b"\0\0\0\x18ftypisom" + b"x" * 1000)
    subprocess.run(["mmd", "-i", str(img), "::DCIM"], check=True)
    subprocess.run(["mcopy", "-i", str(img), str(tmp_path / "clip.mp4"), "::DCIM/20260101_0001.MP4"], check=True)
    return img


@pytest.mark.root
def test_a_fat_image_mounts_read_only_through_fusefat(tmp_path: Path, fat_image: Path) -> None:
    base = tmp_path / "media"
    # pretend the kernel lists vfat: its mount(2) then says ENODEV here, and FUSE takes over
    got = m.mount_readonly(str(fat_image), "vfat", "p|4255:0001|S", base=base, kernel_fs=frozenset({"vfat"}))
    try:
        assert got.method == "fuse" and got.readonly
        assert {"ro", "nosuid", "nodev", "noexec", "noatime"} <= _flags_at(got.target)
        clip = got.target / "DCIM" / "20260101_0001.MP4"
        assert clip.read_bytes().startswith(b"\0\0\0\x18ftyp")
        with pytest.raises(OSError) as exc:
            (got.target / "DCIM" / "new.txt").write_bytes(b"x")
        assert exc.value.errno == errno.EROFS
        with pytest.raises(OSError):
            clip.unlink()
        rw = m.remount(got, readonly=False)  # the wipe step
        assert not rw.readonly and "noexec" in _flags_at(rw.target) and "ro" not in _flags_at(rw.target)
        (rw.target / "DCIM" / "20260101_0001.MP4").unlink()
        got = m.remount(rw, readonly=True)
        assert "ro" in _flags_at(got.target)
    finally:
        m.unmount(got)
    assert not got.target.exists() and not m.mounts_at(got.target, Path("/proc/self/mountinfo").read_text())
    listing = subprocess.run(["mdir", "-b", "-i", str(fat_image), "::DCIM"], capture_output=True, text=True)
    assert "20260101_0001" not in listing.stdout  # the wipe reached the image


@pytest.mark.root
def test_unmount_of_a_busy_mount_is_lazy(tmp_path: Path, fat_image: Path) -> None:
    got = m.mount_readonly(str(fat_image), "vfat", "busy", base=tmp_path / "media")
    with (got.target / "DCIM" / "20260101_0001.MP4").open("rb") as busy:
        m.unmount(got)  # returns at once though a file is open
        assert not m.mounts_at(got.target, Path("/proc/self/mountinfo").read_text())
        assert busy.read(8) == b"\0\0\0\x18ftyp"  # the open file still reads until closed


@pytest.fixture
def exfat_loop(tmp_path: Path) -> Iterator[str]:
    _need("mkfs.exfat", "mount.exfat-fuse", "losetup")
    img = tmp_path / "sdxc.img"
    with img.open("wb") as f:
        f.truncate(8 << 20)
    subprocess.run(["mkfs.exfat", "-L", "DVCAM", str(img)], check=True, capture_output=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True)
    if loop.returncode != 0:
        pytest.skip(f"no loop device: {loop.stderr.strip()}")
    node = loop.stdout.strip()
    try:
        yield node
    finally:
        subprocess.run(["losetup", "-d", node], check=False)


@pytest.mark.root
def test_an_exfat_card_mounts_read_only_through_exfat_fuse(tmp_path: Path, exfat_loop: str) -> None:
    base = tmp_path / "media"
    rw = m.remount(m.mount_readonly(exfat_loop, "exfat", "sdxc", base=base), readonly=False)
    (rw.target / "DCIM").mkdir()
    (rw.target / "DCIM" / "clip.mp4").write_bytes(b"evidence")
    got = m.remount(rw, readonly=True)
    try:
        assert got.method == "fuse"
        # exfat-fuse drops noexec and noatime itself; vaultd puts them back
        assert {"ro", "nosuid", "nodev", "noexec", "noatime"} <= _flags_at(got.target)
        assert (got.target / "DCIM" / "clip.mp4").read_bytes() == b"evidence"
        with pytest.raises(OSError):
            (got.target / "DCIM" / "clip.mp4").write_bytes(b"tampered")
    finally:
        m.unmount(got)
    assert not got.target.exists()


@pytest.mark.root
def test_a_missing_device_node_is_device_gone(tmp_path: Path) -> None:
    _need("fusefat")
    with pytest.raises(DeviceGoneError):
        m.mount_readonly(str(tmp_path / "sdq1"), "vfat", "k", base=tmp_path / "media")


# -- the daemon's mounter ----------------------------------------------------------------------

def test_device_mounter_mounts_per_session_key_and_cleans_up(tmp_path: Path, dev: str) -> None:
    from vaultd.driverapi import DeviceInfo
    from vaultd.hotplug import DockEvent

    fake = FakeSystem()
    mounter = m.DeviceMounter(tmp_path / "media", system=fake, tools=TOOLS)
    ev = DockEvent(action="add", key="port|4255:0001|S1", device=DeviceInfo(fs_type="vfat"), devnode=dev,
                   sys_path="/sys/x")
    root = mounter.mount(ev)
    assert root == tmp_path / "media" / m.safe_name(ev.key) and str(root) in fake.mounted
    mounted = mounter.mounted(ev.key)
    assert mounted is not None and mounted.readonly
    assert not mounter.remount(ev.key, readonly=False).readonly  # the wipe step
    mounter.unmount(ev)
    assert fake.mounted == {} and not root.exists() and mounter.mounted(ev.key) is None
    mounter.unmount(ev)  # undock of something already gone: fine
    with pytest.raises(DeviceGoneError):
        mounter.remount(ev.key, readonly=False)
    with pytest.raises(DriverError, match="no device node"):
        mounter.mount(DockEvent(action="add", key="k", device=DeviceInfo(), devnode=None, sys_path=""))
    stick = DockEvent(action="add", key="k2", device=DeviceInfo(fs_type="ntfs"), devnode=dev, sys_path="")
    with pytest.raises(DriverError, match="ntfs"):
        mounter.mount(stick)
