"""What every endpoint needs: the vault, the caller, the station's zone.

The caller is whoever owns the bearer token, as ``people.authenticate`` says;
the API adds no access rule of its own.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vaultd import people
from vaultd.access import Principal
from vaultd.errors import AuthenticationError, UsageError
from vaultd.i18n import _
from vaultd.vault import Vault

VIA = "api"
_bearer = HTTPBearer(auto_error=False, description="a token from POST /api/v1/login or POST /api/v1/tokens")


def get_vault(request: Request) -> Vault:
    vault = request.app.state.vault
    assert isinstance(vault, Vault)
    return vault


def source_of(request: Request) -> str:
    """The client as the audit log names it: host:port (or the socket)."""
    client = request.client
    return f"{client.host}:{client.port}" if client else "unix-socket"


def get_principal(request: Request,
                  creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    if creds is None or not creds.credentials:
        raise AuthenticationError(_("a bearer token is required"),
                                  hint=_("send 'Authorization: Bearer <token>'; get one from POST /api/v1/login"))
    return people.authenticate(get_vault(request), creds.credentials, source=source_of(request))


def zone(vault: Vault) -> ZoneInfo:
    return ZoneInfo(vault.config.time.station_tz)


def aware(t: datetime | None, tz: ZoneInfo, what: str) -> datetime | None:
    """A time from the query: the station's zone when it has none, then UTC."""
    if t is None:
        return None
    try:
        return (t.replace(tzinfo=tz) if t.tzinfo is None else t).astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise UsageError(_("%s is out of range") % what) from None


VaultDep = Annotated[Vault, Depends(get_vault)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
