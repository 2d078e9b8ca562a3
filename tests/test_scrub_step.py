"""The background scrub: paced, rate- and time-limited, resumable; a flipped bit
or a missing original is found, recorded and raises a critical alarm that no
later pass downgrades; ``vaultd scrub`` exits non-zero while it is open."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from compliance_fixtures import flip_a_bit, object_path, put_recording, tune
from vaultd import alerts, scrub
from vaultd.catalog.schema import scrub_results
from vaultd.cli import main
from vaultd.model import Actor
from vaultd.vault import Vault

UTC = timezone.utc
T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
ME = Actor("service", "scheduler", "daemon")


class FakeClock:
    """A clock that only moves when the scrub sleeps or reads (no real waiting)."""

    def __init__(self) -> None:
        self.t = 0.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s
        self.slept += s


def _fill(vault: Vault, n: int, size: int = 4096) -> list[str]:
    return [put_recording(vault, start=T0 + timedelta(minutes=15 * i), data=bytes([i]) * size).id
            for i in range(n)]


def _results(vault: Vault) -> list[tuple[str, bool, str | None]]:
    with vault.engine.connect() as conn:
        return [(r.recording_id, r.ok, r.problem) for r in conn.execute(
            select(scrub_results).order_by(scrub_results.c.id))]


def test_pace_spreads_the_round_over_the_period() -> None:
    day = timedelta(days=1)
    hour = timedelta(hours=1)
    # 30 days, hourly steps, nothing done: 1/720 of the store per step
    assert scrub.pace(720_000, 0, T0, T0, 30 * day, hour) == 1000
    # half done, half the time left: the same pace
    assert scrub.pace(720_000, 360_000, T0, T0 + 15 * day, 30 * day, hour) == 1000
    # behind: the rest spread over fewer steps
    assert scrub.pace(720_000, 0, T0, T0 + 29 * day, 30 * day, hour) == 30_000
    # due or overdue: everything left
    assert scrub.pace(720_000, 100, T0, T0 + 30 * day, 30 * day, hour) == 719_900
    assert scrub.pace(720_000, 100, T0, T0 + 31 * day, 30 * day, hour) == 719_900
    assert scrub.pace(100, 200, T0, T0, 30 * day, hour) == 0


def test_steps_resume_and_cover_the_store_in_ingest_order(vault: Vault) -> None:
    ids = _fill(vault, 6, size=1000)
    tune(vault, scrub_period_days=1, scrub_interval_min=1440)  # one step a period: no pacing
    clock = FakeClock()
    # a huge per-step quota is cut by the time budget: each file "takes" 1 s at 1000 B/s
    first = scrub.scrub_step(vault, ME, T0 + timedelta(days=40), budget_s=2.5, max_bytes_per_s=1000,
                             clock=clock, sleep=clock.sleep)
    assert (first.checked, first.round_done, first.failed) == (3, False, [])
    assert clock.slept == pytest.approx(3.0)  # read no faster than the rate limit
    second = scrub.scrub_step(vault, ME, T0 + timedelta(days=40), budget_s=2.5, max_bytes_per_s=1000,
                              clock=clock, sleep=clock.sleep)
    assert second.checked == 3 and second.round_done
    checked = [r[0] for r in _results(vault)]
    assert sorted(checked) == sorted(ids) and len(checked) == 6  # each exactly once
    # the round is done and the next is not due: idle, nothing re-read
    idle = scrub.scrub_step(vault, ME, T0 + timedelta(days=40, hours=12), budget_s=100, max_bytes_per_s=1e9)
    assert idle.idle and idle.checked == 0
    # a new round once the period has passed since the last one started
    again = scrub.scrub_step(vault, ME, T0 + timedelta(days=41), budget_s=100, max_bytes_per_s=1e9)
    assert again.round == 2 and again.checked == 6 and again.round_done


def test_a_step_does_its_share_of_the_period(vault: Vault) -> None:
    _fill(vault, 8, size=1000)  # 8000 bytes; period 30 days, hourly: quota 12 B/step -> one file
    step = scrub.scrub_step(vault, ME, T0, budget_s=1000, max_bytes_per_s=1e9)
    assert step.checked == 1 and not step.round_done
    late = scrub.scrub_step(vault, ME, T0 + timedelta(days=30), budget_s=1000, max_bytes_per_s=1e9)
    assert late.checked == 7 and late.round_done  # due: everything left at once


def test_new_recordings_join_the_running_round(vault: Vault) -> None:
    _fill(vault, 2)
    tune(vault, scrub_period_days=1, scrub_interval_min=1440)
    scrub.scrub_step(vault, ME, T0 + timedelta(days=60), budget_s=0.0, max_bytes_per_s=1e9)  # one file
    late = put_recording(vault, start=T0, ingested_at=T0 + timedelta(days=59))
    rest = scrub.scrub_step(vault, ME, T0 + timedelta(days=60), budget_s=100, max_bytes_per_s=1e9)
    assert rest.round_done and late.id in [r[0] for r in _results(vault)]


def test_a_stop_request_leaves_the_file_for_the_next_step(vault: Vault) -> None:
    ids = _fill(vault, 2, size=3 << 20)  # 3 chunks each
    tune(vault, scrub_period_days=1, scrub_interval_min=1440)
    calls = iter([False, False, True] + [False] * 50)
    stopped = scrub.scrub_step(vault, ME, T0 + timedelta(days=60), budget_s=100, max_bytes_per_s=1e12,
                               should_stop=lambda: next(calls))
    assert stopped.stopped and stopped.checked == 0 and not _results(vault)
    resumed = scrub.scrub_step(vault, ME, T0 + timedelta(days=60), budget_s=100, max_bytes_per_s=1e12)
    assert resumed.round_done and sorted(r[0] for r in _results(vault)) == sorted(ids)


def test_a_flipped_bit_and_a_missing_file_raise_critical_alarms(vault: Vault, home: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    recs = [put_recording(vault, start=T0 + timedelta(hours=i)) for i in range(4)]
    tune(vault, scrub_period_days=1, scrub_interval_min=1440)
    flip_a_bit(object_path(vault, recs[1]))
    gone = object_path(vault, recs[2])
    kept = gone.read_bytes()
    gone.unlink()
    step = scrub.scrub_step(vault, ME, T0 + timedelta(days=60), budget_s=100, max_bytes_per_s=1e9)
    assert {f.recording_id: f.problem.split(":")[0] for f in step.failed} == {
        recs[1].id: "hash differs", recs[2].id: "missing"}
    assert {(r, ok) for r, ok, _p in _results(vault)} == {
        (recs[0].id, True), (recs[1].id, False), (recs[2].id, False), (recs[3].id, True)}
    alarms = {(a.kind, a.subject, a.severity) for a in scrub.open_alarms(vault)}
    assert alarms == {("scrub.mismatch", recs[1].id, "critical"), ("scrub.missing", recs[2].id, "critical")}

    # `vaultd scrub` (the full check) fails, naming both
    code = main(["--home", str(home), "scrub"])
    out, err = capsys.readouterr()
    assert code == 8 and recs[1].id in out and recs[2].id in out

    # the originals restored from backup: every check passes, yet the alarms stay
    # open and critical, and `vaultd scrub` fails, until a person clears each with a note
    flip_a_bit(object_path(vault, recs[1]))
    gone.write_bytes(kept)
    again = scrub.scrub_step(vault, ME, T0 + timedelta(days=62), budget_s=100, max_bytes_per_s=1e9)
    assert again.round == 2 and again.checked == 4 and again.failed == []
    assert {(a.subject, a.severity) for a in scrub.open_alarms(vault)} == {
        (recs[1].id, "critical"), (recs[2].id, "critical")}
    code = main(["--home", str(home), "scrub"])
    out, err = capsys.readouterr()
    assert code == 8 and "2 scrub alarms are open" in err and f"ALARM scrub.mismatch {recs[1].id}" in out
    code = main(["--home", str(home), "scrub", "--status"])
    assert code == 8
    capsys.readouterr()
    for a in scrub.open_alarms(vault):
        alerts.clear_alert(vault, a.id, ME, "restored from backup tape 2026-10-03")
    assert main(["--home", str(home), "scrub"]) == 0


def test_purged_originals_are_not_expected(vault: Vault) -> None:
    from sqlalchemy import insert

    from vaultd.catalog.schema import purge_batches, tombstones

    recs = [put_recording(vault, start=T0 + timedelta(hours=i)) for i in range(2)]
    tune(vault, scrub_period_days=1, scrub_interval_min=1440)
    object_path(vault, recs[0]).unlink()
    with vault.engine.begin() as conn:
        conn.execute(insert(purge_batches).values(id="b1", created_at=T0, created_by="x", status="purged"))
        conn.execute(insert(tombstones).values(
            recording_id=recs[0].id, sha256=recs[0].sha256, size_bytes=recs[0].size_bytes, batch_id="b1",
            class_name="routine", purged_at=T0, purged_by="x", approvers="[]", snapshot="{}"))
    step = scrub.scrub_step(vault, ME, T0 + timedelta(days=60), budget_s=100, max_bytes_per_s=1e9)
    assert step.checked == 1 and step.failed == [] and not scrub.open_alarms(vault)
    assert scrub.scrub_all(vault, ME).ok


def test_a_purge_interrupted_before_the_unlink_is_not_an_unknown_object(vault: Vault) -> None:
    from sqlalchemy import insert

    from vaultd.catalog.schema import purge_batches, tombstones

    rec = put_recording(vault, start=T0)  # tombstoned, bytes still there
    with vault.engine.begin() as conn:
        conn.execute(insert(purge_batches).values(id="b1", created_at=T0, created_by="x", status="open"))
        conn.execute(insert(tombstones).values(
            recording_id=rec.id, sha256=rec.sha256, size_bytes=rec.size_bytes, batch_id="b1",
            class_name="routine", purged_at=T0, purged_by="x", approvers="[]", snapshot="{}"))
    report = scrub.scrub_all(vault, ME)
    assert report.ok and report.checked == 0 and report.unknown_objects == []


def test_scrub_step_and_status_on_the_command_line(vault: Vault, home: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import json

    ids = _fill(vault, 3)
    (home / "vaultd.toml").write_text("[compliance]\nscrub_period_days = 1\nscrub_interval_min = 1440\n")
    assert main(["--home", str(home), "scrub", "--step", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["checked"] == 3 and doc["round_done"] and doc["alarms"] == []
    assert main(["--home", str(home), "scrub", "--status"]) == 0
    assert "round 1" in capsys.readouterr().out
    assert main(["--home", str(home), "scrub", "--step", "--budget-s", "-1"]) == 2
    capsys.readouterr()
    flip_a_bit(object_path(vault, put_recording(vault, start=T0)))  # joins the next round
    assert main(["--home", str(home), "scrub", "--step"]) == 0  # the round is done: idle, nothing read
    assert "idle" in capsys.readouterr().out
    assert main(["--home", str(home), "scrub"]) == 8  # the full check finds it at once
    assert len(ids) == 3


def test_a_round_past_its_period_warns_until_it_catches_up(vault: Vault) -> None:
    _fill(vault, 3)
    first = scrub.scrub_step(vault, ME, T0, budget_s=1000, max_bytes_per_s=1e9)  # its share: one file
    assert first.checked == 1
    late = scrub.scrub_step(vault, ME, T0 + timedelta(days=31), budget_s=0.0, max_bytes_per_s=1e9)
    assert late.behind and late.checked == 1
    with vault.engine.connect() as conn:
        [warn] = alerts.open_alerts(conn, scrub.ALERT_BEHIND)
    assert warn.severity == "warning"
    done = scrub.scrub_step(vault, ME, T0 + timedelta(days=31, hours=1), budget_s=1000, max_bytes_per_s=1e9)
    assert done.round_done
    with vault.engine.connect() as conn:
        assert alerts.open_alerts(conn, scrub.ALERT_BEHIND) == []


def test_the_step_yields_to_a_running_ingest(vault: Vault) -> None:
    from vaultd.catalog import sessions as ses_db
    from vaultd.vault import utcnow

    ids = _fill(vault, 2)
    tune(vault, scrub_period_days=1, scrub_interval_min=1440)
    with vault.engine.begin() as conn:
        ses_db.start(conn, "sbusy", at=utcnow(), source="/media/cam", device_serial="CAM1", actor="local:x")
        ses_db.start(conn, "sdead", at=utcnow() - timedelta(days=2), source="/media/old", device_serial="X",
                     actor="local:x")  # crashed long ago: not a reason to wait
    busy = scrub.scrub_step(vault, ME, T0 + timedelta(days=60), budget_s=100, max_bytes_per_s=1e9)
    assert busy.stopped and busy.checked == 0 and not busy.round_done
    with vault.engine.begin() as conn:
        ses_db.finish(conn, "sbusy", at=utcnow(), status="complete", summary={})
    free = scrub.scrub_step(vault, ME, T0 + timedelta(days=60), budget_s=100, max_bytes_per_s=1e9)
    assert free.round_done and sorted(r[0] for r in _results(vault)) == sorted(ids)
