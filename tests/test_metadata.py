from datetime import datetime, timedelta, timezone

import pytest

from vaultd.config import TimeConfig
from vaultd.metadata import TimeEvidence, decide_times, media_type_for
from vaultd.model import CameraIdentity, MediaType, TimeSource

UTC = timezone.utc
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CFG = TimeConfig()
# 08:30 Shanghai = 00:30 UTC
NAME_LOCAL = datetime(2026, 11, 21, 8, 30, 0)
TRUE_START = datetime(2026, 11, 21, 0, 30, 0, tzinfo=UTC)
SYNCED = CameraIdentity(clock_offset_s=0.0)


def ev(container=None, name=None, mtime=None, duration=10.0) -> TimeEvidence:
    return TimeEvidence(container=container, name_local=name, mtime=mtime, duration_s=duration)


@pytest.mark.parametrize("evidence, source, start, flags", [
    (ev(container=TRUE_START, name=NAME_LOCAL), TimeSource.CONTAINER, TRUE_START, ()),
    (ev(name=NAME_LOCAL), TimeSource.FILENAME, TRUE_START, ()),
    (ev(mtime=TRUE_START), TimeSource.FILE_MTIME, TRUE_START, ()),
    # camera wrote local wall time into the UTC container field
    (ev(container=TRUE_START + timedelta(hours=8), name=NAME_LOCAL), TimeSource.FILENAME, TRUE_START,
     ("container-time-was-local",)),
    (ev(container=TRUE_START + timedelta(hours=3), name=NAME_LOCAL), TimeSource.CONTAINER,
     TRUE_START + timedelta(hours=3), ("time-sources-disagree",)),
    # a 1904/1970 default in the container is ignored
    (ev(container=datetime(1970, 1, 1, tzinfo=UTC), name=NAME_LOCAL), TimeSource.FILENAME, TRUE_START, ()),
    (ev(), TimeSource.FILE_MTIME, None, ("no-time",)),
    (ev(name=datetime(2009, 5, 1)), TimeSource.FILENAME, datetime(2009, 4, 30, 16, tzinfo=UTC),
     ("before-earliest-plausible",)),
    (ev(name=datetime(2027, 1, 1)), TimeSource.FILENAME, datetime(2026, 12, 31, 16, tzinfo=UTC), ("in-future",)),
])
def test_time_source_table(evidence, source, start, flags) -> None:
    d = decide_times(evidence, MediaType.VIDEO, SYNCED, CFG, NOW)
    assert d.source is source
    assert d.start == start
    assert d.flags == flags
    if start is not None:
        assert d.end == start + timedelta(seconds=10)


def test_clock_offset_corrects_and_flags() -> None:
    ident = CameraIdentity(clock_offset_s=120.0)
    d = decide_times(ev(container=TRUE_START + timedelta(seconds=120)), MediaType.VIDEO, ident, CFG, NOW)
    assert d.start == TRUE_START and d.clock_offset_s == 120.0
    assert "clock-skewed" in d.flags


def test_unknown_clock_offset_is_flagged() -> None:
    d = decide_times(ev(container=TRUE_START), MediaType.VIDEO, CameraIdentity(), CFG, NOW)
    assert d.start == TRUE_START and "clock-offset-unknown" in d.flags


def test_photo_has_no_duration_and_other_ends_at_mtime() -> None:
    d = decide_times(ev(name=NAME_LOCAL, duration=None), MediaType.PHOTO, SYNCED, CFG, NOW)
    assert d.end == d.start
    later = TRUE_START + timedelta(hours=2)
    d = decide_times(ev(name=NAME_LOCAL, mtime=later, duration=None), MediaType.OTHER, SYNCED, CFG, NOW)
    assert d.start == TRUE_START and d.end == later


@pytest.mark.parametrize("name, kind", [
    ("a.MP4", MediaType.VIDEO), ("a.mov", MediaType.VIDEO), ("a.WAV", MediaType.AUDIO),
    ("a.m4a", MediaType.AUDIO), ("a.JPG", MediaType.PHOTO), ("a.LOG", MediaType.OTHER),
    ("a.NMEA", MediaType.OTHER), ("noext", MediaType.OTHER),
])
def test_media_type(name: str, kind: MediaType) -> None:
    assert media_type_for(name) is kind
