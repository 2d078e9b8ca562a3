"""The vault's keys: created once by ``vaultd init``, never overwritten.

``init`` is safe to repeat, also while other processes (``serve``, the daemon,
``export create``) use the vault, and two ``init`` runs may race. So the keys
are created under an exclusive lock (``keys/keys.lock``) by whoever gets it
first; the others wait, then find the files made and create nothing. Each file
is published whole (written beside it, fsync'd, linked into place), so a reader
never sees an empty or partial key; readers of a set of files that belong
together (the export signing key, its certificate and the CA) take the lock
shared, so they never see a key without its certificate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vaultd.errors import IntegrityError, StorageError
from collections.abc import Iterator
from contextlib import contextmanager

from vaultd.files import fsync_path, locked, write_once
from vaultd.i18n import _

LOG_KEY = "log-ed25519.pem"
VAULT_ID = "vault-id"
LOCK = "keys.lock"


@contextmanager
def keys_locked(keys_dir: Path, *, exclusive: bool) -> Iterator[None]:
    """The keys lock: exclusive while creating keys, shared while reading a set of them."""
    try:
        with locked(keys_dir / LOCK, exclusive=exclusive):
            yield
    except FileNotFoundError:
        raise StorageError(_("the keys folder %s does not exist") % keys_dir,
                           hint=_("run 'vaultd init' to create the vault's keys")) from None


@dataclass(frozen=True)
class KeyFiles:
    keys_dir: Path

    @property
    def log_key(self) -> Path:
        return self.keys_dir / LOG_KEY

    @property
    def vault_id(self) -> Path:
        return self.keys_dir / VAULT_ID


def ensure_keys(keys_dir: Path) -> list[str]:
    """Create the vault id and log key if missing; return what was created."""
    from vaultd import pki  # x509 loads only where the export identity is made (fast start-up)

    files = KeyFiles(keys_dir)
    created: list[str] = []
    try:
        with keys_locked(keys_dir, exclusive=True):
            if not files.vault_id.exists() and write_once(files.vault_id, (uuid.uuid4().hex + "\n").encode()):
                created.append(VAULT_ID)
            if not files.log_key.exists():
                pem = Ed25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                if write_once(files.log_key, pem):
                    created.append(LOG_KEY)
            created += pki.ensure_pki(keys_dir, vault_id(keys_dir), datetime.now(timezone.utc))  # exports (#8)
            fsync_path(keys_dir)
    except OSError as exc:
        raise StorageError(_("cannot write keys in %s: %s") % (keys_dir, exc.strerror)) from exc
    return created


def vault_id(keys_dir: Path) -> str:
    try:
        return KeyFiles(keys_dir).vault_id.read_text().strip()
    except OSError as exc:
        raise StorageError(_("cannot read the vault id: %s") % exc.strerror) from exc


def load_log_key(keys_dir: Path) -> Ed25519PrivateKey:
    path = KeyFiles(keys_dir).log_key
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise StorageError(_("cannot read the log key %s: %s") % (path, exc.strerror)) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise IntegrityError(_("%s is not an Ed25519 key") % path)
    return key
