"""Guarding sign-ins: a growing delay per account and per source, and the audit
log kept readable under a flood of bad passwords and bad tokens (#16.7, #16.9).

The delays slow the one who fails, not the one who is attacked:

* a **source** (the client's address, without port) that failed ``free``
  times within ``window`` waits ``base * 2**(n - free)`` seconds (up to
  ``cap``) after its last failure before its next attempt is even checked,
  whatever name it tries (unknown names count too);
* an **account** that failed ``free`` times within ``window`` makes the same
  growing wait apply to every source that failed recently (for any name),
  but not to a clean source: the right password from an address that has not
  failed still signs in, so an attacker cannot lock a person out.

Attempts refused during a wait are not checked and not counted as failures.
``vaultd users unlock NAME`` (an admin, audited) forgets an account's failures.

The audit log keeps every attack, but not one entry per guess: the first
failure of a kind from a source opens a one-minute window and is an entry of
its own; later ones in that window are counted, and the count (with the first
names tried) is written as one ``auth.failed.summary`` entry when the window
is over. So a source adds at most one entry per kind per minute.

``decide_wait`` and ``delay_s`` are pure; the rest reads and writes the catalog.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from vaultd import audit
from vaultd.audit import Event
from vaultd.catalog.schema import auth_failures, auth_noise
from vaultd.model import Actor


@dataclass(frozen=True)
class Policy:
    free: int = 3  # failures without any wait (typos)
    base_s: float = 1.0
    cap_s: float = 900.0
    window: timedelta = timedelta(hours=24)  # failures older than this are forgotten
    noise_window: timedelta = timedelta(minutes=1)
    names_kept: int = 10  # names tried that a flood summary lists


POLICY = Policy()


def delay_s(failures: int, policy: Policy = POLICY) -> float:
    """The wait after ``failures`` recent failures: none for the first few, then doubling."""
    if failures < policy.free:
        return 0.0
    return float(min(policy.cap_s, policy.base_s * 2 ** min(failures - policy.free, 30)))


@dataclass(frozen=True)
class Recent:
    """What the catalog knows of recent failures, for one attempt."""

    source_failures: int
    source_last: datetime | None
    account_failures: int
    account_last: datetime | None


def decide_wait(recent: Recent, now: datetime, policy: Policy = POLICY) -> float:
    """Seconds this attempt must wait (0: check the password now)."""
    waits = [0.0]
    if recent.source_last is not None:
        waits.append((recent.source_last + timedelta(seconds=delay_s(recent.source_failures, policy))
                      - now).total_seconds())
    if recent.source_failures and recent.account_last is not None:  # a clean source never waits for the account
        waits.append((recent.account_last + timedelta(seconds=delay_s(recent.account_failures, policy))
                      - now).total_seconds())
    return max(waits)


def source_host(source: str) -> str:
    """The address a delay is kept for: 'host:port' -> 'host' ('[::1]:5' -> '::1')."""
    if source.startswith("["):
        return source[1:].split("]", 1)[0]
    host, sep, port = source.rpartition(":")
    return host if sep and port.isdigit() and ":" not in host else source


def recent(conn: Connection, name: str, host: str, now: datetime, policy: Policy = POLICY) -> Recent:
    since = now - policy.window
    src = conn.execute(select(func.count(), func.max(auth_failures.c.at)).where(
        auth_failures.c.source == host, auth_failures.c.at >= since)).one()
    acc = conn.execute(select(func.count(), func.max(auth_failures.c.at)).where(
        auth_failures.c.name == name, auth_failures.c.at >= since)).one()
    return Recent(int(src[0]), src[1], int(acc[0]), acc[1])


def record_failure(conn: Connection, name: str, host: str, now: datetime, policy: Policy = POLICY) -> None:
    conn.execute(insert(auth_failures).values(name=name[:64], at=now, source=host[:128]))
    conn.execute(delete(auth_failures).where(auth_failures.c.at < now - policy.window))


def forget_source(conn: Connection, name: str, host: str) -> None:
    """A sign-in succeeded: this source's failures for this name are forgiven."""
    conn.execute(delete(auth_failures).where(auth_failures.c.name == name, auth_failures.c.source == host))


def forget_account(conn: Connection, name: str) -> int:
    """``users unlock``: the account's failures are forgotten; how many there were."""
    return int(conn.execute(delete(auth_failures).where(auth_failures.c.name == name)).rowcount or 0)


# -- the audit log under a flood ---------------------------------------------------------------

def note(conn: Connection, kind: str, host: str, name: str, event: Event, now: datetime,
         policy: Policy = POLICY) -> bool:
    """Log ``event`` (a failure of ``kind`` from ``host``), or count it in the
    source's open window; True when an entry was written. When the source's
    previous window counted failures, their summary rides on this entry
    (``details.before``), so a steady flood is one entry a minute."""
    host = host[:128]
    flush(conn, now, policy, keep=(host, kind))
    row = conn.execute(select(auth_noise).where(auth_noise.c.source == host, auth_noise.c.kind == kind)).first()
    if row is not None and row.window_start > now - policy.noise_window:
        names = json.loads(row.names)
        if name not in names and len(names) < policy.names_kept:
            names.append(name)
        conn.execute(update(auth_noise).where(auth_noise.c.source == host, auth_noise.c.kind == kind)
                     .values(suppressed=row.suppressed + 1, last_at=now,
                             names=json.dumps(names, ensure_ascii=False)))
        return False
    if row is not None:
        if row.suppressed:
            event = Event(event.type, event.actor, {**event.details, "before": _summary(row)}, event.evidence)
        conn.execute(delete(auth_noise).where(auth_noise.c.source == host, auth_noise.c.kind == kind))
    conn.execute(insert(auth_noise).values(source=host, kind=kind, window_start=now, last_at=now,
                                           suppressed=0, names="[]"))
    audit.append(conn, event, now)
    return True


def flush(conn: Connection, now: datetime, policy: Policy = POLICY,
          keep: tuple[str, str] | None = None) -> int:
    """Close every window older than ``noise_window`` (but ``keep``): one summary
    entry for each that counted anything. Returns the number of entries written."""
    done = list(conn.execute(select(auth_noise).where(auth_noise.c.window_start <= now - policy.noise_window)))
    written = 0
    for row in done:
        if (row.source, row.kind) == keep:
            continue
        if row.suppressed:
            audit.append(conn, Event("auth.failed.summary", Actor("user", "?", "api"), _summary(row)), now)
            written += 1
        conn.execute(delete(auth_noise).where(auth_noise.c.source == row.source, auth_noise.c.kind == row.kind))
    return written


def _summary(row: Any) -> dict[str, Any]:
    return {"source": row.source, "kind": row.kind, "count": int(row.suppressed),
            "from": row.window_start.isoformat(), "to": row.last_at.isoformat(),
            "names": json.loads(row.names)}
