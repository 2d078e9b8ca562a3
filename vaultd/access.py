"""Who may do what: one pure decision, no I/O, no database, no clock.

``decide()`` answers yes or no and names the rule that decided, a short
stable id for front ends and the audit log. The caller passes ``now`` and
the grants it loaded, and does what follows (spends one use of
``Decision.grant_id``, writes the audit entry). R5, R9, R10, R13 in RULES.md.
Checked top down; roles combine (allowed when any held role allows):

=================  ===============================================  ===========================
action             allowed when                                     rule (allowed / denied)
=================  ===============================================  ===========================
any                actor.disabled: denied                           disabled
any                actor.local_owner (the ``--home`` Unix owner)    local-owner
any (R9)           the recording, or one in the request, ranks      clearance (denied)
                   above actor.clearance; so does the ``level`` a
                   SET_CONFIDENTIALITY would give. A recording's
                   level is the highest of its own and its cases'
                   (``RecordingRef.level``)
VIEW_METADATA,     officer: own recording (officer numbers equal,   own-recording
VIEW_PREVIEW       both set); supervisor: recording of their unit   unit-supervisor
                   (both set); legal: all; auditor: metadata only;  legal, auditor-metadata
                   an active grant to the actor naming it (any      grant:<id>
                   kind), but never a preview for an auditor or     no-media-rights
                   admin; leader, admin, others: no                 role
READ_ORIGINAL,     never an auditor or admin, whatever the grant    no-media-rights
COPY, EXPORT       says (separation of duties); otherwise never by
                   role: a grant to the actor, naming the           grant:<id> / no-grant,
                   recording, unexpired (now < expires_at), uses    grant-other-user,
                   left > 0, of a kind that covers the action:      grant-other-recording,
                   READ_ORIGINAL <- view-original, copy, external,  grant-other-kind,
                   party-copy; COPY <- copy, external, party-copy;  grant-expired,
                   EXPORT <- export (the closest miss is named)     grant-used-up
REQUEST            at least one recording; never an auditor or      - / no-recordings,
                   admin (no media rights);                         no-media-rights
                   external-retrieval: any other user, with a       external-retrieval /
                   notice number (调取证据通知书);                  notice-number-required
                   others: officer -> view-original, copy,          officer, supervisor, legal
                   party-copy; supervisor -> also export; legal     / role
                   -> all; party-copy only of normal ones (R5);     party-copy-confidential
                   the actor must see every recording in it         not-visible
APPROVE, DENY      never one's own; only pending requests;          own-request, not-pending
(R5)               external-retrieval and party-copy: a leader      leader / leader-only
                   (APPROVE only: external needs the notice         notice-number-required,
                   number, party-copy only normal recordings);      party-copy-confidential
                   view-original, copy, export whose recordings     unit-supervisor, leader /
                   all belong to the requester's unit: a
                   supervisor of that unit, or a leader;            other-unit
                   one touching any recording of another unit (or
                   of none): a retrieval by another department,
                   a leader only;                                   other-department
                   neither supervisor nor leader: no. So a          role
                   supervisor never decides on a recording outside
                   their unit, nobody on one above their clearance
READ_AUDIT         auditor, legal, leader                           the role's value / role
SPOT_CHECK         auditor, legal                                   the role's value / role
MANAGE_USERS,      admin                                            admin / role
_DEVICES, _CONFIG
CASE_MANAGE        officer, supervisor, legal, leader               the role's value / role
CASE_CLOSE         supervisor, legal, leader (close and archive)    the role's value / role
LABEL              officer: own recording; supervisor: their unit;  own-recording,
                   legal                                            unit-supervisor, legal / role
CLASSIFY           officer, supervisor, legal, leader (a shorter    the role's value / role
                   class is only a request until approved)
CLASS_APPROVE,     never the ``owner`` (who asked / who set it);    own-request, own-hold /
HOLD_RELEASE       class: supervisor, leader; hold: supervisor,     the role's value / role,
                   legal, leader; with a recording named, a         other-unit
                   supervisor only for one of their unit
HOLD_SET           supervisor, legal, leader; with a recording      the role's value / role,
                   named, a supervisor only for one of their unit   other-unit
RETENTION_VIEW     supervisor, legal, leader, auditor, admin        the role's value / role
PURGE_PREPARE,     admin, legal, leader                             the role's value / role
PURGE_RUN
PURGE_APPROVE      legal, leader (two distinct ones: the service)   the role's value / role
READ_REPORTS       auditor, legal, leader (every unit)              the role's value / role
READ_UNIT_REPORTS  supervisor (the service keeps them to their      the role's value / role
                   own unit), auditor, legal, leader
MANAGE_TRIPS       supervisor, leader, admin                        the role's value / role
EXPLAIN            officer, supervisor, leader (the service also    the role's value / role
                   needs the recording visible to the actor)
SET_CONFIDEN-      without a recording: supervisor, legal, leader;  the role's value / role,
TIALITY (R9)       raising a recording's own level: a supervisor    other-unit,
                   of its unit, legal, leader; lowering it: legal,
                   leader only (a supervisor: declassify)           declassify
=================  ===============================================  ===========================

A ``Grant`` exists only once its request was approved. Only READ_ORIGINAL,
COPY and EXPORT spend a use of it; viewing through a grant does not.

``reachable()`` says whether a recording exists at all for a user (else a
service answers "not found"): they see it, or they are a leader and it is
within their clearance (a leader oversees every unit but sees no recording by
role). Holds and confidentiality levels are set on reachable recordings only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum


class Role(str, Enum):
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    LEADER = "leader"
    LEGAL = "legal"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Level(str, Enum):
    """Confidentiality of a recording, and a user's clearance (R9)."""

    NORMAL = "normal"
    CONFIDENTIAL = "confidential"
    SECRET = "secret"

    def rank(self) -> int:
        return _LEVEL_RANK[self]


