"""Login, users, tokens and device assignments, and the health probe."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

import vaultd
from vaultd import people, units, views
from vaultd.api import errors
from vaultd.api.deps import VIA, PrincipalDep, VaultDep, aware, source_of, zone
from vaultd.api.errors import VaultRoute
from vaultd.api.models import (
    AssignIn,
    AssignOut,
    DisabledOut,
    HealthOut,
    LoginIn,
    ReassignIn,
    ReassignOut,
    TokenIn,
    TokenList,
    TokenOut,
    UnlockOut,
    UserEditIn,
    UserIn,
    UserList,
    UserOut,
)
from vaultd.catalog.people import UserRow
from vaultd.vault import utcnow

public = APIRouter(tags=["session"], route_class=VaultRoute)
admin = APIRouter(tags=["admin"], route_class=VaultRoute)
Segment = Annotated[str, Path(min_length=1, max_length=200)]


def token_json(token: people.IssuedToken, tz: ZoneInfo) -> dict[str, Any]:
    return {"token": token.secret, "id": token.id, "expires_at": views.iso(token.expires_at, tz)}


def user_json(u: UserRow, tz: ZoneInfo) -> dict[str, Any]:
    """A user without their password hash."""
    return {"name": u.name, "display_name": u.display_name, "label": u.label, "roles": list(u.roles), "unit": u.unit, "officer_number": u.officer_number,
            "clearance": u.clearance, "created_at": views.iso(u.created_at, tz),
            "disabled_at": views.iso(u.disabled_at, tz), "pending_roles": list(u.pending_roles)}


@public.get("/health", response_model=HealthOut, summary="Liveness; needs no token",
            responses=errors.only(500))
def health() -> dict[str, Any]:
    return {"status": "ok", "version": vaultd.__version__}


@public.post("/login", response_model=TokenOut, summary="Password login: a new bearer token (rate-limited)",
             responses=errors.only(400, 401, 422, 429, 500))
def login(request: Request, vault: VaultDep, body: LoginIn) -> dict[str, Any]:
    token = people.login(vault, body.name, body.password, source_of(request), body.expires_days)
    return token_json(token, zone(vault))


@admin.post("/users", status_code=201, response_model=UserOut, summary="Add a user (admin)")
def add_user(vault: VaultDep, actor: PrincipalDep, body: UserIn) -> dict[str, Any]:
    new = people.NewUser(body.name, tuple(body.role), unit=body.unit, officer_number=body.officer_number,
                         clearance=body.clearance, display_name=body.display_name)
    return user_json(people.add_user(vault, actor, new, body.password, VIA), zone(vault))


@admin.get("/users", response_model=UserList, summary="All users (admin)")
def list_users(vault: VaultDep, actor: PrincipalDep) -> dict[str, Any]:
    tz = zone(vault)
    return {"items": [user_json(u, tz) for u in people.list_users(vault, actor, VIA)]}


@admin.get("/users/pending", response_model=UserList,
           summary="Users whose roles wait for approval (leader, admin)")
def pending_users(vault: VaultDep, actor: PrincipalDep) -> dict[str, Any]:
    tz = zone(vault)
    return {"items": [user_json(u, tz) for u in people.pending_users(vault, actor, VIA)]}


@admin.patch("/users/{name}", response_model=UserOut,
             summary="Change a user's roles, unit, 警号, clearance or display name (admin; audited)")
def edit_user(vault: VaultDep, actor: PrincipalDep, name: Segment, body: UserEditIn) -> dict[str, Any]:
    edit = people.UserEdit(roles=tuple(body.role) if body.role is not None else None, unit=body.unit,
                           officer_number=body.officer_number, clearance=body.clearance,
                           display_name=body.display_name)
    return user_json(people.edit_user(vault, actor, name, edit, VIA), zone(vault))


@admin.post("/users/{name}/approve", response_model=UserOut,
            summary="Put a user's pending roles in force (a leader, or an admin who did not give them)")
def approve_roles(vault: VaultDep, actor: PrincipalDep, name: Segment) -> dict[str, Any]:
    return user_json(people.approve_roles(vault, actor, name, VIA), zone(vault))


@admin.post("/users/{name}/unlock", response_model=UnlockOut,
            summary="Forget a user's failed logins, ending their delay (admin; audited)")
def unlock_user(vault: VaultDep, actor: PrincipalDep, name: Segment) -> dict[str, Any]:
    return {"name": name, "failures_cleared": people.unlock_user(vault, actor, name, VIA)}


@admin.post("/users/{name}/disable", response_model=DisabledOut, summary="Disable a user (admin)")
def disable_user(vault: VaultDep, actor: PrincipalDep, name: Segment) -> dict[str, Any]:
    people.disable_user(vault, actor, name, VIA)
    return {"name": name, "disabled": True}


@admin.post("/tokens", status_code=201, response_model=TokenOut,
            summary="A token for yourself, or (admin) for a service user; never for a person; the secret is shown once")
def create_token(vault: VaultDep, actor: PrincipalDep, body: TokenIn) -> dict[str, Any]:
    token = people.create_token(vault, actor, body.user, body.expires_days, VIA)
    return token_json(token, zone(vault))


@admin.get("/tokens", response_model=TokenList,
           summary="Your tokens; with all=true (admin) everyone's; never the secrets")
def list_tokens(vault: VaultDep, actor: PrincipalDep,
                all: Annotated[bool, Query(description="every user's tokens (admin)")] = False) -> dict[str, Any]:
    tz, now = zone(vault), utcnow()
    return {"items": [people.token_json(t, tz, now) for t in people.list_tokens(vault, actor, VIA, everyone=all)]}


@admin.delete("/tokens/{token_id}", status_code=204, response_class=Response,
              summary="Revoke a token (admin, or its owner)")
def revoke_token(vault: VaultDep, actor: PrincipalDep, token_id: Segment) -> Response:
    people.revoke_token(vault, actor, token_id, VIA)
    return Response(status_code=204)


@admin.post("/devices/{serial}/assign", response_model=AssignOut,
            summary="Hand a camera to an officer from now on (admin; R13)")
def assign_device(vault: VaultDep, actor: PrincipalDep, serial: Segment, body: AssignIn) -> dict[str, Any]:
    people.assign_device(vault, actor, serial, body.officer_number, VIA)
    return {"device_serial": serial, "officer_number": body.officer_number}


@admin.post("/recordings/reassign", response_model=ReassignOut,
            summary="Move recordings (one, or an officer's in a time range) to another unit (admin; R13; audited)")
def reassign(vault: VaultDep, actor: PrincipalDep, body: ReassignIn) -> dict[str, Any]:
    tz = zone(vault)
    which = units.Selection(recording=body.recording, officer=body.officer,
                            since=aware(body.since, tz, "since"), until=aware(body.until, tz, "until"))
    moved = units.reassign(vault, actor, which, body.unit, body.reason, VIA)
    return {"items": [m.__dict__ for m in moved]}
