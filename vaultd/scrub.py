"""Scrub: re-hash stored originals against the catalog (R4).

``scrub_all`` checks everything at once (``vaultd scrub``). ``scrub_step`` is
the background scrub the daemon runs every ``scrub_interval_min``: it reads
at most ``max_bytes_per_s``, starts no new file after ``budget_s``, continues
from where the last step stopped (a cursor in the catalog, in ingest order so
that new recordings join the end of the round), yields to ingest (it stops
while an ingest session runs), and paces itself (``pace``, pure) so that one
round covers the whole store within ``scrub_period_days``.
Every result is a row in ``scrub_results``. A mismatch or a missing file is an
integrity failure and raises a critical alert, never a warning; it stays open
until a person clears it, and ``vaultd scrub`` exits non-zero while it is.
Purged originals (tombstones) are not expected in the store.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection

from vaultd import alerts, audit
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import compliance as comp_db
from vaultd.catalog import sessions as ses_db
from vaultd.catalog.compliance import ScrubState
from vaultd.i18n import _
from vaultd.model import Actor
from vaultd.vault import Vault, utcnow

log = logging.getLogger(__name__)

ALERT_KINDS = ("scrub.mismatch", "scrub.missing")
ALERT_BEHIND = "scrub.behind"


@dataclass(frozen=True)
class ScrubFinding:
    recording_id: str
    sha256: str
    problem: str


@dataclass
class ScrubReport:
    checked: int = 0
    bytes_checked: int = 0
    findings: list[ScrubFinding] = field(default_factory=list)
    unknown_objects: list[str] = field(default_factory=list)  # in the store, not in the catalog

    @property
    def ok(self) -> bool:
        return not self.findings and not self.unknown_objects


def scrub_all(vault: Vault, actor: Actor,
              progress: Callable[[int, int], None] | None = None) -> ScrubReport:
    """Check every original; ``progress(done, total)`` after each."""
    with vault.engine.connect() as conn:
        items = [(i, sha, size) for i, sha, size, _at in comp_db.scrub_page(conn, None, 1 << 62)]
    report = ScrubReport()
    for n, (rec_id, sha, size) in enumerate(items, 1):
        result = vault.store.check(sha, size)
        report.checked += 1
        report.bytes_checked += size
        if not result.ok:
            report.findings.append(ScrubFinding(rec_id, sha, result.problem or "?"))
        at = utcnow()
        with vault.engine.begin() as conn:
            ses_db.add_scrub_result(conn, rec_id, at, result.ok, result.problem)
            audit.append(conn, Event("scrub.result", actor, {"ok": result.ok, "problem": result.problem},
                                     EvidenceRef(rec_id, sha, size)), at)
            if not result.ok:
                _alarm(conn, actor, rec_id, sha, result.problem or "?", at)
        if progress:
            progress(n, len(items))
    with vault.engine.connect() as conn:
        known = {sha for _id, sha, _size in items} | comp_db.tombstoned_shas(conn)
    report.unknown_objects = [sha for sha in vault.store.iter_objects() if sha not in known]
    with vault.engine.begin() as conn:
        audit.append(conn, Event("scrub.run", actor, {
            "checked": report.checked, "bytes_checked": report.bytes_checked,
            "failed": [f.recording_id for f in report.findings],
            "unknown_objects": report.unknown_objects}))
    return report


def _alarm(conn: Connection, actor: Actor, rec_id: str, sha: str, problem: str, at: datetime) -> None:
    """A failed check: a critical alert, open until a person clears it."""
    kind = "scrub.missing" if problem == "missing" else "scrub.mismatch"
    log.critical("scrub: original %s (sha256 %s) failed its check: %s", rec_id, sha, problem)
    alerts.raise_alert(conn, kind, rec_id, _("original %s (sha256 %s) failed its check: %s")
                       % (rec_id, sha, problem), actor=actor, severity="critical",
                       details={"sha256": sha, "problem": problem}, at=at)


def open_alarms(vault: Vault) -> list[alerts.Alert]:
    """Scrub alarms not yet cleared by a person: while any is open, the vault is not sound."""
    with vault.engine.connect() as conn:
        return [a for kind in ALERT_KINDS for a in alerts.open_alerts(conn, kind)]


# -- the background scrub ----------------------------------------------------------


def pace(total_bytes: int, done_bytes: int, round_started_at: datetime, now: datetime,
         period: timedelta, interval: timedelta) -> int:
    """Bytes this step should check so the round ends within ``period`` (pure).

    The rest of the round is spread evenly over the steps left before it is
    due; once it is due (or overdue), everything left."""
    remaining = max(0, total_bytes - done_bytes)
    left = round_started_at + period - now
    steps_left = math.floor(left / interval) if left > timedelta(0) else 0
    return remaining if steps_left <= 1 else math.ceil(remaining / steps_left)


@dataclass(frozen=True)
class StepReport:
    round: int
    checked: int
    bytes_checked: int
    failed: list[ScrubFinding]
    round_done: bool  # this step finished the round
    idle: bool  # nothing to do: the round is done and the next is not due yet
    behind: bool  # the round is past its period and not done
    stopped: bool  # asked to stop; the file in hand is checked again next time
    state: ScrubState


class _Throttle:
    """Keep reading at or below ``rate`` bytes per second over one step."""

    def __init__(self, rate: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.rate, self.clock, self.sleep = rate, clock, sleep
        self.start, self.bytes = clock(), 0

    def took(self, n: int) -> None:
        self.bytes += n
        ahead = self.bytes / self.rate - (self.clock() - self.start)
        if ahead > 0:
            self.sleep(ahead)


class _Stop(Exception):
    pass


def _check_throttled(vault: Vault, sha: str, size: int, throttle: _Throttle,
                     should_stop: Callable[[], bool]) -> str | None:
    """None when the original is intact, else the problem (same words as Store.check)."""
    try:
        fd = os.open(vault.store.object_path(sha), os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    try:
        if os.fstat(fd).st_size != size:
            return "size differs"
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        h, buf = hashlib.sha256(), bytearray(1 << 20)
        view = memoryview(buf)
        while n := os.readv(fd, [buf]):
            h.update(view[:n])
            throttle.took(n)
            if should_stop():
                raise _Stop
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # leave the page cache to ingest
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    finally:
        os.close(fd)
    digest = h.hexdigest()
    return None if digest == sha else f"hash differs: {digest}"


def _state(conn: Connection, now: datetime, period: timedelta) -> tuple[ScrubState, bool]:
    """The current round (a new one once the last is done and due); and whether it is new."""
    st = comp_db.scrub_state_get(conn)
    if st is None or (st.round_finished_at is not None and now >= st.round_started_at + period):
        st = ScrubState((st.round + 1) if st else 1, now, None, None, None, 0, 0, now)
        comp_db.scrub_state_put(conn, st)
        return st, True
    return st, False


class _YieldToIngest:
    """True (stop) while an ingest session runs; asks the catalog at most once a second."""

    def __init__(self, vault: Vault, clock: Callable[[], float]) -> None:
        self.vault, self.clock = vault, clock
        self.asked_at: float | None = None
        self.busy = False

    def __call__(self) -> bool:
        t = self.clock()
        if self.asked_at is None or t - self.asked_at >= 1.0:
            self.asked_at = t
            with self.vault.engine.connect() as conn:
                self.busy = comp_db.ingest_running(conn, utcnow() - INGEST_STALE)
        return self.busy


#: a session "running" for longer than this is taken as crashed, not as busy
INGEST_STALE = timedelta(hours=6)


def scrub_step(vault: Vault, actor: Actor, now: datetime, budget_s: float | None = None,
               max_bytes_per_s: float | None = None, *, should_stop: Callable[[], bool] = lambda: False,
               yield_to_ingest: bool = True, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> StepReport:
    """One background scrub step (see the module docstring); resumable at any point.

    With ``yield_to_ingest`` the step stops (the file in hand is checked again
    next time) as soon as an ingest session is running, so it never competes
    with a docked camera for the disk."""
    if yield_to_ingest:
        busy, asked = _YieldToIngest(vault, clock), should_stop
        should_stop = lambda: asked() or busy()  # noqa: E731
    cfg = vault.config.compliance
    budget_s = cfg.scrub_budget_s if budget_s is None else budget_s
    rate = cfg.scrub_max_mb_per_s * (1 << 20) if max_bytes_per_s is None else max_bytes_per_s
    period = timedelta(days=cfg.scrub_period_days)
    with vault.engine.begin() as conn:
        st, new = _state(conn, now, period)
        files, total = comp_db.live_totals(conn)
        if new:
            audit.append(conn, Event("scrub.round.start", actor, {"round": st.round, "files": files,
                                                                  "bytes": total}), now)
    if st.round_finished_at is not None:
        return StepReport(st.round, 0, 0, [], False, True, False, False, st)
    behind = now > st.round_started_at + period
    quota = pace(total, st.bytes_done, st.round_started_at, now, period,
                 timedelta(minutes=cfg.scrub_interval_min))
    throttle, t0 = _Throttle(rate, clock, sleep), clock()
    checked, nbytes, failed, stopped, done = 0, 0, list[ScrubFinding](), False, True
    for rec_id, sha, size, ingested_at in _after(vault, st):
        halt = should_stop()
        if halt or (checked and (nbytes >= quota or clock() - t0 >= budget_s)):  # at least one file a step
            done, stopped = False, halt
            break
        try:
            problem = _check_throttled(vault, sha, size, throttle, should_stop)
        except _Stop:
            done, stopped = False, True
            break
        at = now + timedelta(seconds=clock() - t0)
        st = replace(st, cursor_at=ingested_at, cursor_id=rec_id, files_done=st.files_done + 1,
                     bytes_done=st.bytes_done + size, updated_at=at)
        _record(vault, actor, st, ScrubFinding(rec_id, sha, problem or ""), size, at)
        if problem is not None:
            failed.append(ScrubFinding(rec_id, sha, problem))
        checked, nbytes = checked + 1, nbytes + size
    return _finish_step(vault, actor, now, st, checked, nbytes, failed, done, behind, stopped)


def _record(vault: Vault, actor: Actor, st: ScrubState, result: ScrubFinding, size: int, at: datetime) -> None:
    """One result (``problem`` "" when intact) and the cursor past it, in one transaction."""
    problem = result.problem or None
    with vault.engine.begin() as conn:
        ses_db.add_scrub_result(conn, result.recording_id, at, problem is None, problem)
        comp_db.scrub_state_put(conn, st)
        if problem is not None:
            audit.append(conn, Event("scrub.result", actor, {"ok": False, "problem": problem},
                                     EvidenceRef(result.recording_id, result.sha256, size)), at)
            _alarm(conn, actor, result.recording_id, result.sha256, problem, at)


def _after(vault: Vault, st: ScrubState) -> Iterator[tuple[str, str, int, datetime]]:
    """The live originals after the cursor, in scrub order, a page at a time."""
    cursor = (st.cursor_at, st.cursor_id) if st.cursor_at and st.cursor_id else None
    while True:
        with vault.engine.connect() as conn:
            page = comp_db.scrub_page(conn, cursor, 200)
        if not page:
            return
        yield from page
        cursor = (page[-1][3], page[-1][0])


def _finish_step(vault: Vault, actor: Actor, now: datetime, st: ScrubState, checked: int, nbytes: int,
                 failed: list[ScrubFinding], done: bool, behind: bool, stopped: bool) -> StepReport:
    with vault.engine.begin() as conn:
        if done:
            st = replace(st, round_finished_at=now, updated_at=now)
            comp_db.scrub_state_put(conn, st)
            audit.append(conn, Event("scrub.round.done", actor, {
                "round": st.round, "files": st.files_done, "bytes": st.bytes_done,
                "started_at": st.round_started_at.isoformat()}), now)
        if checked or done:
            audit.append(conn, Event("scrub.step", actor, {
                "round": st.round, "checked": checked, "bytes_checked": nbytes,
                "failed": [f.recording_id for f in failed], "round_done": done, "stopped": stopped}), now)
        if behind and not done:
            log.warning("scrub: round %d started %s is behind its period", st.round, st.round_started_at)
            alerts.raise_alert(conn, ALERT_BEHIND, f"round {st.round}", _(
                "the background scrub's round %d started %s is not done within scrub_period_days")
                % (st.round, st.round_started_at.isoformat()), actor=actor, at=now,
                details={"files_done": st.files_done, "bytes_done": st.bytes_done})
        late = [a for a in alerts.open_alerts(conn, ALERT_BEHIND) if a.subject == f"round {st.round}"] if done else []
    for a in late:  # the round caught up: a warning about pace, not about integrity, so it may clear itself
        alerts.clear_alert(vault, a.id, actor, _("the round finished at %s") % now.isoformat())
    return StepReport(st.round, checked, nbytes, failed, done, False, behind and not done, stopped, st)


def scrub_status(vault: Vault) -> tuple[ScrubState | None, int, int]:
    """Where the background scrub stands: its state, and the live (files, bytes)."""
    with vault.engine.connect() as conn:
        files, total = comp_db.live_totals(conn)
        return comp_db.scrub_state_get(conn), files, total
