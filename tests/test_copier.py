"""The copy helper process (vaultd.copier): the same result as copying in
process, and nothing lost when it cannot start, dies, talks nonsense, or the
disk fills while it copies."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import select as select_module
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import TEST_CONFIG, camera_files, proc_state, small_tmpfs, wait_for

import vaultd.ingest as ingest_mod
from vaultd import camerafs, copier
from vaultd.catalog import recordings as rec_db
from vaultd.config import IngestConfig
from vaultd.model import Actor, Outcome
from vaultd.vault import Vault, init_vault, open_vault

ME = Actor.local()
CHUNK = 8 << 20


def small_tree(root: Path, n: int, *, size: int = 3000) -> Path:
    """``n`` small files in two folders, with a JPEG-looking head and one odd name."""
    for i in range(n):
        folder = root / "PHOTO" / ("A" if i % 2 else "B")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"CAM1_00001_20261121{i:06d}_{i:04d}.JPG" if i else "bad\u202ename.JPG"
        body = b"\xff\xd8\xff\xe0" + i.to_bytes(4, "big") + os.urandom(size - 10) + b"\xff\xd9"
        (folder / name).write_bytes(body)
    return root


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every helper started; the helper is used from one small file on."""
    procs: list[subprocess.Popen[bytes]] = []
    real = copier._start

    def start(job: copier.CopyJob) -> subprocess.Popen[bytes]:
        proc = real(job)
        procs.append(proc)
        return proc

    monkeypatch.setattr(copier, "_start", start)
    monkeypatch.setattr(copier, "HELPER_MIN_FILES", 1)
    yield procs


