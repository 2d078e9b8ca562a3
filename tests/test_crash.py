"""A process killed at any instant, rerun, ends as an uninterrupted run would.

Each named crash point in ingest (``vaultd.faults``) is hit in turn: the CLI
is SIGKILLed there, then run again; the vault must hold exactly the camera's
files, each store object with its catalog row and each row with its object,
staging clean, no open intents, and the scrub green.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import TEST_CONFIG, camera_files
from vaultd.catalog import recordings as rec_db
from vaultd.catalog.schema import ingest_intents, ingest_sessions
from vaultd.ingest import ingest_path
from vaultd.model import Actor
from vaultd.vault import init_vault, open_vault

pytestmark = pytest.mark.slow


def small_camera(src: Path, dest: Path) -> Path:
    """A few files of each kind taken from the simulated camera (keeps the test quick)."""
    keep = [p for p in sorted(src.rglob("*")) if p.is_file()]
    picks = ([p for p in keep if p.suffix == ".MP4"][:1] + [p for p in keep if p.suffix == ".JPG"][:2]
             + [p for p in keep if p.suffix in (".LOG", ".json")][:2])
    for p in picks:
        target = dest / p.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, target)
    return dest


def vaultd(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vaultd.cli", "--home", str(home), *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)


def fresh_home(path: Path) -> Path:
    init_vault(path)
    (path / "vaultd.toml").write_text(TEST_CONFIG, encoding="utf-8")
    return path


def assert_consistent(home: Path, expected: set[str]) -> None:
    vault = open_vault(home)
    try:
        with vault.engine.connect() as conn:
            shas = {sha for _id, sha, _size in rec_db.all_hashes(conn)}
            intents = conn.execute(select(func.count()).select_from(ingest_intents)).scalar_one()
            running = conn.execute(select(func.count()).select_from(ingest_sessions)
                                   .where(ingest_sessions.c.status == "running")).scalar_one()
        assert shas == expected, "catalog rows differ from the camera's files"
        assert set(vault.store.iter_objects()) == expected, "store objects differ from catalog rows"
        assert intents == 0 and running == 0
        assert [p.name for p in vault.layout.staging_dir.iterdir()] == [".sessions.lock"]
        for sha in expected:
            assert vault.store.check(sha).ok
    finally:
        vault.close()


@pytest.mark.parametrize("wipe", [False, True], ids=["copy", "wipe"])
def test_kill_at_every_point_then_rerun(_sim_camera_master: Path, tmp_path: Path, wipe: bool) -> None:
    master = small_camera(_sim_camera_master, tmp_path / "master")
    expected = set(camera_files(master).values())
    extra = ["--wipe"] if wipe else []

    trace = tmp_path / "trace.txt"
    ref_cam = tmp_path / "ref-cam"
    shutil.copytree(master, ref_cam)
    ref = vaultd(fresh_home(tmp_path / "ref"), "ingest", str(ref_cam), *extra,
                 env={"VAULTD_KILL_TRACE": str(trace)})
    assert ref.returncode == 0, ref.stderr
    points = trace.read_text().splitlines()
    names = {line.split()[1] for line in points}
    assert {"stage.chunk", "ingest.intents_recorded", "store.after_rename", "ingest.rows_committed"} <= names
    assert len(points) >= 15

    for k in range(1, len(points) + 1):
        home = fresh_home(tmp_path / f"h{k}")
        cam = tmp_path / f"c{k}"
        shutil.copytree(master, cam)
        killed = vaultd(home, "ingest", str(cam), *extra, env={"VAULTD_KILL_AT": str(k)})
        assert killed.returncode == -signal.SIGKILL, (k, points[k - 1], killed.stderr)
        # the rerun runs in this process (it is the same code path as the CLI's)
        vault = open_vault(home)
        try:
            rerun = ingest_path(vault, cam, actor=Actor.local(), wipe=wipe)
        finally:
            vault.close()
        assert rerun.complete, (k, points[k - 1], rerun)
        assert_consistent(home, expected)
        if wipe:
            assert camera_files(cam) == {}, (k, points[k - 1])
        else:
            assert set(camera_files(cam).values()) == expected
        shutil.rmtree(home)
        shutil.rmtree(cam)