_LEVEL_RANK: Mapping[Level, int] = {Level.NORMAL: 0, Level.CONFIDENTIAL: 1, Level.SECRET: 2}


class RequestKind(str, Enum):
    VIEW_ORIGINAL = "view-original"
    COPY = "copy"
    EXPORT = "export"
    EXTERNAL = "external-retrieval"
    PARTY_COPY = "party-copy"


class Action(str, Enum):
    VIEW_METADATA = "view-metadata"
    VIEW_PREVIEW = "view-preview"
    READ_ORIGINAL = "read-original"
    COPY = "copy"
    EXPORT = "export"
    REQUEST = "request"
    APPROVE = "approve"
    DENY = "deny"
    READ_AUDIT = "read-audit"
    SPOT_CHECK = "spot-check"
    MANAGE_USERS = "manage-users"
    MANAGE_DEVICES = "manage-devices"
    MANAGE_CONFIG = "manage-config"
    # cases, labels, retention and holds (#6)
    CASE_MANAGE = "case-manage"
    CASE_CLOSE = "case-close"
    LABEL = "label"
    CLASSIFY = "classify"
    CLASS_APPROVE = "class-approve"
    HOLD_SET = "hold-set"
    HOLD_RELEASE = "hold-release"
    RETENTION_VIEW = "retention-view"
    PURGE_PREPARE = "purge-prepare"
    PURGE_APPROVE = "purge-approve"
    PURGE_RUN = "purge-run"
    # compliance, reports, spot checks (#6)
    READ_REPORTS = "read-reports"  # compliance reports and statistics of every unit
    READ_UNIT_REPORTS = "read-unit-reports"  # ... of the actor's own unit
    MANAGE_TRIPS = "manage-trips"  # record off-site trips (R1 exception)
    EXPLAIN = "explain"  # late reasons, interruption notes, on recordings one sees
    SET_CONFIDENTIALITY = "set-confidentiality"  # a recording's own R9 level (#16)


@dataclass(frozen=True)
class Principal:
    """A user as access control sees them."""

    name: str
    roles: frozenset[Role]
    unit: str | None = None
    officer_number: str | None = None
    clearance: Level = Level.NORMAL
    disabled: bool = False
    local_owner: bool = False  # the vault's Unix owner in --home mode: full rights


@dataclass(frozen=True)
class RecordingRef:
    """A recording as access control sees it: whose, which unit, how confidential.

    ``confidentiality`` is the recording's own level; ``case_levels`` those of
    the cases it is linked to. What counts is ``level``, the highest of them
    (R9 through cases: a recording in a secret case is secret).
    """

    id: str
    officer_number: str | None
    unit: str | None
    confidentiality: Level = Level.NORMAL
    case_levels: tuple[Level, ...] = ()

    @property
    def level(self) -> Level:
        return effective_level(self.confidentiality, self.case_levels)


