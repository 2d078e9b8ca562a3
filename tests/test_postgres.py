"""The scale-out engine: the same vault on a real PostgreSQL server.

A throwaway cluster is started in a temp folder (Debian's postgresql package;
as root it runs as the 'postgres' user). Migrations, ingest, the audit log's
append-only triggers and its verification must all hold there too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from conftest import camera_files
from pgserver import throwaway_postgres
from vaultd import auditcheck
from vaultd.catalog import recordings as rec_db
from vaultd.ingest import ingest_path
from vaultd.model import Actor
from vaultd.vault import init_vault, open_vault

pytestmark = [pytest.mark.pg, pytest.mark.slow]
PORT = 54331


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with throwaway_postgres(PORT, "vaultd_test", "vaultd-pg-") as url:
        yield url


def test_vault_on_postgresql(pg_url: str, tmp_path: Path, camera: Path) -> None:
    home = tmp_path / "home"
    config = tmp_path / "vaultd.toml"
    config.write_text(f'[catalog]\nurl = "{pg_url}"\n[ingest]\nsettle_s = 0.0\nreserve_bytes = 0\n')
    init_vault(home, config)
    vault = open_vault(home, config)
    try:
        assert vault.engine.dialect.name == "postgresql"
        report = ingest_path(vault, camera, actor=Actor.local())
        assert report.complete
        with vault.engine.connect() as conn:
            shas = {sha for _i, sha, _s in rec_db.all_hashes(conn)}
        assert shas == set(camera_files(camera).values())
        from vaultd import audit
        assert audit.seal(vault) is not None
        assert auditcheck.verify(vault).ok
        for statement in ("UPDATE audit_entries SET type = 'x' WHERE idx = 0", "DELETE FROM audit_nodes",
                          "DELETE FROM audit_checkpoints"):
            with pytest.raises(DBAPIError, match="append-only"):
                with vault.engine.begin() as conn:
                    conn.execute(text(statement))
        # an attacker who drops the trigger and edits an entry is still caught
        with vault.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER audit_entries_append_only ON audit_entries"))
            conn.execute(text("UPDATE audit_entries SET entry = entry || '\\x20'::bytea WHERE idx = 3"))
        problems = auditcheck.verify(vault).problems
        assert problems, "an edited entry must be caught"
        assert "audit entry 3" in problems[0], problems
    finally:
        vault.close()


def test_unsynced_bookkeeping_commits_without_waiting_and_leaves_the_pool_synced(pg_url: str) -> None:
    from vaultd.catalog import db

    engine = db.create(pg_url)
    try:
        with db.begin_unsynced(engine) as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS unsynced_probe (x int)")
            conn.exec_driver_sql("INSERT INTO unsynced_probe VALUES (1)")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
            assert conn.exec_driver_sql("SELECT count(*) FROM unsynced_probe").scalar() == 1
    finally:
        engine.dispose()
