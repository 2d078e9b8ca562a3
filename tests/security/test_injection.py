"""Terminal and log injection (issue 16 point 6): stored as sent, shown escaped, refused in names."""

from __future__ import annotations

import pytest

from vaultd.errors import UsageError
from vaultd.safetext import check_name, escape, escape_html

HOSTILE = ["\x1b[2K\r", "a\r\n     7  2026-12-07 audit.verify ok", "x\x00y", "\u202egpj.exe", "\u2028", "\x9b31m",
           "\u200b", "\ufeff", "\t"]


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_leaves_no_control_or_bidi_character(text: str) -> None:
    shown = escape(text)
    assert shown.isprintable() and "\\" in shown
    assert escape_html(text).isprintable()


def test_escape_keeps_ordinary_text_and_chinese() -> None:
    for text in ("wang", "王小明 一大队", "DCIM/100MEDIA/a b.mp4", "C:\\x", "（粤）2026第1号"):
        assert escape(text) == text
    assert escape("a\nb", multiline=True) == "a\nb" and escape("a\r\nb", multiline=True) == "a\\r\nb"
    assert escape("\x1b") == "\\x1b" and escape("\u202e") == "\\u202e" and escape(None) == "None"
    assert escape_html("<b>\x1b") == "&lt;b&gt;\\x1b"


@pytest.mark.parametrize("text", HOSTILE + [" wang", "", "   "])
def test_check_name_refuses_controls_bidi_and_blank(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        check_name(text, "user name")
    assert "user name" in exc.value.message and exc.value.message.isprintable()


def test_check_name_accepts_plain_names() -> None:
    for text in ("wang", "王小明", "一大队", "（粤）罚字〔2026〕第1号", "CAM-0001"):
        assert check_name(text, "name") == text
