"""The daemon's periodic jobs: each runs on a real vault; a failing job is an alert, not a crash."""

from __future__ import annotations

from datetime import datetime

from vaultd import alerts
from vaultd.model import Actor
from vaultd.scheduler import Job, Scheduler
from vaultd.vault import Vault


def test_every_default_job_runs_on_a_fresh_vault(vault: Vault) -> None:
    sched = Scheduler(vault)
    names = [j.name for j in sched.jobs]
    assert names == ["audit-checkpoint", "scrub-step", "compliance-alerts", "retention-batch"]
    for job in sched.jobs:
        assert sched.run_job(job), sched.last[job.name]
    with vault.engine.connect() as conn:
        assert alerts.open_alerts(conn, "job.failed") == []


def test_a_failing_job_raises_one_alert_and_the_next_run_goes_on(vault: Vault) -> None:
    runs: list[datetime] = []

    def flaky(v: Vault, actor: Actor, now: datetime) -> None:
        runs.append(now)
        if len(runs) < 3:
            raise OSError("disk unhappy")

    job = Job("flaky", flaky, every_s=60)
    sched = Scheduler(vault, [job])
    assert not sched.run_job(job) and not sched.run_job(job)
    assert sched.run_job(job) and len(runs) == 3
    with vault.engine.connect() as conn:
        (alert,) = alerts.open_alerts(conn, "job.failed")
    assert alert.subject == "flaky" and alert.count == 2 and "disk unhappy" in alert.message


def test_scheduler_starts_lists_its_jobs_and_stops(vault: Vault) -> None:
    sched = Scheduler(vault)
    sched.start()
    try:
        status = sched.status()
        assert set(status) == {"audit-checkpoint", "scrub-step", "compliance-alerts", "retention-batch"}
        assert all(v["next_run"] for v in status.values())
    finally:
        sched.stop()
    assert sched.stopping.is_set()