def effective_level(own: Level, case_levels: Iterable[Level] = ()) -> Level:
    """R9: the highest of a recording's own level and those of its cases."""
    return max((own, *case_levels), key=Level.rank)


@dataclass(frozen=True)
class RequestRef:
    id: str
    kind: RequestKind
    requester: str
    requester_unit: str | None
    recordings: tuple[RecordingRef, ...]
    notice_number: str | None = None  # 调取证据通知书, for external-retrieval
    status: str = "pending"


@dataclass(frozen=True)
class Grant:
    """What an approved request gives its grantee, until when, how often."""

    id: str
    kind: RequestKind
    grantee: str
    recording_ids: frozenset[str]
    expires_at: datetime
    uses_left: int
    purpose: str

    def __post_init__(self) -> None:
        if self.expires_at.tzinfo is None:
            raise ValueError(f"grant {self.id}: expires_at must be timezone-aware")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    grant_id: str | None = None


@dataclass(frozen=True)
class _Ctx:
    actor: Principal
    action: Action
    recording: RecordingRef | None
    request: RequestRef | None
    grants: Sequence[Grant]
    now: datetime
    owner: str | None = None
    level: Level | None = None


def _allow(rule: str, grant_id: str | None = None) -> Decision:
    return Decision(True, rule, grant_id)


def _deny(rule: str) -> Decision:
    return Decision(False, rule)


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and a == b


def _has_notice(request: RequestRef) -> bool:
    return bool(request.notice_number and request.notice_number.strip())


def _first_role(actor: Principal, roles: Iterable[Role]) -> Role | None:
    """The first of ``roles`` (in their given order) that the actor holds."""
    return next((r for r in roles if r in actor.roles), None)


# --- grants -------------------------------------------------------------

_ALL_KINDS = frozenset(RequestKind)
_COVERS: Mapping[Action, frozenset[RequestKind]] = {
    Action.READ_ORIGINAL: frozenset(
        {RequestKind.VIEW_ORIGINAL, RequestKind.COPY, RequestKind.EXTERNAL, RequestKind.PARTY_COPY}
    ),
    Action.COPY: frozenset({RequestKind.COPY, RequestKind.EXTERNAL, RequestKind.PARTY_COPY}),
    Action.EXPORT: frozenset({RequestKind.EXPORT}),
}
# Why a grant does not fit, least specific first: the later a grant fails,
# the closer it came, and the more a person learns from being told.
_GRANT_MISSES = (
    "no-grant",
    "grant-other-user",
    "grant-other-recording",
    "grant-other-kind",
    "grant-expired",
    "grant-used-up",
)


def _grant_miss(grant: Grant, ctx: _Ctx, rec: RecordingRef, kinds: frozenset[RequestKind]) -> str | None:
    """Why ``grant`` does not let the actor at ``rec``; None when it does."""
    if grant.grantee != ctx.actor.name:
        return "grant-other-user"
    if rec.id not in grant.recording_ids:
        return "grant-other-recording"
    if grant.kind not in kinds:
        return "grant-other-kind"
    if ctx.now >= grant.expires_at:
        return "grant-expired"
    if grant.uses_left <= 0:
        return "grant-used-up"
    return None


def _by_grant(ctx: _Ctx, rec: RecordingRef, kinds: frozenset[RequestKind]) -> Decision:
    """Allow through the fitting grant that expires first, or say why none fits."""
    fitting = [g for g in ctx.grants if _grant_miss(g, ctx, rec, kinds) is None]
    if fitting:
        best = min(fitting, key=lambda g: (g.expires_at, g.id))
        return _allow(f"grant:{best.id}", best.id)
    misses = [_grant_miss(g, ctx, rec, kinds) or "no-grant" for g in ctx.grants]
    return _deny(max(misses, default="no-grant", key=_GRANT_MISSES.index))


# --- per-action rules ---------------------------------------------------


def _view(ctx: _Ctx, rec: RecordingRef, preview: bool) -> Decision:
    actor = ctx.actor
    if Role.OFFICER in actor.roles and _same(rec.officer_number, actor.officer_number):
        return _allow("own-recording")
    if Role.SUPERVISOR in actor.roles and _same(rec.unit, actor.unit):
        return _allow("unit-supervisor")
    if Role.LEGAL in actor.roles:
        return _allow("legal")
    if Role.AUDITOR in actor.roles and not preview:
        return _allow("auditor-metadata")
    if preview and _no_media(actor):
        return _deny("no-media-rights")
    by_grant = _by_grant(ctx, rec, _ALL_KINDS)
    return by_grant if by_grant.allowed else _deny("role")


