"""Private mounts of camera filesystems under ``/run/vaultd/media/<key>``.

A camera is mounted read-only, ``nosuid,nodev,noexec,noatime``; read-write
(still ``nosuid,nodev,noexec``) only for the wipe step (``remount``). FAT
(``vfat``) and exFAT, through the kernel where it has the filesystem, else
through FUSE (``fusefat``, ``mount.exfat-fuse``). vaultd never runs fsck on a
camera: an original is evidence.

Decisions are pure (``plan_mount``: filesystem, what the kernel has, which
tools exist -> the ordered mount steps); ``mount_readonly``, ``remount`` and
``unmount`` carry them out through a ``MountSystem`` (``LinuxSystem``: the
mount(2)/umount2(2) system calls and the FUSE tools). The system calls are
used directly, not mount(8): util-linux's mount refuses options to a
non-root user even with CAP_SYS_ADMIN, which is what the service has.

Under systemd the service has its own mount namespace (ProtectSystem= and
friends), so these mounts are private to vaultd: the desktop never sees them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from vaultd.driverapi import DeviceInfo
from vaultd.errors import DeviceGoneError, DriverError, StorageError
from vaultd.i18n import _

log = logging.getLogger(__name__)

__all__ = [
    "MEDIA_DIR", "DeviceMounter", "Docked", "LinuxSystem", "MountEntry", "MountStep", "MountSystem", "Mounted",
    "find_tools", "kernel_filesystems", "mount_readonly", "mounts_at", "parse_mountinfo",
    "plan_mount", "remount", "safe_name", "unmount",
]

MEDIA_DIR = Path("/run/vaultd/media")

# mount(2) flags (linux/mount.h)
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MNT_DETACH = 2

SAFE_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME
FLAG_NAMES = {MS_RDONLY: "ro", MS_NOSUID: "nosuid", MS_NODEV: "nodev", MS_NOEXEC: "noexec",
              MS_NOATIME: "noatime"}

# filesystem options: UTF-8 names, FAT times as raw wall-clock (vaultd labels them
# with the camera's zone), nothing readable by other users
KERNEL_OPTIONS = {
    "vfat": "utf8,shortname=mixed,tz=UTC,umask=0077",
    "exfat": "iocharset=utf8,time_offset=0,umask=0077",
}
FUSE_TOOLS = {"vfat": "fusefat", "exfat": "mount.exfat-fuse"}
# names each FUSE tool goes by on Debian and elsewhere
TOOL_NAMES = {
    "fusefat": ("fusefat",),
    "mount.exfat-fuse": ("mount.exfat-fuse", "exfat-fuse", "mount.exfat"),
    "fusermount": ("fusermount3", "fusermount"),
}
_TOOL_PATH = os.pathsep.join(("/usr/sbin", "/sbin", "/usr/bin", "/bin"))
FUSE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class MountStep:
    """One way to mount: the kernel (mount(2) with ``fs_type`` and ``data``) or a FUSE command.

    ``flags`` are the per-mount flags (MS_*); after a FUSE mount they are
    applied again with a bind remount, since not every FUSE tool passes them on.
    """

    method: str  # "kernel" or "fuse"
    fs_type: str
    flags: int
    data: str = ""
    argv: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"mount -t {self.fs_type}" if self.method == "kernel" else " ".join(self.argv[:3])


@dataclass(frozen=True)
class Mounted:
    """A camera filesystem mounted by vaultd."""

    devnode: str
    target: Path
    fs_type: str
    method: str  # "kernel" or "fuse"
    readonly: bool


@dataclass(frozen=True)
class MountEntry:
    """One line of /proc/self/mountinfo."""

    target: str
    options: frozenset[str]
    fs_type: str
    source: str


# ---------------------------------------------------------------------------
# pure decisions

def kernel_filesystems(proc_filesystems: str) -> frozenset[str]:
    """The filesystem types in ``/proc/filesystems`` text."""
    return frozenset(line.split()[-1] for line in proc_filesystems.splitlines() if line.split())


def flag_options(flags: int) -> str:
    names = [name for bit, name in FLAG_NAMES.items() if flags & bit]
    return ",".join(names if flags & MS_RDONLY else ["rw", *names])


def plan_mount(fs_type: str, devnode: str, target: Path, *, readonly: bool,
               kernel_fs: frozenset[str], modules_possible: bool,
               tools: Mapping[str, str]) -> tuple[MountStep, ...]:
    """The ordered ways to mount ``devnode`` (``fs_type``) at ``target``. Pure.

    The kernel first when it has the filesystem or might load it (modules);
    then the FUSE tool when it is installed. Empty when nothing can mount it
    (an unknown type, or neither kernel nor tool).
    """
    if fs_type not in KERNEL_OPTIONS:
        return ()
    flags = SAFE_FLAGS | (MS_RDONLY if readonly else 0)
    steps: list[MountStep] = []
    if fs_type in kernel_fs or modules_possible:
        steps.append(MountStep("kernel", fs_type, flags, KERNEL_OPTIONS[fs_type]))
    tool = tools.get(FUSE_TOOLS[fs_type])
    if tool:
        if fs_type == "vfat":  # fusefat: read-write is "rw+" (its own word: experimental)
            mode = "ro" if readonly else "rw+"
        else:
            mode = "ro" if readonly else "rw"
        opts = f"{mode},nosuid,nodev,noexec,noatime,umask=0077"
        steps.append(MountStep("fuse", fs_type, flags, argv=(tool, "-o", opts, devnode, str(target))))
    return tuple(steps)


def safe_name(key: str) -> str:
    """A directory name for a session key: readable, short, unique (hash suffix)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._-")[:48] or "device"
    return f"{readable}-{hashlib.sha256(key.encode('utf-8', 'surrogateescape')).hexdigest()[:12]}"


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """``/proc/self/mountinfo`` -> entries (mount point, per-mount options, type, source)."""
    out: list[MountEntry] = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 6:
            continue
        sep = fields.index("-")
        if len(fields) < sep + 3:
            continue
        out.append(MountEntry(target=_unescape(fields[4]), options=frozenset(fields[5].split(",")),
                              fs_type=fields[sep + 1], source=_unescape(fields[sep + 2])))
    return out


