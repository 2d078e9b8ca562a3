"""Purges as people meet them: never while held, while its case is open, before
its minimum, or without the approvals; and when allowed, the bytes go, a
tombstone stays, and the audit log says so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

pytest.register_assert_rewrite("retention_world")  # before its import: it is also a plugin here
from retention_world import World, load_world, logged
from vaultd import cases, classes, faults, holds, retention
from vaultd.catalog import retention as ret_db
from vaultd.cases import NewCase
from vaultd.errors import AccessDeniedError, ConfigError, NotFoundError, UsageError
from vaultd.evidence import get_original, show_recording
from vaultd.holds import HoldReason
from vaultd.people import local_owner
from vaultd.vault import open_vault, utcnow

LATER = utcnow() + timedelta(days=800)  # past the 2-year default for everything ingested now

pytest_plugins = ("retention_world",)  # the w / world_home fixtures



def _batch(w: World, now: object = LATER) -> str:
    b = retention.create_batch(w.vault, w.who["root"], now=now)  # type: ignore[arg-type]
    assert b is not None
    return b.id


def _approve_twice(w: World, batch_id: str) -> None:
    retention.approve_batch(w.vault, w.who["zhou"], batch_id)
    retention.approve_batch(w.vault, w.who["sun"], batch_id)


def _intact(w: World) -> None:
    with w.vault.engine.connect() as conn:
        assert not ret_db.purged_ids(conn)
    assert all(w.vault.store.check(r.sha256).ok for r in w.recs)


def test_nothing_has_expired_today(w: World) -> None:
    assert retention.create_batch(w.vault, w.who["root"]) is None
    assert all(not d.purgeable for d in retention.plan_vault(w.vault, w.who["wu"], utcnow()))


def test_no_purge_without_the_approvals(w: World) -> None:
    batch = _batch(w)
    with pytest.raises(AccessDeniedError) as none:
        retention.purge(w.vault, w.who["root"], batch, now=LATER)
    assert none.value.rule == "approvals-missing"
    retention.approve_batch(w.vault, w.who["zhou"], batch)
    with pytest.raises(UsageError, match="another person"):
        retention.approve_batch(w.vault, w.who["zhou"], batch)  # the same person twice counts once
    with pytest.raises(AccessDeniedError):
        retention.purge(w.vault, w.who["root"], batch, now=LATER)
    with pytest.raises(AccessDeniedError):
        retention.approve_batch(w.vault, w.who["root"], batch)  # an admin prepares, does not approve
    with pytest.raises(UsageError):
        retention.approve_batch(w.vault, local_owner(), batch)  # approvals are by named people
    _intact(w)
    assert [e["details"]["rule"] for e in logged(w.vault, "access.denied")
            if e["details"].get("batch") == batch].count("approvals-missing") == 2


def test_no_purge_before_the_minimum(w: World) -> None:
    early = utcnow() + timedelta(days=700)  # under 2 years
    assert retention.create_batch(w.vault, w.who["root"], now=early) is None
    batch = _batch(w)
    _approve_twice(w, batch)
    result = retention.purge(w.vault, w.who["root"], batch, now=early)  # approved, run too early
    assert result.purged == () and {why.split(":")[0] for _i, why in result.skipped} == {"kept"}
    _intact(w)


def test_no_purge_while_held_and_release_needs_a_second_person(w: World) -> None:
    rec = w.recs[0]
    hold = holds.add(w.vault, w.who["zhao"], reason=HoldReason.COMPLAINT, recording=rec.id, note="当事人投诉")
    batch = _batch(w)
    assert rec.id not in {i.recording_id for i in retention.get_batch(w.vault, w.who["wu"], batch).items}
    with pytest.raises(AccessDeniedError) as own:
        holds.release(w.vault, w.who["zhao"], hold.id)
    assert own.value.rule == "own-hold"
    with pytest.raises(UsageError):
        holds.release(w.vault, local_owner(), hold.id)
    with pytest.raises(AccessDeniedError):
        holds.release(w.vault, w.who["wang"], hold.id)  # an officer may not
    # a hold set after the batch was made still blocks its purge
    other = w.recs[1]
    holds.add(w.vault, w.who["sun"], reason=HoldReason.LITIGATION, recording=other.id)
    _approve_twice(w, batch)
    result = retention.purge(w.vault, w.who["root"], batch, now=LATER)
    assert other.id not in result.purged and other.id in dict(result.skipped)
    assert "held" in dict(result.skipped)[other.id]
    assert w.vault.store.check(rec.sha256).ok and w.vault.store.check(other.sha256).ok
    released = holds.release(w.vault, w.who["qian"], hold.id, note="复议结束")
    assert released.released_by == "qian" and not released.active


def test_no_purge_while_its_case_is_open(w: World) -> None:
    rec = w.recs[0]
    cases.create(w.vault, w.who["wang"], NewCase("2026-城管-017", "占道经营", party="张三", handler="王五"))
    cases.link(w.vault, w.who["wang"], "2026-城管-017", [rec.id])
    batch = _batch(w)
    assert rec.id not in {i.recording_id for i in retention.get_batch(w.vault, w.who["wu"], batch).items}
    _approve_twice(w, batch)
    result = retention.purge(w.vault, w.who["root"], batch, now=LATER)
    assert rec.id not in result.purged and w.vault.store.check(rec.sha256).ok


def test_a_hold_on_the_case_covers_its_recordings(w: World) -> None:
    rec = w.recs[0]
    cases.create(w.vault, w.who["wang"], NewCase("C-1", "群体性事件"))
    cases.link(w.vault, w.who["wang"], "C-1", [rec.id])
    holds.add(w.vault, w.who["zhou"], reason=HoldReason.MASS_INCIDENT, case="C-1")
    decisions = {d.recording_id: d for d in retention.plan_vault(w.vault, w.who["wu"], LATER)}
    assert decisions[rec.id].verdict is retention.Verdict.HELD


def test_an_approved_purge_removes_bytes_and_keeps_a_tombstone(w: World, tmp_path: Path) -> None:
    batch = _batch(w)
    _approve_twice(w, batch)
    from vaultd import preview

    rec = w.recs[0]
    leftover = preview.folder_of(w.vault, rec.id)  # a preview made before: it goes with its original
    leftover.mkdir(parents=True)
    (leftover / "video.mp4").write_bytes(b"preview")
    result = retention.purge(w.vault, w.who["root"], batch, now=LATER)
    assert set(result.purged) == {r.id for r in w.recs}
    assert not w.vault.store.exists(rec.sha256) and not leftover.exists()
    with w.vault.engine.connect() as conn:
        tomb = ret_db.tombstone(conn, rec.id)
    assert tomb is not None and tomb.sha256 == rec.sha256 and tomb.size_bytes == rec.size_bytes
    assert set(tomb.approvers) == {"zhou", "sun"} and tomb.snapshot["recording"]["officer_id"] == "012345"
    requested = logged(w.vault, "retention.purge.requested")
    done = logged(w.vault, "retention.purge.done")
    assert len(requested) == len(done) == len(w.recs)
    assert {e["evidence"]["sha256"] for e in done} == {r.sha256 for r in w.recs}
    assert tomb.audit_index is not None
    shown = show_recording(w.vault, w.who["zhou"], rec.id)
    assert shown.recording.sha256 == rec.sha256 and shown.purged and shown.purged["batch"] == batch
    with pytest.raises(NotFoundError, match="purged"):
        get_original(w.vault, local_owner(), rec.id, tmp_path / "out.mp4", "复核")
    assert not (tmp_path / "out.mp4").exists()
    with pytest.raises(UsageError, match="purged already"):
        retention.purge(w.vault, w.who["root"], batch, now=LATER)


def test_one_approval_is_enough_when_configured(world_home: Path) -> None:
    cfg = world_home / "vaultd.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + "\n[retention]\npurge_approvals = 1\n", encoding="utf-8")
    vault = open_vault(world_home)
    try:
        w = load_world(vault)
        batch = _batch(w)
        retention.approve_batch(w.vault, w.who["zhou"], batch)
        assert retention.purge(w.vault, w.who["zhou"], batch, now=LATER).purged
    finally:
        vault.close()


def test_shorter_class_needs_a_supervisor_longer_does_not(w: World) -> None:
    rec = w.recs[0]
    longer = classes.classify(w.vault, w.who["wang"], rec.id, "evidence")
    assert longer.applied
    with pytest.raises(UsageError, match="reason"):
        classes.classify(w.vault, w.who["wang"], rec.id, "routine")
    asked = classes.classify(w.vault, w.who["wang"], rec.id, "routine", reason="无争议，日常巡查")
    assert not asked.applied and asked.change_id
    with pytest.raises(AccessDeniedError):
        classes.decide_change(w.vault, w.who["li"], asked.change_id, approve=True)  # an officer
    with pytest.raises(AccessDeniedError):
        classes.decide_change(w.vault, w.who["zhou"], asked.change_id, approve=True)  # legal is no supervisor
    with pytest.raises(AccessDeniedError) as other_unit:
        classes.decide_change(w.vault, w.who["feng"], asked.change_id, approve=True)
    assert other_unit.value.rule == "supervisor-of-another-unit"
    with w.vault.engine.connect() as conn:
        assert ret_db.classes_of(conn, [rec.id]) == {rec.id: "evidence"}
    classes.decide_change(w.vault, w.who["zhao"], asked.change_id, approve=True)
    with w.vault.engine.connect() as conn:
        assert ret_db.classes_of(conn, [rec.id]) == {rec.id: "routine"}
    # a supervisor asking for a shorter class still needs another one
    again = classes.classify(w.vault, w.who["zhao"], w.recs[1].id, "routine", reason="日常")
    assert again.change_id
    with pytest.raises(AccessDeniedError) as own:
        classes.decide_change(w.vault, w.who["zhao"], again.change_id, approve=True)
    assert own.value.rule == "own-request"
    with pytest.raises(UsageError):
        classes.classify(w.vault, w.who["wang"], rec.id, "no-such-class")


def test_scheduled_job_prepares_a_batch_and_raises_an_alert(w: World) -> None:
    from vaultd.alerts import open_alerts

    sched = retention.scheduler_principal()
    assert retention.prepare_scheduled(w.vault, sched, utcnow()) is None
    soon = LATER - timedelta(days=3)  # expiry within notify_ahead_days (7)
    batch_id = retention.prepare_scheduled(w.vault, sched, soon)
    assert batch_id is not None
    with w.vault.engine.connect() as conn:
        found = [a for a in open_alerts(conn) if a.kind == "retention.batch"]
    assert found and found[0].subject == batch_id
    assert retention.prepare_scheduled(w.vault, sched, soon) is None  # nothing new: no second batch


def test_a_purge_cut_off_midway_is_finished_by_the_next_run(w: World) -> None:
    batch = _batch(w)
    _approve_twice(w, batch)

    def crash() -> None:
        raise RuntimeError("power cut")

    faults.hooks["purge.before-unlink"] = crash
    with pytest.raises(RuntimeError):
        retention.purge(w.vault, w.who["root"], batch, now=LATER)
    with w.vault.engine.connect() as conn:
        (first_id,) = ret_db.purged_ids(conn)  # the tombstone came first...
    first = next(r for r in w.recs if r.id == first_id)
    assert w.vault.store.exists(first.sha256)  # ...the bytes were still there
    faults.hooks.clear()
    result = retention.purge(w.vault, w.who["root"], batch, now=LATER)
    assert set(result.purged) == {r.id for r in w.recs} and not w.vault.store.exists(first.sha256)
    assert len(logged(w.vault, "retention.purge.requested")) == len(w.recs)  # not asked twice
    assert len(logged(w.vault, "retention.purge.done")) == len(w.recs)


def test_a_policy_below_the_floor_stops_retention_commands(w: World) -> None:
    (w.vault.layout.root / "retention.toml").write_text(
        'floor_months = 24\n[classes.routine]\nkeep_months = 6\n[classes.standard]\nkeep_months = 24\n',
        encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        retention.plan_vault(w.vault, w.who["wu"], LATER)
    assert "'routine'" in err.value.message and "24 months" in err.value.message
