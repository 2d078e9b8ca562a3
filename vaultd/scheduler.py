"""The daemon's periodic jobs, run by APScheduler in a background thread.

Each job runs in its own error boundary: a failure is logged with its
traceback and raised as a ``job.failed`` alert; the next run goes on.
Jobs never overlap themselves (``max_instances=1``, missed runs coalesced).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from vaultd import alerts, audit
from vaultd.i18n import _
from vaultd.model import Actor
from vaultd.vault import Vault, utcnow

log = logging.getLogger(__name__)

SCHEDULER = Actor("service", "vaultd-scheduler", via="daemon")
COMPLIANCE_EVERY_S = 3600.0  # compliance alerts are re-checked hourly


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[Vault, Actor, datetime], Any]
    every_s: float  # how often it runs
    first_delay_s: float = 30.0  # the first interval run waits this long after start


def _checkpoint(vault: Vault, actor: Actor, now: datetime) -> None:
    from vaultd import signin

    with vault.engine.begin() as conn:  # counted floods of bad logins and tokens go into the log first
        signin.flush(conn, now)
    if audit.seal(vault) is not None:
        log.info("audit log sealed: new signed checkpoint")


def _retention_batch(vault: Vault, actor: Actor, now: datetime) -> None:
    from vaultd import retention

    batch = retention.prepare_scheduled(vault, retention.scheduler_principal(), now)
    if batch is not None:
        log.warning("retention: purge batch %s prepared; it needs its approvals before anything is deleted",
                    batch)


def _compliance_alerts(vault: Vault, actor: Actor, now: datetime) -> None:
    from vaultd import compliance

    run = compliance.check_alerts(vault, actor, now)
    log.info("compliance: %d cameras overdue, %d officers with unlabelled recordings, "
             "%d interruptions without a note", len(run.not_docked), len(run.unlabelled), len(run.unnoted))


def default_jobs(vault: Vault, stop: threading.Event | None = None) -> list[Job]:
    """Every periodic job of the daemon, from the config. ``stop`` ends a long job early."""
    from vaultd import scrub

    stopped = stop or threading.Event()
    comp = vault.config.compliance

    def scrub_step(vault: Vault, actor: Actor, now: datetime) -> None:
        report = scrub.scrub_step(vault, actor, now, should_stop=stopped.is_set)
        log.info("scrub step: %s", report)

    return [
        Job("audit-checkpoint", _checkpoint, every_s=vault.config.dock.checkpoint_interval_s),
        Job("scrub-step", scrub_step, every_s=comp.scrub_interval_min * 60.0, first_delay_s=120.0),
        Job("compliance-alerts", _compliance_alerts, every_s=COMPLIANCE_EVERY_S, first_delay_s=60.0),
        Job("retention-batch", _retention_batch, every_s=vault.config.retention.batch_every_days * 86400.0,
            first_delay_s=300.0),
    ]


class Scheduler:
    """Starts and stops with the daemon (the ``extras`` protocol: start, stop, status)."""

    name = "scheduler"

    def __init__(self, vault: Vault, jobs: list[Job] | None = None) -> None:
        self.vault = vault
        self.stopping = threading.Event()
        self.jobs = default_jobs(vault, self.stopping) if jobs is None else jobs
        self.last: dict[str, dict[str, Any]] = {}
        self._sched = BackgroundScheduler(timezone=ZoneInfo(vault.config.time.station_tz),
                                          job_defaults={"coalesce": True, "max_instances": 1,
                                                        "misfire_grace_time": 3600})

    def start(self) -> None:
        for job in self.jobs:
            self._sched.add_job(self.run_job, IntervalTrigger(seconds=job.every_s), args=[job],
                                id=job.name, name=job.name,
                                next_run_time=datetime.now(ZoneInfo("UTC")) + timedelta(seconds=job.first_delay_s))
        self._sched.start()

    def stop(self) -> None:
        self.stopping.set()
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
                                       _("scheduled job %s failed: %s") % (job.name, f"{type(exc).__name__}: {exc}"),
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
