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
from typing import Any

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
    vault.store.commit(staged)
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
    """Mark a recording labelled (R2 fields, what it proves and a description filled) at ``at``."""
    with vault.engine.begin() as conn:
        conn.execute(insert(labels).values(recording_id=rec_id, case_number="2026-001", party="张三",
                                           handler="李四", proves="违法事实", description="现场记录",
                                           labelled_at=at, updated_at=at,
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


def tune(vault: Vault, **compliance: Any) -> None:
    """Change [compliance] keys of an open vault's config (as a config file would)."""
    import dataclasses

    vault.config = dataclasses.replace(vault.config,
                                       compliance=dataclasses.replace(vault.config.compliance, **compliance))


def at(text: str) -> datetime:
    """A station-time (UTC+8) moment, e.g. at('10-12 09:00') in October 2026."""
    return datetime.fromisoformat(f"2026-{text}").replace(tzinfo=CST)


class Month:
    """October 2026 at two squads, built so that every outcome is known:

    - CAM1 / officer 1001 (一中队): docks every evening, on time, except the
      clips of 10-12, docked 10-13 20:00 (late: > 24 h); one has a reason.
    - CAM2 / officer 1002 (一中队): away on a trip 10-14 08:00 .. 10-18 20:00.
      Clips of 10-15 ingested 10-19 10:00: on time (return + 24 h); the clip of
      10-16 ingested 10-20 09:00: late; the clip of 10-13 (before the trip)
      ingested 10-19 10:00: late.
    - CAM3 / officer 2001 (二中队): 10-20 clips 09:00-09:10, 09:25-09:35 (a 15 min
      interruption, noted), 09:35:30-09:45 (30 s: not one), 10:00-10:10 (15 min:
      an interruption, not noted), dock 10:30, 11:00-11:10 (docked between: not
      one), 16:00-16:10 (> 4 h: a new duty period); and 10-30 12:00, ingested
      10-30 18:00 (label due 11-04).
    - Labels: every CAM1 clip labelled, except those of 10-12; CAM2 clips of
      10-15 labelled; CAM3 clips of 10-20 before 10:00 labelled.
    """

    def __init__(self, vault: Vault) -> None:
        self.late: set[str] = set()
        self.on_time: set[str] = set()
        self.labelled: set[str] = set()
        self.by_officer: dict[str, list[str]] = {"1001": [], "1002": [], "2001": []}
        self.gaps: dict[str, str | None] = {}  # after id -> note

        def clip(serial: str, officer: str, unit: str, start: str, minutes: float, ingested: str, *,
                 late: bool, labelled: bool) -> Recording:
            rec = put_recording(vault, serial=serial, officer=officer, unit=unit, start=at(start),
                                seconds=minutes * 60, ingested_at=at(ingested))
            (self.late if late else self.on_time).add(rec.id)
            self.by_officer[officer].append(rec.id)
            if labelled:
                label(vault, rec.id, at(ingested) + timedelta(hours=5))
                self.labelled.add(rec.id)
            return rec

        self.cam1_late = []
        for day in range(5, 15):
            for hour in (9, 14):
                late = day == 12
                rec = clip("CAM1", "1001", "一中队", f"10-{day:02d} {hour:02d}:00", 10,
                           "10-13 20:00" if late else f"10-{day:02d} 19:00", late=late, labelled=not late)
                if late:
                    self.cam1_late.append(rec.id)
        self.trip_on_time = [clip("CAM2", "1002", "一中队", f"10-15 {h}:00", 10, "10-19 10:00", late=False,
                                  labelled=True).id for h in (10, 15)]
        self.trip_late = clip("CAM2", "1002", "一中队", "10-16 10:00", 10, "10-20 09:00", late=True,
                              labelled=False).id
        self.before_trip = clip("CAM2", "1002", "一中队", "10-13 10:00", 10, "10-19 10:00", late=True,
                                labelled=False).id
        c3 = [clip("CAM3", "2001", "二中队", f"10-20 {s}", m, "10-20 19:00", late=False, labelled=s < "10:00")
              for s, m in (("09:00", 10), ("09:25", 10), ("09:35:30", 9.5), ("10:00", 10), ("11:00", 10),
                           ("16:00", 10))]
        self.c3 = [r.id for r in c3]
        dock(vault, "CAM3", at("10-20 10:30"))
        self.last = clip("CAM3", "2001", "二中队", "10-30 12:00", 10, "10-30 18:00", late=False,
                         labelled=False).id
        self.gaps = {self.c3[1]: "电量不足，更换电池 / battery swap", self.c3[3]: None}