def _view_action(ctx: _Ctx) -> Decision:
    assert ctx.recording is not None
    return _view(ctx, ctx.recording, preview=ctx.action is Action.VIEW_PREVIEW)


# separation of duties: who audits the vault or administers it never handles its media,
# whatever role they also hold and whatever a grant says
_NO_MEDIA = frozenset({Role.AUDITOR, Role.ADMIN})


def _no_media(actor: Principal) -> bool:
    return bool(actor.roles & _NO_MEDIA) and not actor.local_owner


def has_media_rights(actor: Principal) -> bool:
    """False for an auditor or admin (whatever else they are): they never get media (#16)."""
    return not _no_media(actor)


def _media_action(ctx: _Ctx) -> Decision:
    assert ctx.recording is not None
    if _no_media(ctx.actor):
        return _deny("no-media-rights")
    return _by_grant(ctx, ctx.recording, _COVERS[ctx.action])


_REQUEST_KINDS: Mapping[Role, frozenset[RequestKind]] = {
    Role.OFFICER: frozenset({RequestKind.VIEW_ORIGINAL, RequestKind.COPY, RequestKind.PARTY_COPY}),
    Role.SUPERVISOR: frozenset(
        {RequestKind.VIEW_ORIGINAL, RequestKind.COPY, RequestKind.EXPORT, RequestKind.PARTY_COPY}
    ),
    Role.LEGAL: _ALL_KINDS,
}


def _above_normal(request: RequestRef) -> bool:
    return any(r.level is not Level.NORMAL for r in request.recordings)


def _request_action(ctx: _Ctx) -> Decision:
    req = ctx.request
    assert req is not None
    if not req.recordings:
        return _deny("no-recordings")
    if _no_media(ctx.actor):
        return _deny("no-media-rights")
    if req.kind is RequestKind.EXTERNAL:
        return _allow("external-retrieval") if _has_notice(req) else _deny("notice-number-required")
    role = _first_role(ctx.actor, (r for r in _REQUEST_KINDS if req.kind in _REQUEST_KINDS[r]))
    if role is None:
        return _deny("role")
    if req.kind is RequestKind.PARTY_COPY and _above_normal(req):
        return _deny("party-copy-confidential")
    if not all(_view(ctx, rec, preview=False).allowed for rec in req.recordings):
        return _deny("not-visible")
    return _allow(role.value)


def _leader_decision(ctx: _Ctx, req: RequestRef) -> Decision:
    """External retrieval and party copies: the principal leader only (R5)."""
    if Role.LEADER not in ctx.actor.roles:
        return _deny("leader-only")
    if ctx.action is Action.APPROVE:
        if req.kind is RequestKind.EXTERNAL and not _has_notice(req):
            return _deny("notice-number-required")
        if req.kind is RequestKind.PARTY_COPY and _above_normal(req):
            return _deny("party-copy-confidential")
    return _allow("leader")


def _review_action(ctx: _Ctx) -> Decision:
    req, actor = ctx.request, ctx.actor
    assert req is not None
    if req.requester == actor.name:
        return _deny("own-request")
    if req.status != "pending":
        return _deny("not-pending")
    if req.kind in (RequestKind.EXTERNAL, RequestKind.PARTY_COPY):
        return _leader_decision(ctx, req)
    inside = within_requester_unit(req)
    if Role.SUPERVISOR in actor.roles and inside and _same(actor.unit, req.requester_unit):
        return _allow("unit-supervisor")
    if Role.LEADER in actor.roles:
        return _allow("leader")
    if Role.SUPERVISOR not in actor.roles:
        return _deny("role")
    return _deny("other-unit" if inside else "other-department")


def within_requester_unit(req: RequestRef) -> bool:
    """R5: every recording of the request belongs to the requester's unit; otherwise
    it is a retrieval by another department, which only a leader approves."""
    return bool(req.recordings) and all(_same(r.unit, req.requester_unit) for r in req.recordings)


def concerns_unit(req: RequestRef, unit: str | None) -> bool:
    """Whether the request touches a recording of ``unit`` (its supervisors hear of it)."""
    return any(_same(r.unit, unit) for r in req.recordings)


