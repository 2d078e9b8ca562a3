"""Turning values into what front ends print: JSON dicts and short lines."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from vaultd import timefmt
from vaultd.model import Recording
from vaultd.safetext import escape


def iso(t: datetime | None, tz: ZoneInfo) -> str | None:
    return t.astimezone(tz).isoformat() if t is not None else None


def recording_json(rec: Recording, tz: ZoneInfo, officer_name: str | None = None) -> dict[str, Any]:
    """A recording for JSON; ``officer_name``: the officer as people read it ('王小明 (警号 012345, 一大队)')."""
    return {
        "id": rec.id,
        "sha256": rec.sha256,
        "size_bytes": rec.size_bytes,
        "original_name": rec.original_name,
        "original_name_raw_hex": rec.original_name_raw.hex(),
        "name_oddities": list(rec.name_oddities),
        "source_path": rec.source_path,
        "media_type": rec.media_type.value,
        "device_serial": rec.device_serial,
        "device_model": rec.device_model,
        "officer_id": rec.officer_id,
        "officer_name": officer_name,
        "recorded_start": iso(rec.recorded_start, tz),
        "recorded_end": iso(rec.recorded_end, tz),
        "time_source": rec.time_source.value,
        "clock_offset_s": rec.clock_offset_s,
        "time_flags": list(rec.time_flags),
        "ingested_at": iso(rec.ingested_at, tz),
        "ingest_deadline": iso(rec.ingest_deadline, tz),
        "on_time": rec.on_time,
        "duration_s": rec.duration_s,
        "video_codec": rec.video_codec,
        "audio_codec": rec.audio_codec,
        "width": rec.width,
        "height": rec.height,
        "damaged": rec.damaged,
        "damage_reasons": list(rec.damage_reasons),
        "important": rec.important,
        "making_method": rec.making_method,
        "maker": rec.maker,
        "ingest_session": rec.ingest_session,
        "unit": rec.unit,
        "confidentiality": rec.effective_confidentiality,  # R9: what applies (its cases included)
        "own_confidentiality": rec.confidentiality,
        "case_confidentiality": rec.case_confidentiality,
        "extra": rec.extra,
    }


def detail_json(rec: Recording, sightings: list[dict[str, Any]], tz: ZoneInfo,
                purged: dict[str, Any] | None = None, officer_name: str | None = None) -> dict[str, Any]:
    """A recording with where and when it was seen on cameras (and its purge, once purged)."""
    data = recording_json(rec, tz, officer_name)
    if purged is not None:
        data["purged"] = purged
    data["sightings"] = [{
        "session": s["session_id"], "device_serial": s["device_serial"], "source_path": s["source_path"],
        "seen_at": iso(s["seen_at"], tz), "outcome": s["outcome"],
        "wiped_at": iso(s["wiped_at"], tz)} for s in sightings]
    return data


def line_of(d: dict[str, Any], tz: ZoneInfo) -> str:
    """One line for a recording's JSON (the same for local and API results): station time, escaped text."""
    start = timefmt.format_iso_local(d.get("recorded_start"), tz)
    dur = f"{d['duration_s']:7.1f}s" if d.get("duration_s") is not None else "       -"
    flags = [f for f, on in (("DAMAGED", d.get("damaged")), ("LATE", d.get("on_time") is False),
                             ("IMP", d.get("important")), ("ODD-NAME", d.get("name_oddities")),
                             (str(d.get("confidentiality", "")).upper(),
                              d.get("confidentiality") not in (None, "normal"))) if on]
    officer = d.get("officer_name") or d.get("officer_id") or "-"
    return (f"{d['id']}  {d['media_type']:<5}  {start}  {dur}  {d['size_bytes']:>12,}  "
            f"{escape(d.get('device_serial') or '-'):<10} {escape(officer):<8} {escape(d['original_name'])}"
            + (f"  [{' '.join(flags)}]" if flags else ""))
