import unicodedata
from datetime import datetime

from vaultd.config import COMMON_NAME_PATTERN, NamePattern
from vaultd.names import neutralise, parse_name

COMMON = (NamePattern(COMMON_NAME_PATTERN),)


def test_plain_name_untouched() -> None:
    s = neutralise("3201001_012345_20261121083000_0001.MP4".encode())
    assert s.display == "3201001_012345_20261121083000_0001.MP4"
    assert s.oddities == ()


def test_chinese_name_kept() -> None:
    s = neutralise("现场照片.JPG".encode())
    assert s.display == "现场照片.JPG" and s.oddities == ()


def test_hostile_names_neutralised_raw_kept() -> None:
    cases = {
        b"..\\..\\evil.LOG": "backslash",
        "a\u202egpj.exe".encode(): "bidi-control",
        b"bell\x07.LOG": "control-char",
        b"\xff\xfe.MP4": "not-utf8",
        unicodedata.normalize("NFD", "café.JPG").encode(): "not-nfc",
        b"..": "dot-name",
        b"a/b": "slash",
    }
    for raw, oddity in cases.items():
        s = neutralise(raw)
        assert oddity in s.oddities, (raw, s)
        assert s.raw == raw
        assert "/" not in s.display and "\\" not in s.display
        assert s.display not in (".", "..")
        assert all(unicodedata.category(c) not in ("Cc", "Cf") for c in s.display)


def test_parse_common_name() -> None:
    info = parse_name("3201001_012345_20261121083000_0007_IMP.MP4", COMMON, None)
    assert info.serial == "3201001" and info.officer_id == "012345"
    assert info.local_time == datetime(2026, 11, 21, 8, 30, 0)
    assert info.seq == 7 and info.important


def test_parse_impossible_date_gives_no_time() -> None:
    info = parse_name("3201001_012345_20261399083000_0001.MP4", COMMON, None)
    assert info.serial == "3201001" and info.local_time is None


def test_model_specific_pattern() -> None:
    pats = (NamePattern(r"^DCAM_(?P<serial>\w+?)_(?P<officer>\w+?)_(?P<ts>\d{8}_\d{6})", model="DC*"),) + COMMON
    assert parse_name("DCAM_7_8_20260101_000000.mp4", pats, "X1").serial is None
    assert parse_name("DCAM_7_8_20260101_000000.mp4", pats, "DC9").serial == "7"
