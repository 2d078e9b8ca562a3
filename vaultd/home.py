"""The data home: one folder holding the catalog, the store, keys and staging."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vaultd.errors import StorageError, UsageError
from vaultd.i18n import _

HOME_ENV = "VAULTD_HOME"


def default_home() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/vaultd")
    return Path.home() / ".local" / "share" / "vaultd"


def resolve_home(arg: str | None) -> Path:
    """``--home`` wins, then ``$VAULTD_HOME``, then the per-user default."""
    if arg:
        return Path(arg).expanduser().absolute()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().absolute()
    return default_home()


@dataclass(frozen=True)
class Layout:
    """Where everything lives inside a home."""

    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "vaultd.toml"

    @property
    def catalog_db(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def staging_dir(self) -> Path:
        return self.root / "staging"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def init_lock(self) -> Path:
        """Held by ``init`` while it creates what is missing (several may run at once)."""
        return self.root / "init.lock"

    @property
    def marker(self) -> Path:
        return self.root / "VAULTD_HOME"

    def is_initialised(self) -> bool:
        return self.marker.is_file()

    def require_initialised(self) -> None:
        if not self.is_initialised():
            raise UsageError(
                _("%s is not a vaultd home") % self.root,
                hint=_("run 'vaultd --home %s init' first, or pass the right --home") % self.root,
            )

    def create_dirs(self) -> None:
        """Create the folders with mode 0700 (keys and staging included)."""
        try:
            for path in (self.root, self.store_dir, self.staging_dir, self.keys_dir):
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(path, 0o700)
        except OSError as exc:
            raise StorageError(
                _("cannot create the vault home %s: %s") % (self.root, exc.strerror),
                hint=_("choose a writable folder with --home"),
            ) from exc
