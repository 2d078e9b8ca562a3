"""Labels (R2, R3): Unicode kept exactly, every change audited with old and new
values, the original's bytes untouched; the deadline in Chinese working days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

pytest.register_assert_rewrite("retention_world")  # before its import: it is also a plugin here
from retention_world import World, logged
from vaultd import labels, workdays
from vaultd.errors import AccessDeniedError, NotFoundError, UsageError
from vaultd.labels import Label, is_labelled, labelling_deadline, missing, missing_for_case
from vaultd.model import MediaType
from vaultd.workdays import add_working_days

SH = ZoneInfo("Asia/Shanghai")

pytest_plugins = ("retention_world",)  # the w / world_home fixtures


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.mark.parametrize(("ingested", "days", "due_day"), [
    ("2026-11-20T10:00", 2, "2026-11-24"),  # Friday -> Monday, Tuesday
    ("2026-11-23T23:59", 2, "2026-11-25"),  # Monday late: Tuesday, Wednesday
    ("2026-09-30T10:00", 2, "2026-10-09"),  # National Day holiday (1-7 Oct) skipped
    ("2026-09-25T10:00", 1, "2026-09-28"),  # 26-27 Sep weekend
    ("2026-02-13T10:00", 2, "2026-02-24"),  # Saturday 14 Feb is a make-up working day; Spring Festival skipped
    ("2026-11-20T10:00", 5, "2026-11-27"),  # the count is configurable
])
def test_deadline_in_chinese_working_days(ingested: str, days: int, due_day: str) -> None:
    due = labelling_deadline(at(ingested), days, tz=SH)
    assert due == datetime.combine(date.fromisoformat(due_day) + timedelta(days=1), time(0), SH)  # 24:00 of it


def test_deadline_uses_the_station_day_not_utc() -> None:
    # 2026-11-20 17:00 UTC is already Saturday 01:00 in Shanghai: Monday and Tuesday count
    due = labelling_deadline(datetime(2026, 11, 20, 17, 0, tzinfo=timezone.utc), 1, tz=SH)
    assert due.astimezone(SH).date() == date(2026, 11, 24)


def test_unknown_year_falls_back_to_monday_to_friday(caplog: pytest.LogCaptureFixture) -> None:
    workdays._warned_years.discard(2030)
    day, known = add_working_days(date(2030, 3, 1), 2)  # a Friday in a year the package does not know
    assert (day, known) == (date(2030, 3, 5), False)
    assert "does not know 2030" in caplog.text
    assert add_working_days(date(2030, 12, 31), 1) == (date(2031, 1, 2), False)  # 1 January is always off
    assert add_working_days(date(2030, 9, 30), 1) == (date(2030, 10, 4), False)  # so are 1-3 October
    assert labelling_deadline(at("2031-06-06T09:00"), 2)  # never raises


def test_one_definition_of_labelled() -> None:
    """Labelled (label show, compliance, statistics) is what case close needs: R2 fields, proves, audio text."""
    assert not is_labelled(None, MediaType.VIDEO)
    assert not is_labelled(Label("r1", case_number="A", party="张三", handler="  ", proves="x"), MediaType.VIDEO)
    r2_only = Label("r1", case_number="A", party="张三", handler="李四")
    assert not is_labelled(r2_only, MediaType.VIDEO) and missing(r2_only, MediaType.VIDEO) == ["proves"]
    full = Label("r1", case_number="A", party="张三", handler="李四", proves="占道经营的事实")
    assert is_labelled(full, MediaType.VIDEO) and missing_for_case(full, MediaType.VIDEO) == []
    assert not is_labelled(full, MediaType.AUDIO) and missing_for_case(full, MediaType.AUDIO) == ["description"]
    for media in MediaType:
        for lab in (None, r2_only, full, Label("r1", description="x")):
            assert is_labelled(lab, media) == (missing_for_case(lab, media) == [])


def test_label_keeps_unicode_and_audits_old_and_new(w: World) -> None:
    rec = w.recs[0]
    before = w.vault.store.object_path(rec.sha256).read_bytes()
    lab = labels.set_label(w.vault, w.who["wang"], rec.id, {"case_number": "松城执〔2026〕17号", "party": "张三",
                                                           "handler": "王五"})
    assert lab.party == "张三" and not is_labelled(lab, rec.media_type) and lab.labelled_at is None  # proves?
    lab2 = labels.set_label(w.vault, w.who["zhao"], rec.id, {"party": "张三丰", "proves": "当事人占道经营"})
    assert lab2.labelled_at is not None and is_labelled(lab2, rec.media_type) and lab2.case_number == "松城执〔2026〕17号"
    entries = logged(w.vault, "label.set")
    assert entries[-1]["details"]["old"] == {"party": "张三", "proves": None}
    assert entries[-1]["details"]["new"] == {"party": "张三丰", "proves": "当事人占道经营"}
    assert entries[-1]["evidence"]["id"] == rec.id and entries[-1]["actor"]["name"] == "zhao"
    _rec, stored = labels.get_label(w.vault, w.who["zhou"], rec.id)
    assert stored is not None and stored.party == "张三丰"
    assert w.vault.store.object_path(rec.sha256).read_bytes() == before
    cleared = labels.set_label(w.vault, w.who["wang"], rec.id, {"party": ""})
    assert cleared.party is None and not is_labelled(cleared, rec.media_type)


def test_label_refusals(w: World) -> None:
    rec = w.recs[0]
    with pytest.raises(AccessDeniedError):
        labels.set_label(w.vault, w.who["wu"], rec.id, {"party": "x"})  # the auditor reads, never labels
    with pytest.raises(NotFoundError):
        labels.set_label(w.vault, w.who["li"], rec.id, {"party": "x"})  # another officer's: not even seen
    with pytest.raises(UsageError):
        labels.set_label(w.vault, w.who["wang"], rec.id, {})
    with pytest.raises(UsageError):
        labels.set_label(w.vault, w.who["wang"], rec.id, {"colour": "red"})
    assert labels.get_label(w.vault, w.who["wang"], rec.id)[1] is None
    assert [e["details"]["rule"] for e in logged(w.vault, "access.denied")][:1] == ["role"]