@pytest.fixture
def waits_for_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session waits for the helper instead of copying the first batches itself."""

    class Waiting:
        @staticmethod
        def select(r: list[object], w: list[object], x: list[object], timeout: float | None = None) -> object:
            return select_module.select(r, w, x, None)

    monkeypatch.setattr(copier, "select", Waiting)


def stored_hashes(vault: Vault) -> set[str]:
    return set(vault.store.iter_objects())


def staging_empty(vault: Vault) -> bool:
    return not [p for p in vault.store.staging_dir.iterdir() if p.is_dir()]


# -- decisions -------------------------------------------------------------------------

def cam(size: int) -> camerafs.CameraFile:
    from vaultd.model import SafeName
    return camerafs.CameraFile((b"x",), "x", SafeName("x", b"x", ()), size, 0)


def test_helper_takes_batches_of_several_small_files_only() -> None:
    assert copier.for_helper([cam(10), cam(20)], CHUNK)
    assert not copier.for_helper([cam(10)], CHUNK)  # a lone file: not worth a message
    assert not copier.for_helper([cam(10), cam(CHUNK)], CHUNK)  # a big one copies with progress here


def test_helper_starts_only_for_many_small_files() -> None:
    many = [[cam(10)] * 40, [cam(10)] * 40]
    assert copier.wants_helper(many, CHUNK, 64)
    assert not copier.wants_helper(many[:1], CHUNK, 64)
    assert not copier.wants_helper([[cam(CHUNK)]] * 100, CHUNK, 64)
    assert not copier.wants_helper(many, CHUNK, 0)  # 0: never


# -- the whole ingest through the helper ----------------------------------------------

def test_helper_ingest_is_byte_identical_and_same_as_in_process(
        vault: Vault, tmp_path: Path, spawned: list[subprocess.Popen[bytes]], waits_for_helper: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    src = small_tree(tmp_path / "cam", 300)
    report = ingest_path_ok(vault, src)
    assert spawned and all(p.returncode is not None for p in spawned)  # used, and reaped
    assert report.counts()["new"] == 300
    assert set(camera_files(src).values()) == stored_hashes(vault)
    for sha in stored_hashes(vault):  # byte-identical, as sha256sum would say
        assert hashlib.sha256(vault.store.object_path(sha).read_bytes()).hexdigest() == sha
    odd = [r for r in report.results if r.name_oddities]
    assert len(odd) == 1 and odd[0].outcome is Outcome.NEW
    assert staging_empty(vault)

    # the same tree in process gives the same recordings (a second vault)
    home2 = tmp_path / "home2"
    init_vault(home2)
    (home2 / "vaultd.toml").write_text((vault.layout.config_file).read_text(encoding="utf-8"), encoding="utf-8")
    other = open_vault(home2)
    try:
        monkeypatch.setattr(copier, "HELPER_MIN_FILES", 0)
        local = ingest_mod.ingest_path(other, src, actor=ME)
    finally:
        other.close()
    key = sorted((r.path, r.outcome, r.sha256, r.size_bytes, r.damaged, r.name_oddities) for r in report.results)
    assert key == sorted((r.path, r.outcome, r.sha256, r.size_bytes, r.damaged, r.name_oddities)
                         for r in local.results)


def ingest_path_ok(vault: Vault, src: Path) -> ingest_mod.IngestReport:
    report = ingest_mod.ingest_path(vault, src, actor=ME)
    assert report.complete, report.error
    return report


def _no_start(job: copier.CopyJob) -> subprocess.Popen[bytes]:
    raise OSError(12, "Cannot allocate memory")


def _liar(job: copier.CopyJob) -> subprocess.Popen[bytes]:
    """A "helper" that says something that is not a message."""
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdout.write('not a pickle'); "
                             "sys.stdout.flush(); sys.stdin.read()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


@pytest.mark.parametrize("start", [_no_start, _liar], ids=["cannot-start", "talks-nonsense"])
def test_a_helper_that_fails_is_dropped_and_the_copy_done_here(
        vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, waits_for_helper: None,
        caplog: pytest.LogCaptureFixture, start: object) -> None:
    monkeypatch.setattr(copier, "_start", start)
    monkeypatch.setattr(copier, "HELPER_MIN_FILES", 1)
    src = small_tree(tmp_path / "cam", 200)
    with caplog.at_level(logging.WARNING, logger="vaultd.copier"):
        report = ingest_path_ok(vault, src)
    assert report.counts()["new"] == 200
    assert set(camera_files(src).values()) == stored_hashes(vault)
    assert "copy helper process failed" in caplog.text


def test_helper_killed_mid_ingest_loses_nothing(
        vault: Vault, tmp_path: Path, spawned: list[subprocess.Popen[bytes]], waits_for_helper: None,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    real = copier.HelperCopier._receive
    calls: list[int] = []

    def kill_on_second(self: copier.HelperCopier, n: int) -> object:
        calls.append(n)
        if len(calls) == 2:
            spawned[0].kill()
            spawned[0].wait()
        return real(self, n)

    monkeypatch.setattr(copier.HelperCopier, "_receive", kill_on_second)
    src = small_tree(tmp_path / "cam", 600)
    with caplog.at_level(logging.WARNING, logger="vaultd.copier"):
        report = ingest_path_ok(vault, src)
    assert len(calls) == 2  # after the death every batch was copied here
    assert report.counts() == {**report.counts(), "new": 600, "failed": 0, "deferred": 0}
    assert set(camera_files(src).values()) == stored_hashes(vault)
    assert staging_empty(vault)
    assert "copy helper process failed" in caplog.text


def test_file_gone_after_the_walk_fails_alone(
        vault: Vault, tmp_path: Path, spawned: list[subprocess.Popen[bytes]], waits_for_helper: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    src = small_tree(tmp_path / "cam", 150)
    victim = sorted(src.rglob("*_0100.JPG"))[0]
    real_walk = camerafs.walk

    def walk_then_remove(root_fd: int, cfg: IngestConfig) -> camerafs.Walk:
        found = real_walk(root_fd, cfg)
        victim.unlink()
        return found

    monkeypatch.setattr(ingest_mod.camerafs, "walk", walk_then_remove)
    report = ingest_mod.ingest_path(vault, src, actor=ME)
    failed = [r for r in report.results if r.outcome is Outcome.FAILED]
    assert [r.path for r in failed] == [str(victim.relative_to(src))]
    assert "cannot read from the camera" in (failed[0].reason or "")
    assert report.counts()["new"] == 149 and not report.complete


@pytest.mark.root
def test_disk_full_in_the_helper_stops_cleanly_and_resumes(
        tmp_path: Path, spawned: list[subprocess.Popen[bytes]], waits_for_helper: None) -> None:
    """A real 4 MiB tmpfs as the vault home, filled by the helper's copies."""
    src = small_tree(tmp_path / "cam", 200, size=30_000)  # 6 MB: cannot fit
    with small_tmpfs(tmp_path, "4m") as mnt:
        home = mnt / "home"
        init_vault(home)
        # the reserve keeps room for the catalog, which lives on the same disk
        (home / "vaultd.toml").write_text(TEST_CONFIG.replace("reserve_bytes = 0", "reserve_bytes = 1048576"),
                                          encoding="utf-8")
        vault = open_vault(home)
        report = ingest_mod.ingest_path(vault, src, actor=ME)
        assert spawned and report.error and ("full" in report.error or "not enough space" in report.error)
        assert not report.complete
        kept = stored_hashes(vault)
        assert kept and kept <= set(camera_files(src).values())  # what was copied is whole...
        with vault.engine.connect() as conn:  # ...and catalogued
            assert {sha for _i, sha, _s in rec_db.all_hashes(conn)} == kept
        assert not list(home.glob("staging/*/*.part"))
        vault.close()
        bigger = tmp_path / "bigger"  # free space (a bigger disk) and resume
        shutil.copytree(home, bigger, symlinks=True)
        vault = open_vault(bigger)
        again = ingest_path_ok(vault, src)
        assert again.counts()["new"] == 200 - len(kept)
        assert set(camera_files(src).values()) == stored_hashes(vault)
        vault.close()


