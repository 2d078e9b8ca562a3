"""Pure structure checks for camera files (no ffmpeg).

ffprobe misses some cuts: a faststart MP4 (``moov`` first) cut short still
reports its full duration, because the index is intact and only the media
data is gone. Walking the ISO-BMFF boxes catches that, and also a tail-moov
file that lost its index. JPEG and WAV get cheaper checks.

Along the way the check reads what the headers say about the media, named as
ffprobe names it: picture size and codecs (MP4 sample descriptions), picture
size (JPEG frame header), codec and duration (WAV). These are read, never
judged: a header too short to tell leaves the field None, not a problem.

Every input is treated as hostile: sizes from the file are never used to
allocate, every read is bounded, and the number of boxes, chunks, segments
and table entries looked at is capped, so a crafted file cannot make a check
slow or large. Read errors (``OSError``) propagate: the caller decides whether
the device is gone.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

from vaultd._boxes import Box, Reader, check_chunks, children, first, printable, walk
from vaultd.i18n import _

log = logging.getLogger(__name__)

__all__ = ["StructureReport", "check_path", "check_stream"]

_MAX_RIFF_CHUNKS = 10_000
_MAX_JPEG_SEGMENTS = 1_000      # markers (and fill bytes) looked at before giving up on the frame header
_JPEG_MAX_TRAILING_ZEROS = 16
_MP4_EPOCH = datetime(1904, 1, 1, tzinfo=timezone.utc)

_MP4_TOP_TYPES = frozenset(
    {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"moof", b"uuid", b"sidx", b"pdin"}
)
_SUFFIX_KINDS = {
    ".mp4": "mp4", ".mov": "mp4", ".m4a": "mp4", ".m4v": "mp4", ".3gp": "mp4", ".3g2": "mp4",
    ".jpg": "jpeg", ".jpeg": "jpeg", ".wav": "wav",
}
# sample entry fourcc -> ffprobe codec name; anything else is reported as the fourcc itself
_MP4_CODECS = {
    b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc", b"mp4v": "mpeg4",
    b"av01": "av1", b"vp09": "vp9", b"jpeg": "mjpeg", b"mjpa": "mjpeg",
    b"mp4a": "aac", b"Opus": "opus", b"fLaC": "flac", b"ac-3": "ac3", b"ec-3": "eac3",
    b"samr": "amr_nb", b"sawb": "amr_wb", b"ulaw": "pcm_mulaw", b"alaw": "pcm_alaw",
    b"sowt": "pcm_s16le", b"twos": "pcm_s16be", b"lpcm": "pcm_s16le",
}
_VISUAL_ENTRY_BYTES = 36        # SampleEntry (16) + pre_defined/reserved (16) + width, height (2 + 2)
# WAV format tag -> ffprobe codec name (PCM by bits per sample, rounded up to whole bytes)
_WAV_INT_PCM = {8: "pcm_u8", 16: "pcm_s16le", 24: "pcm_s24le", 32: "pcm_s32le", 64: "pcm_s64le"}
_WAV_FLOAT_PCM = {32: "pcm_f32le", 64: "pcm_f64le"}
_WAV_CODECS = {6: "pcm_alaw", 7: "pcm_mulaw", 0x11: "adpcm_ima_wav"}
_WAV_EXTENSIBLE = 0xFFFE
# JPEG markers without a length field: TEM, RST0..7, SOI
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
_JPEG_NOT_SOF = frozenset({0xC4, 0xC8, 0xCC})  # DHT, JPG, DAC share the SOF range


@dataclass(frozen=True)
class StructureReport:
    """Outcome of a structure check. ``ok`` is always True for kind "unknown".

    ``width``, ``height``, ``video_codec`` and ``audio_codec`` are what the
    headers claim, with ffprobe's codec names ("h264", "aac", "pcm_s16le");
    None where the file does not say (photos carry no codec).
    """

    kind: str
    ok: bool
    problems: tuple[str, ...]
    creation_time: datetime | None
    duration_s: float | None
    width: int | None = None
    height: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    recognised: bool = True  # False: the content is not the kind its name says at all


@dataclass(frozen=True)
class _Track:
    """One track's handler type ("vide", "soun", ...) and first sample description."""

    handler: str | None
    codec: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class _Moov:
    creation_time: datetime | None
    duration_s: float | None
    tracks: tuple[_Track, ...]


