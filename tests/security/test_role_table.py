"""The whole role table, exhaustively (#16): every role x action x where the
recordings are (the actor's own, the actor's unit, another unit, a mix) x how
confidential they are, on their own or through a case x the actor's clearance.

The expected answers are written out below as the rules say them (README,
RULES.md R5 and R9, the table in ``vaultd/access.py``), independently of how
``decide`` computes them; each test walks every combination for one action
and one role and lists every disagreement.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from vaultd.access import (
    Action,
    Grant,
    Level,
    Principal,
    RecordingRef,
    RequestKind,
    RequestRef,
    Role,
    decide,
    reachable,
    visible,
)

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)
A, K, L, R = Action, RequestKind, Level, Role
U1, U2 = "一大队", "二大队"
RANK = {L.NORMAL: 0, L.CONFIDENTIAL: 1, L.SECRET: 2}

# where a recording is, seen from an actor of 一大队 with officer number 001
WHERE = {
    "own": ("001", U1),  # the actor's own (when the actor is an officer)
    "unit": ("002", U1),  # a colleague's, same unit
    "other-unit": ("009", U2),
}
# how confidential: its own level, and the level of a case it is linked to (None: in no case)
LEVELS = [(own, case) for own in L for case in (None, *L)]


def effective(own: Level, case: Level | None) -> Level:
    return max((own, case or L.NORMAL), key=RANK.__getitem__)


def rec(where: str, own: Level = L.NORMAL, case: Level | None = None, rid: str | None = None) -> RecordingRef:
    number, unit = WHERE[where]
    return RecordingRef(rid or f"r-{where}", number, unit, own, () if case is None else (case,))


def actor(role: Role, clearance: Level, unit: str = U1) -> Principal:
    return Principal(f"the-{role.value}", frozenset({role}), unit=unit, officer_number="001", clearance=clearance)


def grant(kind: RequestKind, who: Principal, *recs: RecordingRef) -> Grant:
    return Grant("g", kind, who.name, frozenset(r.id for r in recs), NOW + timedelta(days=1), 1, "p")


Expect = tuple[bool, str]
YES_BY_ROLE = {R.OFFICER: "officer", R.SUPERVISOR: "supervisor", R.LEADER: "leader", R.LEGAL: "legal",
               R.AUDITOR: "auditor", R.ADMIN: "admin"}
NO_MEDIA = {R.AUDITOR, R.ADMIN}


def check(got_allowed: bool, got_rule: str, want: Expect, what: str, bad: list[str]) -> None:
    if (got_allowed, got_rule) != want:
        bad.append(f"{what}: got {(got_allowed, got_rule)}, want {want}")


# -- the expected answers ----------------------------------------------------------------

def want_view(role: Role, where: str, preview: bool, granted: bool) -> Expect:
    if role is R.OFFICER and where == "own":
        return True, "own-recording"
    if role is R.SUPERVISOR and where in ("own", "unit"):
        return True, "unit-supervisor"
    if role is R.LEGAL:
        return True, "legal"
    if role is R.AUDITOR and not preview:
        return True, "auditor-metadata"
    if preview and role in NO_MEDIA:
        return False, "no-media-rights"
    return (True, "grant:g") if granted else (False, "role")


COVERS = {  # which grant kinds let one do what (R5)
    A.READ_ORIGINAL: {K.VIEW_ORIGINAL, K.COPY, K.EXTERNAL, K.PARTY_COPY},
    A.COPY: {K.COPY, K.EXTERNAL, K.PARTY_COPY},
    A.EXPORT: {K.EXPORT},
}


def want_media(role: Role, action: Action, grant_kind: RequestKind | None) -> Expect:
    if role in NO_MEDIA:
        return False, "no-media-rights"
    if grant_kind is None:
        return False, "no-grant"
    return (True, "grant:g") if grant_kind in COVERS[action] else (False, "grant-other-kind")


def want_label(role: Role, where: str) -> Expect:
    if role is R.OFFICER and where == "own":
        return True, "own-recording"
    if role is R.SUPERVISOR and where in ("own", "unit"):
        return True, "unit-supervisor"
    return (True, "legal") if role is R.LEGAL else (False, "role")


def want_hold(role: Role, where: str) -> Expect:
    """HOLD_SET, and HOLD_RELEASE by someone who did not set it."""
    if role is R.SUPERVISOR:
        return (True, "supervisor") if where in ("own", "unit") else (False, "other-unit")
    return (True, YES_BY_ROLE[role]) if role in (R.LEGAL, R.LEADER) else (False, "role")


def want_level(role: Role, where: str, own: Level, to: Level) -> Expect:
    lowering = RANK[to] < RANK[own]
    if role in (R.LEGAL, R.LEADER):
        return True, YES_BY_ROLE[role]
    if role is R.SUPERVISOR:
        if lowering:
            return False, "declassify"
        return (True, "supervisor") if where in ("own", "unit") else (False, "other-unit")
    return False, "role"


# -- single recordings ------------------------------------------------------------------------

RECORDING_ACTIONS = [A.VIEW_METADATA, A.VIEW_PREVIEW, A.READ_ORIGINAL, A.COPY, A.EXPORT, A.LABEL, A.HOLD_SET,
                     A.HOLD_RELEASE, A.SET_CONFIDENTIALITY]


def _recording_cases(role: Role, action: Action) -> Iterator[tuple[str, dict[str, object], Expect]]:
    """(what, decide's keyword arguments, the answer wanted) for every combination."""
    for clearance, where, (own, case) in itertools.product(L, WHERE, LEVELS):
        who = actor(role, clearance)
        r = rec(where, own, case)
        above = RANK[effective(own, case)] > RANK[clearance]
        what = f"{role.value}/{clearance.value} {action.value} {where} own={own.value} case={case and case.value}"
        base: dict[str, object] = {"actor": who, "recording": r}
        if action in (A.VIEW_METADATA, A.VIEW_PREVIEW):
            for granted in (False, True):
                grants = (grant(K.VIEW_ORIGINAL, who, r),) if granted else ()
                want = want_view(role, where, action is A.VIEW_PREVIEW, granted)
                yield f"{what} grant={granted}", {**base, "grants": grants}, (False, "clearance") if above else want
        elif action in COVERS:
            for kind in (None, *K):
                grants = (grant(kind, who, r),) if kind else ()
                want = want_media(role, action, kind)
                yield f"{what} grant={kind}", {**base, "grants": grants}, (False, "clearance") if above else want
        elif action is A.LABEL:
            yield what, base, (False, "clearance") if above else want_label(role, where)
        elif action is A.HOLD_SET:
            yield what, base, (False, "clearance") if above else want_hold(role, where)
        elif action is A.HOLD_RELEASE:
            yield f"{what} set by another", {**base, "owner": "someone"}, (
                (False, "clearance") if above else want_hold(role, where))
            yield f"{what} set by the actor", {**base, "owner": who.name}, (
                (False, "clearance") if above else (False, "own-hold"))
        else:  # SET_CONFIDENTIALITY to each level
            for to in L:
                beyond = above or RANK[to] > RANK[clearance]
                yield f"{what} to={to.value}", {**base, "level": to}, (
                    (False, "clearance") if beyond else want_level(role, where, own, to))


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", RECORDING_ACTIONS)
def test_every_recording_action(action: Action, role: Role) -> None:
    bad: list[str] = []
    n = 0
    for what, kw, want in _recording_cases(role, action):
        got = decide(kw.pop("actor"), action, now=NOW, **kw)  # type: ignore[arg-type]
        check(got.allowed, got.rule, want, what, bad)
        n += 1
    assert n >= 3 * 3 * len(LEVELS)
    assert not bad, f"{len(bad)} of {n} disagree:\n" + "\n".join(bad[:30])


# -- requests: asking ----------------------------------------------------------------------------

SETS = {  # the recordings a request names, seen from an actor of 一大队
    "own": ("own",),
    "same-unit": ("unit",),
    "other-unit": ("other-unit",),
    "mixed": ("unit", "other-unit"),
}
SEES = {R.OFFICER: {"own"}, R.SUPERVISOR: {"own", "unit"}, R.LEGAL: {"own", "unit", "other-unit"}}
MAY_ASK = {R.OFFICER: {K.VIEW_ORIGINAL, K.COPY, K.PARTY_COPY},
           R.SUPERVISOR: {K.VIEW_ORIGINAL, K.COPY, K.EXPORT, K.PARTY_COPY},
           R.LEGAL: set(K)}


def want_request(role: Role, kind: RequestKind, places: tuple[str, ...], levels: list[Level],
                 notice: bool) -> Expect:
    if role in NO_MEDIA:
        return False, "no-media-rights"
    if kind is K.EXTERNAL:
        return (True, "external-retrieval") if notice else (False, "notice-number-required")
    if kind not in MAY_ASK.get(role, set()):
        return False, "role"
    if kind is K.PARTY_COPY and any(lv is not L.NORMAL for lv in levels):
        return False, "party-copy-confidential"
    if not set(places) <= SEES[role]:
        return False, "not-visible"
    return True, YES_BY_ROLE[role]


def _requests(requester: Principal, places: tuple[str, ...], own: Level, case: Level | None, kind: RequestKind,
              notice: bool, status: str) -> RequestRef:
    recs = tuple(rec(p, own, case, rid=f"r{i}") for i, p in enumerate(places))
    return RequestRef("q", kind, requester.name, requester.unit, recs, "调证〔2026〕1号" if notice else None, status)


@pytest.mark.parametrize("role", list(Role))
def test_every_request(role: Role) -> None:
    bad: list[str] = []
    n = 0
    for clearance, (name, places), (own, case), kind, notice in itertools.product(
            L, SETS.items(), LEVELS, K, (False, True)):
        who = actor(role, clearance)
        req = _requests(who, places, own, case, kind, notice, "new")
        lv = effective(own, case)
        want = (False, "clearance") if RANK[lv] > RANK[clearance] else want_request(
            role, kind, places, [lv] * len(places), notice)
        got = decide(who, A.REQUEST, request=req, now=NOW)
        check(got.allowed, got.rule, want,
              f"{role.value}/{clearance.value} asks {kind.value} of {name} own={own.value} case={case} "
              f"notice={notice}", bad)
        n += 1
    assert not bad, f"{len(bad)} of {n} disagree:\n" + "\n".join(bad[:30])


# -- requests: approving and denying (R5) ------------------------------------------------------

def want_review(role: Role, approver_unit: str, kind: RequestKind, places: tuple[str, ...], lv: Level,
                notice: bool, action: Action) -> Expect:
    if kind in (K.EXTERNAL, K.PARTY_COPY):
        if role is not R.LEADER:
            return False, "leader-only"
        if action is A.APPROVE and kind is K.EXTERNAL and not notice:
            return False, "notice-number-required"
        if action is A.APPROVE and kind is K.PARTY_COPY and lv is not L.NORMAL:
            return False, "party-copy-confidential"
        return True, "leader"
    inside = all(WHERE[p][1] == U1 for p in places)  # the requester is of 一大队
    if role is R.SUPERVISOR and inside and approver_unit == U1:
        return True, "unit-supervisor"
    if role is R.LEADER:
        return True, "leader"
    if role is not R.SUPERVISOR:
        return False, "role"
    return False, "other-unit" if inside else "other-department"


@pytest.mark.parametrize("action", [A.APPROVE, A.DENY])
@pytest.mark.parametrize("role", list(Role))
def test_every_review(role: Role, action: Action) -> None:
    requester = actor(R.OFFICER, L.SECRET)  # an officer of 一大队
    requester = Principal("asker", requester.roles, unit=U1, officer_number="001", clearance=L.SECRET)
    bad: list[str] = []
    n = 0
    for clearance, approver_unit, (name, places), (own, case), kind, notice in itertools.product(
            L, (U1, U2), SETS.items(), LEVELS, K, (False, True)):
        who = actor(role, clearance, unit=approver_unit)
        lv = effective(own, case)
        above = RANK[lv] > RANK[clearance]
        req = _requests(requester, places, own, case, kind, notice, "pending")
        want = (False, "clearance") if above else want_review(role, approver_unit, kind, places, lv, notice, action)
        got = decide(who, action, request=req, now=NOW)
        what = (f"{role.value}/{clearance.value} of {approver_unit} {action.value}s {kind.value} of {name} "
                f"own={own.value} case={case} notice={notice}")
        check(got.allowed, got.rule, want, what, bad)
        own_req = RequestRef("q", kind, who.name, who.unit, req.recordings, req.notice_number, "pending")
        got = decide(who, action, request=own_req, now=NOW)
        check(got.allowed, got.rule, (False, "clearance") if above else (False, "own-request"), what + " own", bad)
        done = RequestRef("q", kind, "asker", U1, req.recordings, req.notice_number, "approved")
        got = decide(who, action, request=done, now=NOW)
        check(got.allowed, got.rule, (False, "clearance") if above else (False, "not-pending"), what + " done", bad)
        n += 3
    assert not bad, f"{len(bad)} of {n} disagree:\n" + "\n".join(bad[:30])


def test_a_supervisor_never_decides_on_a_recording_outside_their_unit_nor_above_clearance() -> None:
    """R5 and R9 together: whatever the kind, set and levels, an allowed approval by a
    supervisor means every recording is of their unit, visible to them and within clearance."""
    requester = Principal("asker", frozenset({R.OFFICER}), unit=U1, officer_number="001")
    for clearance, unit, places, (own, case), kind in itertools.product(
            L, (U1, U2), SETS.values(), LEVELS, K):
        who = actor(R.SUPERVISOR, clearance, unit=unit)
        req = _requests(requester, places, own, case, kind, True, "pending")
        if decide(who, A.APPROVE, request=req, now=NOW).allowed:
            assert all(r.unit == who.unit and visible(who, r) for r in req.recordings), (who, req)


# -- actions by role alone -----------------------------------------------------------------------

BY_ROLE = {  # the README's and docs/retention.md's tables
    A.READ_AUDIT: {R.AUDITOR, R.LEGAL, R.LEADER},
    A.SPOT_CHECK: {R.AUDITOR, R.LEGAL},
    A.MANAGE_USERS: {R.ADMIN},
    A.MANAGE_DEVICES: {R.ADMIN},
    A.MANAGE_CONFIG: {R.ADMIN},
    A.CASE_MANAGE: {R.OFFICER, R.SUPERVISOR, R.LEGAL, R.LEADER},
    A.CASE_CLOSE: {R.SUPERVISOR, R.LEGAL, R.LEADER},
    A.CLASSIFY: {R.OFFICER, R.SUPERVISOR, R.LEGAL, R.LEADER},
    A.HOLD_SET: {R.SUPERVISOR, R.LEGAL, R.LEADER},  # without a recording: may set holds at all
    A.SET_CONFIDENTIALITY: {R.SUPERVISOR, R.LEGAL, R.LEADER},  # likewise
    A.RETENTION_VIEW: {R.SUPERVISOR, R.LEGAL, R.LEADER, R.AUDITOR, R.ADMIN},
    A.PURGE_PREPARE: {R.ADMIN, R.LEGAL, R.LEADER},
    A.PURGE_RUN: {R.ADMIN, R.LEGAL, R.LEADER},
    A.PURGE_APPROVE: {R.LEGAL, R.LEADER},
    A.READ_REPORTS: {R.AUDITOR, R.LEGAL, R.LEADER},
    A.READ_UNIT_REPORTS: {R.SUPERVISOR, R.AUDITOR, R.LEGAL, R.LEADER},
    A.MANAGE_TRIPS: {R.SUPERVISOR, R.LEADER, R.ADMIN},
    A.EXPLAIN: {R.OFFICER, R.SUPERVISOR, R.LEADER},
}
SECOND_PERSON = {A.CLASS_APPROVE: ({R.SUPERVISOR, R.LEADER}, "own-request"),
                 A.HOLD_RELEASE: ({R.SUPERVISOR, R.LEGAL, R.LEADER}, "own-hold")}


@pytest.mark.parametrize("action", list(BY_ROLE))
def test_every_role_only_action(action: Action) -> None:
    for role, clearance in itertools.product(R, L):
        got = decide(actor(role, clearance), action, now=NOW)
        want = (True, YES_BY_ROLE[role]) if role in BY_ROLE[action] else (False, "role")
        assert (got.allowed, got.rule) == want, (role, clearance)


@pytest.mark.parametrize("action", list(SECOND_PERSON))
def test_every_second_person_action(action: Action) -> None:
    roles, own_rule = SECOND_PERSON[action]
    for role, clearance in itertools.product(R, L):
        who = actor(role, clearance)
        got = decide(who, action, now=NOW, owner="someone")
        assert (got.allowed, got.rule) == ((True, YES_BY_ROLE[role]) if role in roles else (False, "role"))
        assert decide(who, action, now=NOW, owner=who.name).rule == own_rule


def test_the_table_covers_every_action() -> None:
    covered = set(RECORDING_ACTIONS) | {A.REQUEST, A.APPROVE, A.DENY} | set(BY_ROLE) | set(SECOND_PERSON)
    assert covered == set(Action)


# -- disabled users and the station's owner, for every action ---------------------------------

@pytest.mark.parametrize("action", list(Action))
def test_disabled_never_and_the_local_owner_always(action: Action) -> None:
    target = rec("other-unit", L.SECRET, L.SECRET)
    req = _requests(actor(R.OFFICER, L.NORMAL), ("other-unit",), L.SECRET, L.SECRET, K.COPY, True, "pending")
    kw: dict[str, object] = {"recording": target, "request": req}
    if action is A.SET_CONFIDENTIALITY:
        kw["level"] = L.NORMAL
    gone = Principal("gone", frozenset(R), unit=U2, clearance=L.SECRET, disabled=True)
    owner = Principal("root", frozenset(), local_owner=True)
    assert decide(gone, action, now=NOW, owner="x", **kw).rule == "disabled"  # type: ignore[arg-type]
    assert decide(owner, action, now=NOW, owner="x", **kw).rule == "local-owner"  # type: ignore[arg-type]


# -- who may name a recording at all (holds, levels) ---------------------------------------------

@pytest.mark.parametrize("role", list(Role))
def test_reachable(role: Role) -> None:
    for clearance, where, (own, case) in itertools.product(L, WHERE, LEVELS):
        who, r = actor(role, clearance), rec(where, own, case)
        within = RANK[effective(own, case)] <= RANK[clearance]
        sees = within and want_view(role, where, False, False)[0]
        assert visible(who, r) == sees, (role, clearance, where, own, case)
        assert reachable(who, r) == (sees or (role is R.LEADER and within)), (role, clearance, where, own, case)
