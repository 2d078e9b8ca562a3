"""Pure structure checks for camera files (no ffmpeg).

ffprobe misses some cuts: a faststart MP4 (``moov`` first) cut short still
reports its full duration, because the index is intact and only the media
data is gone. Walking the ISO-BMFF boxes catches that, and also a tail-moov
file that lost its index. JPEG and WAV get cheaper checks.

Every input is treated as hostile: sizes from the file are never used to
allocate, every read is bounded, and the number of boxes, chunks and table
entries looked at is capped, so a crafted file cannot make a check slow or
large. Read errors (``OSError``) propagate: the caller decides whether the
device is gone.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

from vaultd.i18n import _

log = logging.getLogger(__name__)

__all__ = ["StructureReport", "check_path", "check_stream"]

_MAX_BOXES = 100_000            # boxes looked at per file, all levels together
_MAX_DEPTH = 8                  # nesting levels descended
_MAX_CHUNK_ENTRIES = 1_000_000  # stco/co64 entries checked per track
_MAX_STSC_ENTRIES = 100_000     # stsc entries read per track
_MAX_CHUNK_SAMPLES = 100_000    # samples summed for one chunk's size
_MAX_RIFF_CHUNKS = 10_000
_MAX_PROBLEMS = 32
_READ_PIECE = 64 * 1024         # largest single read
_JPEG_MAX_TRAILING_ZEROS = 16
_MP4_EPOCH = datetime(1904, 1, 1, tzinfo=timezone.utc)

_MP4_TOP_TYPES = frozenset(
    {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"moof", b"uuid", b"sidx", b"pdin"}
)
_SUFFIX_KINDS = {
    ".mp4": "mp4", ".mov": "mp4", ".m4a": "mp4", ".m4v": "mp4", ".3gp": "mp4", ".3g2": "mp4",
    ".jpg": "jpeg", ".jpeg": "jpeg", ".wav": "wav",
}


@dataclass(frozen=True)
class StructureReport:
    """Outcome of a structure check. ``ok`` is always True for kind "unknown"."""

    kind: str
    ok: bool
    problems: tuple[str, ...]
    creation_time: datetime | None
    duration_s: float | None


@dataclass(frozen=True)
class _Box:
    type: str
    offset: int
    header_size: int
    size: int

    @property
    def start(self) -> int:
        return self.offset + self.header_size

    @property
    def end(self) -> int:
        return self.offset + self.size


class _Reader:
    """Bounded reads plus the problem list and box budget of one check."""

    def __init__(self, f: BinaryIO, size_bytes: int) -> None:
        self.f = f
        self.size = size_bytes
        self.problems: list[str] = []
        self.boxes_seen = 0
        self.dropped = 0

    def read_at(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, _READ_PIECE, self.size - offset))
        if n == 0 or offset < 0:
            return b""
        self.f.seek(offset)
        return self.f.read(n)

    def problem(self, text: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.dropped += 1

    def all_problems(self) -> tuple[str, ...]:
        extra = [_("... and %(n)d more problems") % {"n": self.dropped}] if self.dropped else []
        return tuple(self.problems + extra)

    def take_box(self) -> bool:
        """Count one more box; False once the budget is spent (reported once)."""
        self.boxes_seen += 1
        if self.boxes_seen == _MAX_BOXES + 1:
            self.problem(_("more than %(n)d boxes; rest of the file not checked") % {"n": _MAX_BOXES})
        return self.boxes_seen <= _MAX_BOXES


# --------------------------------------------------------------------------
# entry points


def check_path(path: Path) -> StructureReport:
    """Check the file at ``path``; the suffix names the kind expected when the content is unrecognisable."""
    expect = _SUFFIX_KINDS.get(Path(path).suffix.lower())
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
        r = _Reader(f, size_bytes)
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
            return StructureReport(expect_kind, False, (text,), None, None)
        return StructureReport("unknown", True, (), None, None)
    finally:
        f.seek(position)


def _looks_like_mp4(head: bytes) -> bool:
    if len(head) < 8 or head[4:8] not in _MP4_TOP_TYPES:
        return False
    size = struct.unpack(">I", head[:4])[0]
    return size in (0, 1) or size >= 8


def _printable(raw: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in raw)


# --------------------------------------------------------------------------
# ISO-BMFF box walking


def _walk(r: _Reader, start: int, end: int, where: str) -> list[_Box]:
    """Boxes tiling ``[start, end)``; gaps, overruns and bad sizes become problems."""
    boxes: list[_Box] = []
    limit = min(end, r.size)
    pos = start
    while pos < limit:
        if limit - pos < 8:
            r.problem(_("%(n)d stray bytes at offset %(at)d after the last box in %(where)s")
                      % {"n": limit - pos, "at": pos, "where": where})
            break
        if not r.take_box():
            break
        box = _read_box_header(r, pos, end)
        if box is None:
            break
        boxes.append(box)
        if box.end > limit:
            ends = _("file ends at %(n)d") % {"n": r.size} if box.end > r.size else \
                _("%(where)s ends at %(n)d") % {"where": where, "n": end}
            r.problem(_("box '%(type)s' at offset %(at)d claims %(size)d bytes, %(ends)s")
                      % {"type": box.type, "at": pos, "size": box.size, "ends": ends})
            break
        pos = box.end
    return boxes


def _read_box_header(r: _Reader, pos: int, end: int) -> _Box | None:
    head = r.read_at(pos, 16)
    if len(head) < 8:
        r.problem(_("cannot read box header at offset %(at)d") % {"at": pos})
        return None
    size, raw_type = struct.unpack(">I4s", head[:8])
    box_type = _printable(raw_type)
    header = 8
    if size == 1:
        if len(head) < 16:
            r.problem(_("box '%(type)s' at offset %(at)d: 64-bit size cut off") % {"type": box_type, "at": pos})
            return None
        size = struct.unpack(">Q", head[8:16])[0]
        header = 16
    elif size == 0:
        size = end - pos  # "to the end of the enclosing box (or file)"
    if size < header:
        r.problem(_("box '%(type)s' at offset %(at)d has impossible size %(size)d")
                  % {"type": box_type, "at": pos, "size": size})
        return None
    return _Box(box_type, pos, header, size)


def _children(r: _Reader, box: _Box, where: str, depth: int) -> list[_Box]:
    if depth > _MAX_DEPTH:
        r.problem(_("boxes nested deeper than %(n)d levels") % {"n": _MAX_DEPTH})
        return []
    return _walk(r, box.start, box.end, where)


def _first(boxes: list[_Box], box_type: str) -> _Box | None:
    return next((b for b in boxes if b.type == box_type), None)


# --------------------------------------------------------------------------
# MP4


def _check_mp4(r: _Reader) -> StructureReport:
    top = _walk(r, 0, r.size, "file")
    types = {b.type for b in top}
    if "ftyp" not in types:
        r.problem(_("no 'ftyp' box"))
    if "mdat" not in types and "moof" not in types:
        r.problem(_("no 'mdat' box"))
    moov = _first(top, "moov")
    creation_time: datetime | None = None
    duration_s: float | None = None
    if moov is None:
        r.problem(_("no 'moov' box"))
    else:
        creation_time, duration_s = _check_moov(r, moov)
    problems = r.all_problems()
    return StructureReport("mp4", not problems, problems, creation_time, duration_s)


def _check_moov(r: _Reader, moov: _Box) -> tuple[datetime | None, float | None]:
    children = _children(r, moov, "'moov'", depth=1)
    mvhd = _first(children, "mvhd")
    times: tuple[datetime | None, float | None] = (None, None)
    if mvhd is None:
        r.problem(_("no 'mvhd' box in 'moov'"))
    else:
        times = _parse_mvhd(r, mvhd)
    for number, trak in enumerate((b for b in children if b.type == "trak"), start=1):
        stbl = _find_stbl(r, trak, number)
        if stbl is not None:
            _check_stbl(r, stbl, number)
    return times


def _parse_mvhd(r: _Reader, mvhd: _Box) -> tuple[datetime | None, float | None]:
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


def _find_stbl(r: _Reader, trak: _Box, number: int) -> _Box | None:
    box = trak
    for depth, box_type in enumerate(("mdia", "minf", "stbl"), start=2):
        found = _first(_children(r, box, f"'{box.type}'", depth), box_type)
        if found is None:
            r.problem(_("track %(n)d: no '%(type)s' box in '%(parent)s'")
                      % {"n": number, "type": box_type, "parent": box.type})
            return None
        box = found
    return box


def _check_stbl(r: _Reader, stbl: _Box, number: int) -> None:
    children = _children(r, stbl, "'stbl'", depth=5)
    chunks = _first(children, "stco") or _first(children, "co64")
    if chunks is None:
        r.problem(_("track %(n)d: no 'stco' or 'co64' box") % {"n": number})
        return
    scan = _scan_chunk_offsets(r, chunks, number)
    if scan is None or scan.max_offset >= r.size:
        return
    stsc, stsz = _first(children, "stsc"), _first(children, "stsz")
    if stsc is None or stsz is None:
        return
    chunk_bytes = _chunk_bytes(r, (stsc, stsz), scan.max_index + 1, scan.count, number)
    if chunk_bytes is not None and scan.max_offset + chunk_bytes > r.size:
        r.problem(_("track %(n)d: sample data of the chunk at offset %(at)d runs to %(to)d, file ends at %(size)d")
                  % {"n": number, "at": scan.max_offset, "to": scan.max_offset + chunk_bytes, "size": r.size})


# --------------------------------------------------------------------------
# sample tables


@dataclass(frozen=True)
class _ChunkScan:
    count: int          # entries in the table (as far as the box holds them)
    max_offset: int     # largest chunk offset seen
    max_index: int      # its 0-based chunk index


def _table(r: _Reader, box: _Box, skip: int, entry_size: int, number: int) -> tuple[int, int]:
    """(entry count the box really holds, offset of the first entry) of a full-box table.

    ``skip`` is the number of header bytes after version/flags before the
    entry count (0 for stco, co64, stsc; 8 for stsz's size and count).
    """
    head = r.read_at(box.start, 4 + skip + 4)
    if len(head) < 8 + skip:
        r.problem(_("track %(n)d: '%(type)s' box too short") % {"n": number, "type": box.type})
        return 0, box.start
    claimed = struct.unpack(">I", head[4 + skip: 8 + skip])[0]
    first = box.start + 8 + skip
    room = max(0, min(box.end, r.size) - first) // entry_size
    if claimed > room:
        r.problem(_("track %(n)d: '%(type)s' claims %(claimed)d entries, box holds %(room)d")
                  % {"n": number, "type": box.type, "claimed": claimed, "room": room})
        return room, first
    return claimed, first


def _entries(r: _Reader, first: int, count: int, fmt: str) -> list[tuple[int, ...]]:
    """Read ``count`` fixed-size entries from ``first`` in bounded pieces (count already capped)."""
    width = struct.calcsize(">" + fmt)
    per_piece = _READ_PIECE // width
    out: list[tuple[int, ...]] = []
    done = 0
    while done < count:
        n = min(per_piece, count - done)
        data = r.read_at(first + done * width, n * width)
        n = len(data) // width
        if n == 0:
            break
        out.extend(struct.iter_unpack(">" + fmt, data[: n * width]))
        done += n
    return out


def _scan_chunk_offsets(r: _Reader, box: _Box, number: int) -> _ChunkScan | None:
    width, fmt = (8, "Q") if box.type == "co64" else (4, "I")
    count, first = _table(r, box, 0, width, number)
    if count == 0:
        return None
    checked = min(count, _MAX_CHUNK_ENTRIES)
    bad, first_bad, max_offset, max_index = 0, -1, -1, -1
    done = 0
    while done < checked:
        piece = _entries(r, first + done * width, min(_READ_PIECE // width, checked - done), fmt)
        if not piece:
            break
        for index, (offset,) in enumerate(piece, start=done):
            if offset > max_offset:
                max_offset, max_index = offset, index
            if offset >= r.size:
                bad += 1
                first_bad = offset if first_bad < 0 else first_bad
        done += len(piece)
    if bad:
        r.problem(_("track %(n)d: %(bad)d of %(count)d chunk offsets in '%(type)s' point past the end of the "
                    "file (first %(first)d, file ends at %(size)d)")
                  % {"n": number, "bad": bad, "count": done, "type": box.type, "first": first_bad, "size": r.size})
    return _ChunkScan(count, max_offset, max_index)


def _chunk_bytes(r: _Reader, tables: tuple[_Box, _Box], chunk: int, chunk_count: int, number: int) -> int | None:
    """Bytes of sample data in 1-based ``chunk``, or None when too costly or inconsistent to tell."""
    stsc, stsz = tables
    located = _locate_chunk_samples(r, stsc, chunk, chunk_count, number)
    if located is None:
        return None
    first_sample, n_samples = located
    head = r.read_at(stsz.start, 12)
    if len(head) < 12:
        return None
    sample_size: int
    sample_count: int
    sample_size, sample_count = struct.unpack(">II", head[4:12])
    if sample_size:
        return n_samples * sample_size
    if first_sample + n_samples > sample_count or n_samples > _MAX_CHUNK_SAMPLES:
        return None
    count, first = _table(r, stsz, 4, 4, number)
    if first_sample + n_samples > count:
        return None
    sizes = _entries(r, first + 4 * first_sample, n_samples, "I")
    return sum(size for (size,) in sizes)


def _locate_chunk_samples(
    r: _Reader, stsc: _Box, chunk: int, chunk_count: int, number: int
) -> tuple[int, int] | None:
    """(0-based first sample, sample count) of 1-based ``chunk`` from the sample-to-chunk runs."""
    count, first = _table(r, stsc, 0, 12, number)
    if count == 0 or count > _MAX_STSC_ENTRIES:
        return None
    runs = [(entry[0], entry[1]) for entry in _entries(r, first, count, "III")]
    samples_before = 0
    for index, (first_chunk, per_chunk) in enumerate(runs):
        next_first = runs[index + 1][0] if index + 1 < len(runs) else chunk_count + 1
        if first_chunk <= chunk < next_first:
            return samples_before + (chunk - first_chunk) * per_chunk, per_chunk
        if next_first < first_chunk:
            return None  # runs out of order: not ours to judge here
        samples_before += (next_first - first_chunk) * per_chunk
    return None


# --------------------------------------------------------------------------
# JPEG and WAV


def _check_jpeg(r: _Reader) -> StructureReport:
    tail = r.read_at(max(0, r.size - 64), 64)
    stripped = tail.rstrip(b"\0")
    zeros = len(tail) - len(stripped)
    if zeros > _JPEG_MAX_TRAILING_ZEROS:
        r.problem(_("%(n)d or more zero bytes at the end of the file") % {"n": zeros})
    elif not stripped.endswith(b"\xff\xd9"):
        r.problem(_("no end-of-image marker (FFD9) at the end of the file; it looks truncated"))
    problems = r.all_problems()
    return StructureReport("jpeg", not problems, problems, None, None)


def _check_wav(r: _Reader) -> StructureReport:
    riff_size = struct.unpack("<I", r.read_at(4, 4))[0]
    declared_end = 8 + riff_size
    if declared_end > r.size:
        r.problem(_("RIFF header claims %(n)d bytes, file has %(size)d") % {"n": declared_end, "size": r.size})
    elif r.size - declared_end > 1:
        r.problem(_("%(n)d bytes after the end of the RIFF data") % {"n": r.size - declared_end})
    limit = min(declared_end, r.size)
    seen: set[str] = set()
    pos = 12
    for _index in range(_MAX_RIFF_CHUNKS):
        if pos + 8 > limit:
            break
        raw_id, size = struct.unpack("<4sI", r.read_at(pos, 8))
        chunk_id = _printable(raw_id)
        seen.add(chunk_id)
        if pos + 8 + size > r.size:
            r.problem(_("chunk '%(id)s' at offset %(at)d claims %(n)d bytes, file ends at %(size)d")
                      % {"id": chunk_id, "at": pos, "n": size, "size": r.size})
            break
        pos += 8 + size + (size & 1)
    for needed in ("fmt ", "data"):
        if needed not in seen:
            r.problem(_("no '%(id)s' chunk") % {"id": needed})
    problems = r.all_problems()
    return StructureReport("wav", not problems, problems, None, None)
