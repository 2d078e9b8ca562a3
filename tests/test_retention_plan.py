"""The retention plan as a table: every class, hold and case state, across the boundary dates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaultd import retention_policy as rp
from vaultd.errors import ConfigError
from vaultd.retention_plan import CaseState, Item, Verdict, plan

UTC = timezone.utc
T0 = datetime(2024, 8, 31, 10, 0, tzinfo=UTC)  # recorded; 31 Aug: month ends differ
ING = T0 + timedelta(hours=3)  # ingested the same day
SEC = timedelta(seconds=1)
P = rp.default_policy()  # routine 6, standard 24, evidence 120 (case-closed); floor 6

ROUTINE_END = datetime(2025, 2, 28, 13, 0, tzinfo=UTC)  # ingest + 6 months, clamped to 28 Feb
STANDARD_END = datetime(2026, 8, 31, 13, 0, tzinfo=UTC)
CLOSED = datetime(2025, 1, 10, 0, 0, tzinfo=UTC)
CLOSED_LATE = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)


def item(cls: str | None = None, *cases: CaseState, holds: tuple[str, ...] = (), purged: bool = False,
         recorded: datetime | None = T0) -> Item:
    return Item("r1", recorded, ING, cls, tuple(cases), holds, purged)


OPEN = CaseState("2024-017", None)
SHUT = CaseState("2024-017", CLOSED)
SHUT_LATE = CaseState("2024-018", CLOSED_LATE)
SHUT_OWN = CaseState("2024-019", CLOSED, file_keep_months=360)
SHUT_SHORT = CaseState("2024-020", datetime(2024, 9, 1, tzinfo=UTC), file_keep_months=1)

V = Verdict
TABLE = [
    # id, item, now, verdict, expires_at
    ("routine-day-before", item("routine"), ROUTINE_END - SEC, V.KEPT, ROUTINE_END),
    ("routine-at-expiry", item("routine"), ROUTINE_END, V.EXPIRED, ROUTINE_END),
    ("routine-after", item("routine"), ROUTINE_END + SEC, V.EXPIRED, ROUTINE_END),
    ("routine-case-closed-earlier", item("routine", SHUT), ROUTINE_END, V.KEPT,
     datetime(2025, 7, 10, tzinfo=UTC)),
    ("routine-case-closed-later-at", item("routine", SHUT_LATE), datetime(2025, 12, 1, tzinfo=UTC),
     V.EXPIRED, datetime(2025, 12, 1, tzinfo=UTC)),
    ("routine-case-closed-later-before", item("routine", SHUT_LATE), datetime(2025, 12, 1, tzinfo=UTC) - SEC,
     V.KEPT, datetime(2025, 12, 1, tzinfo=UTC)),
    ("routine-case-open", item("routine", OPEN), STANDARD_END + timedelta(days=3650), V.CASE_OPEN, None),
    ("routine-one-case-open-one-closed", item("routine", SHUT, OPEN), STANDARD_END + timedelta(days=3650),
     V.CASE_OPEN, None),
    ("routine-held", item("routine", holds=("h1",)), ROUTINE_END + timedelta(days=9999), V.HELD, ROUTINE_END),
    ("standard-before", item("standard"), STANDARD_END - SEC, V.KEPT, STANDARD_END),
    ("standard-at", item("standard"), STANDARD_END, V.EXPIRED, STANDARD_END),
    ("standard-held", item("standard", holds=("h1", "h2")), STANDARD_END, V.HELD, STANDARD_END),
    ("standard-case-open", item("standard", OPEN), STANDARD_END, V.CASE_OPEN, None),
    ("unclassified-is-standard-not-routine", item(None), ROUTINE_END, V.KEPT, STANDARD_END),
    ("unclassified-at", item(None), STANDARD_END, V.EXPIRED, STANDARD_END),
    ("unclassified-held", item(None, holds=("h1",)), STANDARD_END, V.HELD, STANDARD_END),
    ("evidence-case-open", item("evidence", OPEN), STANDARD_END + timedelta(days=9999), V.CASE_OPEN, None),
    ("evidence-closed-before", item("evidence", SHUT), datetime(2035, 1, 10, tzinfo=UTC) - SEC, V.KEPT,
     datetime(2035, 1, 10, tzinfo=UTC)),
    ("evidence-closed-at", item("evidence", SHUT), datetime(2035, 1, 10, tzinfo=UTC), V.EXPIRED,
     datetime(2035, 1, 10, tzinfo=UTC)),
    ("evidence-case-own-period", item("evidence", SHUT_OWN), datetime(2035, 1, 10, tzinfo=UTC), V.KEPT,
     datetime(2055, 1, 10, tzinfo=UTC)),
    ("evidence-case-period-below-floor", item("evidence", SHUT_SHORT), datetime(2025, 3, 1, tzinfo=UTC) - SEC,
     V.KEPT, datetime(2025, 3, 1, tzinfo=UTC)),
    ("evidence-latest-case-wins", item("evidence", SHUT, SHUT_LATE), datetime(2035, 1, 10, tzinfo=UTC),
     V.KEPT, datetime(2035, 6, 1, tzinfo=UTC)),
    ("evidence-no-case-kept-as-standard", item("evidence"), ROUTINE_END, V.KEPT, STANDARD_END),
    ("evidence-held-after-close", item("evidence", SHUT, holds=("h1",)), datetime(2040, 1, 1, tzinfo=UTC),
     V.HELD, datetime(2035, 1, 10, tzinfo=UTC)),
    ("held-and-case-open", item("routine", OPEN, holds=("h1",)), STANDARD_END, V.HELD, None),
    ("unknown-class-kept", item("gone-class"), STANDARD_END + timedelta(days=9999), V.UNKNOWN_CLASS, None),
    ("purged", item("routine", purged=True), STANDARD_END, V.PURGED, None),
    ("no-recording-time-uses-ingest", item("routine", recorded=None), ROUTINE_END, V.EXPIRED, ROUTINE_END),
    ("camera-clock-in-future-counts-from-it", Item("r1", T0 + timedelta(days=30), ING, "routine"),
     ROUTINE_END, V.KEPT, datetime(2025, 3, 30, 10, 0, tzinfo=UTC)),
]


@pytest.mark.parametrize(("it", "now", "verdict", "expires"), [r[1:] for r in TABLE], ids=[r[0] for r in TABLE])
def test_plan_table(it: Item, now: datetime, verdict: Verdict, expires: datetime | None) -> None:
    (d,) = plan([it], P, now)
    assert (d.verdict, d.expires_at) == (verdict, expires), d.why
    assert d.purgeable == (verdict is Verdict.EXPIRED)


def test_table_covers_every_class_verdict_and_case_state() -> None:
    items = [r[1] for r in TABLE]
    assert {r[3] for r in TABLE} == set(Verdict)
    assert {i.class_name for i in items} >= set(P.classes) | {None}
    states = {("open" if c.closed_at is None else "closed") for i in items for c in i.cases}
    assert states == {"open", "closed"} and any(not i.cases for i in items) and any(i.holds for i in items)


def test_unclassified_says_why() -> None:
    (d,) = plan([item(None)], P, ROUTINE_END)
    assert d.class_name == "standard" and not d.classified and "unclassified" in d.why


def test_naive_now_is_a_bug() -> None:
    with pytest.raises(ValueError):
        plan([item()], P, datetime(2025, 1, 1))


def test_jilin_floor_refuses_a_six_month_class_naming_it() -> None:
    data = {"floor_months": 24, "classes": {"routine": {"keep_months": 6}, "standard": {"keep_months": 24}}}
    with pytest.raises(ConfigError) as err:
        rp.from_dict(data, "retention.toml")
    assert "'routine'" in err.value.message and "24 months" in err.value.message


@pytest.mark.parametrize("bad", [
    {"classes": {}},
    {"floor_months": 0, "classes": {"a": {"keep_months": 6}}},
    {"classes": {"a": {"keep_months": 6, "counted_from": "case-closed"}}},  # no recording-bound class
    {"classes": {"a": {"keep_months": "six"}}},
    {"classes": {"a": {"keep_months": 6, "counted_from": "sometime"}}},
    {"classes": {"a": {"keep_months": 6, "keep_days": 3}}},
    {"classes": {"Bad Name": {"keep_months": 6}}},
    {"floor": 6, "classes": {"a": {"keep_months": 6}}},
])
def test_bad_policies_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        rp.from_dict(bad, "retention.toml")


def test_reference_file_is_the_built_in_default() -> None:
    ref = rp.load(Path(__file__).parent.parent / "config" / "retention.toml")
    assert ref.classes == P.classes and ref.floor_months == P.floor_months


def test_shorter_class_comparison() -> None:
    assert P.is_shorter(None, "routine") and P.is_shorter("standard", "routine")
    assert not P.is_shorter("routine", "standard") and not P.is_shorter(None, "evidence")
    assert P.is_shorter("evidence", "standard") and not P.is_shorter(None, "standard")
    assert P.is_shorter("removed-class", "evidence")  # unknown counts as longest


def test_add_months_clamps_to_month_end() -> None:
    assert rp.add_months(datetime(2024, 8, 31, tzinfo=UTC), 6) == datetime(2025, 2, 28, tzinfo=UTC)
    assert rp.add_months(datetime(2023, 8, 31, tzinfo=UTC), 6) == datetime(2024, 2, 29, tzinfo=UTC)
    assert rp.add_months(datetime(2024, 1, 15, tzinfo=UTC), 24) == datetime(2026, 1, 15, tzinfo=UTC)


_times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))
_cases = st.builds(CaseState, st.sampled_from(["A", "B"]), st.none() | _times,
                   st.none() | st.integers(min_value=1, max_value=400))
_items = st.builds(Item, st.just("r1"), st.none() | _times, _times,
                   st.sampled_from([None, "routine", "standard", "evidence", "gone"]),
                   st.lists(_cases, max_size=3).map(tuple), st.lists(st.just("h1"), max_size=1).map(tuple),
                   st.booleans())


@given(it=_items, now=_times)
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
def test_never_purgeable_while_held_case_open_or_before_the_minimum(it: Item, now: datetime) -> None:
    (d,) = plan([it], P, now)
    if not d.purgeable:
        return
    base = max(it.recorded_at or it.ingested_at, it.ingested_at)
    assert not it.holds and not it.purged and all(c.closed_at is not None for c in it.cases)
    assert now >= rp.add_months(base, P.floor_months)
    cls = P.classes.get(it.class_name or "standard")
    assert cls is not None
    if cls.counted_from == rp.FROM_RECORDING:
        assert now >= rp.add_months(base, cls.keep_months)
    if it.class_name is None:  # unclassified: the longest recording-bound class
        assert now >= rp.add_months(base, 24)
    for c in it.cases:
        assert c.closed_at is not None and now >= rp.add_months(c.closed_at, P.floor_months)


@pytest.mark.parametrize("n", [0, -1])
def test_zero_purge_approvals_is_refused(n: int) -> None:
    from vaultd import config

    with pytest.raises(ConfigError, match="purge_approvals"):
        config.from_dict({"retention": {"purge_approvals": n}}, "vaultd.toml")
    assert config.from_dict({"retention": {"purge_approvals": 1}}, "x").retention.purge_approvals == 1
