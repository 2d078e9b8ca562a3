import errno
import hashlib
import os
import stat
from pathlib import Path

import pytest

from vaultd import faults
from vaultd.errors import DiskFullError, HashMismatchError, StorageError
from vaultd.store import SourceReadError, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    (tmp_path / "store").mkdir()
    (tmp_path / "staging").mkdir()
    return Store(tmp_path / "store", tmp_path / "staging", chunk_bytes=64 << 10)


def src(tmp_path: Path, data: bytes) -> int:
    p = tmp_path / "src.bin"
    p.write_bytes(data)
    return os.open(p, os.O_RDONLY)


def test_stage_and_commit_is_content_addressed_and_read_only(store: Store, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    staging = store.open_staging("s1")
    fd = src(tmp_path, data)
    seen = []
    staged = store.stage(staging, fd, seen.append)
    os.close(fd)
    sha = hashlib.sha256(data).hexdigest()
    assert staged.sha256 == sha and staged.size_bytes == len(data) and sum(seen) == len(data)
    assert store.commit(staged) is True
    path = store.object_path(sha)
    assert path == store.store_dir / "sha256" / sha[:2] / sha[2:4] / sha
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert list(store.iter_objects()) == [sha]
    staging.close()
    assert not staging.root.exists()


def test_same_bytes_stored_once(store: Store, tmp_path: Path) -> None:
    staging = store.open_staging("s1")
    for _ in range(2):
        fd = src(tmp_path, b"same bytes")
        staged = store.stage(staging, fd)
        os.close(fd)
        store.commit(staged)
    assert len(list(store.iter_objects())) == 1
    assert list(staging.root.glob("*.part")) == []


def test_existing_object_of_wrong_size_is_an_integrity_error(store: Store, tmp_path: Path) -> None:
    staging = store.open_staging("s1")
    fd = src(tmp_path, b"evidence")
    staged = store.stage(staging, fd)
    os.close(fd)
    target = store.object_path(staged.sha256)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"tampered!!")
    with pytest.raises(HashMismatchError):
        store.commit(staged)


def test_disk_full_removes_partial(store: Store, tmp_path: Path) -> None:
    staging = store.open_staging("s1")
    fd = src(tmp_path, os.urandom(500_000))

    def full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    faults.hooks["stage.chunk"] = full
    with pytest.raises(DiskFullError, match="full"):
        store.stage(staging, fd)
    os.close(fd)
    assert list(staging.root.glob("*.part")) == []


def test_source_error_removes_partial(store: Store, tmp_path: Path) -> None:
    staging = store.open_staging("s1")
    fd = src(tmp_path, os.urandom(500_000))
    calls = []

    def eio() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.EIO, "Input/output error")

    faults.hooks["source.read"] = eio
    with pytest.raises(SourceReadError) as err:
        store.stage(staging, fd)
    os.close(fd)
    assert err.value.errno == errno.EIO
    assert list(staging.root.glob("*.part")) == []


def test_reserve_is_checked(store: Store) -> None:
    with pytest.raises(DiskFullError, match="reserve"):
        store.check_space(1, store.free_bytes())
    store.check_space(0, 0)


def test_check_finds_flip_and_missing(store: Store, tmp_path: Path) -> None:
    staging = store.open_staging("s1")
    fd = src(tmp_path, b"x" * 1000)
    staged = store.stage(staging, fd)
    os.close(fd)
    store.commit(staged)
    assert store.check(staged.sha256, 1000).ok
    path = store.object_path(staged.sha256)
    os.chmod(path, 0o644)
    with open(path, "r+b") as fh:
        fh.seek(10)
        fh.write(b"y")
    result = store.check(staged.sha256, 1000)
    assert not result.ok and result.problem and result.problem.startswith("hash differs")
    os.unlink(path)
    assert store.check(staged.sha256).problem == "missing"


def test_recovery_lock_excludes_running_sessions(store: Store) -> None:
    staging = store.open_staging("live")
    with store.recovery_lock() as exclusive:
        assert exclusive is False
    staging.close()
    with store.recovery_lock() as exclusive:
        assert exclusive is True


def test_object_path_refuses_non_hashes(store: Store) -> None:
    for bad in ("../../etc/passwd", "ab", "G" * 64):
        with pytest.raises(ValueError):
            store.object_path(bad)


def test_a_staged_copy_that_cannot_be_made_durable_is_a_storage_error(store: Store, tmp_path: Path) -> None:
    staging = store.open_staging("s1")
    fd = src(tmp_path, b"evidence")
    staged = store.stage(staging, fd, fsync=False)
    os.close(fd)
    store.make_durable([staged])  # fine while it is there
    staged.path.unlink()  # gone under us (a broken staging disk, an operator's rm)
    with pytest.raises(StorageError, match=staged.path.name):
        store.make_durable([staged])
    assert list(store.iter_objects()) == []  # nothing half-placed in the store
    staging.close()


def test_a_staged_copy_gone_before_its_rename_is_a_storage_error(store: Store, tmp_path: Path) -> None:
    staging = store.open_staging("s2")
    fd = src(tmp_path, b"evidence 2")
    staged = store.stage(staging, fd, fsync=False)
    os.close(fd)
    staged.path.unlink()  # gone under us between staging and placing
    with pytest.raises(StorageError, match=staged.sha256):
        store.commit_many([staged])
    assert list(store.iter_objects()) == []  # nothing placed
    staging.close()
