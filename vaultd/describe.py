"""Describing a staged original: structure check, probe, names and times.

Reads only the staged copy in the vault's staging area (never the camera
again), then hands the facts to the pure decisions in ``metadata``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from vaultd import containers, media, metadata
from vaultd.camerafs import CameraFile
from vaultd.catalog.recordings import new_id
from vaultd.config import Config
from vaultd.model import CameraIdentity, MediaType, Recording
from vaultd.names import parse_name
from vaultd.store import StagedObject

log = logging.getLogger(__name__)


def describe(cam: CameraFile, staged: StagedObject, identity: CameraIdentity, cfg: Config,
             *, session_id: str, now: datetime,
             structure: containers.StructureReport | None = None) -> Recording:
    """``structure``: the staged copy's ``containers.check_path``, when the copy already made it."""
    media_type = metadata.media_type_for(cam.name.display)
    if structure is None:
        structure = containers.check_path(staged.path, cam.name.display)
    probe = _probe(staged, media_type, structure)
    info = parse_name(cam.name.display, cfg.ingest.name_patterns, identity.model)
    mtime = datetime.fromtimestamp(cam.mtime_ns / 1e9, tz=timezone.utc)
    duration = structure.duration_s if structure.duration_s is not None else (
        probe.duration_s if probe else None)
    evidence = metadata.TimeEvidence(
        container=structure.creation_time or (probe.creation_time if probe else None),
        name_local=info.local_time, mtime=mtime, duration_s=duration)
    times = metadata.decide_times(evidence, media_type, identity, cfg.time, now)
    deadline = metadata.deadline(times.end, cfg.ingest.deadline_hours)
    officer = info.officer_id  # else the assignment at recording time: see ingest
    damage = tuple(structure.problems) if not structure.ok else ()
    if not damage and probe is not None and not probe.ok and structure.kind == "unknown":
        # named as media, yet neither the box walk nor ffprobe can read it
        damage = (f"not a readable {media_type.value} file: {probe.error}",)
    extra: dict[str, object] = {"structure_kind": structure.kind}
    if probe is not None:
        extra["probe_format"] = probe.format_name
        if probe.ok:
            extra["ffprobe"] = probe.raw
        else:
            extra["probe_error"] = probe.error
    if info.serial and identity.serial and info.serial != identity.serial:
        extra["name_serial"] = info.serial
    return Recording(
        id=new_id(), sha256=staged.sha256, size_bytes=staged.size_bytes,
        original_name=cam.name.display, original_name_raw=cam.name.raw,
        name_oddities=cam.name.oddities, source_path=cam.display_path, media_type=media_type,
        device_serial=identity.serial or info.serial, device_model=identity.model,
        officer_id=officer, recorded_start=times.start, recorded_end=times.end,
        time_source=times.source, clock_offset_s=times.clock_offset_s, time_flags=times.flags,
        ingested_at=now, ingest_deadline=deadline,
        on_time=(now <= deadline) if deadline else None, duration_s=duration,
        video_codec=_first(probe and probe.video_codec, structure.video_codec),
        audio_codec=_first(probe and probe.audio_codec, structure.audio_codec),
        width=_first(probe and probe.width, structure.width),
        height=_first(probe and probe.height, structure.height),
        damaged=bool(damage), damage_reasons=damage, important=info.important,
        making_method=metadata.making_method(media_type, identity), maker=officer,
        ingest_session=session_id, extra=extra)


def _probe(staged: StagedObject, media_type: MediaType,
           structure: containers.StructureReport) -> media.ProbeResult | None:
    """ffprobe videos, audio and non-JPEG photos (the JPEG walk reads SOF dimensions).

    ffprobe costs ~80 ms of CPU a file: negligible beside a video's copy,
    but it would dominate a camera's many small photos and logs.
    """
    if media_type is MediaType.OTHER:
        return None
    if media_type is MediaType.PHOTO and structure.kind == "jpeg":
        return None
    if _walk_says_it_all(media_type, structure) or not structure.recognised:
        return None  # a file that is not its kind at all is damaged already; the preview tries ffmpeg
    return media.probe(staged.path)


def _walk_says_it_all(media_type: MediaType, s: containers.StructureReport) -> bool:
    """A sound MP4 or WAV whose headers gave duration, codecs and (video) size
    needs no ffprobe: with four cameras docked on two cores its ~80 ms of CPU a
    file competes with the copies."""
    if not s.ok or s.kind not in ("mp4", "wav") or s.duration_s is None:
        return False
    if media_type is MediaType.VIDEO:
        return bool(s.video_codec and s.width and s.height)
    if media_type is MediaType.AUDIO:
        return bool(s.audio_codec)
    return False


def _first(*values: object) -> Any:
    for v in values:
        if v is not None and v is not False:
            return v
    return None
