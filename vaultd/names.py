"""Device-supplied names are data, never paths.

``neutralise`` turns the raw bytes of a camera file name into a display name
that is safe to show and store, and lists what was odd about it. The vault's
own paths never derive from these names.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from fnmatch import fnmatchcase

from vaultd.config import NamePattern
from vaultd.model import NameInfo, SafeName

MAX_DISPLAY_CHARS = 255
_ORDINARY = re.compile(r"[\x21-\x2e\x30-\x5b\x5d-\x7e]{1,%d}" % MAX_DISPLAY_CHARS)  # printable ASCII, no slashes or spaces
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def neutralise(raw: bytes) -> SafeName:
    """Make ``raw`` displayable; keep the bytes and name every oddity."""
    oddities: list[str] = []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        oddities.append("not-utf8")
    if not oddities and _ORDINARY.fullmatch(text) and text not in (".", ".."):
        return SafeName(display=text, raw=raw, oddities=())  # the common case, at once
    if unicodedata.normalize("NFC", text) != text:
        oddities.append("not-nfc")
        text = unicodedata.normalize("NFC", text)
    out: list[str] = []
    for ch in text:
        if ch in "/\\":
            oddities.append("slash" if ch == "/" else "backslash")
            out.append("_")
        elif ch == "\x00":
            oddities.append("nul")
            out.append("_")
        elif ch in _BIDI:
            oddities.append("bidi-control")
            out.append("_")
        elif unicodedata.category(ch) in ("Cc", "Cf"):
            oddities.append("control-char")
            out.append("_")
        else:
            out.append(ch)
    display = "".join(out)
    if display in ("", ".", ".."):
        oddities.append("dot-name" if display else "empty")
        display = "_" + display
    if len(display) > MAX_DISPLAY_CHARS:
        oddities.append("too-long")
        display = display[:MAX_DISPLAY_CHARS]
    return SafeName(display=display, raw=raw, oddities=tuple(dict.fromkeys(oddities)))


def parse_name(display: str, patterns: tuple[NamePattern, ...], model: str | None) -> NameInfo:
    """Read serial, officer, local time, sequence and the important mark.

    The first pattern whose ``model`` matches and whose regex matches wins.
    A timestamp that is not a real date is ignored (``local_time`` None).
    """
    for pattern in patterns:
        if not fnmatchcase(model or "", pattern.model) and pattern.model != "*":
            continue
        match = re.match(pattern.regex, display)
        if match is None:
            continue
        groups = match.groupdict()
        return NameInfo(
            serial=groups.get("serial"),
            officer_id=groups.get("officer"),
            local_time=_parse_ts(groups.get("ts")),
            seq=int(groups["seq"]) if groups.get("seq") else None,
            important=bool(groups.get("imp")),
        )
    return NameInfo()


def _parse_ts(ts: str | None) -> datetime | None:
    if not ts:
        return None
    if len(ts) != 14 or not ts.isascii() or not ts.isdigit():
        return None
    try:
        return datetime(int(ts[:4]), int(ts[4:6]), int(ts[6:8]), int(ts[8:10]), int(ts[10:12]), int(ts[12:]))
    except ValueError:
        return None
