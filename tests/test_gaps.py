"""Interruptions (R12): found between clips of one device inside one duty
period, noted, and raised as alerts until noted; plus the other compliance
alerts (a camera not docked, labels overdue) and their clearing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from compliance_fixtures import Month, at, dock, enroll, label, put_recording
from vaultd import alerts, compliance, gaps
from vaultd.catalog.compliance import RecordingFacts
from vaultd.cli import main
from vaultd.errors import NotFoundError, UsageError
from vaultd.model import Actor
from vaultd.people import local_owner
from vaultd.vault import Vault

OWNER = local_owner()
SCHED = Actor("service", "scheduler", "daemon")


def _clip(rid: str, start: str, minutes: float, serial: str = "C", officer: str = "1") -> RecordingFacts:
    s = at(f"10-10 {start}")
    return RecordingFacts(rid, serial, officer, "u", s, s + timedelta(minutes=minutes), s, minutes * 60, 1,
                          "video", None, None)


def test_photos_logs_and_untrusted_times_neither_make_nor_break_a_run() -> None:
    import dataclasses

    a, b = _clip("a", "09:00", 10), _clip("b", "09:30", 5)
    photo = dataclasses.replace(_clip("p", "09:20", 0), media_type="photo")
    wild = dataclasses.replace(_clip("w", "09:15", 1), time_flags=("in-future",))
    got = gaps.find_gaps([a, photo, wild, b], {}, threshold_s=60.0, duty_break_s=4 * 3600)
    assert [(g.id, g.before_id) for g in got] == [("b", "a")]


@pytest.mark.parametrize("clips, docks, found", [
    ([_clip("a", "09:00", 10), _clip("b", "09:10:30", 5)], [], []),                # 30 s: a file split
    ([_clip("a", "09:00", 10), _clip("b", "09:12", 5)], [], ["b"]),                # 2 min: interruption
    ([_clip("b", "09:12", 5), _clip("a", "09:00", 10)], [], ["b"]),                # any order in
    ([_clip("a", "09:00", 10), _clip("b", "13:10", 5)], [], []),                   # 4 h: new duty period
    ([_clip("a", "09:00", 10), _clip("b", "13:09", 5)], [], ["b"]),                # just under 4 h
    ([_clip("a", "09:00", 10), _clip("b", "09:30", 5)], ["09:20"], []),            # docked between
    ([_clip("a", "09:00", 10), _clip("b", "09:30", 5)], ["09:40"], ["b"]),         # docked after
    ([_clip("a", "09:00", 10), _clip("b", "09:30", 5, officer="2")], [], []),      # handed over
    ([_clip("a", "09:00", 10), _clip("b", "09:30", 5, serial="D")], [], []),       # another camera
    ([_clip("a", "09:00", 60), _clip("b", "09:20", 5), _clip("c", "10:05", 5)], [], ["c"]),  # overlap: reach
])
def test_find_gaps_table(clips: list[RecordingFacts], docks: list[str], found: list[str]) -> None:
    times = {"C": [at(f"10-10 {d}") for d in docks]}
    got = gaps.find_gaps(clips, times, threshold_s=60.0, duty_break_s=4 * 3600)
    assert [g.id for g in got] == found


def test_list_and_note_interruptions(vault: Vault, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = Month(vault)
    found = gaps.list_gaps(vault, OWNER)
    assert [(g.id, g.before_id, g.note) for g in found] == [(m.c3[1], m.c3[0], None), (m.c3[3], m.c3[2], None)]
    with pytest.raises(UsageError):
        gaps.note_gap(vault, OWNER, m.c3[1], "  ")
    with pytest.raises(NotFoundError, match="no interruption"):
        gaps.note_gap(vault, OWNER, m.c3[2], "x")  # 30 s before it: not an interruption
    assert main(["--home", str(home), "gaps", "note", m.c3[1], "--text", "电池耗尽 / battery ran out"]) == 0
    capsys.readouterr()
    assert main(["--home", str(home), "gaps", "list", "--device", "CAM3", "--unnoted", "--json"]) == 0
    assert [g["id"] for g in json.loads(capsys.readouterr().out)] == [m.c3[3]]
    assert main(["--home", str(home), "gaps", "list"]) == 0
    out = capsys.readouterr().out
    assert "电池耗尽" in out and "NO NOTE" in out


def test_an_officer_sees_and_notes_their_own_interruptions(vault: Vault) -> None:
    from vaultd.access import Role
    from vaultd.errors import AccessDeniedError
    from vaultd.people import NewUser, add_user, principal_of

    m = Month(vault)
    mine = principal_of(add_user(vault, OWNER, NewUser("o2001", (Role.OFFICER,), "二中队", "2001"), None, "cli"))
    other = principal_of(add_user(vault, OWNER, NewUser("o1001", (Role.OFFICER,), "一中队", "1001"), None, "cli"))
    assert [g.id for g in gaps.list_gaps(vault, mine)] == [m.c3[1], m.c3[3]]
    assert gaps.list_gaps(vault, other) == []
    gaps.note_gap(vault, mine, m.c3[3], "暴雨 / heavy rain")
    with pytest.raises(NotFoundError):  # not theirs: as if it did not exist
        gaps.note_gap(vault, other, m.c3[1], "x")
    legal = principal_of(add_user(vault, OWNER, NewUser("leg", (Role.LEGAL,)), None, "cli"))
    with pytest.raises(AccessDeniedError):
        gaps.note_gap(vault, legal, m.c3[1], "x")  # legal reviews; the officer explains


def test_alerts_are_raised_and_cleared_when_dealt_with(vault: Vault) -> None:
    now = at("10-22 12:00")
    enroll(vault, "CAM9", "3001", at=at("10-01 08:00"), last_docked_at=at("10-21 08:00"))  # 28 h ago
    enroll(vault, "CAM8", "3002", at=at("10-01 08:00"), last_docked_at=at("10-22 08:00"))  # 4 h ago
    a = put_recording(vault, serial="CAM8", officer="3002", start=at("10-19 09:00"), ingested_at=at("10-19 18:00"))
    b = put_recording(vault, serial="CAM8", officer="3002", start=at("10-19 09:30"), ingested_at=at("10-19 18:00"))
    run = compliance.check_alerts(vault, SCHED, now)
    assert [d.serial for d in run.not_docked] == ["CAM9"]
    assert run.unlabelled == {"3002": [a.id, b.id]}  # due 10-21 (2 working days after 10-19)
    assert [g.id for g in run.unnoted] == [b.id]
    with vault.engine.connect() as conn:
        opened = {(x.kind, x.subject) for x in alerts.open_alerts(conn)}
    assert opened == {("device.not-docked", "CAM9"), ("label.overdue", "3002"), ("interruption.unnoted", b.id)}
    # running again does not raise twice
    compliance.check_alerts(vault, SCHED, now + timedelta(minutes=5))
    with vault.engine.connect() as conn:
        assert len(alerts.open_alerts(conn)) == 3

    # dealt with: docked, labelled, noted -> cleared, with a note saying so
    dock(vault, "CAM9", now)
    from sqlalchemy import update

    from vaultd.catalog.schema import devices

    with vault.engine.begin() as conn:
        conn.execute(update(devices).where(devices.c.serial == "CAM9").values(last_docked_at=now))
    label(vault, a.id, now)
    label(vault, b.id, now)
    gaps.note_gap(vault, OWNER, b.id, "执法对象要求暂停 / paused at the party's request")
    run = compliance.check_alerts(vault, SCHED, now + timedelta(hours=1))
    assert run.cleared == 3
    with vault.engine.connect() as conn:
        assert alerts.open_alerts(conn) == []


def test_a_trip_suspends_the_docking_alert(vault: Vault) -> None:
    enroll(vault, "CAM9", "3001", at=at("10-01 08:00"), last_docked_at=at("10-10 08:00"))
    compliance.add_trip(vault, OWNER, officer_number="3001", device_serial=None, left_at=at("10-10 09:00"),
                        returned_at=at("10-20 18:00"), note="驻村 / village posting")
    for now, overdue in ((at("10-15 00:00"), []), (at("10-21 12:00"), []), (at("10-21 19:00"), ["CAM9"])):
        assert [d.serial for d in compliance.check_alerts(vault, SCHED, now).not_docked] == overdue


def test_unassigned_or_retired_cameras_raise_nothing(vault: Vault) -> None:
    from sqlalchemy import insert

    from vaultd.catalog.schema import devices

    with vault.engine.begin() as conn:
        conn.execute(insert(devices).values(serial="SPARE", status="enrolled", first_seen_at=at("10-01 08:00"),
                                            enrolled_at=at("10-01 08:00")))
        conn.execute(insert(devices).values(serial="OLD", status="retired", first_seen_at=at("10-01 08:00")))
    assert compliance.check_alerts(vault, SCHED, at("10-30 00:00")).not_docked == []
