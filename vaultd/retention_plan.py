"""What may be purged, and why: one pure decision per recording (R6).

``plan(items, policy, now)`` reads nothing but its arguments. Checked in
this order; the first that applies decides:

==============  ===============================================================
verdict         when
==============  ===============================================================
purged          the original is already gone (a tombstone exists)
held            an active hold on the recording or on one of its cases
case-open       a linked case is still open (whatever the class)
unknown-class   the recording's class is not in the policy: kept, never guessed
kept            ``now`` is before the expiry
expired         ``now`` is at or after the expiry: may go into a purge batch
==============  ===============================================================

Expiry (``expires_at``), from ``base`` = the later of recording start and
ingest (a wrong camera clock can never make it earlier):

* class counted from the recording: ``base + keep_months``, and not before
  ``closed_at + keep_months`` of any linked case;
* class counted from case closure: the latest ``closed_at + archive period``
  of its cases (the case's ``file_keep_months``, else the class's), and
  not before ``base + floor``; without a case, the unclassified rule;
* unclassified: the policy's longest class counted from the recording.

A held recording still shows its expiry, so a plan can say "would expire,
but held".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from vaultd.retention_policy import FROM_CASE_CLOSED, Policy, RetentionClass, add_months


class Verdict(str, Enum):
    PURGED = "purged"
    HELD = "held"
    CASE_OPEN = "case-open"
    UNKNOWN_CLASS = "unknown-class"
    KEPT = "kept"
    EXPIRED = "expired"


@dataclass(frozen=True)
class CaseState:
    number: str
    closed_at: datetime | None  # None: open
    file_keep_months: int | None = None  # the case file's archive period, when the case sets one


@dataclass(frozen=True)
class Item:
    recording_id: str
    recorded_at: datetime | None
    ingested_at: datetime
    class_name: str | None = None  # None: unclassified
    cases: tuple[CaseState, ...] = ()
    holds: tuple[str, ...] = ()  # ids of active holds on it or on its cases
    purged: bool = False


@dataclass(frozen=True)
class Decision:
    recording_id: str
    class_name: str  # the class that applies (the default one when unclassified)
    classified: bool
    verdict: Verdict
    expires_at: datetime | None  # None while a case is open, for an unknown class, once purged
    why: str  # plain words, for people and the audit log

    @property
    def purgeable(self) -> bool:
        return self.verdict is Verdict.EXPIRED


def _base(item: Item) -> datetime:
    if item.recorded_at is None:
        return item.ingested_at
    return max(item.recorded_at, item.ingested_at)


def _closed(item: Item) -> list[CaseState]:
    return [c for c in item.cases if c.closed_at is not None]


def _expiry(item: Item, cls: RetentionClass, policy: Policy) -> tuple[datetime, str]:
    base = _base(item)
    if cls.counted_from == FROM_CASE_CLOSED:
        ends = [(add_months(c.closed_at, max(c.file_keep_months or cls.keep_months, policy.floor_months)),
                 c.number) for c in _closed(item) if c.closed_at is not None]
        at, number = max(ends)
        floor = add_months(base, policy.floor_months)
        if floor > at:
            return floor, f"{policy.floor_months} months (agency floor) after recording"
        return at, f"case {number} closed, then its file's archive period"
    at, why = add_months(base, cls.keep_months), f"{cls.keep_months} months after recording"
    for c in _closed(item):
        assert c.closed_at is not None
        after_case = add_months(c.closed_at, cls.keep_months)
        if after_case > at:
            at, why = after_case, f"{cls.keep_months} months after case {c.number} closed"
    return at, why


def decide_one(item: Item, policy: Policy, now: datetime) -> Decision:
    classified = item.class_name is not None
    if item.purged:
        return Decision(item.recording_id, item.class_name or policy.default_class.name, classified,
                        Verdict.PURGED, None, "already purged")
    cls = policy.classes.get(item.class_name) if item.class_name else policy.default_class
    if cls is None:
        assert item.class_name is not None
        return Decision(item.recording_id, item.class_name, True, Verdict.UNKNOWN_CLASS, None,
                        f"class {item.class_name!r} is not in the policy: kept")
    open_cases = [c.number for c in item.cases if c.closed_at is None]
    if open_cases and not item.holds:
        return Decision(item.recording_id, cls.name, classified, Verdict.CASE_OPEN, None,
                        "case %s is open" % ", ".join(open_cases))
    if cls.counted_from == FROM_CASE_CLOSED and not item.cases:
        why_cls = f"class {cls.name} without a case: kept as {policy.default_class.name}; "
        cls = policy.default_class
    else:
        why_cls = "" if classified else f"unclassified: kept as {cls.name}; "
    expires_at, why = (None, "") if open_cases else _expiry(item, cls, policy)
    if item.holds:
        return Decision(item.recording_id, cls.name, classified, Verdict.HELD, expires_at,
                        "held (%s)" % ", ".join(item.holds))
    assert expires_at is not None
    verdict = Verdict.EXPIRED if now >= expires_at else Verdict.KEPT
    return Decision(item.recording_id, cls.name, classified, verdict, expires_at, why_cls + why)


def plan(items: Iterable[Item], policy: Policy, now: datetime) -> list[Decision]:
    """One decision per item, in the order given. Pure."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return [decide_one(item, policy, now) for item in items]
