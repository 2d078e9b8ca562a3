"""Users, their API tokens, logins, and which officer holds which camera.

Every function takes the acting principal, asks ``access.decide`` and writes
the audit entry itself, refusals included.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Connection
from argon2.exceptions import InvalidHashError, VerificationError

from vaultd import access, audit
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
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
_hasher = PasswordHasher()  # argon2id with the library's current defaults


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
    digest = _hasher.hash(password) if password else None
    with vault.engine.begin() as conn:
        if db.user_by_name(conn, new.name):
            raise UsageError(_("user %s already exists") % new.name)
        if new.officer_number and db.user_by_officer(conn, new.officer_number):
            raise UsageError(_("officer number %s already belongs to another user") % new.officer_number)
        db.add_user(conn, name=new.name, roles=[r.value for r in new.roles], unit=new.unit,
                    officer_number=new.officer_number, clearance=new.clearance.value,
                    password_hash=digest, at=utcnow(), display_name=display_name)
        audit.append(conn, Event("user.add", actor_of(actor, via), {
            "name": new.name, "display_name": display_name, "roles": [r.value for r in new.roles],
            "unit": new.unit, "officer_number": new.officer_number, "clearance": new.clearance.value}))
        row = db.user_by_name(conn, new.name)
    assert row is not None
    return row


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


def create_token(vault: Vault, actor: Principal, name: str, expires_days: int, via: str) -> IssuedToken:
    if actor.name != name:
        require(vault, actor, Action.MANAGE_USERS, via, _("create tokens for other users"))
    if not 1 <= expires_days <= 3650:
        raise UsageError(_("--expires-days must be between 1 and 3650"))
    with vault.engine.begin() as conn:
        user = _user(conn, name)
        if user.disabled_at is not None:
            raise UsageError(_("user %s is disabled") % name)
        token = _issue(conn, user, expires_days)
        audit.append(conn, Event("token.create", actor_of(actor, via), {
            "token": token.id, "user": name, "expires_at": token.expires_at.isoformat()}))
    return token


def _issue(conn: Connection, user: UserRow, expires_days: int) -> IssuedToken:
    now = utcnow()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = IssuedToken("t" + secrets.token_hex(6), secret, user.name, now + timedelta(days=expires_days))
    db.add_token(conn, token_id=token.id, user_id=user.id, token_sha256=_sha(secret), at=now,
                 expires_at=token.expires_at)
    return token


def revoke_token(vault: Vault, actor: Principal, token_id: str, via: str) -> None:
    with vault.engine.begin() as conn:
        row = db.token_row(conn, token_id)
        if row is None:
            raise NotFoundError(_("no token %s") % token_id)
        owner = db.user_by_id(conn, row["user_id"])
    if owner is None or owner.name != actor.name:
        require(vault, actor, Action.MANAGE_USERS, via, _("revoke other users' tokens"))
    with vault.engine.begin() as conn:
        db.revoke_token(conn, token_id, utcnow())
        audit.append(conn, Event("token.revoke", actor_of(actor, via), {"token": token_id}))


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def authenticate(vault: Vault, secret: str, source: str) -> Principal:
    """The principal behind a bearer token; AuthenticationError if none."""
    now = utcnow()
    with vault.engine.connect() as conn:
        found = db.token_owner(conn, _sha(secret), now) if secret.startswith(TOKEN_PREFIX) else None
    if found is None or found[1].disabled_at is not None:
        with vault.engine.begin() as conn:
            audit.append(conn, Event("auth.failed", Actor("user", "?", "api"), {
                "source": source, "why": "unknown, expired, revoked or disabled token"}))
        raise AuthenticationError(_("the token is unknown, expired or revoked"),
                                  hint=_("get a new one with 'vaultd login' or from an admin"))
    return principal_of(found[1])


def login(vault: Vault, name: str, password: str, source: str, expires_days: int = 30) -> IssuedToken:
    """Password login; rate-limited per name; failures are logged."""
    if not 1 <= expires_days <= 3650:
        raise UsageError(_("expires_days must be between 1 and 3650"))
    now = utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        if db.recent_auth_failures(conn, name, now - FAILURE_WINDOW) >= MAX_FAILURES:
            raise audit.refusal(
                TooManyAttemptsError(_("too many failed logins for %s") % name,
                                     hint=_("wait 15 minutes, or ask an admin")),
                Event("auth.rate_limited", Actor("user", name, "api"), {"source": source}))
        user = db.user_by_name(conn, name)
        if user is None or user.disabled_at is not None or not _password_ok(user, password):
            db.add_auth_failure(conn, name, now, source)
            audit.append(conn, Event("auth.failed", Actor("user", name, "api"), {"source": source}))
            failed = True
        else:
            failed = False
            token = _issue(conn, user, expires_days)
            audit.append(conn, Event("auth.login", Actor("user", name, "api"), {
                "source": source, "token": token.id}))
    if failed:
        raise AuthenticationError(_("wrong user name or password"))
    return token


def _password_ok(user: UserRow, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
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