# --------------------------------------------------------------------------
# entry points


def check_path(path: Path, name: str | None = None) -> StructureReport:
    """Check the file at ``path``; the suffix of ``name`` (default: the path's own
    name) names the kind expected when the content is unrecognisable. Pass the
    camera's file name when checking a staged copy."""
    expect = _SUFFIX_KINDS.get(Path(name or path.name).suffix.lower())
    with open(path, "rb") as f:
        size_bytes = os.fstat(f.fileno()).st_size
        return check_stream(f, size_bytes, expect_kind=expect)


def check_stream(f: BinaryIO, size_bytes: int, *, expect_kind: str | None = None) -> StructureReport:
    """Check an open binary file of ``size_bytes`` bytes (position anywhere; restored after).

    ``expect_kind`` ("mp4", "jpeg", "wav"): when the content matches no known
    kind, report that kind as not ok instead of "unknown" (a camera file full
    of zeros after a power cut is damaged, not unknown).
    """
    position = f.tell()
    try:
        r = Reader(f, size_bytes)
        head = r.read_at(0, 16)
        if _looks_like_mp4(head):
            return _check_mp4(r)
        if head[:3] == b"\xff\xd8\xff":
            return _check_jpeg(r)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            return _check_wav(r)
        if expect_kind in ("mp4", "jpeg", "wav"):
            text = _("content does not look like %(kind)s (starts with %(head)s)") % {
                "kind": expect_kind, "head": head[:8].hex() or _("nothing: empty file")}
            return StructureReport(expect_kind, False, (text,), None, None, recognised=False)
        return StructureReport("unknown", True, (), None, None)
    finally:
        f.seek(position)


def _looks_like_mp4(head: bytes) -> bool:
    if len(head) < 8 or head[4:8] not in _MP4_TOP_TYPES:
        return False
    size = struct.unpack(">I", head[:4])[0]
    return size in (0, 1) or size >= 8


# --------------------------------------------------------------------------
# MP4


def _check_mp4(r: Reader) -> StructureReport:
    top = walk(r, 0, r.size, "file")
    types = {b.type for b in top}
    if "ftyp" not in types:
        r.problem(_("no 'ftyp' box"))
    if "mdat" not in types and "moof" not in types:
        r.problem(_("no 'mdat' box"))
    moov_box = first(top, "moov")
    moov = _Moov(None, None, ())
    if moov_box is None:
        r.problem(_("no 'moov' box"))
    else:
        moov = _check_moov(r, moov_box)
    video = next((t for t in moov.tracks if t.handler == "vide"), _Track(None))
    audio = next((t for t in moov.tracks if t.handler == "soun"), _Track(None))
    problems = r.all_problems()
    return StructureReport("mp4", not problems, problems, moov.creation_time, moov.duration_s,
                           width=video.width, height=video.height, video_codec=video.codec, audio_codec=audio.codec)


def _check_moov(r: Reader, moov: Box) -> _Moov:
    kids = children(r, moov, "'moov'", depth=1)
    mvhd = first(kids, "mvhd")
    times: tuple[datetime | None, float | None] = (None, None)
    if mvhd is None:
        r.problem(_("no 'mvhd' box in 'moov'"))
    else:
        times = _parse_mvhd(r, mvhd)
    tracks = tuple(_check_trak(r, trak, number)
                   for number, trak in enumerate((b for b in kids if b.type == "trak"), start=1))
    return _Moov(times[0], times[1], tracks)


def _parse_mvhd(r: Reader, mvhd: Box) -> tuple[datetime | None, float | None]:
    body = r.read_at(mvhd.start, min(32, mvhd.size - mvhd.header_size))
    version = body[0] if body else -1
    if version == 0 and len(body) >= 20:
        created, _modified, timescale, duration = struct.unpack(">IIII", body[4:20])
        unknown = 0xFFFFFFFF
    elif version == 1 and len(body) >= 32:
        created, _modified, timescale, duration = struct.unpack(">QQIQ", body[4:32])
        unknown = 0xFFFFFFFFFFFFFFFF
    else:
        r.problem(_("'mvhd' box at offset %(at)d is too short or has unknown version %(v)d")
                  % {"at": mvhd.offset, "v": version})
        return None, None
    creation_time: datetime | None = None
    if created:
        try:
            creation_time = _MP4_EPOCH + timedelta(seconds=created)
        except OverflowError:
            creation_time = None
    if timescale == 0:
        r.problem(_("'mvhd' timescale is 0"))
        return creation_time, None
    return creation_time, (None if duration == unknown else duration / timescale)


