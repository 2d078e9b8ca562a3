"""Shared fixtures: every test gets its own home, keys and camera copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from vaultd import faults
from vaultd.vault import Vault, init_vault, open_vault

TEST_CONFIG = """\
[ingest]
settle_s = 0.0
reserve_bytes = 0
defer_retries = 1
"""


@pytest.fixture(autouse=True)
def _clear_fault_hooks() -> Iterator[None]:
    yield
    faults.hooks.clear()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    init_vault(h)
    (h / "vaultd.toml").write_text(TEST_CONFIG, encoding="utf-8")
    return h


@pytest.fixture
def vault(home: Path) -> Iterator[Vault]:
    v = open_vault(home)
    yield v
    v.close()


@pytest.fixture(scope="session")
def _sim_camera_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vaultd.simulate import simulate_camera

    root = tmp_path_factory.mktemp("simcam") / "cam"
    simulate_camera(root, clips=4, seconds=2.0, damaged=2, odd_names=True, clock_offset_s=45.0)
    return root


@pytest.fixture
def camera(_sim_camera_master: Path, tmp_path: Path) -> Path:
    """A private copy of a simulated camera (4 clips, 2 damaged, odd names)."""
    dest = tmp_path / "camera"
    shutil.copytree(_sim_camera_master, dest, symlinks=True)
    return dest


def camera_files(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every regular file on a camera (not the identity file)."""
    import hashlib

    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink() and p.name != "vaultd-camera.json":
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@contextmanager
def small_tmpfs(tmp_path: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` (like "3m") to fill; skips the test unless it can mount one."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (run the suite as root to include it)")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("mounting tmpfs is not permitted in this container")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def wait_for(pred: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition") -> Any:
    """``pred()``'s first true value, polled until ``timeout_s``; a clear failure after."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def proc_state(pid: int) -> str | None:
    """A process's state letter from /proc ("R", "S", "T", "Z", ...); None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    return stat[stat.rindex(")") + 2]


def token_for(vault: Vault, name: str, expires_days: int = 1) -> str:
    """A bearer token for ``name`` as if they had signed in with their password
    (fixtures skip argon2; no front end can do this: ``people.create_token``
    refuses a token for a person to anyone but themselves)."""
    from vaultd import people
    from vaultd.catalog import people as people_db

    with vault.engine.begin() as conn:
        user = people_db.user_by_name(conn, name)
        assert user is not None, name
        return people._issue(conn, user, expires_days, "login").secret


def ingested_home(root: Path, camera_master: Path) -> Path:
    """``root/home`` made with ``vaultd init`` (test config) holding one camera ingested with
    ``vaultd ingest`` (a copy of ``camera_master``), as a new station's would be."""
    from vaultd.cli import main

    home = root / "home"
    assert main(["--home", str(home), "init"]) == 0
    (home / "vaultd.toml").write_text(TEST_CONFIG, encoding="utf-8")
    cam = root / "camera"
    shutil.copytree(camera_master, cam, symlinks=True)
    assert main(["--home", str(home), "ingest", str(cam)]) == 0
    return home
