"""The catalog's unsynced transactions (bookkeeping before the first copied byte)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaultd.catalog import db


def _synchronous(conn: object) -> int:
    return int(conn.connection.driver_connection.execute("PRAGMA synchronous").fetchone()[0])  # type: ignore[attr-defined]


def test_unsynced_commit_is_normal_inside_and_full_again_after(tmp_path: Path) -> None:
    engine = db.create(db.sqlite_url(tmp_path / "c.sqlite"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with db.begin_unsynced(engine) as conn:
        assert _synchronous(conn) == 1  # NORMAL: the WAL is synced by the next FULL commit
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    with engine.connect() as conn:
        assert _synchronous(conn) == 2  # FULL for everyone else
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1


def test_a_failed_unsynced_transaction_rolls_back_whole_and_restores_full(tmp_path: Path) -> None:
    engine = db.create(db.sqlite_url(tmp_path / "c.sqlite"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError):
        with db.begin_unsynced(engine) as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")
    with engine.connect() as conn:
        assert _synchronous(conn) == 2
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