def mounts_at(target: Path, mountinfo: str) -> list[MountEntry]:
    """The mounts stacked on ``target`` (last one on top)."""
    path = str(target)
    return [e for e in parse_mountinfo(mountinfo) if e.target == path]


# ---------------------------------------------------------------------------
# the system

class MountSystem(Protocol):
    """What mounting needs of the operating system. ``LinuxSystem`` is the real one."""

    def mount(self, source: str | None, target: str, fs_type: str | None, flags: int, data: str | None) -> None:
        """mount(2); raises OSError with the errno."""
        ...

    def umount(self, target: str, flags: int) -> None:
        """umount2(2); raises OSError with the errno."""
        ...

    def run(self, argv: Sequence[str], timeout_s: float) -> tuple[int, str]:
        """Run a command; (exit status, its stderr)."""
        ...

    def read_text(self, path: str) -> str | None:
        """A /proc file's text, None when unreadable."""
        ...


class LinuxSystem:
    """mount(2) and umount2(2) through libc; FUSE tools through subprocess."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                                     ctypes.c_char_p]
        self._libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

    @staticmethod
    def _b(value: str | None) -> bytes | None:
        return None if value is None else os.fsencode(value)

    def mount(self, source: str | None, target: str, fs_type: str | None, flags: int, data: str | None) -> None:
        if self._libc.mount(self._b(source), self._b(target), self._b(fs_type), flags, self._b(data)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), target)

    def umount(self, target: str, flags: int) -> None:
        if self._libc.umount2(self._b(target), flags) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), target)

    def run(self, argv: Sequence[str], timeout_s: float) -> tuple[int, str]:
        proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=timeout_s, check=False)
        return proc.returncode, proc.stderr.decode("utf-8", "replace")

    def read_text(self, path: str) -> str | None:
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None


def find_tools(which: Callable[[str, int, str | None], str | None] = shutil.which) -> dict[str, str]:
    """The FUSE tools installed here: logical name -> path."""
    search = os.pathsep.join(p for p in (os.environ.get("PATH", ""), _TOOL_PATH) if p)
    found: dict[str, str] = {}
    for name, candidates in TOOL_NAMES.items():
        for candidate in candidates:
            path = which(candidate, os.F_OK | os.X_OK, search)
            if path:
                found[name] = path
                break
    return found


def _modules_possible(system: MountSystem) -> bool:
    """Could the kernel load a filesystem module on demand? Not without module support."""
    if system.read_text("/proc/modules") is None:
        return False
    return (system.read_text("/proc/sys/kernel/modules_disabled") or "0").strip() != "1"


def _mountinfo(system: MountSystem) -> str:
    return system.read_text("/proc/self/mountinfo") or ""


# ---------------------------------------------------------------------------
# actions

def mount_readonly(devnode: str, fs_type: str, key: str, *, base: Path = MEDIA_DIR,
                   system: MountSystem | None = None, tools: Mapping[str, str] | None = None,
                   kernel_fs: frozenset[str] | None = None) -> Mounted:
    """Mount a camera's filesystem read-only at ``base/<safe_name(key)>``.

    Raises ``DeviceGoneError`` when the device vanished, ``DriverError`` when
    the filesystem is unknown or unreadable, ``StorageError`` when vaultd
    itself may not mount (no CAP_SYS_ADMIN) or cannot make the mount point.
    """
    target = Path(base) / safe_name(key)
    return _mount(devnode, fs_type, target, readonly=True, system=system, tools=tools, kernel_fs=kernel_fs)


def remount(m: Mounted, *, readonly: bool, system: MountSystem | None = None,
            tools: Mapping[str, str] | None = None) -> Mounted:
    """The same filesystem read-write (for the wipe) or read-only again.

    Kernel mounts are remounted in place; FUSE mounts are unmounted and
    mounted anew (FUSE tools cannot remount).
    """
    if m.readonly == readonly:
        return m
    sysm = system or LinuxSystem()
    if m.method == "kernel":
        flags = SAFE_FLAGS | (MS_RDONLY if readonly else 0)
        try:
            sysm.mount(m.devnode, str(m.target), m.fs_type, MS_REMOUNT | flags, KERNEL_OPTIONS[m.fs_type])
        except OSError as exc:
            raise _mount_error(exc, m.devnode, m.fs_type) from exc
        return replace(m, readonly=readonly)
    unmount(m, system=sysm)
    return _mount(m.devnode, m.fs_type, m.target, readonly=readonly, system=sysm, tools=tools,
                  kernel_fs=frozenset(), only="fuse")


def unmount(m: Mounted | Path, *, system: MountSystem | None = None) -> None:
    """Detach the mount lazily (busy or gone devices too) and remove the mount point. Idempotent."""
    sysm = system or LinuxSystem()
    target = m.target if isinstance(m, Mounted) else Path(m)
    for _entry in reversed(mounts_at(target, _mountinfo(sysm))):
        try:
            sysm.umount(str(target), MNT_DETACH)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOENT):
                break  # not mounted (any more)
            if exc.errno == errno.EPERM and _fusermount_detach(sysm, target):
                continue
            raise StorageError(_("cannot unmount {target}: {error}").format(target=target, error=exc.strerror),
                               hint=_("vaultd needs CAP_SYS_ADMIN to unmount cameras")) from exc
    try:
        target.rmdir()
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            log.warning("mount point %s left behind: %s", target, exc.strerror)


def _fusermount_detach(system: MountSystem, target: Path) -> bool:
    tool = find_tools().get("fusermount")
    if tool is None:
        return False
    status, err = system.run((tool, "-u", "-z", str(target)), FUSE_TIMEOUT_S)
    if status != 0:
        log.warning("fusermount -uz %s failed: %s", target, err.strip())
    return status == 0


def _prepare_target(system: MountSystem, target: Path) -> None:
    if mounts_at(target, _mountinfo(system)):
        log.warning("stale mount at %s: detaching it first", target)
        unmount(target, system=system)
    try:
        target.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        target.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise StorageError(_("cannot make the mount point {target}: {error}").format(
            target=target, error=exc.strerror)) from exc


def _mount(devnode: str, fs_type: str, target: Path, *, readonly: bool, system: MountSystem | None,
           tools: Mapping[str, str] | None, kernel_fs: frozenset[str] | None, only: str | None = None) -> Mounted:
    sysm = system or LinuxSystem()
    if fs_type not in KERNEL_OPTIONS:
        raise DriverError(_("{dev}: filesystem {fs} is not one a camera uses (FAT or exFAT); not mounted").format(
            dev=devnode, fs=fs_type or "?"), hint=_("vaultd mounts vfat and exfat only"))
    if kernel_fs is None:
        kernel_fs = kernel_filesystems(sysm.read_text("/proc/filesystems") or "")
    steps = plan_mount(fs_type, devnode, target, readonly=readonly, kernel_fs=kernel_fs,
                       modules_possible=_modules_possible(sysm), tools=find_tools() if tools is None else tools)
    steps = tuple(s for s in steps if only is None or s.method == only)
    if not steps:
        raise DriverError(_("{dev}: this system cannot mount {fs}: the kernel lacks it and no FUSE tool "
                            "is installed").format(dev=devnode, fs=fs_type),
                          hint=_("install {tool}").format(tool=FUSE_TOOLS[fs_type].replace("mount.", "")))
    if not os.path.exists(devnode):
        raise DeviceGoneError(_("{dev} is gone (unplugged?)").format(dev=devnode))
    _prepare_target(sysm, target)
    last: Exception | None = None
    for step in steps:
        try:
            method = _run_step(sysm, step, devnode, target)
        except _NotHere as exc:  # the kernel lacks the filesystem: the next step
            log.info("%s: %s; trying the next way", devnode, exc)
            last = exc
            continue
        except Exception:
            _cleanup(target)
            raise
        log.info("mounted %s (%s) at %s via %s, %s", devnode, fs_type, target, method, flag_options(step.flags))
        return Mounted(devnode=devnode, target=target, fs_type=fs_type, method=method, readonly=readonly)
    _cleanup(target)
    raise DriverError(_("{dev}: cannot mount {fs}: {error}").format(dev=devnode, fs=fs_type, error=last),
                      hint=_("install {tool}").format(tool=FUSE_TOOLS[fs_type].replace("mount.", "")))


class _NotHere(Exception):
    """The kernel does not have this filesystem (ENODEV from mount(2))."""


def _cleanup(target: Path) -> None:
    try:
        target.rmdir()
    except OSError:
        pass


def _run_step(system: MountSystem, step: MountStep, devnode: str, target: Path) -> str:
    if step.method == "kernel":
        try:
            system.mount(devnode, str(target), step.fs_type, step.flags, step.data)
        except OSError as exc:
            if exc.errno == errno.ENODEV and os.path.exists(devnode):
                raise _NotHere(_("the kernel has no {fs}").format(fs=step.fs_type)) from exc
            raise _mount_error(exc, devnode, step.fs_type) from exc
        return "kernel"
    try:
        status, err = system.run(step.argv, FUSE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DriverError(_("{dev}: {tool} failed: {error}").format(
            dev=devnode, tool=step.argv[0], error=exc)) from exc
    if status != 0 or not mounts_at(target, _mountinfo(system)):
        if not os.path.exists(devnode):
            raise DeviceGoneError(_("{dev} is gone (unplugged?)").format(dev=devnode))
        detail = " ".join(err.split())[-300:] or f"exit status {status}"
        raise DriverError(_("{dev}: {tool} could not mount it: {error}").format(
            dev=devnode, tool=Path(step.argv[0]).name, error=detail))
    try:  # enforce the per-mount flags whatever the tool did with them
        system.mount(None, str(target), None, MS_REMOUNT | MS_BIND | step.flags, None)
    except OSError as exc:
        unmount(target, system=system)
        raise StorageError(_("cannot make {target} {options}: {error}").format(
            target=target, options=flag_options(step.flags), error=exc.strerror)) from exc
    return "fuse"


def _mount_error(exc: OSError, devnode: str, fs_type: str) -> Exception:
    """mount(2)'s errno -> the error a person can act on."""
    code = exc.errno
    if code in (errno.ENOENT, errno.ENXIO, errno.EIO, errno.ENOTCONN, errno.ENODEV) or not os.path.exists(devnode):
        return DeviceGoneError(_("{dev} is gone (unplugged?)").format(dev=devnode))
    if code == errno.EPERM:
        return StorageError(_("vaultd may not mount {dev}").format(dev=devnode),
                            hint=_("run vaultd as root or with CAP_SYS_ADMIN (see systemd/vaultd.service)"))
    if code in (errno.EACCES, errno.EROFS):
        return DriverError(_("{dev} is write-protected").format(dev=devnode))
    if code == errno.ENOTBLK:
        return DriverError(_("{dev} is not a block device").format(dev=devnode))
    if code == errno.EBUSY:
        return DriverError(_("{dev} is busy (mounted elsewhere?)").format(dev=devnode))
    return DriverError(_("{dev}: not a readable {fs} filesystem ({error}); not repaired, an original is "
                         "evidence").format(dev=devnode, fs=fs_type, error=exc.strerror))


