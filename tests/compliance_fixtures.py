"""Small, fast vault contents for the compliance, gap, spot-check, statistics
and scrub tests: originals put through the real store (stage, hash, commit)
and catalog rows written with the catalog's own insert, at given times.
No ffmpeg: the bytes are small and made up."""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert

from vaultd.catalog import people as people_db
from vaultd.catalog import recordings as rec_db
from vaultd.catalog import sessions as ses_db
from vaultd.catalog.schema import devices, docks, labels
from vaultd.model import MediaType, Recording, TimeSource
from vaultd.vault import Vault

UTC = timezone.utc
CST = timezone(timedelta(hours=8))


def put_recording(vault: Vault, *, serial: str = "CAM1", officer: str | None = "1001", unit: str | None = "一中队",
                  start: datetime, seconds: float = 600.0, ingested_at: datetime | None = None,
                  data: bytes | None = None, media: MediaType = MediaType.VIDEO) -> Recording:
    """Store ``data`` (random if None) as an original and catalog it as a clip of
    ``serial`` recorded from ``start`` for ``seconds``, ingested at ``ingested_at``."""
    data = data if data is not None else secrets.token_bytes(2048)
    end = start + timedelta(seconds=seconds)
    ingested_at = ingested_at or end + timedelta(hours=1)
    session = "s" + secrets.token_hex(8)
    staging = vault.store.open_staging(session)
    with tempfile.TemporaryFile() as src:
        src.write(data)
        src.flush()
        src.seek(0)
        staged = vault.store.stage(staging, src.fileno(), fsync=False)
    vault.store.commit(staged, durable=False)
    staging.close()
    rec = Recording(
        id=rec_db.new_id(), sha256=staged.sha256, size_bytes=len(data),
        original_name=f"{serial}_{officer}_{start.astimezone(CST):%Y%m%d%H%M%S}_0001.MP4",
        original_name_raw=b"x", name_oddities=(), source_path="/DCIM/x.MP4", media_type=media,
        device_serial=serial, device_model="sim", officer_id=officer, recorded_start=start, recorded_end=end,
        time_source=TimeSource.CONTAINER,
        clock_offset_s=0.0, time_flags=(), ingested_at=ingested_at,
        ingest_deadline=end + timedelta(hours=24), on_time=ingested_at <= end + timedelta(hours=24),
        duration_s=seconds, video_codec="h264", audio_codec=None, width=None, height=None, damaged=False,
        damage_reasons=(), important=False, making_method="执法记录仪录像", maker=officer,
        ingest_session=session, extra={}, unit=unit)
    with vault.engine.begin() as conn:
        ses_db.start(conn, session, at=ingested_at, source="/media/x", device_serial=serial, actor="local:test")
        rec_db.insert(conn, rec)
        ses_db.finish(conn, session, at=ingested_at, status="complete", summary={})
    return rec


def label(vault: Vault, rec_id: str, at: datetime) -> None:
    """Mark a recording labelled (R2 fields filled) at ``at``."""
    with vault.engine.begin() as conn:
        conn.execute(insert(labels).values(recording_id=rec_id, case_number="2026-001", party="张三",
                                           handler="李四", labelled_at=at, updated_at=at,
                                           updated_by="local:test"))


def enroll(vault: Vault, serial: str, officer: str, *, at: datetime, last_docked_at: datetime | None) -> None:
    with vault.engine.begin() as conn:
        conn.execute(insert(devices).values(serial=serial, status="enrolled", first_seen_at=at, enrolled_at=at,
                                            enrolled_by="local:test", last_docked_at=last_docked_at))
        people_db.assign_device(conn, serial, officer, at)


def dock(vault: Vault, serial: str, at: datetime) -> None:
    with vault.engine.begin() as conn:
        conn.execute(insert(docks).values(serial=serial, source="/dock", docked_at=at, outcome="complete"))


def object_path(vault: Vault, rec: Recording) -> Path:
    return vault.store.object_path(rec.sha256)


def flip_a_bit(path: Path) -> None:
    """Flip one bit in a stored original (they are read-only: make it writable first)."""
    os.chmod(path, 0o600)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    os.chmod(path, 0o400)


def tune(vault: Vault, **compliance: object) -> None:
    """Change [compliance] keys of an open vault's config (as a config file would)."""
    import dataclasses

    vault.config = dataclasses.replace(vault.config,
                                       compliance=dataclasses.replace(vault.config.compliance, **compliance))
