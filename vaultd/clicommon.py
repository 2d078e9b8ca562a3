"""Pieces shared by the command-line front ends."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from vaultd import timefmt
from vaultd.safetext import json_text
from vaultd.errors import UsageError
from vaultd.home import resolve_home
from vaultd.i18n import _
from vaultd.model import Actor

if TYPE_CHECKING:  # the vault and its services, or the API client, load when a command uses them
    from vaultd.client import ApiClient
    from vaultd.vault import Vault

Handler = Callable[[argparse.Namespace], int]
#: vaults opened by this command; ``cli.main`` seals their logs before exit
opened: list[Vault] = []


def cmd(sub: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    return parser


# -- helpers -----------------------------------------------------------------

def open_(args: argparse.Namespace) -> Vault:
    from vaultd import admin
    from vaultd.vault import open_vault

    vault = open_vault(resolve_home(args.home), args.config)
    opened.append(vault)
    _SHOWN_ZONE[0] = zone(vault)
    admin.record_config(vault, Actor.local())
    return vault


def seal_opened() -> None:
    """Leave every entry this command appended covered by a signed checkpoint."""
    if not opened:
        return
    from vaultd import audit

    while opened:
        vault = opened.pop()
        try:
            audit.seal(vault)
        finally:
            vault.close()


def remote(args: argparse.Namespace) -> ApiClient | None:
    """The API client when this command talks to a vault over HTTP, else None.

    Remote when --url or $VAULTD_URL is given, or when `vaultd login` saved
    credentials and neither --home nor $VAULTD_HOME names a local vault.
    """
    from vaultd.client import ApiClient, saved_credentials

    url = getattr(args, "url", None) or os.environ.get("VAULTD_URL")
    token = getattr(args, "token", None) or os.environ.get("VAULTD_TOKEN")
    saved = saved_credentials()
    if not url and saved and not args.home and not os.environ.get("VAULTD_HOME"):
        url = saved[0]
    if not url:
        return None
    if not token and saved and saved[0].rstrip("/") == url.rstrip("/"):
        token = saved[1]
    return ApiClient(url, token)


def print_json(data: Any) -> None:
    """JSON on stdout: readable Unicode, control and bidi characters as ``\\uXXXX`` (the same data)."""
    sys.stdout.write(json_text(data) + "\n")


def write_out(path: Path, data: bytes) -> None:
    """Write a command's ``--out`` file; a failure is a UsageError naming the file."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise UsageError(_("cannot write %s: %s") % (path, exc.strerror)) from None


def zone(vault: Vault) -> ZoneInfo:
    return ZoneInfo(vault.config.time.station_tz)


#: the zone people read times in: the station's once a vault is open, else the default
_SHOWN_ZONE: list[ZoneInfo] = [timefmt.station_zone()]


def shown_zone() -> ZoneInfo:
    """The station's zone: of the vault this command opened, or as the API said, else the default."""
    from vaultd import client

    said = client.station_zone[0]
    if said and not opened:
        try:
            return ZoneInfo(said)
        except (KeyError, ValueError):  # a zone this machine does not know: keep the default
            pass
    return _SHOWN_ZONE[0]


def at(value: datetime | str | None, *, with_zone: bool = False) -> str:
    """A time for a table or a line: station zone, ``2026-12-07 14:05:09``; ``with_zone`` names the zone
    (a line that stands alone); a table prints ``timefmt.zone_note`` once instead."""
    tz = shown_zone()
    if value is None or value == "":
        return "-"
    text = timefmt.local(value, tz) if isinstance(value, datetime) else timefmt.format_iso_local(value, tz)
    return f"{text} ({timefmt.zone_label(tz)})" if with_zone else text


def zone_note() -> str:
    """The line a table prints once: the zone of its times."""
    return timefmt.zone_note(shown_zone())


def parse_time(text: str, tz: ZoneInfo, option: str) -> datetime:
    """A point in time a person typed (a date or a date-time); see ``timefmt.parse_when``."""
    from vaultd.vault import utcnow

    return timefmt.parse_when(text, tz, utcnow(), option, relative=False)


def time_filter(vault: Vault, text: str | None, option: str, *, end: bool = False) -> datetime | None:
    """A ``--since``/``--until``/``--from``/``--to`` value, in UTC (None when not given).

    ``end`` for an upper bound: a day given as a date (or today, yesterday) is included whole.
    """
    from vaultd.vault import utcnow

    return timefmt.parse_optional(text, zone(vault), utcnow(), option, end=end)


def filter_help(lower: bool) -> str:
    """The help text of a time filter option, naming the accepted forms."""
    what = _("at or after") if lower else _("before (a date: through its end)")
    return "%s: %s" % (what, timefmt.forms())
