"""The vault disk fills: ingest stops clearly, loses and wipes nothing, resumes later."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from conftest import TEST_CONFIG, camera_files, small_tmpfs

from vaultd import faults
from vaultd.catalog import recordings as rec_db
from vaultd.ingest import ingest_path
from vaultd.model import Actor
from vaultd.vault import Vault, init_vault, open_vault

pytestmark = pytest.mark.slow
ME = Actor.local()


def hashes(vault: Vault) -> set[str]:
    with vault.engine.connect() as conn:
        return {sha for _i, sha, _s in rec_db.all_hashes(conn)}


def test_enospc_mid_copy_stops_removes_partial_wipes_nothing(vault: Vault, camera: Path) -> None:
    calls = []

    def fill() -> None:
        calls.append(1)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")

    faults.hooks["stage.chunk"] = fill
    before = camera_files(camera)
    report = ingest_path(vault, camera, actor=ME, wipe=True)
    assert report.error and "full" in report.error
    assert not report.complete
    assert camera_files(camera) == before  # nothing wiped
    assert not list(vault.layout.staging_dir.glob("*/*.part"))
    assert set(vault.store.iter_objects()) == hashes(vault)  # no object without its row
    faults.hooks.clear()
    again = ingest_path(vault, camera, actor=ME, wipe=True)
    assert again.complete and hashes(vault) == set(before.values())
    assert camera_files(camera) == {}


def test_reserve_stops_before_copying(home: Path, camera: Path) -> None:
    (home / "vaultd.toml").write_text(TEST_CONFIG.replace("reserve_bytes = 0", "reserve_bytes = 1000000000000000"))
    vault = open_vault(home)
    report = ingest_path(vault, camera, actor=ME)
    assert report.error and "reserve" in report.error
    assert list(vault.store.iter_objects()) == []


@pytest.mark.root
def test_real_full_filesystem(tmp_path: Path, camera: Path) -> None:
    """A real 3 MiB tmpfs as the vault home (needs root to mount)."""
    with small_tmpfs(tmp_path, "3m") as mnt:
        home = mnt / "home"
        init_vault(home)
        (home / "vaultd.toml").write_text(TEST_CONFIG)
        vault = open_vault(home)
        big = camera / "DCIM" / "BIG.MP4"
        big.write_bytes(os.urandom(3 << 20))  # cannot fit
        report = ingest_path(vault, camera, actor=ME, wipe=True)
        assert report.error and ("full" in report.error.lower() or "reserve" in report.error)
        assert big.exists() and not list(home.glob("staging/*/*.part"))
        assert set(vault.store.iter_objects()) == hashes(vault)
        vault.close()
        # free space (move the vault to a bigger disk) and resume: everything lands
        bigger = tmp_path / "bigger"
        shutil.copytree(home, bigger, symlinks=True)
        vault = open_vault(bigger)
        again = ingest_path(vault, camera, actor=ME)
        assert again.complete and hashes(vault) == set(camera_files(camera).values())
        vault.close()
