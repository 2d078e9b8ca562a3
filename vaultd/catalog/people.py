"""Users, API tokens, failed logins and device assignments in the catalog."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update

from vaultd.catalog.schema import api_tokens, device_assignments, users
from vaultd.i18n import _


@dataclass(frozen=True)
class UserRow:
    id: int
    name: str
    roles: tuple[str, ...]
    unit: str | None
    officer_number: str | None
    clearance: str
    password_hash: str | None
    created_at: datetime
    disabled_at: datetime | None
    display_name: str | None = None
    pending_roles: tuple[str, ...] = ()  # given, not yet approved: not in force
    pending_by: str | None = None

    @property
    def label(self) -> str:
        """How documents and lists name this person: '王小明 (警号 012345, 一大队)'."""
        return display_label(self.name, self.display_name, self.officer_number, self.unit)


def display_label(name: str, display_name: str | None = None, officer_number: str | None = None,
                  unit: str | None = None) -> str:
    """A person as people read it: the display name (else the login name), then
    警号 and unit where known: '王小明 (警号 012345, 一大队)', 'li (一大队)', 'sun'."""
    parts = ([_("警号 %s") % officer_number] if officer_number else []) + ([unit] if unit else [])
    shown = display_name or name
    return f"{shown} ({', '.join(parts)})" if parts else shown


@dataclass(frozen=True)
class Directory:
    """Who is who, for documents and lists that hold login names or 警号.

    ``name('wang')`` and ``officer('012345')`` give the person's label, or the
    value itself when no user has it (a recording's officer may have no account)."""
    by_name: dict[str, str]
    by_officer: dict[str, str]
    display_names: dict[str, str]  # login name -> display name (the login name when none)

    def name(self, login: str | None) -> str:
        if not login:
            return "-"
        return self.by_name.get(login, login)

    def officer(self, officer_number: str | None) -> str:
        if not officer_number:
            return "-"
        return self.by_officer.get(officer_number, officer_number)


def directory(conn: Connection, unit_names: Mapping[str, str] | None = None) -> Directory:
    """Every user's label, by login name and by 警号 (one query; no secrets); a unit
    is shown by its name in ``unit_names`` (``[agency.units]``), else by its id."""
    q = select(users.c.name, users.c.display_name, users.c.officer_number, users.c.unit)
    by_name: dict[str, str] = {}
    by_officer: dict[str, str] = {}
    shown: dict[str, str] = {}
    units = unit_names or {}
    for name, display_name, number, unit in conn.execute(q):
        label = display_label(name, display_name, number, units.get(unit, unit) if unit else unit)
        by_name[name] = label
        shown[name] = display_name or name
        if number:
            by_officer[number] = label
    return Directory(by_name, by_officer, shown)


def _user(row: Any) -> UserRow:
    m = row._mapping
    return UserRow(id=m["id"], name=m["name"], roles=tuple(json.loads(m["roles"])), unit=m["unit"],
                   officer_number=m["officer_number"], clearance=m["clearance"],
                   password_hash=m["password_hash"], created_at=m["created_at"],
                   disabled_at=m["disabled_at"], display_name=m["display_name"],
                   pending_roles=tuple(json.loads(m["pending_roles"] or "[]")),
                   pending_by=m["pending_by"])


def add_user(conn: Connection, *, name: str, roles: list[str], unit: str | None,
             officer_number: str | None, clearance: str, password_hash: str | None,
             at: datetime, display_name: str | None = None) -> int:
    result = conn.execute(insert(users).values(
        name=name, roles=json.dumps(roles), unit=unit, officer_number=officer_number,
        clearance=clearance, password_hash=password_hash, created_at=at, display_name=display_name))
    pk = result.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def user_by_name(conn: Connection, name: str) -> UserRow | None:
    row = conn.execute(select(users).where(users.c.name == name)).first()
    return _user(row) if row else None


def user_by_id(conn: Connection, user_id: int) -> UserRow | None:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return _user(row) if row else None


def user_by_officer(conn: Connection, officer_number: str) -> UserRow | None:
    row = conn.execute(select(users).where(users.c.officer_number == officer_number)).first()
    return _user(row) if row else None


def all_users(conn: Connection) -> list[UserRow]:
    return [_user(r) for r in conn.execute(select(users).order_by(users.c.name))]


def disable_user(conn: Connection, user_id: int, at: datetime) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(disabled_at=at))