_BY_ROLE_ONLY: Mapping[Action, tuple[Role, ...]] = {
    Action.READ_AUDIT: (Role.AUDITOR, Role.LEGAL, Role.LEADER),
    Action.SPOT_CHECK: (Role.AUDITOR, Role.LEGAL),
    Action.MANAGE_USERS: (Role.ADMIN,),
    Action.MANAGE_DEVICES: (Role.ADMIN,),
    Action.MANAGE_CONFIG: (Role.ADMIN,),
    Action.CASE_MANAGE: (Role.OFFICER, Role.SUPERVISOR, Role.LEGAL, Role.LEADER),
    Action.CASE_CLOSE: (Role.SUPERVISOR, Role.LEGAL, Role.LEADER),
    Action.CLASSIFY: (Role.OFFICER, Role.SUPERVISOR, Role.LEGAL, Role.LEADER),
    Action.RETENTION_VIEW: (Role.SUPERVISOR, Role.LEGAL, Role.LEADER, Role.AUDITOR, Role.ADMIN),
    Action.PURGE_PREPARE: (Role.ADMIN, Role.LEGAL, Role.LEADER),
    Action.PURGE_APPROVE: (Role.LEGAL, Role.LEADER),
    Action.PURGE_RUN: (Role.ADMIN, Role.LEGAL, Role.LEADER),
    Action.READ_REPORTS: (Role.AUDITOR, Role.LEGAL, Role.LEADER),
    Action.READ_UNIT_REPORTS: (Role.SUPERVISOR, Role.AUDITOR, Role.LEGAL, Role.LEADER),
    Action.MANAGE_TRIPS: (Role.SUPERVISOR, Role.LEADER, Role.ADMIN),
    Action.EXPLAIN: (Role.OFFICER, Role.SUPERVISOR, Role.LEADER),
}
# second-person actions: never by the one who asked for or set the thing (``owner``)
_SECOND_PERSON: Mapping[Action, tuple[tuple[Role, ...], str]] = {
    Action.CLASS_APPROVE: ((Role.SUPERVISOR, Role.LEADER), "own-request"),
    Action.HOLD_RELEASE: ((Role.SUPERVISOR, Role.LEGAL, Role.LEADER), "own-hold"),
}


def _role_action(ctx: _Ctx) -> Decision:
    role = _first_role(ctx.actor, _BY_ROLE_ONLY[ctx.action])
    return _deny("role") if role is None else _allow(role.value)


def _by_role_on_recording(ctx: _Ctx, roles: tuple[Role, ...]) -> Decision:
    """The first of ``roles`` the actor holds; with a recording named, a supervisor
    counts only for a recording of their own unit (rule ``other-unit`` otherwise)."""
    rec, actor = ctx.recording, ctx.actor
    fits = [r for r in roles if not (r is Role.SUPERVISOR and rec is not None and not _same(rec.unit, actor.unit))]
    role = _first_role(actor, fits)
    if role is not None:
        return _allow(role.value)
    return _deny("other-unit" if Role.SUPERVISOR in roles and Role.SUPERVISOR in actor.roles else "role")


def _second_person_action(ctx: _Ctx) -> Decision:
    roles, own_rule = _SECOND_PERSON[ctx.action]
    if ctx.owner is None or ctx.owner == ctx.actor.name:
        return _deny(own_rule)
    return _by_role_on_recording(ctx, roles)


def _hold_set_action(ctx: _Ctx) -> Decision:
    return _by_role_on_recording(ctx, (Role.SUPERVISOR, Role.LEGAL, Role.LEADER))


def _confidentiality_action(ctx: _Ctx) -> Decision:
    """R9: raising a recording's own level protects it (supervisor of its unit, legal,
    leader); lowering it opens it to more people (legal or leader only)."""
    rec, new = ctx.recording, ctx.level
    if rec is not None and new is not None and new.rank() < rec.confidentiality.rank():
        decision = _by_role_on_recording(ctx, (Role.LEGAL, Role.LEADER))
        if not decision.allowed and Role.SUPERVISOR in ctx.actor.roles:
            return _deny("declassify")
        return decision
    return _by_role_on_recording(ctx, (Role.SUPERVISOR, Role.LEGAL, Role.LEADER))


