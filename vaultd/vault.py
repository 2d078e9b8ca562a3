"""An open vault: home layout, config, store and catalog, ready for services."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine, select

from vaultd import config as config_mod
from vaultd import files, keys
from vaultd.catalog import db
from vaultd.catalog.schema import vault_meta
from vaultd.config import Config
from vaultd.errors import StorageError
from vaultd.home import Layout
from vaultd.i18n import _
from vaultd.store import Store

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Vault:
    layout: Layout
    config: Config
    store: Store
    engine: Engine

    @property
    def vault_id(self) -> str:
        return keys.vault_id(self.layout.keys_dir)

    def close(self) -> None:
        if self.engine.dialect.name == "sqlite":
            # keeps the planner's statistics current as the catalog grows (cheap when nothing changed)
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA optimize")
        self.engine.dispose()


def load_config(layout: Layout, config_path: Path | None) -> Config:
    """``--config FILE``, else ``<home>/vaultd.toml``, else the defaults."""
    if config_path is not None:
        return config_mod.load(config_path)
    if layout.config_file.is_file():
        return config_mod.load(layout.config_file)
    return Config()


def _engine(layout: Layout, cfg: Config) -> Engine:
    return db.create(cfg.catalog.url or db.sqlite_url(layout.catalog_db))


def open_vault(home: Path, config_path: Path | None = None) -> Vault:
    layout = Layout(home)
    layout.require_initialised()
    cfg = load_config(layout, config_path)
    engine = _engine(layout, cfg)
    if not db.is_current(engine):
        db.upgrade(engine)
    store = Store(layout.store_dir, layout.staging_dir, chunk_bytes=cfg.ingest.chunk_bytes)
    return Vault(layout, cfg, store, engine)


@dataclass(frozen=True)
class InitResult:
    home: Path
    created: tuple[str, ...]  # what this run created; empty when all existed

    @property
    def changed(self) -> bool:
        return bool(self.created)


def init_vault(home: Path, config_path: Path | None = None) -> InitResult:
    """Create the home, its keys and the catalog. Idempotent, and safe when several
    processes run it at once: one creates, the others wait and find it made."""
    layout = Layout(home)
    created: list[str] = []
    try:
        layout.root.mkdir(mode=0o700, parents=True)
        created.append(_("home folder"))  # by this process: several may race to make it
    except FileExistsError:
        pass
    except OSError:
        pass  # create_dirs says what is wrong
    layout.create_dirs()
    cfg = load_config(layout, config_path)
    try:
        with files.locked(layout.init_lock, exclusive=True):
            made = _init_locked(layout, cfg)
        # a racer that made only the folder did not initialise the vault: the one that made its
        # keys and catalog did, and only that one logs vault.init (exactly once, #16.15)
        created = created + made if made else []
    except OSError as exc:
        raise StorageError(_("cannot initialise the vault in %s: %s") % (home, exc.strerror)) from exc
    return InitResult(home, tuple(created))


def _init_locked(layout: Layout, cfg: Config) -> list[str]:
    created = keys.ensure_keys(layout.keys_dir)
    engine = _engine(layout, cfg)
    try:
        if not db.is_current(engine):
            db.upgrade(engine)
            created.append(_("catalog"))
        with engine.begin() as conn:
            if conn.execute(select(vault_meta.c.value).where(vault_meta.c.key == "vault_id")).first() is None:
                conn.execute(vault_meta.insert().values(key="vault_id", value=keys.vault_id(layout.keys_dir)))
                conn.execute(vault_meta.insert().values(key="created_at", value=utcnow().isoformat()))
    finally:
        engine.dispose()
    if not layout.marker.exists():
        layout.marker.write_text("vaultd home; do not edit files here by hand\n", encoding="utf-8")
        created.append(_("home marker"))
    return created
