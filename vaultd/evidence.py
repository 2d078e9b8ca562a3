"""Reading evidence: list, show, and get an original's bytes.

Every function takes the acting user; the audit log (its own issue) records
each read here, so no front end can forget it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaultd.catalog import recordings as rec_db
from vaultd.catalog import sessions as ses_db
from vaultd.catalog.recordings import RecordingFilter
from vaultd.errors import HashMismatchError, StorageError, UsageError
from vaultd.i18n import _
from vaultd.model import Actor, Recording
from vaultd.vault import Vault


def list_recordings(vault: Vault, actor: Actor, flt: RecordingFilter) -> list[Recording]:
    with vault.engine.connect() as conn:
        return rec_db.search(conn, flt)


@dataclass(frozen=True)
class RecordingDetail:
    recording: Recording
    sightings: list[dict[str, Any]]


def show_recording(vault: Vault, actor: Actor, ref: str) -> RecordingDetail:
    with vault.engine.connect() as conn:
        rec = rec_db.get(conn, ref)
        return RecordingDetail(rec, ses_db.sightings_of(conn, rec.id))


@dataclass(frozen=True)
class Retrieved:
    recording: Recording
    out: Path
    size_bytes: int


def get_original(vault: Vault, actor: Actor, ref: str, out: Path, reason: str) -> Retrieved:
    """Write the original's exact bytes to ``out``, checking the hash on the way."""
    if not reason.strip():
        raise UsageError(_("a reason is required to read an original"),
                         hint=_("say why with --reason, e.g. --reason '案件 2026-017 review'"))
    with vault.engine.connect() as conn:
        rec = rec_db.get(conn, ref)
    src = vault.store.open_original(rec.sha256)
    try:
        dst = _create_out(out)
        try:
            digest, size = _copy(src, dst, vault.store.chunk_bytes)
            os.fsync(dst)
        except OSError as exc:
            os.close(dst)
            out.unlink(missing_ok=True)
            raise StorageError(_("cannot write %s: %s") % (out, exc.strerror)) from exc
        os.close(dst)
    finally:
        os.close(src)
    if digest != rec.sha256:
        out.unlink(missing_ok=True)
        raise HashMismatchError(
            _("original %s does not match its recorded hash; nothing was written") % rec.id,
            hint=_("run 'vaultd scrub' and report this to the vault's administrator"))
    return Retrieved(rec, out, size)


def _create_out(out: Path) -> int:
    try:
        return os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(_("%s already exists") % out,
                         hint=_("choose a new file name with --out; vaultd never overwrites")) from None
    except OSError as exc:
        raise UsageError(_("cannot create %s: %s") % (out, exc.strerror)) from None


def _copy(src: int, dst: int, chunk: int) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    while True:
        data = os.read(src, chunk)
        if not data:
            return h.hexdigest(), size
        h.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(dst, view):]
        size += len(data)
