"""What one use of a grant is (issue 16 #10): pure decisions, no I/O.

A grant with ``uses: N`` lets its grantee make N complete copies of EACH
recording it names. One use is one *copy* of one recording:

* a **download** copy begins with the first read of the recording under the
  grant (that read spends the use) and every later read of the same
  recording under the same grant (the grant has one grantee) belongs to it:
  Range requests, a resume after a cut, in any order. It is complete once
  every byte of the original has been sent at least once; the next read then
  begins a new copy. It lapses ``COPY_IDLE`` after its last read began or
  ended: the use stays spent (the grantee holds what was sent), and the next
  read begins a new copy.
* an **export** copy is one recording in one export package; it is complete
  when the export is sealed.

A use is given back (the copy is ``returned``) when the vault failed (the
original could not be read or did not match its hash; the export failed), or
when the copy ended without a byte sent (a 416, a file that could not be
opened, a client gone before the first byte). Two reads of the same bytes of
one copy at once are refused (``copy-in-progress``), so parallel downloads on
a one-use grant give one copy. Every read stays an audit entry with its byte
range and its copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum

COPY_IDLE = timedelta(hours=1)  # an open download lapses this long after its last read began or ended

Span = tuple[int, int]  # first and last byte, inclusive


@dataclass(frozen=True)
class Reading:
    """A read of a copy in progress: its id and the bytes it sends."""

    id: str
    start: int
    end: int
    since: datetime


@dataclass(frozen=True)
class Copy:
    """One copy of one recording under one grant, as the catalog keeps it."""

    id: int
    grant_id: str
    recording_id: str
    kind: str  # download | export | legacy (a use spent before copies were counted)
    state: str  # open | complete | returned
    delivered: tuple[Span, ...]  # merged, sorted
    reading: tuple[Reading, ...]
    started_at: datetime
    last_at: datetime
    export_id: str | None = None


class Start(Enum):
    JOIN = "join"  # the read belongs to the open copy: no use spent
    NEW = "new"  # the read begins a copy: one use spent, if one is left
    BUSY = "busy"  # refused: a read of the same bytes of this copy is in progress


def merge(spans: Iterable[Span]) -> tuple[Span, ...]:
    """Sorted, non-overlapping, adjacent spans joined."""
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def covers(spans: tuple[Span, ...], size_bytes: int) -> bool:
    """Whether ``spans`` (merged) hold every byte of a file of ``size_bytes``."""
    return size_bytes == 0 or (len(spans) == 1 and spans[0][0] <= 0 and spans[0][1] >= size_bytes - 1)


def is_open(copy: Copy | None, now: datetime) -> bool:
    return (copy is not None and copy.kind == "download" and copy.state == "open"
            and now - copy.last_at < COPY_IDLE)


def live(readings: tuple[Reading, ...], now: datetime) -> tuple[Reading, ...]:
    """The reads still in progress (one begun before ``COPY_IDLE`` is taken as gone: a crash)."""
    return tuple(r for r in readings if now - r.since < COPY_IDLE)


def start_read(current: Copy | None, span: Span, now: datetime) -> Start:
    """Does a read of ``span`` join the open copy, begin a new one, or wait?"""
    if current is None or not is_open(current, now):
        return Start.NEW
    if any(r.start <= span[1] and span[0] <= r.end for r in live(current.reading, now)):
        return Start.BUSY
    return Start.JOIN


def joined(current: Copy, reading: Reading, now: datetime) -> Copy:
    return replace(current, reading=(*live(current.reading, now), reading), last_at=now)


def end_read(copy: Copy, reading_id: str, sent: Span | None, *, ok: bool, fault: bool, size_bytes: int,
             now: datetime) -> Copy:
    """The copy once a read ended: ``sent`` the bytes it handed over (None: none),
    ``ok`` whether it sent all it was asked, ``fault`` whether the vault failed."""
    others = tuple(r for r in live(copy.reading, now) if r.id != reading_id)
    delivered = merge([*copy.delivered, sent]) if sent is not None else copy.delivered
    state = copy.state
    if state == "open":
        if fault:
            state = "returned"
        elif (ok or delivered) and covers(delivered, size_bytes):
            state = "complete"
        elif not delivered and not others:
            state = "returned"
    return replace(copy, delivered=delivered, reading=others if state == "open" else (), state=state, last_at=now)
