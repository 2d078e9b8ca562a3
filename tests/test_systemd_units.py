"""The systemd side: the unit verifies and is hardened, sysusers/tmpfiles make the user
and folders, the udev rules mark cameras (and nothing else), sd_notify reaches systemd."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vaultd.sdnotify import Notifier, watchdog_interval_s

ROOT = Path(__file__).parent.parent
UNITS = ROOT / "systemd"
DATA = Path(__file__).parent / "data"
MAX_EXPOSURE = 3.0  # systemd-analyze security: "OK" is below 5; vaultd must stay at most this


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (./run tests installs systemd)")
    return path


def _unit_for_verify(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's vaultd (verify wants the binary to exist)."""
    vaultd = Path(sys.executable).parent / "vaultd"
    if not vaultd.exists():
        pytest.skip("no vaultd console script next to this Python")
    text = (UNITS / "vaultd.service").read_text()
    assert "ExecStart=/usr/bin/vaultd --home /var/lib/vaultd run\n" in text
    unit = tmp_path / "vaultd.service"
    unit.write_text(text.replace("ExecStart=/usr/bin/vaultd", f"ExecStart={vaultd}"))
    return unit


def test_the_unit_verifies_cleanly(tmp_path: Path) -> None:
    unit = _unit_for_verify(tmp_path)
    out = subprocess.run([_tool("systemd-analyze"), "verify", str(unit)], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "vaultd.service" not in out.stdout + out.stderr  # not even a warning about our unit


def test_the_unit_is_hardened(tmp_path: Path) -> None:
    unit = _unit_for_verify(tmp_path)
    out = subprocess.run([_tool("systemd-analyze"), "security", "--offline=yes", str(unit)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    if "offline" in out.stderr and out.returncode != 0:
        pytest.skip("this systemd-analyze has no --offline")
    m = re.search(r"Overall exposure level for vaultd\.service: ([0-9.]+) (\w+)", out.stdout)
    assert m, out.stdout[-2000:] + out.stderr
    print(f"systemd-analyze security: exposure {m.group(1)} {m.group(2)}")
    assert float(m.group(1)) <= MAX_EXPOSURE
    for setting in ("NoNewPrivileges=", "ProtectSystem=", "PrivateTmp=", "ProtectHome=", "PrivateMounts=",
                    "MemoryDenyWriteExecute=", "RestrictNamespaces=~user", "CapabilityBoundingSet=~CAP_SYS_MODULE"):
        assert re.search(r"✓ " + re.escape(setting), out.stdout), setting


def test_the_unit_asks_for_what_the_daemon_needs() -> None:
    text = (UNITS / "vaultd.service").read_text()
    settings = [line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")]
    keys = {k: v for k, v in settings}
    assert keys["Type"] == "notify" and keys["NotifyAccess"] == "main" and keys["User"] == "vaultd"
    assert set(keys["CapabilityBoundingSet"].split()) == {"CAP_SYS_ADMIN", "CAP_SYS_RAWIO"}
    assert set(keys["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    assert "@mount" in keys["SystemCallFilter"] and "PrivateDevices" not in keys
    allowed = {v.split()[0] for k, v in settings if k == "DeviceAllow"}
    assert allowed == {"block-sd", "char-sg", "char-usb_device", "/dev/fuse"}
    assert set(keys["ReadWritePaths"].split()) == {"/var/lib/vaultd", "/run/vaultd"}


def test_sysusers_and_tmpfiles_make_the_user_and_private_folders(tmp_path: Path) -> None:
    sysusers, tmpfiles = _tool("systemd-sysusers"), _tool("systemd-tmpfiles")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    subprocess.run([sysusers, f"--root={root}", str(UNITS / "vaultd.sysusers")], check=True,
                   capture_output=True, timeout=60)
    passwd = (root / "etc" / "passwd").read_text()
    m = re.search(r"^vaultd:x:(\d+):(\d+):[^:]*:/var/lib/vaultd:(\S+)$", passwd, re.M)
    assert m and int(m.group(1)) < 1000 and m.group(3).endswith("nologin")  # a system user, no shell
    assert re.search(r"^vaultd:x:\d+:", (root / "etc" / "group").read_text(), re.M)
    out = subprocess.run([tmpfiles, f"--root={root}", "--create", str(UNITS / "vaultd.tmpfiles")],
                         capture_output=True, text=True, timeout=60)
    uid = int(m.group(1))
    as_root = os.geteuid() == 0
    if as_root:
        assert out.returncode == 0, out.stderr
    else:  # only root may give the folders to vaultd; everything else must still be right
        assert all("chown" in line for line in out.stderr.splitlines()), out.stderr
    for path, mode in (("var/lib/vaultd", 0o700), ("run/vaultd", 0o750), ("run/vaultd/media", 0o750)):
        st = (root / path).stat()
        assert oct(st.st_mode & 0o777) == oct(mode), path
        assert st.st_uid == uid or not as_root, path


# -- udev rules: syntax, and what they do to the fixture devices ---------------------------------

MATCH_KEYS = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "KERNELS", "DRIVER", "DRIVERS", "DEVPATH",
              "ATTR", "ATTRS", "ENV", "TAG", "TAGS", "PROGRAM", "RESULT", "TEST", "NAME", "SYMLINK"}
ASSIGN_KEYS = {"ENV", "GROUP", "MODE", "OWNER", "TAG", "SYMLINK", "GOTO", "LABEL", "RUN", "OPTIONS",
               "IMPORT", "ATTR", "NAME"}
TOKEN = re.compile(r'\s*(?P<key>[A-Z_]+)(?:\{(?P<arg>[^}]+)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<val>[^"]*)"\s*(?:,|$)')

Rule = list[tuple[str, str | None, str, str]]


def parse_rules(text: str) -> list[Rule]:
    rules: list[Rule] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert not line.endswith("\\"), f"line {n}: continuation lines are not used here"
        pos, rule = 0, []
        while pos < len(line):
            tok = TOKEN.match(line, pos)
            assert tok, f"line {n}: cannot parse from column {pos}: {line[pos:]!r}"
            key, arg, op, val = tok.group("key", "arg", "op", "val")
            if op in ("==", "!="):
                assert key in MATCH_KEYS, f"line {n}: {key} is no match key"
            else:
                assert key in ASSIGN_KEYS, f"line {n}: {key} cannot be assigned"
            assert (arg is not None) == (key in {"ATTR", "ATTRS", "ENV", "TEST"}), f"line {n}: {key}{{}}"
            rule.append((key, arg, op, val))
            pos = tok.end()
        rules.append(rule)
    labels = {v for r in rules for k, _a, _o, v in r if k == "LABEL"}
    gotos = {v for r in rules for k, _a, _o, v in r if k == "GOTO"}
    assert gotos <= labels, f"GOTO without LABEL: {gotos - labels}"
    return rules


def load_umockdev(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    """A .umockdev file -> {sys path: {"E": properties, "A": attributes}}."""
    devices: dict[str, dict[str, dict[str, str]]] = {}
    for block in path.read_text().split("\n\n"):
        current: dict[str, dict[str, str]] | None = None
        for line in block.splitlines():
            kind, _, rest = line.partition(": ")
            if kind == "P":
                current = devices.setdefault("/sys" + rest, {"E": {}, "A": {}})
            elif kind in ("E", "A") and current is not None:
                k, _, v = rest.partition("=")
                current[kind][k] = v
    return devices


def _glob(value: str | None, pattern: str) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(value.rstrip(), p) for p in pattern.split("|"))


def apply_rules(rules: list[Rule], devices: dict[str, dict[str, dict[str, str]]], path: str,
                action: str = "add") -> dict[str, str]:
    """What the rules assign to one device (ENV{...} and GROUP/MODE), for the subset of udev they use."""
    chain = [p for p in sorted(devices, key=len, reverse=True) if path == p or path.startswith(p + "/")]
    me = devices[path]
    env = dict(me["E"])
    out: dict[str, str] = {}
    skip_to: str | None = None
    for rule in rules:
        if skip_to is not None:
            if ("LABEL", None, "=", skip_to) in rule:
                skip_to = None
            continue
        own = {"ACTION": action, "SUBSYSTEM": env.get("SUBSYSTEM")}
        ok = True
        parent_checks = [(k, a, o, v) for k, a, o, v in rule if k in ("SUBSYSTEMS", "ATTRS")]
        for key, arg, op, val in rule:
            if op not in ("==", "!=") or key in ("SUBSYSTEMS", "ATTRS"):
                continue
            have = env.get(arg or "") if key == "ENV" else own.get(key)
            ok &= _glob(have, val) == (op == "==")
        if parent_checks:
            ok &= any(all(_glob(devices[p]["E"].get("SUBSYSTEM") if k == "SUBSYSTEMS" else devices[p]["A"].get(a or ""),
                                v) for k, a, o, v in parent_checks) for p in chain)
        if not ok:
            continue
        for key, arg, op, val in rule:
            if key == "GOTO":
                skip_to = val
            elif key == "ENV" and op == "=":
                env[arg or ""] = out[f"ENV{{{arg}}}"] = val
            elif key in ("GROUP", "MODE"):
                out[key] = val
    return out


@pytest.fixture(scope="module")
def rules() -> list[Rule]:
    return parse_rules((UNITS / "70-vaultd.rules").read_text())


@pytest.fixture(scope="module")
def docked() -> dict[str, dict[str, dict[str, str]]]:
    devs = load_umockdev(DATA / "hotplug_camera.umockdev")
    devs.update(load_umockdev(DATA / "hotplug_stick.umockdev"))
    return devs


CAM = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2"
CAM_SCSI = CAM + "/1-2:1.0/host3/target3:0:0/3:0:0:0"
HIDDEN = {"ENV{VAULTD_CAMERA}": "1", "ENV{UDISKS_IGNORE}": "1", "ENV{UDISKS_AUTO}": "0",
          "ENV{UDISKS_SYSTEM}": "1", "GROUP": "vaultd", "MODE": "0660"}


def test_udev_rules_mark_a_known_camera_and_hide_it_from_the_desktop(rules: list[Rule], docked: dict) -> None:
    assert apply_rules(rules, docked, CAM_SCSI + "/block/sdb/sdb1") == HIDDEN
    assert apply_rules(rules, docked, CAM_SCSI + "/block/sdb") == HIDDEN
    assert apply_rules(rules, docked, CAM_SCSI + "/scsi_generic/sg1") == \
        {"ENV{VAULTD_CAMERA}": "1", "GROUP": "vaultd", "MODE": "0660"}
    assert apply_rules(rules, docked, CAM) == {"ENV{VAULTD_CAMERA}": "1", "GROUP": "vaultd", "MODE": "0660"}
    assert apply_rules(rules, docked, CAM_SCSI + "/block/sdb/sdb1", action="remove") == {}


def test_udev_rules_know_a_dv16_recorder_by_its_inquiry(rules: list[Rule], docked: dict) -> None:
    other = {p: {"E": dict(d["E"]), "A": dict(d["A"])} for p, d in docked.items()}
    other[CAM]["A"].update(idVendor="1b3f", idProduct="2002")  # some other USB id, same DV16 INQUIRY
    assert apply_rules(rules, other, CAM_SCSI + "/block/sdb/sdb1") == HIDDEN
    assert apply_rules(rules, other, CAM) == {}  # the bare USB device has no INQUIRY to go by


def test_udev_rules_leave_other_storage_alone(rules: list[Rule], docked: dict) -> None:
    stick = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-5"
    assert apply_rules(rules, docked, stick + "/1-5:1.0/host6/target6:0:0/6:0:0:0/block/sdc/sdc1") == {}
    assert apply_rules(rules, docked, stick) == {}
    assert apply_rules(rules, docked, "/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0"
                                      "/block/sda/sda1") == {}


def test_the_rule_syntax_checker_catches_mistakes() -> None:
    for bad in ('SUBSYSTEM="block", GROUP="vaultd"\n',  # assignment to a match-only key
                'ATTRS{idVendor}=="4255" ENV{X}="1"\n',  # missing comma
                'ENV{X}=="1", GOTO="nowhere"\n',  # no such label
                'GROUP=="vaultd"\n'):  # GROUP is not a match key
        with pytest.raises(AssertionError):
            parse_rules(bad)


def test_udevadm_verify_where_this_systemd_has_it() -> None:
    udevadm = shutil.which("udevadm")
    if udevadm is None or subprocess.run([udevadm, "verify", "--help"], capture_output=True).returncode != 0:
        pytest.skip("udevadm verify needs systemd >= 254 (Debian 12 has 252: the syntax is checked above)")
    out = subprocess.run([udevadm, "verify", str(UNITS / "70-vaultd.rules")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# -- sd_notify ---------------------------------------------------------------------------------------

def _listen(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def test_sd_notify_reaches_a_path_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with _listen(path) as sock:
        n = Notifier({"NOTIFY_SOCKET": path})
        assert n.enabled and n.ready("2 cameras docked\n3 files queued")
        assert sock.recv(4096) == b"READY=1\nSTATUS=2 cameras docked 3 files queued"  # one line per field
        assert n.watchdog() and sock.recv(4096) == b"WATCHDOG=1"
        assert n.status("ingesting 4255:0001 ZFY0001234: 12/40 files") and \
            sock.recv(4096) == b"STATUS=ingesting 4255:0001 ZFY0001234: 12/40 files"
        assert n.stopping("finishing 2 copies") and sock.recv(4096) == b"STOPPING=1\nSTATUS=finishing 2 copies"
        assert n.extend_timeout(30) and sock.recv(4096) == b"EXTEND_TIMEOUT_USEC=30000000"
        n.close()


def test_sd_notify_reaches_an_abstract_socket() -> None:
    name = f"vaultd-test-notify-{os.getpid()}"
    with _listen(b"\0" + name.encode()) as sock:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.ready() and sock.recv(4096) == b"READY=1"
        n.close()


def test_sd_notify_is_silent_outside_systemd(tmp_path: Path) -> None:
    n = Notifier({})
    assert not n.enabled and not n.ready("x") and not n.watchdog() and not n.stopping()
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert not gone.ready()  # a dead socket is logged, never raised


@pytest.mark.parametrize("env,expected", [
    ({}, None),
    ({"WATCHDOG_USEC": "60000000"}, 60.0),
    ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "4242"}, 60.0),  # ours
    ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
])
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval_s(env, pid=4242) == expected
