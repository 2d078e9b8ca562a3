"""Opening the catalog database and bringing its schema up to date."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from vaultd.errors import StorageError
from vaultd.i18n import _

if TYPE_CHECKING:  # alembic (and mako, pygments) load only when a migration runs
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def create(url: str) -> Engine:
    """An engine with the durability settings vaultd needs."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Take over transaction control from the sqlite3 module so that BEGIN
    # IMMEDIATE (below) makes writers queue instead of failing on upgrade.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def begin_unsynced(engine: Engine) -> Iterator[Connection]:
    """A write transaction whose commit does not wait for the disk.

    SQLite (WAL) commits it with ``synchronous=NORMAL``, PostgreSQL with
    ``synchronous_commit = off``. Both keep the order of commits: the next
    ordinary commit makes this one durable as well, and a power cut before
    that loses this transaction whole, never part of it. Meant for the
    bookkeeping between a camera's dock and its first copied byte (the dock,
    the clock reading, the session start), which would otherwise wait behind
    other cameras' writes for an fsync; the first batch's intents are then
    committed durably before any original is placed. Never for evidence rows.
    """
    with engine.connect() as conn:
        raw = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
        if raw is not None:
            raw.execute("PRAGMA synchronous=NORMAL")
        try:
            with conn.begin():
                if raw is None:
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                yield conn
        finally:
            if raw is not None:
                try:
                    raw.execute("PRAGMA synchronous=FULL")
                except Exception:
                    conn.invalidate()  # never hand the pool a connection left unsynced
                    raise


def _alembic_config(engine: Engine) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # configparser interpolates "%": a URL with %-escapes (a socket path) must be doubled
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied (a no-op when current)."""
    from alembic import command

    cfg = _alembic_config(engine)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise StorageError(_("cannot migrate the catalog: %s") % exc) from exc


def head_revision() -> str:
    """The newest migration: revisions are numbered in one line (``NNNN_what.py``)."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def is_current(engine: Engine) -> bool:
    """Whether the catalog is at the newest migration (read without loading alembic)."""
    try:
        with engine.connect() as conn:
            versions = [row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
    except SQLAlchemyError:
        return False  # no catalog yet
    return versions == [head_revision()]
