"""Text from people and devices, made safe to show (terminal, log, HTML, PDF).

vaultd stores what was sent, byte for byte; it is the showing that must not
let a login name or a purpose move the cursor, erase a line, start a forged
line ("audit.verify ok") or reverse the text after it (U+202E). Every printer
of stored text goes through :func:`escape` (or :func:`escape_html` for HTML),
so a control or bidi character shows as a visible ``\\x1b`` / ``\\u202e``.

Names and ids (user names, unit names, case numbers, device serials, officer
numbers, notice numbers) are refused outright when they hold such a
character: :func:`check_name`.
"""

from __future__ import annotations

import html
import json
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from vaultd.errors import UsageError
from vaultd.i18n import _

#: the explicit bidirectional controls (embeddings, overrides, isolates, marks)
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
#: control (Cc), format (Cf: bidi, zero-width, BOM), line/paragraph separators, surrogates
_UNSAFE_CATEGORIES = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def is_unsafe(ch: str) -> bool:
    """A character that must never reach a terminal, a log line or a document raw."""
    return ch in BIDI or unicodedata.category(ch) in _UNSAFE_CATEGORIES


def _visible(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: object, *, multiline: bool = False) -> str:
    """``text`` with every control and bidi character shown as an escape.

    ``multiline`` keeps line feeds (a description on a document) but still
    escapes a carriage return and every other control. Anything not a string
    is shown with ``str`` first (numbers, None), then escaped.
    """
    s = text if isinstance(text, str) else str(text)
    if s.isprintable() or (multiline and s.replace("\n", "").isprintable()):  # the common case at once
        return s
    return "".join(_visible(ch) if is_unsafe(ch) and not (multiline and ch == "\n") else ch for ch in s)


def escape_html(text: object, *, multiline: bool = False) -> str:
    """:func:`escape`, then HTML-escaped (quotes too), for pages and cover sheets."""
    return html.escape(escape(text, multiline=multiline), quote=True)


def check_name(value: str, what: str) -> str:
    """``value`` as given, or a UsageError naming ``what`` when it holds a control or bidi character.

    ``what`` is the thing named, as a person reads it (e.g. "user name",
    "case number"). Leading or trailing spaces and an empty value are refused too.
    """
    bad = [ch for ch in value if is_unsafe(ch)]
    if bad:
        shown = ", ".join(dict.fromkeys(_visible(ch) for ch in bad))
        raise UsageError(_("%s %s contains a control or bidi character (%s)") % (what, escape(value), shown),
                         hint=_("names and ids are plain text: remove the control characters "
                                "(line breaks, tabs, escape codes, direction marks)"))
    if not value.strip():
        raise UsageError(_("%s is empty") % what, hint=_("give a %s") % what)
    if value != value.strip():
        raise UsageError(_("%s %r has leading or trailing spaces") % (what, value),
                         hint=_("give the %s without spaces around it") % what)
    return value


def check_optional(value: str | None, what: str) -> str | None:
    """:func:`check_name` for a value that may be absent."""
    return None if value is None else check_name(value, what)


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON (Unicode kept readable) with every control and bidi character as a ``\\uXXXX`` escape.

    ``json.dumps(ensure_ascii=False)`` escapes C0 controls only; DEL, C1 controls
    (0x9b starts a terminal sequence), U+2028 and U+202E would reach the terminal raw.
    The result decodes to exactly the same data.
    """
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    if text.isprintable() or text.replace("\n", "").isprintable():
        return text
    return "".join(json.dumps(ch)[1:-1] if ch != "\n" and is_unsafe(ch) else ch for ch in text)


class _Guard:
    """A text stream that shows control and bidi characters escaped (line feeds and tabs pass).

    The last line of defence for everything a command prints to the terminal;
    the printers escape their fields themselves (a line feed inside a field is
    escaped there), and ``.buffer`` stays the raw byte stream for exact bytes."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, s: str) -> int:
        if not (s.isprintable() or s.replace("\n", "").replace("\t", "").isprintable()):
            s = "".join(_visible(ch) if is_unsafe(ch) and ch not in "\n\t" else ch for ch in s)
        return self._inner.write(s)

    def __getattr__(self, name: str) -> Any:  # flush, buffer, isatty, fileno, encoding ...
        return getattr(self._inner, name)


@contextmanager
def guarded_stdout() -> Iterator[None]:
    """While inside, ``sys.stdout`` escapes control and bidi characters (see :class:`_Guard`)."""
    saved = sys.stdout
    sys.stdout = _Guard(saved)
    try:
        yield
    finally:
        sys.stdout = saved