def update_user(conn: Connection, user_id: int, **values: Any) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(**values))


def set_pending(conn: Connection, user_id: int, roles: list[str], given_by: str | None) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(
        pending_roles=json.dumps(roles) if roles else None, pending_by=given_by if roles else None))


def add_token(conn: Connection, *, token_id: str, user_id: int, token_sha256: str,
              at: datetime, expires_at: datetime, origin: str | None = None) -> None:
    conn.execute(insert(api_tokens).values(id=token_id, user_id=user_id, token_sha256=token_sha256,
                                           created_at=at, expires_at=expires_at, origin=origin))


@dataclass(frozen=True)
class TokenRow:
    """A token as lists show it: never its secret nor the secret's hash."""
    id: str
    user: str
    user_label: str
    origin: str | None  # login, own, service; None: made before vaultd recorded it
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "live"


def tokens(conn: Connection, user: str | None = None) -> list[TokenRow]:
    """Every token (of ``user``, when given), newest first."""
    q = select(api_tokens.c.id, api_tokens.c.origin, api_tokens.c.created_at, api_tokens.c.expires_at,
               api_tokens.c.revoked_at, users.c.name, users.c.display_name, users.c.officer_number,
               users.c.unit).join(users, users.c.id == api_tokens.c.user_id)
    if user is not None:
        q = q.where(users.c.name == user)
    return [TokenRow(r.id, r.name, display_label(r.name, r.display_name, r.officer_number, r.unit), r.origin,
                     r.created_at, r.expires_at, r.revoked_at)
            for r in conn.execute(q.order_by(api_tokens.c.created_at.desc(), api_tokens.c.id))]


def token_owner(conn: Connection, token_sha256: str, now: datetime) -> tuple[str, UserRow] | None:
    """(token id, user) for a live token, else None."""
    q = select(api_tokens.c.id, users).join(users, users.c.id == api_tokens.c.user_id).where(
        api_tokens.c.token_sha256 == token_sha256, api_tokens.c.revoked_at.is_(None),
        api_tokens.c.expires_at > now)
    row = conn.execute(q).first()
    return (row.id, _user(row)) if row else None


def token_row(conn: Connection, token_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
    return dict(row._mapping) if row else None


def revoke_token(conn: Connection, token_id: str, at: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=at))


def assign_device(conn: Connection, device_serial: str, officer_number: str, at: datetime) -> None:
    """Start a new assignment; the open one for the device ends now (R13)."""
    conn.execute(update(device_assignments).where(
        device_assignments.c.device_serial == device_serial,
        device_assignments.c.valid_until.is_(None)).values(valid_until=at))
    conn.execute(insert(device_assignments).values(
        device_serial=device_serial, officer_number=officer_number, valid_from=at))


def officer_at(conn: Connection, device_serial: str, when: datetime) -> str | None:
    """Who held the device at ``when`` (R13: 谁使用、谁负责)."""
    q = select(device_assignments.c.officer_number).where(
        device_assignments.c.device_serial == device_serial,
        device_assignments.c.valid_from <= when,
        or_(device_assignments.c.valid_until.is_(None), device_assignments.c.valid_until > when),
    ).order_by(device_assignments.c.valid_from.desc()).limit(1)
    row = conn.execute(q).first()
    return str(row[0]) if row else None


def assignments(conn: Connection, device_serial: str | None = None) -> list[dict[str, Any]]:
    q = select(device_assignments).order_by(device_assignments.c.device_serial,
                                            device_assignments.c.valid_from)
    if device_serial:
        q = q.where(and_(device_assignments.c.device_serial == device_serial))
    return [dict(r._mapping) for r in conn.execute(q)]
