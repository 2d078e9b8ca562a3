"""The access rules as a table: who may do what, and which rule said so."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaultd.access import (
    Action,
    Decision,
    Grant,
    Level,
    Principal,
    RecordingRef,
    RequestKind,
    RequestRef,
    Role,
    decide,
    visible,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
K = RequestKind
A = Action


def person(name: str, *roles: Role, unit: str | None = None, number: str | None = None,
           clearance: Level = Level.NORMAL) -> Principal:
    return Principal(name, frozenset(roles), unit=unit, officer_number=number, clearance=clearance)


WANG = person("wang", Role.OFFICER, unit="u1", number="001")  # officer, unit 1
LI = person("li", Role.OFFICER, unit="u1", number="002")  # another officer, unit 1
ZHAO = person("zhao", Role.SUPERVISOR, unit="u1")  # supervisor of unit 1
QIAN = person("qian", Role.SUPERVISOR, unit="u2")  # supervisor of unit 2
SUN = person("sun", Role.LEADER)
ZHOU = person("zhou", Role.LEGAL, clearance=Level.CONFIDENTIAL)
ZHOU_S = person("zhous", Role.LEGAL, clearance=Level.SECRET)
WU = person("wu", Role.AUDITOR)
ZHENG = person("zheng", Role.ADMIN)
FENG = person("feng")  # an active user with no role (another department)
GONE = replace(ZHOU_S, name="gone", disabled=True)
OWNER = Principal("root", frozenset(), local_owner=True)
GONE_OWNER = replace(OWNER, disabled=True)
# roles combine
OFF_SUP_U2 = person("chen", Role.OFFICER, Role.SUPERVISOR, unit="u2", number="001")
LEAD_AUD = person("han", Role.LEADER, Role.AUDITOR)
AUD_ADM = person("yang", Role.AUDITOR, Role.ADMIN)
NO_NUMBER = person("xu", Role.OFFICER, unit="u1")

REC_A = RecordingRef("r-a", "001", "u1")  # wang's
REC_B = RecordingRef("r-b", "002", "u1")  # li's
REC_U2 = RecordingRef("r-u2", "009", "u2")
REC_ANON = RecordingRef("r-anon", None, None)
REC_CONF = RecordingRef("r-conf", "001", "u1", Level.CONFIDENTIAL)
REC_SECRET = RecordingRef("r-secret", "001", "u1", Level.SECRET)


def req(kind: RequestKind, requester: Principal, *recs: RecordingRef, notice: str | None = None,
        status: str = "pending") -> RequestRef:
    return RequestRef("q1", kind, requester.name, requester.unit, recs, notice, status)


def grant(gid: str, kind: RequestKind, grantee: Principal, *recs: RecordingRef,
          expires: timedelta = timedelta(days=1), uses: int = 1) -> Grant:
    return Grant(gid, kind, grantee.name, frozenset(r.id for r in recs), NOW + expires, uses, "case 2024-17")


@dataclass(frozen=True)
class Case:
    actor: Principal
    action: Action
    rec: RecordingRef | None = None
    req: RequestRef | None = None
    grants: tuple[Grant, ...] = ()
    owner: str | None = None  # who asked for / set the thing (second-person actions)


def c(cid: str, case: Case, allowed: bool, rule: str) -> tuple[str, Case, bool, str]:
    return (cid, case, allowed, rule)


EXPIRED = timedelta(seconds=-1)
TABLE = [
    # -- disabled / local owner
    c("disabled-legal-view", Case(GONE, A.VIEW_METADATA, REC_A), False, "disabled"),
    c("disabled-audit", Case(GONE, A.READ_AUDIT), False, "disabled"),
    c("disabled-owner", Case(GONE_OWNER, A.MANAGE_CONFIG), False, "disabled"),
    c("owner-read-secret", Case(OWNER, A.READ_ORIGINAL, REC_SECRET), True, "local-owner"),
    c("owner-config", Case(OWNER, A.MANAGE_CONFIG), True, "local-owner"),
    c("owner-approve-own", Case(OWNER, A.APPROVE, req=req(K.EXTERNAL, OWNER, REC_A)), True, "local-owner"),
    # -- R9 clearance, whatever the role
    c("legal-conf-secret-invisible", Case(ZHOU, A.VIEW_METADATA, REC_SECRET), False, "clearance"),
    c("legal-conf-sees-conf", Case(ZHOU, A.VIEW_METADATA, REC_CONF), True, "legal"),
    c("legal-secret-sees-secret", Case(ZHOU_S, A.VIEW_PREVIEW, REC_SECRET), True, "legal"),
    c("officer-own-conf", Case(WANG, A.VIEW_METADATA, REC_CONF), False, "clearance"),
    c("grant-above-clearance", Case(WANG, A.READ_ORIGINAL, REC_CONF,
                                    grants=(grant("g1", K.COPY, WANG, REC_CONF),)), False, "clearance"),
    c("spot-check-above-clearance", Case(WU, A.SPOT_CHECK, REC_CONF), False, "clearance"),
    c("request-with-secret", Case(ZHOU, A.REQUEST, req=req(K.COPY, ZHOU, REC_A, REC_SECRET)),
      False, "clearance"),
    c("approve-with-secret", Case(SUN, A.APPROVE, req=req(K.COPY, WANG, REC_SECRET)), False, "clearance"),
    # -- view metadata / preview
    c("officer-own", Case(WANG, A.VIEW_PREVIEW, REC_A), True, "own-recording"),
    c("officer-other-officer", Case(WANG, A.VIEW_METADATA, REC_B), False, "role"),
    c("officer-no-number", Case(NO_NUMBER, A.VIEW_METADATA, REC_ANON), False, "role"),
    c("supervisor-own-unit", Case(ZHAO, A.VIEW_PREVIEW, REC_B), True, "unit-supervisor"),
    c("supervisor-other-unit", Case(QIAN, A.VIEW_METADATA, REC_A), False, "role"),
    c("supervisor-no-unit", Case(person("ma", Role.SUPERVISOR), A.VIEW_METADATA, REC_ANON), False, "role"),
    c("legal-any", Case(ZHOU, A.VIEW_PREVIEW, REC_U2), True, "legal"),
    c("auditor-metadata", Case(WU, A.VIEW_METADATA, REC_U2), True, "auditor-metadata"),
    c("auditor-no-preview", Case(WU, A.VIEW_PREVIEW, REC_U2), False, "no-media-rights"),
    c("leader-no-view", Case(SUN, A.VIEW_METADATA, REC_A), False, "role"),
    c("admin-no-metadata", Case(ZHENG, A.VIEW_METADATA, REC_A), False, "role"),
    c("admin-no-preview", Case(ZHENG, A.VIEW_PREVIEW, REC_A), False, "no-media-rights"),
    c("grant-gives-view", Case(LI, A.VIEW_PREVIEW, REC_A, grants=(grant("g2", K.EXPORT, LI, REC_A),)),
      True, "grant:g2"),
    c("expired-grant-no-view", Case(LI, A.VIEW_METADATA, REC_A,
                                    grants=(grant("g3", K.COPY, LI, REC_A, expires=EXPIRED),)), False, "role"),
    c("others-grant-no-view", Case(LI, A.VIEW_METADATA, REC_A, grants=(grant("g4", K.COPY, WANG, REC_A),)),
      False, "role"),
    c("combo-officer-role", Case(OFF_SUP_U2, A.VIEW_METADATA, REC_A), True, "own-recording"),
    c("combo-supervisor-role", Case(OFF_SUP_U2, A.VIEW_METADATA, REC_U2), True, "unit-supervisor"),
    c("combo-neither", Case(OFF_SUP_U2, A.VIEW_METADATA, REC_B), False, "role"),
    c("combo-leader-auditor", Case(LEAD_AUD, A.VIEW_METADATA, REC_A), True, "auditor-metadata"),
    # -- read original / copy / export: grants only
    c("officer-own-original-no-grant", Case(WANG, A.READ_ORIGINAL, REC_A), False, "no-grant"),
    c("legal-original-no-grant", Case(ZHOU, A.READ_ORIGINAL, REC_A), False, "no-grant"),
    c("supervisor-copy-no-grant", Case(ZHAO, A.COPY, REC_A), False, "no-grant"),
    c("admin-export-no-grant", Case(ZHENG, A.EXPORT, REC_A), False, "no-media-rights"),
    c("grant-view-original", Case(LI, A.READ_ORIGINAL, REC_A,
                                  grants=(grant("g5", K.VIEW_ORIGINAL, LI, REC_A),)), True, "grant:g5"),
    c("copy-grant-reads", Case(LI, A.READ_ORIGINAL, REC_A, grants=(grant("g6", K.COPY, LI, REC_A),)),
      True, "grant:g6"),
    c("party-grant-copies", Case(LI, A.COPY, REC_A, grants=(grant("g7", K.PARTY_COPY, LI, REC_A),)),
      True, "grant:g7"),
    c("external-grant-copies", Case(FENG, A.COPY, REC_A, grants=(grant("g8", K.EXTERNAL, FENG, REC_A),)),
      True, "grant:g8"),
    c("export-grant-exports", Case(ZHAO, A.EXPORT, REC_A, grants=(grant("g9", K.EXPORT, ZHAO, REC_A),)),
      True, "grant:g9"),
    c("view-grant-no-copy", Case(LI, A.COPY, REC_A, grants=(grant("g10", K.VIEW_ORIGINAL, LI, REC_A),)),
      False, "grant-other-kind"),
    c("copy-grant-no-export", Case(LI, A.EXPORT, REC_A, grants=(grant("g11", K.COPY, LI, REC_A),)),
      False, "grant-other-kind"),
    c("export-grant-no-read", Case(LI, A.READ_ORIGINAL, REC_A, grants=(grant("g12", K.EXPORT, LI, REC_A),)),
      False, "grant-other-kind"),
    c("grant-expired", Case(LI, A.READ_ORIGINAL, REC_A,
                            grants=(grant("g13", K.COPY, LI, REC_A, expires=EXPIRED),)), False, "grant-expired"),
    c("grant-expires-now", Case(LI, A.READ_ORIGINAL, REC_A,
                                grants=(grant("g14", K.COPY, LI, REC_A, expires=timedelta(0)),)),
      False, "grant-expired"),
    c("grant-used-up", Case(LI, A.COPY, REC_A, grants=(grant("g15", K.COPY, LI, REC_A, uses=0),)),
      False, "grant-used-up"),
    c("grant-other-recording", Case(LI, A.READ_ORIGINAL, REC_A, grants=(grant("g16", K.COPY, LI, REC_B),)),
      False, "grant-other-recording"),
    c("grant-other-user", Case(LI, A.READ_ORIGINAL, REC_A, grants=(grant("g17", K.COPY, WANG, REC_A),)),
      False, "grant-other-user"),
    c("most-specific-miss", Case(LI, A.READ_ORIGINAL, REC_A, grants=(
        grant("g18", K.COPY, WANG, REC_A),
        grant("g19", K.COPY, LI, REC_A, expires=EXPIRED),
        grant("g20", K.COPY, LI, REC_B),
    )), False, "grant-expired"),
    c("one-fits-among-misses", Case(LI, A.READ_ORIGINAL, REC_A, grants=(
        grant("g21", K.COPY, LI, REC_A, uses=0),
        grant("g22", K.COPY, LI, REC_A, REC_B),
    )), True, "grant:g22"),
    # -- making a request
    c("officer-asks-own-view", Case(WANG, A.REQUEST, req=req(K.VIEW_ORIGINAL, WANG, REC_A, status="new")),
      True, "officer"),
    c("officer-asks-party-copy", Case(WANG, A.REQUEST, req=req(K.PARTY_COPY, WANG, REC_A)), True, "officer"),
    c("officer-asks-export", Case(WANG, A.REQUEST, req=req(K.EXPORT, WANG, REC_A)), False, "role"),
    c("officer-asks-unseen", Case(WANG, A.REQUEST, req=req(K.COPY, WANG, REC_A, REC_B)), False, "not-visible"),
    c("officer-asks-granted", Case(LI, A.REQUEST, req=req(K.COPY, LI, REC_A),
                                   grants=(grant("g23", K.VIEW_ORIGINAL, LI, REC_A),)), True, "officer"),
    c("supervisor-asks-export", Case(ZHAO, A.REQUEST, req=req(K.EXPORT, ZHAO, REC_A, REC_B)), True, "supervisor"),
    c("supervisor-asks-other-unit", Case(QIAN, A.REQUEST, req=req(K.COPY, QIAN, REC_A)), False, "not-visible"),
    c("legal-asks-export", Case(ZHOU, A.REQUEST, req=req(K.EXPORT, ZHOU, REC_U2)), True, "legal"),
    c("auditor-asks", Case(WU, A.REQUEST, req=req(K.VIEW_ORIGINAL, WU, REC_A)), False, "no-media-rights"),
    c("leader-asks", Case(SUN, A.REQUEST, req=req(K.COPY, SUN, REC_A)), False, "role"),
    c("admin-asks", Case(ZHENG, A.REQUEST, req=req(K.VIEW_ORIGINAL, ZHENG, REC_A)), False, "no-media-rights"),
    c("external-with-notice", Case(FENG, A.REQUEST, req=req(K.EXTERNAL, FENG, REC_U2, notice="调证[2024]7号")),
      True, "external-retrieval"),
    c("external-no-notice", Case(FENG, A.REQUEST, req=req(K.EXTERNAL, FENG, REC_U2)),
      False, "notice-number-required"),
    c("external-blank-notice", Case(ZHOU, A.REQUEST, req=req(K.EXTERNAL, ZHOU, REC_U2, notice="  ")),
      False, "notice-number-required"),
    c("party-copy-confidential", Case(ZHOU, A.REQUEST, req=req(K.PARTY_COPY, ZHOU, REC_CONF)),
      False, "party-copy-confidential"),
    c("request-nothing", Case(ZHOU, A.REQUEST, req=req(K.COPY, ZHOU)), False, "no-recordings"),
    # -- approving / denying
    c("unit-supervisor-approves", Case(ZHAO, A.APPROVE, req=req(K.COPY, WANG, REC_A)), True, "unit-supervisor"),
    c("unit-supervisor-denies", Case(ZHAO, A.DENY, req=req(K.EXPORT, LI, REC_B)), True, "unit-supervisor"),
    c("other-unit-supervisor", Case(QIAN, A.APPROVE, req=req(K.COPY, WANG, REC_A)), False, "other-unit"),
    c("supervisor-own-request", Case(ZHAO, A.APPROVE, req=req(K.EXPORT, ZHAO, REC_A)), False, "own-request"),
    c("leader-own-request", Case(SUN, A.DENY, req=req(K.EXTERNAL, SUN, REC_A, notice="n1")), False, "own-request"),
    c("leader-approves-copy", Case(SUN, A.APPROVE, req=req(K.VIEW_ORIGINAL, WANG, REC_A)), True, "leader"),
    c("officer-cannot-approve", Case(LI, A.APPROVE, req=req(K.COPY, WANG, REC_A)), False, "role"),
    c("legal-cannot-approve", Case(ZHOU, A.APPROVE, req=req(K.COPY, WANG, REC_A)), False, "role"),
    c("not-pending", Case(ZHAO, A.APPROVE, req=req(K.COPY, WANG, REC_A, status="approved")), False, "not-pending"),
    c("external-by-leader", Case(SUN, A.APPROVE, req=req(K.EXTERNAL, FENG, REC_A, notice="n1")), True, "leader"),
    c("external-not-leader", Case(ZHAO, A.APPROVE, req=req(K.EXTERNAL, FENG, REC_A, notice="n1")),
      False, "leader-only"),
    c("external-no-notice-approve", Case(SUN, A.APPROVE, req=req(K.EXTERNAL, FENG, REC_A)),
      False, "notice-number-required"),
    c("external-no-notice-deny", Case(SUN, A.DENY, req=req(K.EXTERNAL, FENG, REC_A)), True, "leader"),
    c("party-copy-by-leader", Case(SUN, A.APPROVE, req=req(K.PARTY_COPY, WANG, REC_A)), True, "leader"),
    c("party-copy-by-supervisor", Case(ZHAO, A.APPROVE, req=req(K.PARTY_COPY, WANG, REC_A)),
      False, "leader-only"),
    c("party-copy-conf-approve", Case(replace(SUN, clearance=Level.SECRET), A.APPROVE,
                                      req=req(K.PARTY_COPY, WANG, REC_CONF)), False, "party-copy-confidential"),
    # -- audit, spot checks, administration
    c("auditor-audit", Case(WU, A.READ_AUDIT), True, "auditor"),
    c("legal-audit", Case(ZHOU, A.READ_AUDIT), True, "legal"),
    c("leader-audit", Case(SUN, A.READ_AUDIT), True, "leader"),
    c("officer-no-audit", Case(WANG, A.READ_AUDIT), False, "role"),
    c("admin-no-audit", Case(ZHENG, A.READ_AUDIT), False, "role"),
    c("auditor-spot-check", Case(WU, A.SPOT_CHECK, REC_A), True, "auditor"),
    c("legal-spot-check", Case(ZHOU, A.SPOT_CHECK), True, "legal"),
    c("leader-no-spot-check", Case(SUN, A.SPOT_CHECK), False, "role"),
    c("supervisor-no-spot-check", Case(ZHAO, A.SPOT_CHECK), False, "role"),
    c("admin-users", Case(ZHENG, A.MANAGE_USERS), True, "admin"),
    c("admin-devices", Case(ZHENG, A.MANAGE_DEVICES), True, "admin"),
    c("admin-config", Case(ZHENG, A.MANAGE_CONFIG), True, "admin"),
    c("leader-no-users", Case(SUN, A.MANAGE_USERS), False, "role"),
    c("legal-no-config", Case(ZHOU_S, A.MANAGE_CONFIG), False, "role"),
    c("supervisor-no-devices", Case(ZHAO, A.MANAGE_DEVICES), False, "role"),
    c("combo-auditor-admin-audit", Case(AUD_ADM, A.READ_AUDIT), True, "auditor"),
    c("combo-auditor-admin-users", Case(AUD_ADM, A.MANAGE_USERS), True, "admin"),
    c("no-role-nothing", Case(FENG, A.READ_AUDIT), False, "role"),
    # -- cases, labels, retention, holds (#6)
    c("officer-case-manage", Case(WANG, A.CASE_MANAGE), True, "officer"),
    c("auditor-no-case-manage", Case(WU, A.CASE_MANAGE), False, "role"),
    c("supervisor-case-close", Case(ZHAO, A.CASE_CLOSE), True, "supervisor"),
    c("officer-no-case-close", Case(WANG, A.CASE_CLOSE), False, "role"),
    c("officer-label-own", Case(WANG, A.LABEL, REC_A), True, "own-recording"),
    c("officer-no-label-other", Case(WANG, A.LABEL, REC_B), False, "role"),
    c("supervisor-label-unit", Case(ZHAO, A.LABEL, REC_B), True, "unit-supervisor"),
    c("supervisor-no-label-other-unit", Case(QIAN, A.LABEL, REC_B), False, "role"),
    c("legal-label", Case(ZHOU, A.LABEL, REC_U2), True, "legal"),
    c("auditor-no-label", Case(WU, A.LABEL, REC_A), False, "role"),
    c("label-above-clearance", Case(WANG, A.LABEL, REC_CONF), False, "clearance"),
    c("officer-classify", Case(WANG, A.CLASSIFY), True, "officer"),
    c("admin-no-classify", Case(ZHENG, A.CLASSIFY), False, "role"),
    c("supervisor-class-approve", Case(ZHAO, A.CLASS_APPROVE, owner="wang"), True, "supervisor"),
    c("supervisor-no-own-class-approve", Case(ZHAO, A.CLASS_APPROVE, owner="zhao"), False, "own-request"),
    c("class-approve-needs-owner", Case(SUN, A.CLASS_APPROVE), False, "own-request"),
    c("legal-no-class-approve", Case(ZHOU, A.CLASS_APPROVE, owner="wang"), False, "role"),
    c("leader-hold-set", Case(SUN, A.HOLD_SET), True, "leader"),
    c("officer-no-hold-set", Case(WANG, A.HOLD_SET), False, "role"),
    c("legal-hold-release", Case(ZHOU, A.HOLD_RELEASE, owner="sun"), True, "legal"),
    c("no-own-hold-release", Case(SUN, A.HOLD_RELEASE, owner="sun"), False, "own-hold"),
    c("officer-no-hold-release", Case(WANG, A.HOLD_RELEASE, owner="sun"), False, "role"),
    c("auditor-retention-view", Case(WU, A.RETENTION_VIEW), True, "auditor"),
    c("officer-no-retention-view", Case(WANG, A.RETENTION_VIEW), False, "role"),
    c("admin-purge-prepare", Case(ZHENG, A.PURGE_PREPARE), True, "admin"),
    c("supervisor-no-purge-prepare", Case(ZHAO, A.PURGE_PREPARE), False, "role"),
    c("legal-purge-approve", Case(ZHOU, A.PURGE_APPROVE), True, "legal"),
    c("admin-no-purge-approve", Case(ZHENG, A.PURGE_APPROVE), False, "role"),
    c("leader-purge-run", Case(SUN, A.PURGE_RUN), True, "leader"),
    c("auditor-no-purge-run", Case(WU, A.PURGE_RUN), False, "role"),
    # -- compliance reports, trips, explanations (#6; the full role table: test_compliance_access.py)
    c("auditor-read-reports", Case(WU, A.READ_REPORTS), True, "auditor"),
    c("supervisor-no-read-reports", Case(ZHAO, A.READ_REPORTS), False, "role"),
    c("supervisor-read-unit-reports", Case(ZHAO, A.READ_UNIT_REPORTS), True, "supervisor"),
    c("officer-no-read-unit-reports", Case(WANG, A.READ_UNIT_REPORTS), False, "role"),
    c("supervisor-manage-trips", Case(ZHAO, A.MANAGE_TRIPS), True, "supervisor"),
    c("officer-no-manage-trips", Case(WANG, A.MANAGE_TRIPS), False, "role"),
    c("officer-explain", Case(WANG, A.EXPLAIN), True, "officer"),
    c("legal-no-explain", Case(ZHOU, A.EXPLAIN), False, "role"),
    # -- a recording's own confidentiality level (#16; the full table: tests/security/test_role_table.py)
    c("supervisor-may-set-levels", Case(ZHAO, A.SET_CONFIDENTIALITY), True, "supervisor"),
    c("officer-no-levels", Case(WANG, A.SET_CONFIDENTIALITY), False, "role"),
]


@pytest.mark.parametrize(("case", "allowed", "rule"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_rule_table(case: Case, allowed: bool, rule: str) -> None:
    got = decide(case.actor, case.action, recording=case.rec, request=case.req, grants=case.grants, now=NOW,
                 owner=case.owner)
    assert (got.allowed, got.rule) == (allowed, rule)


def test_every_action_and_role_appears_in_the_table() -> None:
    cases = [row[1] for row in TABLE]
    assert {case.action for case in cases} == set(Action)
    assert {role for case in cases for role in case.actor.roles} == set(Role)


def test_grant_decision_names_the_grant_that_expires_first() -> None:
    grants = (
        grant("late", K.COPY, LI, REC_A, expires=timedelta(days=3)),
        grant("soon", K.VIEW_ORIGINAL, LI, REC_A, expires=timedelta(hours=1)),
    )
    got = decide(LI, A.READ_ORIGINAL, recording=REC_A, grants=grants, now=NOW)
    assert got == Decision(True, "grant:soon", "soon")
    assert decide(WANG, A.VIEW_METADATA, recording=REC_A, now=NOW).grant_id is None


def test_grant_is_judged_against_now_passed_in() -> None:
    g = grant("g", K.COPY, LI, REC_A, expires=timedelta(hours=1))
    assert decide(LI, A.COPY, recording=REC_A, grants=[g], now=NOW).allowed
    later = NOW + timedelta(hours=2)
    assert decide(LI, A.COPY, recording=REC_A, grants=[g], now=later).rule == "grant-expired"


def test_visible_filters_a_list() -> None:
    recs = [REC_A, REC_B, REC_U2, REC_CONF, REC_SECRET]
    assert [r.id for r in recs if visible(WANG, r)] == ["r-a"]
    assert [r.id for r in recs if visible(ZHAO, r)] == ["r-a", "r-b"]
    assert [r.id for r in recs if visible(ZHOU, r)] == ["r-a", "r-b", "r-u2", "r-conf"]
    assert [r.id for r in recs if visible(ZHENG, r)] == []
    g = grant("g", K.COPY, LI, REC_U2)
    assert [r.id for r in recs if visible(LI, r, grants=[g], now=NOW)] == ["r-b", "r-u2"]


def test_wrong_calls_raise_instead_of_deciding() -> None:
    with pytest.raises(ValueError, match="timezone"):
        decide(WANG, A.READ_AUDIT, now=datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="needs a recording"):
        decide(OWNER, A.READ_ORIGINAL, now=NOW)
    with pytest.raises(ValueError, match="needs a request"):
        decide(SUN, A.APPROVE, recording=REC_A, now=NOW)
    with pytest.raises(ValueError, match="needs now"):
        visible(LI, REC_A, grants=[grant("g", K.COPY, LI, REC_A)])
    with pytest.raises(ValueError, match="timezone-aware"):
        Grant("g", K.COPY, "li", frozenset({"r-a"}), datetime(2024, 6, 1), 1, "x")


def test_values_are_stable_strings() -> None:
    assert Action.READ_ORIGINAL.value == "read-original"
    assert Action.MANAGE_CONFIG.value == "manage-config"
    assert RequestKind.EXTERNAL.value == "external-retrieval"
    assert [lv.rank() for lv in Level] == [0, 1, 2]


# -- properties over random principals, recordings and grants

NAMES = ["wang", "li", "zhao"]
IDS = ["r1", "r2"]
maybe = st.sampled_from([None, "", "u1", "u2"])
principals = st.builds(
    Principal,
    name=st.sampled_from(NAMES),
    roles=st.frozensets(st.sampled_from(Role)),
    unit=maybe,
    officer_number=st.sampled_from([None, "", "001", "002"]),
    clearance=st.sampled_from(Level),
    disabled=st.booleans(),
    local_owner=st.booleans(),
)
recordings = st.builds(
    RecordingRef,
    id=st.sampled_from(IDS),
    officer_number=st.sampled_from([None, "", "001", "002"]),
    unit=maybe,
    confidentiality=st.sampled_from(Level),
)
grant_lists = st.lists(st.builds(
    Grant,
    id=st.sampled_from(["g1", "g2", "g3"]),
    kind=st.sampled_from(RequestKind),
    grantee=st.sampled_from(NAMES),
    recording_ids=st.frozensets(st.sampled_from(IDS)),
    expires_at=st.integers(-3, 3).map(lambda h: NOW + timedelta(hours=h)),
    uses_left=st.integers(-1, 2),
    purpose=st.just("p"),
), max_size=4, unique_by=lambda g: g.id)
requests = st.builds(
    RequestRef,
    id=st.just("q"),
    kind=st.sampled_from(RequestKind),
    requester=st.sampled_from(NAMES),
    requester_unit=maybe,
    recordings=st.lists(recordings, max_size=3).map(tuple),
    notice_number=st.sampled_from([None, "", "n1"]),
    status=st.sampled_from(["new", "pending", "approved"]),
)
READ_KINDS = {K.VIEW_ORIGINAL, K.COPY, K.EXTERNAL, K.PARTY_COPY}


@settings(max_examples=400)
@given(actor=principals, rec=recordings, grants=grant_lists)
def test_original_never_read_without_a_matching_grant(actor: Principal, rec: RecordingRef,
                                                      grants: list[Grant]) -> None:
    got = decide(actor, A.READ_ORIGINAL, recording=rec, grants=grants, now=NOW)
    if not got.allowed or actor.local_owner:
        return
    used = [g for g in grants if g.id == got.grant_id]
    assert any(
        g.grantee == actor.name and rec.id in g.recording_ids and g.kind in READ_KINDS
        and NOW < g.expires_at and g.uses_left > 0
        for g in used
    ), (got, grants)


@settings(max_examples=400)
@given(actor=principals, action=st.sampled_from(Action), rec=recordings, request=requests, grants=grant_lists)
def test_nothing_above_clearance_and_nothing_while_disabled(
    actor: Principal, action: Action, rec: RecordingRef, request: RequestRef, grants: list[Grant]
) -> None:
    got = decide(actor, action, recording=rec, request=request, grants=grants, now=NOW)
    above = any(r.confidentiality.rank() > actor.clearance.rank() for r in (rec, *request.recordings))
    if actor.disabled or (above and not actor.local_owner):
        assert not got.allowed
        assert got.rule == ("disabled" if actor.disabled else "clearance")