def _check_trak(r: Reader, trak: Box, number: int) -> _Track:
    """Check one track's chunk tables (trak/mdia/minf/stbl) and read its handler and sample description."""
    mdia = _child(r, children(r, trak, "'trak'", 2), trak, "mdia", number)
    if mdia is None:
        return _Track(None)
    mdia_kids = children(r, mdia, "'mdia'", 3)
    handler = _handler_type(r, first(mdia_kids, "hdlr"))
    minf = _child(r, mdia_kids, mdia, "minf", number)
    stbl = None if minf is None else _child(r, children(r, minf, "'minf'", 4), minf, "stbl", number)
    if stbl is None:
        return _Track(handler)
    stbl_kids = children(r, stbl, "'stbl'", 5)
    check_chunks(r, stbl_kids, number)
    return _sample_description(r, handler, first(stbl_kids, "stsd"))


def _child(r: Reader, kids: list[Box], parent: Box, box_type: str, number: int) -> Box | None:
    found = first(kids, box_type)
    if found is None:
        r.problem(_("track %(n)d: no '%(type)s' box in '%(parent)s'")
                  % {"n": number, "type": box_type, "parent": parent.type})
    return found


def _handler_type(r: Reader, hdlr: Box | None) -> str | None:
    """``hdlr``: version/flags (4), pre_defined (4), handler_type (4)."""
    if hdlr is None or hdlr.end < hdlr.start + 12:
        return None
    raw = r.read_at(hdlr.start + 8, 4)
    return printable(raw) if len(raw) == 4 else None


def _sample_description(r: Reader, handler: str | None, stsd: Box | None) -> _Track:
    """The first entry of ``stsd`` (version/flags, entry count, then sample entry boxes)."""
    if stsd is None:
        return _Track(handler)
    entry_at = stsd.start + 8
    head = r.read_at(stsd.start, 8 + _VISUAL_ENTRY_BYTES)
    if len(head) < 16 or entry_at + 8 > stsd.end or struct.unpack(">I", head[4:8])[0] == 0:
        return _Track(handler)
    entry_size, fourcc = struct.unpack(">I4s", head[8:16])
    if entry_size < 16 or entry_at + entry_size > stsd.end:
        return _Track(handler)  # not a whole sample entry inside its box: nothing to trust
    codec = _MP4_CODECS.get(fourcc) or printable(fourcc).strip().lower() or None
    if handler != "vide" or entry_size < _VISUAL_ENTRY_BYTES or len(head) < 8 + _VISUAL_ENTRY_BYTES:
        return _Track(handler, codec)
    width, height = struct.unpack(">HH", head[8 + 32: 8 + 36])
    return _Track(handler, codec, width or None, height or None)


# --------------------------------------------------------------------------
# JPEG


def _check_jpeg(r: Reader) -> StructureReport:
    tail = r.read_at(max(0, r.size - 64), 64)
    stripped = tail.rstrip(b"\0")
    zeros = len(tail) - len(stripped)
    if zeros > _JPEG_MAX_TRAILING_ZEROS:
        r.problem(_("%(n)d or more zero bytes at the end of the file") % {"n": zeros})
    elif not stripped.endswith(b"\xff\xd9"):
        r.problem(_("no end-of-image marker (FFD9) at the end of the file; it looks truncated"))
    width, height = _jpeg_frame_size(r)
    problems = r.all_problems()
    return StructureReport("jpeg", not problems, problems, None, None, width=width, height=height)


