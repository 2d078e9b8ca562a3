"""The compliance report over a simulated month (R1, R2, R12), right to the
recording; the off-site exception; late reasons; who may read what."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest

from compliance_fixtures import Month, at
from vaultd import compliance, gaps
from vaultd.access import Principal, Role
from vaultd.catalog.compliance import RecordingFacts, TripRow
from vaultd.cli import main
from vaultd.errors import AccessDeniedError, NotFoundError, UsageError
from vaultd.people import NewUser, add_user, local_owner, principal_of
from vaultd.vault import Vault

OWNER = local_owner()
NOV1 = at("11-01 00:00")


@pytest.fixture
def month(vault: Vault) -> Month:
    m = Month(vault)
    compliance.add_trip(vault, OWNER, officer_number="1002", device_serial=None, left_at=at("10-14 08:00"),
                        returned_at=at("10-18 20:00"), note="山区巡查 / mountain patrol")
    gaps.note_gap(vault, OWNER, m.c3[1], m.gaps[m.c3[1]] or "")
    compliance.set_late_reason(vault, OWNER, m.cam1_late[0], "连续执勤 / continuous duty")
    return m


def test_the_month_report_is_right_to_the_recording(vault: Vault, month: Month) -> None:
    rep = compliance.report(vault, OWNER, since=at("10-01 00:00"), until=NOV1, now=NOV1)
    t = rep.total
    assert (t.recordings, t.on_time, t.late, t.unknown) == (31, 27, 4, 0)
    assert t.on_time_rate == pytest.approx(27 / 31)
    assert {x.facts.id for x in rep.late} == month.late
    assert set(month.trip_on_time) <= month.on_time  # moved to the return + 24 h by the trip
    late = {x.facts.id: x for x in rep.late}
    assert late[month.trip_late].deadline.at == at("10-19 20:00") and late[month.trip_late].deadline.trip_id
    assert late[month.before_trip].deadline.trip_id is None  # recorded before the trip: no exception
    assert late[month.before_trip].deadline.at == at("10-14 10:10")
    assert late[month.cam1_late[0]].facts.late_reason == "连续执勤 / continuous duty"
    assert late[month.cam1_late[1]].facts.late_reason is None
    assert late[month.cam1_late[0]].late_by_s == pytest.approx((at("10-13 20:00") - at("10-13 09:10"))
                                                               .total_seconds())
    # unlabelled, and which are past their deadline (2 working days after ingest)
    todo = {u.facts.id: u.overdue for u in rep.unlabelled}
    everyone = {r for ids in month.by_officer.values() for r in ids}
    assert set(todo) == everyone - month.labelled
    assert [r for r, overdue in todo.items() if not overdue] == [month.last]
    assert rep.unlabelled[-1].deadline == at("11-04 00:00")
    # interruptions: two on CAM3, one noted; none across a dock or a duty break
    assert [(g.id, g.before_id, g.gap_s, g.note) for g in rep.interruptions] == [
        (month.c3[1], month.c3[0], 900.0, month.gaps[month.c3[1]]), (month.c3[3], month.c3[2], 900.0, None)]
    units = {g.key: g for g in rep.by_unit}
    assert (units["一中队"].recordings, units["一中队"].late, units["一中队"].interruptions) == (24, 4, 0)
    assert (units["二中队"].recordings, units["二中队"].late, units["二中队"].unnoted) == (7, 0, 1)
    officers = {g.key: g for g in rep.by_officer}
    assert {k: (g.recordings, g.on_time, g.late, g.unlabelled, g.overdue_unlabelled) for k, g in officers.items()} == {
        "1001": (20, 18, 2, 2, 2), "1002": (4, 2, 2, 2, 2), "2001": (7, 7, 0, 4, 3)}


def test_a_trip_re_marks_the_stored_on_time_flag(vault: Vault, month: Month) -> None:
    from vaultd.catalog import recordings as rec_db

    with vault.engine.connect() as conn:
        excused = rec_db.get(conn, month.trip_on_time[0])
        still_late = rec_db.get(conn, month.trip_late)
    assert excused.on_time is True and excused.ingest_deadline == at("10-19 20:00")
    assert still_late.on_time is False and still_late.ingest_deadline == at("10-19 20:00")


def test_the_report_narrows_to_a_unit_and_a_period(vault: Vault, month: Month) -> None:
    rep = compliance.report(vault, OWNER, unit="二中队", since=at("10-20 00:00"), until=at("10-21 00:00"), now=NOV1)
    assert rep.total.recordings == 6 and rep.total.late == 0 and len(rep.interruptions) == 2
    rep = compliance.report(vault, OWNER, since=at("10-12 00:00"), until=at("10-13 00:00"), now=NOV1)
    assert {x.facts.id for x in rep.late} == set(month.cam1_late)
    with pytest.raises(UsageError):
        compliance.report(vault, OWNER, since=at("10-13 00:00"), until=at("10-12 00:00"))


def test_the_cli_report(vault: Vault, month: Month, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--home", str(home), "compliance", "report", "--from", "2026-10-01", "--to", "2026-10-31",
                 "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and {x["id"] for x in doc["late"]} == month.late
    assert doc["total"]["recordings"] == 31
    code = main(["--home", str(home), "compliance", "report", "--unit", "一中队"])
    out = capsys.readouterr().out
    assert code == 0 and "on-time rate 83.3%" in out and month.cam1_late[0] in out and "连续执勤" in out


def test_a_trip_still_open_keeps_its_recordings_on_time(vault: Vault, month: Month) -> None:
    trip = compliance.add_trip(vault, OWNER, officer_number=None, device_serial="CAM1", left_at=at("10-11 08:00"),
                               returned_at=None, note="驻点 / posted away")
    rep = compliance.report(vault, OWNER, since=at("10-12 00:00"), until=at("10-13 00:00"), now=NOV1)
    assert rep.late == [] and rep.total.on_time == 2
    compliance.return_trip(vault, OWNER, trip.id, at("10-13 12:00"))  # back: due 10-14 12:00, ingested 10-13
    rep = compliance.report(vault, OWNER, since=at("10-12 00:00"), until=at("10-13 00:00"), now=NOV1)
    assert rep.late == [] and rep.total.on_time == 2
    with pytest.raises(UsageError, match="already has its return"):
        compliance.return_trip(vault, OWNER, trip.id, at("10-13 12:00"))


@pytest.mark.parametrize("kwargs, words", [
    ({"officer_number": None, "device_serial": None}, "officer's or a device's"),
    ({"returned_at": at("10-01 00:00")}, "before the departure"),
    ({"note": "  "}, "--note"),
])
def test_bad_trips_are_refused(vault: Vault, kwargs: dict[str, object], words: str) -> None:
    args: dict[str, object] = {"officer_number": "1001", "device_serial": None, "left_at": at("10-02 00:00"),
                               "returned_at": at("10-03 00:00"), "note": "x"}
    args.update(kwargs)
    with pytest.raises(UsageError, match=words):
        compliance.add_trip(vault, OWNER, **args)  # type: ignore[arg-type]
    assert compliance.list_trips(vault, OWNER) == []


def test_a_late_reason_only_for_late_recordings_and_replaced_with_history(vault: Vault, month: Month) -> None:
    with pytest.raises(UsageError, match="not late"):
        compliance.set_late_reason(vault, OWNER, month.trip_on_time[0], "x")
    with pytest.raises(UsageError, match="empty"):
        compliance.set_late_reason(vault, OWNER, month.trip_late, " ")
    with pytest.raises(NotFoundError):
        compliance.set_late_reason(vault, OWNER, "rnothere", "x")
    t = compliance.set_late_reason(vault, OWNER, month.cam1_late[0], "设备故障 / dock fault")
    assert t.facts.late_reason == "设备故障 / dock fault"
    from vaultd.catalog.schema import audit_entries
    from sqlalchemy import select

    with vault.engine.connect() as conn:
        docs = [json.loads(r.entry) for r in conn.execute(select(audit_entries.c.entry).where(
            audit_entries.c.type == "recording.late_reason"))]
    assert [(d["details"]["old"], d["details"]["new"]) for d in docs] == [
        (None, "连续执勤 / continuous duty"), ("连续执勤 / continuous duty", "设备故障 / dock fault")]


def _facts(end_h: float, ingested_h: float, officer: str = "1", serial: str = "C") -> RecordingFacts:
    base = at("10-10 00:00")
    return RecordingFacts("r", serial, officer, "u", base, base + timedelta(hours=end_h),
                          base + timedelta(hours=ingested_h), 60.0, 1, "video", None, None)


def _trip(left_h: float, back_h: float | None, officer: str | None = "1", serial: str | None = None) -> TripRow:
    base = at("10-10 00:00")
    return TripRow(1, officer, serial, base + timedelta(hours=left_h),
                   None if back_h is None else base + timedelta(hours=back_h), "", "", base)


@pytest.mark.parametrize("end_h, ingested_h, trips, status", [
    (1, 25, [], "on-time"),                      # exactly 24 h: on time
    (1, 25.01, [], "late"),
    (1, 50, [_trip(0, 30)], "on-time"),          # the officer's trip: return + 24 h = 54
    (1, 55, [_trip(0, 30)], "late"),
    (1, 50, [_trip(0, 30, officer=None, serial="C")], "on-time"),  # the device's trip
    (1, 50, [_trip(0, 30, officer="2")], "late"),    # someone else's trip
    (1, 50, [_trip(2, 30)], "late"),             # left after the recording ended
    (1, 50, [_trip(0, 0.5)], "late"),            # back before it ended
    (1, 500, [_trip(0, None)], "on-time"),       # still away
    (1, 50, [_trip(0, 10)], "late"),             # back at 10: due 34
    (1, 50, [_trip(0, 10), _trip(0, 30)], "on-time"),  # the later return counts
])
def test_timeliness_table(end_h: float, ingested_h: float, trips: list[TripRow], status: str) -> None:
    assert compliance.timeliness(_facts(end_h, ingested_h), trips, 24.0).status == status


def test_unknown_time_is_neither_on_time_nor_late() -> None:
    f = RecordingFacts("r", "C", "1", "u", None, None, at("10-10 00:00"), None, 1, "video", None, None)
    assert compliance.timeliness(f, [], 24.0).status == "unknown"


def test_who_may_read_reports(vault: Vault, month: Month) -> None:
    def user(name: str, role: Role, unit: str | None = None, officer: str | None = None) -> Principal:
        return principal_of(add_user(vault, OWNER, NewUser(name, (role,), unit, officer), None, "cli"))

    sup = user("sup1", Role.SUPERVISOR, "二中队")
    rep = compliance.report(vault, sup, now=NOV1)
    assert rep.unit == "二中队" and rep.total.recordings == 7
    with pytest.raises(AccessDeniedError) as e:
        compliance.report(vault, sup, unit="一中队")
    assert e.value.rule == "other-unit"
    for name, role in (("aud", Role.AUDITOR), ("leg", Role.LEGAL), ("lead", Role.LEADER)):
        assert compliance.report(vault, user(name, role), now=NOV1).total.recordings == 31
    off = user("off1", Role.OFFICER, "一中队", "1001")
    with pytest.raises(AccessDeniedError):
        compliance.report(vault, off)
    with pytest.raises(AccessDeniedError):
        compliance.add_trip(vault, off, officer_number="1001", device_serial=None,
                            left_at=at("10-01 00:00"), returned_at=None, note="x")
    # an officer explains their own late recording, not another's (which they cannot see)
    compliance.set_late_reason(vault, off, month.cam1_late[1], "忘记充电座 / forgot the dock")
    with pytest.raises(NotFoundError):
        compliance.set_late_reason(vault, off, month.trip_late, "x")
    from vaultd.catalog.schema import audit_entries
    from sqlalchemy import select

    with vault.engine.connect() as conn:
        denied = [json.loads(r.entry)["details"] for r in conn.execute(select(audit_entries.c.entry).where(
            audit_entries.c.type == "access.denied"))]
    assert len(denied) >= 4  # every refusal is in the log


def test_trips_on_the_command_line(vault: Vault, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = ["--home", str(home)]
    assert main([*h, "trips", "add", "--device", "CAM7", "--left", "2026-10-03T08:00", "--note", "防汛 / flood duty"]) == 0
    out = capsys.readouterr().out
    trip_id = out.split()[1]
    assert "(away)" in out
    assert main([*h, "trips", "return", trip_id, "--at", "2026-10-06T18:00"]) == 0
    assert main([*h, "trips", "list", "--json"]) == 0
    [trip] = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert trip["returned_at"] == "2026-10-06T10:00:00+00:00" and trip["device_serial"] == "CAM7"
    assert main([*h, "trips", "add", "--left", "2026-10-03", "--note", "x"]) == 2  # whose trip?
    assert "officer" in capsys.readouterr().err
    assert main([*h, "trips", "add", "--officer", "1", "--left", "yesterday", "--note", "x"]) == 2
    assert "--left" in capsys.readouterr().err


def test_late_reason_and_check_alerts_on_the_command_line(vault: Vault, month: Month, home: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    h = ["--home", str(home)]
    assert main([*h, "compliance", "late-reason", month.trip_late, "--reason", "山路塌方 / road blocked"]) == 0
    assert month.trip_late in capsys.readouterr().out
    assert main([*h, "compliance", "late-reason", month.last, "--reason", "x"]) == 2  # on time: no reason
    assert "not late" in capsys.readouterr().err
    assert main([*h, "compliance", "check-alerts"]) == 0  # real time: everything unlabelled is overdue now
    out = capsys.readouterr().out
    assert "officers with overdue labels: 3" in out  # (interruptions: only the last 90 days, so not asserted)


def test_an_implausible_time_is_unknown_not_late() -> None:
    for flag in ("before-earliest-plausible", "in-future"):
        f = dataclasses.replace(_facts(1, 500), time_flags=(flag,))
        assert compliance.timeliness(f, [], 24.0).status == "unknown"
    assert compliance.timeliness(dataclasses.replace(_facts(1, 500), time_flags=("clock-skewed",)), [],
                                 24.0).status == "late"  # corrected by the offset: still a time


def test_camera_log_files_are_not_recordings(vault: Vault) -> None:
    from compliance_fixtures import put_recording
    from vaultd import spotcheck, stats
    from vaultd.model import MediaType

    put_recording(vault, start=at("10-05 09:00"), ingested_at=at("10-09 09:00"), media=MediaType.OTHER)
    photo = put_recording(vault, start=at("10-05 10:00"), ingested_at=at("10-09 09:00"), media=MediaType.PHOTO)
    rep = compliance.report(vault, OWNER, now=NOV1)
    assert rep.total.recordings == 1 and [t.facts.id for t in rep.late] == [photo.id]
    assert stats.year_stats(vault, OWNER, 2026).total.recordings == 1
    assert spotcheck.draw(vault, OWNER, 100).sample == [photo.id]
