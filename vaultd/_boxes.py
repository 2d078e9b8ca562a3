"""Bounded reading and ISO-BMFF box walking for ``vaultd.containers`` (private).

Every size in the file is hostile: nothing here allocates by a size read from
the file, every read is at most ``READ_PIECE`` bytes, and the number of boxes
and table entries looked at is capped. Problems found go into the ``Reader``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from vaultd.i18n import _

__all__ = ["READ_PIECE", "Box", "Reader", "check_chunks", "children", "first", "printable", "walk"]

READ_PIECE = 64 * 1024          # largest single read
_MAX_BOXES = 100_000            # boxes looked at per file, all levels together
_MAX_DEPTH = 8                  # nesting levels descended
_MAX_CHUNK_ENTRIES = 1_000_000  # stco/co64 entries checked per track
_MAX_STSC_ENTRIES = 100_000     # stsc entries read per track
_MAX_CHUNK_SAMPLES = 100_000    # samples summed for one chunk's size
_MAX_PROBLEMS = 32


@dataclass(frozen=True)
class Box:
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


class Reader:
    """Bounded reads plus the problem list and box budget of one check."""

    def __init__(self, f: BinaryIO, size_bytes: int) -> None:
        self.f = f
        self.size = size_bytes
        self.problems: list[str] = []
        self.boxes_seen = 0
        self.dropped = 0

    def read_at(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, READ_PIECE, self.size - offset))
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


def printable(raw: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in raw)


# --------------------------------------------------------------------------
# box walking


def walk(r: Reader, start: int, end: int, where: str) -> list[Box]:
    """Boxes tiling ``[start, end)``; gaps, overruns and bad sizes become problems."""
    boxes: list[Box] = []
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


def _read_box_header(r: Reader, pos: int, end: int) -> Box | None:
    head = r.read_at(pos, 16)
    if len(head) < 8:
        r.problem(_("cannot read box header at offset %(at)d") % {"at": pos})
        return None
    size, raw_type = struct.unpack(">I4s", head[:8])
    box_type = printable(raw_type)
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
    return Box(box_type, pos, header, size)


def children(r: Reader, box: Box, where: str, depth: int) -> list[Box]:
    if depth > _MAX_DEPTH:
        r.problem(_("boxes nested deeper than %(n)d levels") % {"n": _MAX_DEPTH})
        return []
    return walk(r, box.start, box.end, where)


def first(boxes: list[Box], box_type: str) -> Box | None:
    return next((b for b in boxes if b.type == box_type), None)


# --------------------------------------------------------------------------
# sample tables


@dataclass(frozen=True)
class _ChunkScan:
    count: int          # entries in the table (as far as the box holds them)
    max_offset: int     # largest chunk offset seen
    max_index: int      # its 0-based chunk index


def check_chunks(r: Reader, stbl_children: list[Box], number: int) -> None:
    """Track ``number``'s chunk offsets, and its last chunk's sample data, must lie inside the file."""
    chunks = first(stbl_children, "stco") or first(stbl_children, "co64")
    if chunks is None:
        r.problem(_("track %(n)d: no 'stco' or 'co64' box") % {"n": number})
        return
    scan = _scan_chunk_offsets(r, chunks, number)
    if scan is None or scan.max_offset >= r.size:
        return
    stsc, stsz = first(stbl_children, "stsc"), first(stbl_children, "stsz")
    if stsc is None or stsz is None:
        return
    chunk_bytes = _chunk_bytes(r, (stsc, stsz), scan.max_index + 1, scan.count, number)
    if chunk_bytes is not None and scan.max_offset + chunk_bytes > r.size:
        r.problem(_("track %(n)d: sample data of the chunk at offset %(at)d runs to %(to)d, file ends at %(size)d")
                  % {"n": number, "at": scan.max_offset, "to": scan.max_offset + chunk_bytes, "size": r.size})


def _table(r: Reader, box: Box, skip: int, entry_size: int, number: int) -> tuple[int, int]:
    """(entry count the box really holds, offset of the first entry) of a full-box table.

    ``skip`` is the number of header bytes after version/flags before the
    entry count (0 for stco, co64, stsc; 8 for stsz's size and count).
    """
    head = r.read_at(box.start, 4 + skip + 4)
    if len(head) < 8 + skip:
        r.problem(_("track %(n)d: '%(type)s' box too short") % {"n": number, "type": box.type})
        return 0, box.start
    claimed = struct.unpack(">I", head[4 + skip: 8 + skip])[0]
    first_entry = box.start + 8 + skip
    room = max(0, min(box.end, r.size) - first_entry) // entry_size
    if claimed > room:
        r.problem(_("track %(n)d: '%(type)s' claims %(claimed)d entries, box holds %(room)d")
                  % {"n": number, "type": box.type, "claimed": claimed, "room": room})
        return room, first_entry
    return claimed, first_entry


def _entries(r: Reader, first_entry: int, count: int, fmt: str) -> list[tuple[int, ...]]:
    """Read ``count`` fixed-size entries from ``first_entry`` in bounded pieces (count already capped)."""
    width = struct.calcsize(">" + fmt)
    per_piece = READ_PIECE // width
    out: list[tuple[int, ...]] = []
    done = 0
    while done < count:
        n = min(per_piece, count - done)
        data = r.read_at(first_entry + done * width, n * width)
        n = len(data) // width
        if n == 0:
            break
        out.extend(struct.iter_unpack(">" + fmt, data[: n * width]))
        done += n
    return out


def _scan_chunk_offsets(r: Reader, box: Box, number: int) -> _ChunkScan | None:
    width, fmt = (8, "Q") if box.type == "co64" else (4, "I")
    count, first_entry = _table(r, box, 0, width, number)
    if count == 0:
        return None
    checked = min(count, _MAX_CHUNK_ENTRIES)
    bad, first_bad, max_offset, max_index = 0, -1, -1, -1
    done = 0
    while done < checked:
        piece = _entries(r, first_entry + done * width, min(READ_PIECE // width, checked - done), fmt)
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


def _chunk_bytes(r: Reader, tables: tuple[Box, Box], chunk: int, chunk_count: int, number: int) -> int | None:
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
    count, first_entry = _table(r, stsz, 4, 4, number)
    if first_sample + n_samples > count:
        return None
    sizes = _entries(r, first_entry + 4 * first_sample, n_samples, "I")
    return sum(size for (size,) in sizes)


def _locate_chunk_samples(
    r: Reader, stsc: Box, chunk: int, chunk_count: int, number: int
) -> tuple[int, int] | None:
    """(0-based first sample, sample count) of 1-based ``chunk`` from the sample-to-chunk runs."""
    count, first_entry = _table(r, stsc, 0, 12, number)
    if count == 0 or count > _MAX_STSC_ENTRIES:
        return None
    runs = [(entry[0], entry[1]) for entry in _entries(r, first_entry, count, "III")]
    samples_before = 0
    for index, (first_chunk, per_chunk) in enumerate(runs):
        next_first = runs[index + 1][0] if index + 1 < len(runs) else chunk_count + 1
        if first_chunk <= chunk < next_first:
            return samples_before + (chunk - first_chunk) * per_chunk, per_chunk
        if next_first < first_chunk:
            return None  # runs out of order: not ours to judge here
        samples_before += (next_first - first_chunk) * per_chunk
    return None
