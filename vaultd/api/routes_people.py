"""Login, users, tokens and device assignments, and the health probe."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

import vaultd
from vaultd import people, views
from vaultd.api import errors
from vaultd.api.deps import VIA, PrincipalDep, VaultDep, source_of, zone
from vaultd.api.errors import VaultRoute
from vaultd.api.models import (
    AssignIn,
    AssignOut,
    DisabledOut,
    HealthOut,
    LoginIn,
    TokenIn,
    TokenOut,
    UserIn,
    UserList,
    UserOut,
)
from vaultd.catalog.people import UserRow

public = APIRouter(tags=["session"], route_class=VaultRoute)
admin = APIRouter(tags=["admin"], route_class=VaultRoute)
Segment = Annotated[str, Path(min_length=1, max_length=200)]


def token_json(token: people.IssuedToken, tz: ZoneInfo) -> dict[str, Any]:
    return {"token": token.secret, "id": token.id, "expires_at": views.iso(token.expires_at, tz)}


def user_json(u: UserRow, tz: ZoneInfo) -> dict[str, Any]:
    """A user without their password hash."""
    return {"name": u.name, "display_name": u.display_name, "label": u.label, "roles": list(u.roles), "unit": u.unit, "officer_number": u.officer_number,
            "clearance": u.clearance, "created_at": views.iso(u.created_at, tz),
            "disabled_at": views.iso(u.disabled_at, tz)}


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


@admin.post("/users/{name}/disable", response_model=DisabledOut, summary="Disable a user (admin)")
def disable_user(vault: VaultDep, actor: PrincipalDep, name: Segment) -> dict[str, Any]:
    people.disable_user(vault, actor, name, VIA)
    return {"name": name, "disabled": True}


@admin.post("/tokens", status_code=201, response_model=TokenOut,
            summary="A token for a user (admin, or the user themself); the secret is shown once")
def create_token(vault: VaultDep, actor: PrincipalDep, body: TokenIn) -> dict[str, Any]:
    token = people.create_token(vault, actor, body.user, body.expires_days, VIA)
    return token_json(token, zone(vault))


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
