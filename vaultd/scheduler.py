"""The daemon's periodic jobs, run by APScheduler in a background thread.

Each job runs in its own error boundary: a failure is logged with its
traceback and raised as a ``job.failed`` alert; the next run goes on.
Jobs never overlap themselves (``max_instances=1``, missed runs coalesced).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from vaultd import alerts, audit
from vaultd.model import Actor
from vaultd.vault import Vault, utcnow

log = logging.getLogger(__name__)

SCHEDULER = Actor("service", "vaultd-scheduler", via="daemon")


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[Vault, Actor, datetime], Any]
    every_s: float | None = None  # an interval ...
    cron: dict[str, Any] | None = None  # ... or a cron spec (APScheduler CronTrigger fields)
    first_delay_s: float = 30.0  # the first interval run waits this long after start


def _checkpoint(vault: Vault, actor: Actor, now: datetime) -> None:
    if audit.seal(vault) is not None:
        log.info("audit log sealed: new signed checkpoint")


def default_jobs(vault: Vault) -> list[Job]:
    """Every periodic job of the daemon, from the config."""
    return [
        Job("audit-checkpoint", _checkpoint, every_s=vault.config.dock.checkpoint_interval_s),
    ]


class Scheduler:
    """Starts and stops with the daemon (the ``extras`` protocol: start, stop, status)."""

    name = "scheduler"

    def __init__(self, vault: Vault, jobs: list[Job]) -> None:
        self.vault = vault
        self.jobs = jobs
        self.last: dict[str, dict[str, Any]] = {}
        self._sched = BackgroundScheduler(timezone=ZoneInfo(vault.config.time.station_tz),
                                          job_defaults={"coalesce": True, "max_instances": 1,
                                                        "misfire_grace_time": 3600})

    def start(self) -> None:
        for job in self.jobs:
            if job.cron is not None:
                trigger: Any = CronTrigger(**job.cron, timezone=ZoneInfo(self.vault.config.time.station_tz))
                self._sched.add_job(self.run_job, trigger, args=[job], id=job.name, name=job.name)
            elif job.every_s:
                self._sched.add_job(self.run_job, IntervalTrigger(seconds=job.every_s), args=[job],
                                    id=job.name, name=job.name,
                                    next_run_time=datetime.now(ZoneInfo("UTC")) + timedelta(seconds=job.first_delay_s))
        self._sched.start()

    def stop(self) -> None:
        if self._sched.running:
            self._sched.shutdown(wait=False)

    def run_job(self, job: Job) -> bool:
        """Run one job in its error boundary; True when it succeeded."""
        started = utcnow()
        try:
            job.run(self.vault, SCHEDULER, started)
        except Exception as exc:
            log.exception("scheduled job %s failed", job.name)
            self.last[job.name] = {"at": started.isoformat(), "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            try:
                with self.vault.engine.begin() as conn:
                    alerts.raise_alert(conn, "job.failed", job.name,
                                       f"scheduled job {job.name} failed: {type(exc).__name__}: {exc}",
                                       actor=SCHEDULER, details={"job": job.name}, at=started)
            except Exception:
                log.exception("could not raise the alert for job %s", job.name)
            return False
        self.last[job.name] = {"at": started.isoformat(), "ok": True}
        return True

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for job in self._sched.get_jobs():
            nxt = job.next_run_time
            out[job.id] = {"next_run": nxt.isoformat() if nxt else None, "last": self.last.get(job.id)}
        return out