def _jpeg_frame_size(r: Reader) -> tuple[int | None, int | None]:
    """(width, height) from the first start-of-frame header, walking the marker segments after SOI."""
    pos = 2
    for _index in range(_MAX_JPEG_SEGMENTS):
        head = r.read_at(pos, 4)
        if len(head) < 2 or head[0] != 0xFF:
            break
        marker = head[1]
        if marker == 0xFF or marker in _JPEG_STANDALONE:
            pos += 1 if marker == 0xFF else 2  # fill byte, or a marker with no length
            continue
        if marker in (0xD9, 0xDA) or len(head) < 4:
            break  # end of image, or entropy-coded data, before any frame header
        length = struct.unpack(">H", head[2:4])[0]
        if length < 2:
            break
        if 0xC0 <= marker <= 0xCF and marker not in _JPEG_NOT_SOF:
            # length (2), precision (1), lines (2), samples per line (2)
            frame = r.read_at(pos + 4, 5)
            if length < 7 or len(frame) < 5:
                break
            height, width = struct.unpack(">HH", frame[1:5])
            return width or None, height or None
        pos += 2 + length
    return None, None


# --------------------------------------------------------------------------
# WAV


@dataclass(frozen=True)
class _WavFacts:
    fmt_at: int | None = None       # offset of the first 'fmt ' chunk's body
    fmt_bytes: int = 0
    data_bytes: int | None = None   # of the first 'data' chunk, as far as the file holds it


def _check_wav(r: Reader) -> StructureReport:
    riff_size = struct.unpack("<I", r.read_at(4, 4))[0]
    declared_end = 8 + riff_size
    if declared_end > r.size:
        r.problem(_("RIFF header claims %(n)d bytes, file has %(size)d") % {"n": declared_end, "size": r.size})
    elif r.size - declared_end > 1:
        r.problem(_("%(n)d bytes after the end of the RIFF data") % {"n": r.size - declared_end})
    facts = _walk_riff(r, min(declared_end, r.size))
    codec, byte_rate = _wav_format(r, facts)
    duration_s = facts.data_bytes / byte_rate if facts.data_bytes is not None and byte_rate else None
    problems = r.all_problems()
    return StructureReport("wav", not problems, problems, None, duration_s, audio_codec=codec)


def _walk_riff(r: Reader, limit: int) -> _WavFacts:
    seen: set[str] = set()
    facts = _WavFacts()
    pos = 12
    for _index in range(_MAX_RIFF_CHUNKS):
        if pos + 8 > limit:
            break
        raw_id, size = struct.unpack("<4sI", r.read_at(pos, 8))
        chunk_id = printable(raw_id)
        if chunk_id == "fmt " and facts.fmt_at is None:
            facts = _WavFacts(pos + 8, size, facts.data_bytes)
        elif chunk_id == "data" and facts.data_bytes is None:
            # a cut file (or one its recorder never closed) plays only the bytes it has
            facts = _WavFacts(facts.fmt_at, facts.fmt_bytes, max(0, min(size, r.size - pos - 8)))
        seen.add(chunk_id)
        if pos + 8 + size > r.size:
            r.problem(_("chunk '%(id)s' at offset %(at)d claims %(n)d bytes, file ends at %(size)d")
                      % {"id": chunk_id, "at": pos, "n": size, "size": r.size})
            break
        pos += 8 + size + (size & 1)
    for needed in ("fmt ", "data"):
        if needed not in seen:
            r.problem(_("no '%(id)s' chunk") % {"id": needed})
    return facts


def _wav_format(r: Reader, facts: _WavFacts) -> tuple[str | None, int]:
    """(ffprobe codec name, byte rate) from the fmt chunk; (None, 0) when there is none to read."""
    if facts.fmt_at is None or facts.fmt_bytes < 16:
        return None, 0
    body = r.read_at(facts.fmt_at, min(facts.fmt_bytes, 40))
    if len(body) < 16:
        return None, 0
    tag, _channels, _rate, byte_rate, _align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _WAV_EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack("<H", body[24:26])[0]  # first two bytes of the SubFormat GUID
    whole_bits = (bits + 7) // 8 * 8
    if tag == 1:
        name = _WAV_INT_PCM.get(whole_bits)
    elif tag == 3:
        name = _WAV_FLOAT_PCM.get(whole_bits)
    else:
        name = _WAV_CODECS.get(tag)
    return name or f"wav_0x{tag:04x}", byte_rate