# ---------------------------------------------------------------------------
# the daemon's mounter

class Docked(Protocol):
    """What ``DeviceMounter`` needs of a dock event (``vaultd.hotplug.DockEvent`` fits)."""

    @property
    def key(self) -> str: ...

    @property
    def devnode(self) -> str | None: ...

    @property
    def device(self) -> DeviceInfo: ...


class DeviceMounter:
    """One private read-only mount per docked camera, named by its session key.

    ``mount(event)`` returns the folder to ingest; ``unmount(event)`` detaches
    it lazily (idempotent, also for a key it never mounted: a leftover of a
    killed daemon is cleaned up); ``remount(key, readonly=False)`` for the wipe.
    Thread-safe: sessions run on their own threads.
    """

    def __init__(self, base: Path = MEDIA_DIR, *, system: MountSystem | None = None,
                 tools: Mapping[str, str] | None = None) -> None:
        self.base = Path(base)
        self._system = system
        self._tools = tools
        self._mounted: dict[str, Mounted] = {}
        self._lock = threading.Lock()

    def mount(self, event: Docked) -> Path:
        if not event.devnode:
            raise DriverError(_("{key}: no device node to mount").format(key=event.key))
        got = mount_readonly(event.devnode, event.device.fs_type or "", event.key, base=self.base,
                             system=self._system, tools=self._tools)
        with self._lock:
            self._mounted[event.key] = got
        return got.target

    def unmount(self, event: Docked) -> None:
        with self._lock:
            got = self._mounted.pop(event.key, None)
        unmount(got if got is not None else self.base / safe_name(event.key), system=self._system)

    def mounted(self, key: str) -> Mounted | None:
        with self._lock:
            return self._mounted.get(key)

    def remount(self, key: str, *, readonly: bool) -> Mounted:
        """Read-write for the wipe step (still nosuid,nodev,noexec), or read-only again."""
        with self._lock:
            got = self._mounted.get(key)
        if got is None:
            raise DeviceGoneError(_("{key} is not mounted (undocked?)").format(key=key))
        new = remount(got, readonly=readonly, system=self._system, tools=self._tools)
        with self._lock:
            self._mounted[key] = new
        return new
