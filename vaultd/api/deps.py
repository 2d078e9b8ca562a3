"""What every endpoint needs: the vault, the caller, the station's zone.

The caller is whoever owns the bearer token, as ``people.authenticate`` says;
the API adds no access rule of its own.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vaultd import people, timefmt
from vaultd.access import Principal
from vaultd.errors import AuthenticationError, UsageError
from vaultd.i18n import _
from vaultd.vault import Vault, utcnow

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
        out = (t.replace(tzinfo=tz) if t.tzinfo is None else t).astimezone(timezone.utc)
    except (OverflowError, ValueError):
        out = None
    if out is None or not timefmt.EARLIEST <= out < timefmt.LATEST:
        raise UsageError(_("%s is out of range") % what, hint=_("give a time between 1900 and 8999")) from None
    return out


def when(text: str | None, vault: Vault, what: str, *, end: bool = False) -> datetime | None:
    """A time filter from the query or a body (today, yesterday, 7d, a date, a date-time), in UTC.

    The same parser as the CLI's ``--since``/``--until``; a bad value is a 400 naming it and the forms.
    """
    return timefmt.parse_optional(text, zone(vault), utcnow(), what, end=end)


_FILTER_HELP = "today, yesterday, Nd (last N days, e.g. 7d), a date or a date-time (station zone unless an offset)"
Since = Annotated[str | None, Query(max_length=64, description="at or after: " + _FILTER_HELP)]
Until = Annotated[str | None, Query(max_length=64, description="before (a day: through its end): " + _FILTER_HELP)]

VaultDep = Annotated[Vault, Depends(get_vault)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
