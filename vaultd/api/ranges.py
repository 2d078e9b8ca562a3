"""HTTP Range requests (RFC 9110 §14) for originals: pure parsing, no I/O.

One range per request: ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n``. A range
with another unit, several ranges, or an ``If-Range`` that does not match the
ETag is ignored (the whole original is sent, as RFC 9110 allows). A
``bytes=`` value that is not valid syntax is refused before any grant is
spent. Satisfiability needs the size, so it is judged after authorisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vaultd.errors import UsageError
from vaultd.i18n import _

_SPEC = re.compile(r"(\d{1,19})?-(\d{1,19})?")


@dataclass(frozen=True)
class RangeSpec:
    """What the client asked for: ``first-last``, ``first-`` or ``-suffix``."""

    first: int | None
    last: int | None

    def resolve(self, size_bytes: int) -> ByteRange | None:
        """The bytes to send, inclusive; None when nothing can be sent (416)."""
        if self.first is None:
            assert self.last is not None
            if self.last == 0 or size_bytes == 0:
                return None
            return ByteRange(max(0, size_bytes - self.last), size_bytes - 1)
        if self.first >= size_bytes:
            return None
        last = size_bytes - 1 if self.last is None else min(self.last, size_bytes - 1)
        return ByteRange(self.first, last)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size_bytes: int) -> str:
        return f"bytes {self.start}-{self.end}/{size_bytes}"


def parse(header: str | None) -> RangeSpec | None:
    """The single range asked for, or None to send everything.

    Raises UsageError for a ``bytes=`` value that is not valid syntax.
    """
    if header is None:
        return None
    unit, sep, value = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in value.split(",")]
    if len(specs) != 1:
        if all(_SPEC.fullmatch(s) for s in specs):
            return None
        raise _bad(header)
    m = _SPEC.fullmatch(specs[0])
    if m is None or (m.group(1) is None and m.group(2) is None):
        raise _bad(header)
    first = int(m.group(1)) if m.group(1) is not None else None
    last = int(m.group(2)) if m.group(2) is not None else None
    if first is not None and last is not None and last < first:
        raise _bad(header)
    return RangeSpec(first, last)


def if_range_allows(if_range: str | None, etag: str) -> bool:
    """Whether to honour the range: no If-Range, or one naming this (strong) ETag.
    A date never matches: originals carry no Last-Modified."""
    return if_range is None or if_range.strip() == etag


def _bad(header: str) -> UsageError:
    return UsageError(_("the Range header %r is not valid") % header[:100],
                      hint=_("ask for one range: bytes=FIRST-LAST, bytes=FIRST- or bytes=-COUNT"))
