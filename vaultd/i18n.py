"""Message translation. Every user-facing string goes through ``_``.

The catalogue domain is ``vaultd``; a zh-CN catalogue can be dropped into
``vaultd/locale/zh_CN/LC_MESSAGES/vaultd.mo`` without code changes.
"""

from __future__ import annotations

import gettext
from pathlib import Path

_LOCALE_DIR = Path(__file__).parent / "locale"
_translation = gettext.translation("vaultd", localedir=_LOCALE_DIR, fallback=True)


def _(message: str) -> str:
    """Translate ``message`` for the user's locale (identity when no catalogue)."""
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation.ngettext(singular, plural, n)
