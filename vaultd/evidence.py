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

from vaultd import audit
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import recordings as rec_db
from vaultd.catalog import sessions as ses_db
from vaultd.catalog.recordings import RecordingFilter
from vaultd.errors import HashMismatchError, StorageError, UsageError
from vaultd.i18n import _
from vaultd.model import Actor, Recording
from vaultd.vault import Vault


def list_recordings(vault: Vault, actor: Actor, flt: RecordingFilter) -> list[Recording]:
    with vault.engine.begin() as conn:
        found = rec_db.search(conn, flt)
        audit.append(conn, Event("recording.list", actor, {
            "filter": {k: (v.isoformat() if hasattr(v, "isoformat") else getattr(v, "value", v))
                       for k, v in flt.__dict__.items() if v is not None},
            "ids": [r.id for r in found]}))
    return found


@dataclass(frozen=True)
class RecordingDetail:
    recording: Recording
    sightings: list[dict[str, Any]]


def show_recording(vault: Vault, actor: Actor, ref: str) -> RecordingDetail:
    with vault.engine.begin() as conn:
        rec = rec_db.get(conn, ref)
        detail = RecordingDetail(rec, ses_db.sightings_of(conn, rec.id))
        audit.append(conn, Event("recording.show", actor, {}, EvidenceRef.of(rec)))
    return detail


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
    try:
        size = _write_original(vault, rec, out)
    except Exception as exc:
        _log_get(vault, actor, rec, out, reason, getattr(exc, "message", str(exc)))
        raise
    _log_get(vault, actor, rec, out, reason, None)
    return Retrieved(rec, out, size)


def _log_get(vault: Vault, actor: Actor, rec: Recording, out: Path, reason: str,
             problem: str | None) -> None:
    with vault.engine.begin() as conn:
        audit.append(conn, Event("recording.get" if problem is None else "recording.get.failed", actor,
                                 {"reason": reason, "out": str(out), "problem": problem},
                                 EvidenceRef.of(rec)))


def _write_original(vault: Vault, rec: Recording, out: Path) -> int:
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
    return size


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
