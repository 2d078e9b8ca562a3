"""Users, their API tokens, logins, and which officer holds which camera.

Every function takes the acting principal, asks ``access.decide`` and writes
the audit entry itself, refusals included.

Nobody can become someone else (#16.2):

* a token is made by its own user (signed in: ``vaultd login`` with the
  password, or a token they already hold) or, for a *service user* (no
  password, no evidence role), by an admin; never by an admin for a person,
  nor for anyone holding an evidence role (``EVIDENCE_ROLES``);
* roles that approve or see other people's recordings (``APPROVED_ROLES``:
  supervisor, leader, legal, auditor), given over the API by an admin (at
  ``users add`` or ``users edit``), are *pending* and not in force until a
  leader, or an admin other than the one who gave them, approves them
  (``users approve``). The station's owner (``--home`` mode, who holds the
  database and the keys) gives them at once: it is how the first leader
  exists, and vaultd could not stop it anyway; its ``user.add`` and
  ``user.edit`` entries name the roles;
* nobody edits their own roles, unit, clearance or 警号.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher
from sqlalchemy import Connection
from argon2.exceptions import InvalidHashError, VerificationError

from vaultd import access, audit, signin, views
from vaultd.access import Action, Level, Principal, Role
from vaultd.audit import Event
from vaultd.catalog import people as db
from vaultd.catalog.people import Directory, UserRow, display_label
from vaultd.errors import (
    AccessDeniedError,
    AuthenticationError,
    NotFoundError,
    TooManyAttemptsError,
    UsageError,
)
from vaultd.i18n import _
from vaultd.safetext import check_name, check_optional
from vaultd.model import Actor
from vaultd.vault import Vault, utcnow

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
TOKEN_PREFIX = "vdt_"
_hasher = PasswordHasher()  # argon2id with the library's current defaults
#: roles that read, ask for or approve evidence: never given a token by an admin
EVIDENCE_ROLES = frozenset({Role.OFFICER, Role.SUPERVISOR, Role.LEADER, Role.LEGAL})
#: roles that approve or see other people's recordings: given over the API only with a second person's approval
APPROVED_ROLES = frozenset({Role.SUPERVISOR, Role.LEADER, Role.LEGAL, Role.AUDITOR})


def actor_of(p: Principal, via: str) -> Actor:
    kind, _sep, name = p.name.partition(":") if p.local_owner else ("user", "", p.name)
    return Actor(kind=kind if p.local_owner else "user", name=name if p.local_owner else p.name, via=via)


def local_owner(via: str = "cli") -> Principal:
    me = Actor.local(via)
    return Principal(name=me.label, roles=frozenset(Role), clearance=Level.SECRET, local_owner=True)


def principal_of(u: UserRow) -> Principal:
    return Principal(name=u.name, roles=frozenset(Role(r) for r in u.roles), unit=u.unit,
                     officer_number=u.officer_number, clearance=Level(u.clearance),
                     disabled=u.disabled_at is not None)


def require(vault: Vault, actor: Principal, action: Action, via: str, what: str) -> None:
    """Allow, or log the refusal and raise AccessDeniedError naming the rule."""
    decision = access.decide(actor, action, now=utcnow())
    if decision.allowed:
        return
    with vault.engine.begin() as conn:
        audit.append(conn, Event("access.denied", actor_of(actor, via), {
            "action": action.value, "what": what, "rule": decision.rule}))
    raise AccessDeniedError(_("%s may not %s (rule: %s)") % (actor.name, what, decision.rule),
                            rule=decision.rule)


def refuse_unless(actor: Principal, action: Action, via: str, details: dict[str, Any] | None = None) -> str:
    """The rule that allows ``action``, else an AccessDeniedError carrying its
    ``access.denied`` entry (written by ``audit.logging_refusals`` even when the
    caller's transaction rolls back)."""
    decision = access.decide(actor, action, now=utcnow())
    if not decision.allowed:
        raise audit.refusal(
            AccessDeniedError(_("%s may not %s (rule: %s)") % (actor.name, action.value, decision.rule),
                              rule=decision.rule),
            Event("access.denied", actor_of(actor, via),
                  {"action": action.value, "rule": decision.rule, **(details or {})}))
    return decision.rule


def check_login_name(name: str) -> None:
    """The one check of login names: ASCII letters, digits and '_.@-', 1-64 long.

    People's own names (王小明) go in the display name; a login name is typed
    at every sign-in and ends up in paths, logs and URLs."""
    if _NAME.match(name):
        return
    if not name.isascii():
        raise UsageError(_("login name %s is not ASCII") % ascii(name),
                         hint=_("login names use only a-z, A-Z, 0-9, '_', '.', '@' and '-'; "
                                "put the person's own name in --display-name"))
    raise UsageError(_("login name %s is not allowed") % ascii(name),
                     hint=_("use 1-64 letters, digits, '_', '.', '@' or '-'"))


def check_display_name(text: str | None) -> str | None:
    """A display name as given (Unicode kept without loss, NFC as typed), or None
    when empty; refused when it holds control, format or bidi characters."""
    if text is None or not text.strip():
        return None
    if len(text) > 64:
        raise UsageError(_("the display name is longer than 64 characters"))
    bad = [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")]
    if bad:
        raise UsageError(_("the display name holds control or formatting characters (%s)")
                         % ", ".join(f"U+{ord(c):04X}" for c in bad[:5]),
                         hint=_("type the name as it is written, e.g. 王小明"))
    return text.strip()


@dataclass(frozen=True)
class NewUser:
    name: str
    roles: tuple[Role, ...]
    unit: str | None = None
    officer_number: str | None = None
    clearance: Level = Level.NORMAL
    display_name: str | None = None


def add_user(vault: Vault, actor: Principal, new: NewUser, password: str | None, via: str) -> UserRow:
    require(vault, actor, Action.MANAGE_USERS, via, _("add users"))
    check_login_name(new.name)
    display_name = check_display_name(new.display_name)
    check_optional(new.unit, _("unit name"))
    check_optional(new.officer_number, _("officer number"))
    if not new.roles:
        raise UsageError(_("a user needs at least one role"),
                         hint=_("--role officer|supervisor|leader|legal|auditor|admin"))
    if password is not None and len(password) < 10:
        raise UsageError(_("the password is too short"), hint=_("use at least 10 characters"))
    roles, pending = split_roles(actor, frozenset(new.roles), frozenset())
    digest = _hasher.hash(password) if password else None
    with vault.engine.begin() as conn:
        if db.user_by_name(conn, new.name):
            raise UsageError(_("user %s already exists") % new.name)
        if new.officer_number and db.user_by_officer(conn, new.officer_number):
            raise UsageError(_("officer number %s already belongs to another user") % new.officer_number)
        uid = db.add_user(conn, name=new.name, roles=_values(roles), unit=new.unit,
                          officer_number=new.officer_number, clearance=new.clearance.value,
                          password_hash=digest, at=utcnow(), display_name=display_name)
        if pending:
            db.set_pending(conn, uid, _values(pending), actor.name)
        audit.append(conn, Event("user.add", actor_of(actor, via), {
            "name": new.name, "display_name": display_name, "roles": _values(roles),
            "pending_roles": _values(pending), "unit": new.unit, "officer_number": new.officer_number,
            "clearance": new.clearance.value, "password": digest is not None}))
        row = db.user_by_name(conn, new.name)
    assert row is not None
    return row


def _values(roles: frozenset[Role] | tuple[Role, ...]) -> list[str]:
    return sorted(r.value for r in roles)


def split_roles(actor: Principal, wanted: frozenset[Role], held: frozenset[Role]) -> tuple[
        frozenset[Role], frozenset[Role]]:
    """(in force now, pending approval) when ``actor`` gives ``wanted`` to a user
    who holds ``held``: new APPROVED_ROLES wait, unless the station's owner gives them."""
    if actor.local_owner:
        return wanted, frozenset()
    pending = (wanted - held) & APPROVED_ROLES
    return wanted - pending, pending


@dataclass(frozen=True)
class UserEdit:
    """What ``users edit`` changes; None leaves a field as it is ('' clears a text)."""
    roles: tuple[Role, ...] | None = None
    unit: str | None = None
    officer_number: str | None = None
    clearance: Level | None = None
    display_name: str | None = None


def edit_user(vault: Vault, actor: Principal, name: str, edit: UserEdit, via: str) -> UserRow:
    """Change a user's roles, unit, 警号, clearance or display name: one audit
    entry with each field before and after. New APPROVED_ROLES wait for approval."""
    require(vault, actor, Action.MANAGE_USERS, via, _("edit users"))
    display_name = check_display_name(edit.display_name) if edit.display_name is not None else None
    check_optional(edit.unit or None, _("unit name"))
    check_optional(edit.officer_number or None, _("officer number"))
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        user = _user(conn, name)
        if user.name == actor.name and (edit.roles is not None or edit.unit is not None
                                        or edit.officer_number is not None or edit.clearance is not None):
            raise _refused(actor, via, "own-account", _("nobody edits their own roles, unit, 警号 or clearance"),
                           {"name": name})
        changes: dict[str, Any] = {}
        held = frozenset(Role(r) for r in user.roles)
        if edit.roles is not None:
            if not edit.roles:
                raise UsageError(_("a user needs at least one role"))
            wanted = frozenset(edit.roles)
            if user.password_hash is None and wanted & EVIDENCE_ROLES and not held >= wanted & EVIDENCE_ROLES:
                raise _refused(actor, via, "service-user-evidence-role",
                               _("%s has no password (a service user): evidence roles are for people "
                                 "who sign in") % name, {"name": name, "roles": _values(wanted)})
            roles, new_pending = split_roles(actor, wanted, held)
            kept = (frozenset(Role(r) for r in user.pending_roles) & wanted) - roles
            pending = new_pending | kept
            givers = ({g for g in (user.pending_by or "").split(",") if g} if kept else set()) | (
                {actor.name} if new_pending else set())
            changes["roles"] = [list(user.roles), _values(roles)]
            changes["pending_roles"] = [list(user.pending_roles), _values(pending)]
            db.update_user(conn, user.id, roles=json.dumps(_values(roles)))
            db.set_pending(conn, user.id, _values(pending), ",".join(sorted(givers)) or None)
        texts = {"unit": edit.unit, "officer_number": edit.officer_number,
                 "display_name": None if edit.display_name is None else display_name or ""}
        for field, text in texts.items():
            if text is None:
                continue
            value = text.strip() or None
            if field == "officer_number" and value and (other := db.user_by_officer(conn, value)) \
                    and other.id != user.id:
                raise UsageError(_("officer number %s already belongs to another user") % value)
            changes[field] = [getattr(user, field), value]
            db.update_user(conn, user.id, **{field: value})
        if edit.clearance is not None:
            changes["clearance"] = [user.clearance, edit.clearance.value]
            db.update_user(conn, user.id, clearance=edit.clearance.value)
        if not changes:
            raise UsageError(_("nothing to change for %s") % name,
                             hint=_("give --role, --unit, --officer-number, --clearance or --display-name"))
        audit.append(conn, Event("user.edit", actor_of(actor, via), {"name": name, "changes": changes}))
        row = _user(conn, name)
    return row


def approve_roles(vault: Vault, actor: Principal, name: str, via: str) -> UserRow:
    """Put a user's pending roles in force: a leader, or an admin who did not give them."""
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        user = _user(conn, name)
        if not user.pending_roles:
            raise UsageError(_("%s has no roles waiting for approval") % name)
        rule = approve_rule(actor, user)
        if rule.startswith("!"):
            raise _refused(actor, via, rule[1:], _("%s may not approve the roles of %s (rule: %s)")
                           % (actor.name, name, rule[1:]), {"name": name, "roles": list(user.pending_roles)})
        roles = sorted(set(user.roles) | set(user.pending_roles))
        db.update_user(conn, user.id, roles=json.dumps(roles))
        db.set_pending(conn, user.id, [], None)
        audit.append(conn, Event("user.roles_approved", actor_of(actor, via), {
            "name": name, "approved": list(user.pending_roles), "given_by": user.pending_by,
            "roles": roles, "rule": rule}))
        row = _user(conn, name)
    return row


def approve_rule(actor: Principal, user: UserRow) -> str:
    """Who may approve ``user``'s pending roles: the rule, or '!rule' when refused (pure)."""
    if actor.disabled:
        return "!disabled"
    if actor.local_owner:
        return "local-owner"
    if actor.name == user.name:
        return "!own-account"
    if Role.LEADER in actor.roles:
        return "leader"
    if Role.ADMIN in actor.roles:
        return "!same-admin" if actor.name in (user.pending_by or "").split(",") else "second-admin"
    return "!role"


def pending_users(vault: Vault, actor: Principal, via: str) -> list[UserRow]:
    """Users whose roles wait for approval: for leaders and admins."""
    if not (actor.local_owner or Role.LEADER in actor.roles):
        require(vault, actor, Action.MANAGE_USERS, via, _("list roles waiting for approval"))
    with vault.engine.connect() as conn:
        return [u for u in db.all_users(conn) if u.pending_roles]


def _refused(actor: Principal, via: str, rule: str, message: str, details: dict[str, Any]) -> AccessDeniedError:
    return audit.refusal(AccessDeniedError(message, rule=rule),
                         Event("access.denied", actor_of(actor, via), {"rule": rule, **details}))


def list_users(vault: Vault, actor: Principal, via: str) -> list[UserRow]:
    require(vault, actor, Action.MANAGE_USERS, via, _("list users"))
    with vault.engine.connect() as conn:
        return db.all_users(conn)


def disable_user(vault: Vault, actor: Principal, name: str, via: str) -> None:
    require(vault, actor, Action.MANAGE_USERS, via, _("disable users"))
    with vault.engine.begin() as conn:
        user = _user(conn, name)
        db.disable_user(conn, user.id, utcnow())
        audit.append(conn, Event("user.disable", actor_of(actor, via), {"name": name}))


def unlock_user(vault: Vault, actor: Principal, name: str, via: str) -> int:
    """Forget an account's failed logins (its delay ends); how many were forgotten."""
    require(vault, actor, Action.MANAGE_USERS, via, _("unlock users"))
    with vault.engine.begin() as conn:
        _user(conn, name)
        cleared = signin.forget_account(conn, name)
        audit.append(conn, Event("user.unlock", actor_of(actor, via), {"name": name, "failures_cleared": cleared}))
    return cleared


def _user(conn: Connection, name: str) -> UserRow:
    user = db.user_by_name(conn, name)
    if user is None:
        raise NotFoundError(_("no user %s") % name, hint=_("'vaultd users list' shows the users"))
    return user


@dataclass(frozen=True)
class IssuedToken:
    id: str
    secret: str  # shown once, stored only as a hash
    user: str
    expires_at: datetime


def token_rule(actor: Principal, user: UserRow) -> str:
    """Whether ``actor`` may make a token for ``user``: the rule, or '!rule' (pure).

    Their own (signed in), or an admin's for a service user: no password and no
    evidence role (pending ones included). Never the station's owner for a person."""
    if actor.disabled:
        return "!disabled"
    if not actor.local_owner and actor.name == user.name:
        return "own"
    if not (actor.local_owner or Role.ADMIN in actor.roles):
        return "!role"
    if {Role(r) for r in (*user.roles, *user.pending_roles)} & EVIDENCE_ROLES:
        return "!evidence-role"
    if user.password_hash is not None:
        return "!person-signs-in"
    return "service-user"


def create_token(vault: Vault, actor: Principal, name: str, expires_days: int, via: str) -> IssuedToken:
    if not 1 <= expires_days <= 3650:
        raise UsageError(_("--expires-days must be between 1 and 3650"))
    if not (actor.local_owner or actor.name == name or Role.ADMIN in actor.roles):
        require(vault, actor, Action.MANAGE_USERS, via, _("create tokens for other users"))
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        user = _user(conn, name)
        rule = token_rule(actor, user)
        if rule.startswith("!"):
            why = rule[1:]
            message = (_("a token for %s is made only by %s, signing in with the password ('vaultd login')")
                       % (name, name) if why in ("evidence-role", "person-signs-in")
                       else _("%s may not create a token for %s (rule: %s)") % (actor.name, name, why))
            raise _refused(actor, via, why, message, {"action": "create-token", "user": name})
        if user.disabled_at is not None:
            raise UsageError(_("user %s is disabled") % name)
        token = _issue(conn, user, expires_days, "own" if rule == "own" else "service")
        audit.append(conn, Event("token.create", actor_of(actor, via), {
            "token": token.id, "user": name, "expires_at": token.expires_at.isoformat(), "rule": rule}))
    return token


def _issue(conn: Connection, user: UserRow, expires_days: int, origin: str) -> IssuedToken:
    now = utcnow()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = IssuedToken("t" + secrets.token_hex(6), secret, user.name, now + timedelta(days=expires_days))
    db.add_token(conn, token_id=token.id, user_id=user.id, token_sha256=_sha(secret), at=now,
                 expires_at=token.expires_at, origin=origin)
    return token


def list_tokens(vault: Vault, actor: Principal, via: str, everyone: bool = False) -> list[db.TokenRow]:
    """Tokens without their secrets: one's own; with ``everyone``, an admin's view of all."""
    if everyone:
        require(vault, actor, Action.MANAGE_USERS, via, _("list other users' tokens"))
    with vault.engine.connect() as conn:
        return db.tokens(conn, None if everyone or actor.local_owner else actor.name)


def token_json(t: db.TokenRow, tz: ZoneInfo, now: datetime) -> dict[str, Any]:
    """A token as lists show it, times in the station's zone: never the secret."""
    return {"id": t.id, "user": t.user, "user_label": t.user_label, "origin": t.origin,
            "state": t.state(now), "created_at": views.iso(t.created_at, tz),
            "expires_at": views.iso(t.expires_at, tz), "revoked_at": views.iso(t.revoked_at, tz)}


def revoke_token(vault: Vault, actor: Principal, token_id: str, via: str) -> None:
    with vault.engine.connect() as conn:
        row = db.token_row(conn, token_id)
        owner = db.user_by_id(conn, row["user_id"]) if row else None
    if row is None or owner is None or owner.name != actor.name:
        require(vault, actor, Action.MANAGE_USERS, via, _("revoke other users' tokens"))
    if row is None:
        raise NotFoundError(_("no token %s") % token_id, hint=_("'vaultd tokens list' shows the ids"))
    with vault.engine.begin() as conn:
        db.revoke_token(conn, token_id, utcnow())
        audit.append(conn, Event("token.revoke", actor_of(actor, via), {
            "token": token_id, "user": owner.name if owner else None}))


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def authenticate(vault: Vault, secret: str, source: str, now: datetime | None = None) -> Principal:
    """The principal behind a bearer token; AuthenticationError if none.
    Bad tokens are logged, one entry per source a minute (``signin.note``)."""
    now = now or utcnow()
    with vault.engine.connect() as conn:
        found = db.token_owner(conn, _sha(secret), now) if secret.startswith(TOKEN_PREFIX) else None
    if found is None or found[1].disabled_at is not None:
        with vault.engine.begin() as conn:
            signin.note(conn, "token", signin.source_host(source), "?", Event(
                "auth.failed", Actor("user", "?", "api"),
                {"source": source, "why": "unknown, expired, revoked or disabled token"}), now)
        raise AuthenticationError(_("the token is unknown, expired or revoked"),
                                  hint=_("get a new one with 'vaultd login' or from an admin"))
    return principal_of(found[1])


def login(vault: Vault, name: str, password: str, source: str, expires_days: int = 30,
          now: datetime | None = None) -> IssuedToken:
    """Password login, slowed per source and per account (``signin``); failures
    are logged, one entry per source a minute. Unknown names take as long as known ones."""
    if not 1 <= expires_days <= 3650:
        raise UsageError(_("expires_days must be between 1 and 3650"))
    now = now or utcnow()
    host = signin.source_host(source)
    with vault.engine.connect() as conn:
        wait_s = signin.decide_wait(signin.recent(conn, name, host, now), now)
    if wait_s > 0:
        with vault.engine.begin() as conn:
            signin.note(conn, "login", host, name, Event("auth.rate_limited", Actor("user", name, "api"), {
                "source": source, "wait_s": round(wait_s)}), now)
        raise TooManyAttemptsError(_("too many failed logins from here or for %s; try again in %d s")
                                   % (name, max(1, round(wait_s))),
                                   hint=_("wait, or ask an admin ('vaultd users unlock NAME')"),
                                   retry_after_s=max(1, round(wait_s)))
    with vault.engine.connect() as conn:
        user = db.user_by_name(conn, name)
    ok = _password_ok(user.password_hash if user else None, password)  # the same work for unknown names
    if user is None or user.disabled_at is not None or not ok:
        with vault.engine.begin() as conn:
            signin.record_failure(conn, name, host, now)
            signin.note(conn, "login", host, name, Event("auth.failed", Actor("user", name, "api"),
                                                         {"source": source}), now)
        raise AuthenticationError(_("wrong user name or password"))
    with vault.engine.begin() as conn:
        signin.forget_source(conn, name, host)
        token = _issue(conn, user, expires_days, "login")
        audit.append(conn, Event("auth.login", Actor("user", name, "api"), {"source": source, "token": token.id}))
    return token


_DUMMY_HASH: list[str] = []


def _password_ok(digest: str | None, password: str) -> bool:
    """argon2 verify; without a hash (unknown name, token-only user), a dummy one
    is verified so that the answer takes as long."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(_hasher.hash(secrets.token_urlsafe(16)))
    try:
        return _hasher.verify(digest or _DUMMY_HASH[0], password) and digest is not None
    except (VerificationError, InvalidHashError):
        return False


def assign_device(vault: Vault, actor: Principal, serial: str, officer_number: str, via: str) -> None:
    require(vault, actor, Action.MANAGE_DEVICES, via, _("assign devices"))
    check_name(serial, _("device serial"))
    check_name(officer_number, _("officer number"))
    with vault.engine.begin() as conn:
        db.assign_device(conn, serial, officer_number, utcnow())
        audit.append(conn, Event("device.assign", actor_of(actor, via), {
            "device_serial": serial, "officer_number": officer_number}))


def directory(vault: Vault) -> Directory:
    """Who is who: labels by login name and by 警号, for lists and documents
    (``directory(vault).name('wang')`` -> '王小明 (警号 012345, 一大队)')."""
    with vault.engine.connect() as conn:
        return db.directory(conn, vault.config.agency.unit_names)


__all__ = ["AccessDeniedError", "Directory", "IssuedToken", "NewUser", "add_user", "authenticate",
           "directory", "display_label", "login"]