def _label_action(ctx: _Ctx) -> Decision:
    rec, actor = ctx.recording, ctx.actor
    assert rec is not None
    if Role.OFFICER in actor.roles and _same(rec.officer_number, actor.officer_number):
        return _allow("own-recording")
    if Role.SUPERVISOR in actor.roles and _same(rec.unit, actor.unit):
        return _allow("unit-supervisor")
    return _allow("legal") if Role.LEGAL in actor.roles else _deny("role")


_RULES: Mapping[Action, Callable[[_Ctx], Decision]] = {
    Action.VIEW_METADATA: _view_action,
    Action.VIEW_PREVIEW: _view_action,
    Action.READ_ORIGINAL: _media_action,
    Action.COPY: _media_action,
    Action.EXPORT: _media_action,
    Action.REQUEST: _request_action,
    Action.APPROVE: _review_action,
    Action.DENY: _review_action,
    **{a: _role_action for a in _BY_ROLE_ONLY},
    **{a: _second_person_action for a in _SECOND_PERSON},
    Action.LABEL: _label_action,
    Action.HOLD_SET: _hold_set_action,
    Action.SET_CONFIDENTIALITY: _confidentiality_action,
}
_NEEDS_RECORDING = frozenset(
    {Action.VIEW_METADATA, Action.VIEW_PREVIEW, Action.READ_ORIGINAL, Action.COPY, Action.EXPORT,
     Action.LABEL}
)
_NEEDS_REQUEST = frozenset({Action.REQUEST, Action.APPROVE, Action.DENY})


def _check_call(action: Action, recording: RecordingRef | None, request: RequestRef | None, now: datetime,
                level: Level | None) -> None:
    """A wrong call is a bug in the caller, not a denial: raise ValueError."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if action in _NEEDS_RECORDING and recording is None:
        raise ValueError(f"{action.value} needs a recording")
    if action in _NEEDS_REQUEST and request is None:
        raise ValueError(f"{action.value} needs a request")
    if level is not None and (action is not Action.SET_CONFIDENTIALITY or recording is None):
        raise ValueError("a level is only set on a recording (set-confidentiality)")


def decide(
    actor: Principal,
    action: Action,
    *,
    recording: RecordingRef | None = None,
    request: RequestRef | None = None,
    grants: Sequence[Grant] = (),
    now: datetime,
    owner: str | None = None,
    level: Level | None = None,
) -> Decision:
    """May ``actor`` do ``action`` on ``recording`` / ``request`` at ``now``?

    Pure: reads nothing but its arguments. See the module docstring for
    the rule table. ``owner`` names who asked for or set the thing a
    second-person action (CLASS_APPROVE, HOLD_RELEASE) acts on; ``level`` the
    level a SET_CONFIDENTIALITY would give the recording. Raises ValueError
    when the call itself is wrong (a naive ``now``, a missing target the action
    needs).
    """
    _check_call(action, recording, request, now, level)
    if actor.disabled:
        return _deny("disabled")
    if actor.local_owner:
        return _allow("local-owner")
    targets = ((recording,) if recording else ()) + (request.recordings if request else ())
    if any(r.level.rank() > actor.clearance.rank() for r in targets):
        return _deny("clearance")
    if level is not None and level.rank() > actor.clearance.rank():
        return _deny("clearance")
    return _RULES[action](_Ctx(actor, action, recording, request, grants, now, owner, level))


def reachable(
    actor: Principal,
    recording: RecordingRef,
    *,
    grants: Sequence[Grant] = (),
    now: datetime | None = None,
) -> bool:
    """Whether ``actor`` may name ``recording`` at all: they see it, or they lead
    the agency and it is within their clearance (see the module docstring)."""
    if visible(actor, recording, grants=grants, now=now):
        return True
    return (Role.LEADER in actor.roles and not actor.disabled
            and recording.level.rank() <= actor.clearance.rank())


def visible(
    actor: Principal,
    recording: RecordingRef,
    *,
    grants: Sequence[Grant] = (),
    now: datetime | None = None,
) -> bool:
    """Whether ``recording`` belongs in ``actor``'s lists (VIEW_METADATA).

    Without grants the answer does not depend on time; pass ``now`` with
    ``grants`` so that grants count only while they are active.
    """
    if grants and now is None:
        raise ValueError("visible() with grants needs now")
    when = now if now is not None else datetime.min.replace(tzinfo=timezone.utc)
    return decide(actor, Action.VIEW_METADATA, recording=recording, grants=grants, now=when).allowed