# -- the helper's side of the conversation, in process --------------------------------

@contextmanager
def conversation(vault: Vault, src: Path, session: str, requests: Callable[[list[camerafs.CameraFile]], list[object]],
                 *, reserve: int = 0, before: Callable[[list[camerafs.CameraFile]], None] | None = None,
                 ) -> Iterator[tuple[list[object], Path]]:
    """The helper's loop run here on ``src``: yields its answers and the staging folder."""
    root_fd = camerafs.open_root(src)
    staging = vault.store.open_staging(session)
    try:
        files = camerafs.walk(root_fd, vault.config.ingest).files
        if before is not None:
            before(files)
        inp = io.BytesIO()
        for msg in requests(files):
            pickle.dump(msg, inp)
        inp.seek(0)
        out = io.BytesIO()
        copier.serve(copier.CopyJob(vault.store, staging, root_fd, reserve), inp, out)
        out.seek(0)
        answers: list[object] = []
        while True:
            try:
                answers.append(pickle.load(out))
            except EOFError:
                break
        yield answers, staging.root
    finally:
        staging.close()
        os.close(root_fd)


def test_helper_protocol_reports_each_file(vault: Vault, tmp_path: Path) -> None:
    src = small_tree(tmp_path / "cam", 5)

    def meddle(files: list[camerafs.CameraFile]) -> None:
        (src / files[1].display_path).write_bytes(b"grown")  # changed since the walk
        (src / files[3].display_path).unlink()  # gone since the walk

    with conversation(vault, src, "t1", lambda files: [("group", files), ("copy", files, False)],
                      before=meddle) as (msgs, staged_in):
        assert msgs[0] == ("ready",) and msgs[-1] == ("end",)
        results = [r for m in msgs if isinstance(m, tuple) and m[0] == "files" for r in m[1]]
        assert len(results) == 5
        kinds = [type(r).__name__ for r in results]
        assert kinds.count("Staged") == 3 and kinds.count("Changed") + kinds.count("Unreadable") == 2
        for r in results:
            if isinstance(r, copier.Staged):
                assert r.structure is not None and r.structure.kind == "jpeg"
                assert Path(r.staged.path).parent == staged_in


def test_helper_protocol_stops_on_a_full_disk(vault: Vault, tmp_path: Path) -> None:
    src = small_tree(tmp_path / "cam", 4)
    with conversation(vault, src, "t2", lambda files: [("copy", files, False)],
                      reserve=1 << 62) as (msgs, staged_in):  # no reserve can be met
        assert msgs[0] == ("ready",) and msgs[1] == ("files", [])
        stop = msgs[2]
        assert isinstance(stop, tuple) and stop[0] == "stop" and stop[1] == "DiskFullError"
        assert "not enough space" in stop[2]
        assert not list(staged_in.iterdir())


def test_parent_takes_only_the_values_a_helper_may_send() -> None:
    ok = pickle.dumps(("files", [copier.Changed(), copier.Unreadable(5, "EIO")]))
    assert copier._Unpickler(io.BytesIO(ok)).load()[1][1].why == "EIO"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo owned",))

    with pytest.raises(pickle.UnpicklingError, match="may not send"):
        copier._Unpickler(io.BytesIO(pickle.dumps(("files", [Evil()])))).load()


def test_helper_dies_with_its_session(tmp_path: Path, vault: Vault) -> None:
    """A session's process killed mid-ingest takes its helper with it."""
    script = tmp_path / "session.py"
    script.write_text(f"""
import os, sys, time
from pathlib import Path
from vaultd import copier
from vaultd.store import Store
store = Store(Path({str(vault.store.store_dir)!r}), Path({str(vault.store.staging_dir)!r}))
staging = store.open_staging("s1")
fd = os.open({str(tmp_path)!r}, os.O_RDONLY | os.O_DIRECTORY)
proc = copier._start(copier.CopyJob(store, staging, fd, 0))
# another process keeps the helper's stdin open, so only the death signal can end it
import subprocess
keeper = subprocess.Popen(["sleep", "60"], pass_fds=(proc.stdin.fileno(),))
print(proc.pid, keeper.pid, flush=True)
time.sleep(60)
""", encoding="utf-8")
    session = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    keeper = 0
    try:
        assert session.stdout is not None
        helper, keeper = map(int, session.stdout.readline().split())
        time.sleep(0.5)  # the helper has started and asked for its death signal
        session.kill()
        session.wait()
        wait_for(lambda: proc_state(helper) in (None, "Z"), 5, "the helper to die with its session")
    finally:
        session.kill()
        if keeper:
            os.kill(keeper, signal.SIGKILL)

