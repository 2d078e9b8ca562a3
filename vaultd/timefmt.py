"""Times for people: shown in the station's zone, read from what people type.

Stored times are UTC; JSON carries ISO 8601 with its offset. Everything a
person reads (CLI tables, cover sheets, reports, VERIFY.txt) shows the
station's zone (``[time] station_tz``, default Asia/Shanghai) and says which
zone it is: :func:`format_local`.

Every time filter (``--since``, ``--until``, ``--from``, ``--to`` on the CLI,
``since``/``until`` on the API) goes through :func:`parse_when`, which accepts

- ``today``, ``yesterday``: that day in the station's zone;
- ``7d`` (any N days): N days before now;
- a date ``2026-11-21``: that day in the station's zone;
- a date-time ``2026-11-21T08:30`` (or with a space): the station's zone,
  unless it carries an offset (``+08:00``, ``Z``).

As a lower bound a day means its first instant; as an upper bound
(``end=True``) the day is included whole (the bound is the next midnight).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from vaultd.errors import UsageError
from vaultd.i18n import _
from vaultd.safetext import escape

DEFAULT_ZONE = "Asia/Shanghai"
#: times people may give: far enough from datetime's own limits that a deadline or margin added later never overflows
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)
_DAYS = re.compile(r"(\d{1,6})d")
MAX_DAYS = 100 * 366


def forms(relative: bool = True) -> str:
    """The accepted forms, as error hints and help texts name them."""
    if not relative:
        return _("a date (2026-11-21) or a date-time (2026-11-21T08:30, station zone unless it has an "
                 "offset such as +08:00)")
    return _("today, yesterday, Nd (the last N days, e.g. 7d), a date (2026-11-21) or a date-time "
             "(2026-11-21T08:30, station zone unless it has an offset such as +08:00)")


def station_zone(name: str | None = None) -> ZoneInfo:
    """The station's zone by its IANA name (the config's ``time.station_tz``)."""
    return ZoneInfo(name or DEFAULT_ZONE)


def zone_label(tz: ZoneInfo) -> str:
    return str(tz.key)


def local(t: datetime, tz: ZoneInfo, *, seconds: bool = True) -> str:
    """``2026-12-07 14:05:09`` in ``tz``, without the zone (for a table whose header names it)."""
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def format_local(t: datetime | None, tz: ZoneInfo, *, seconds: bool = False, missing: str = "-") -> str:
    """``2026-12-07 14:05 (Asia/Shanghai)``: a time for people, with its zone named."""
    if t is None:
        return missing
    return f"{local(t, tz, seconds=seconds)} ({zone_label(tz)})"


def format_iso_local(text: str | None, tz: ZoneInfo, *, seconds: bool = True, missing: str = "-") -> str:
    """An ISO 8601 string from a JSON document, shown in ``tz`` without the zone (tables)."""
    if not text:
        return missing
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return escape(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return local(t, tz, seconds=seconds)


def zone_note(tz: ZoneInfo) -> str:
    """The line a table prints once so its readers know the zone of its times."""
    offset = datetime.now(timezone.utc).astimezone(tz).strftime("%z")
    return _("(times in %s, UTC%s:%s)") % (zone_label(tz), offset[:3], offset[3:])


def _bad(text: str, option: str, relative: bool = True) -> UsageError:
    return UsageError(_("%s: %s is not a time vaultd understands") % (option, escape(repr(text))),
                      hint=_("use %s") % forms(relative))


def _day_start(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time.min, tzinfo=tz)


def parse_when(text: str, tz: ZoneInfo, now: datetime, option: str, *, end: bool = False,
               relative: bool = True) -> datetime:
    """The instant (aware, UTC) that ``text`` means, between 1900 and 9000; see :func:`_parse`."""
    t = _parse(text, tz, now, option, end=end, relative=relative)
    if not EARLIEST <= t < LATEST:
        raise UsageError(_("%s: %s is out of range") % (option, escape(repr(text))),
                         hint=_("give a time between 1900 and 8999: %s") % forms(relative))
    return t


def _parse(text: str, tz: ZoneInfo, now: datetime, option: str, *, end: bool,
           relative: bool) -> datetime:
    """The instant (aware, UTC) that ``text`` means; a UsageError naming it and the forms otherwise.

    ``option`` names the option or parameter in the error (``--since``).
    ``end`` makes a whole day (today, yesterday, a date) end at the next midnight.
    ``relative=False`` (a point in time such as a departure) takes dates and date-times only.
    """
    s = text.strip().lower()
    try:
        if not relative and (s in ("today", "yesterday") or _DAYS.fullmatch(s)):
            raise _bad(text, option, relative)
        if s in ("today", "yesterday"):
            d = now.astimezone(tz).date() - timedelta(days=0 if s == "today" else 1)
            return _day_start(d + timedelta(days=1 if end else 0), tz).astimezone(timezone.utc)
        m = _DAYS.fullmatch(s)
        if m:
            days = int(m.group(1))
            if days > MAX_DAYS:
                raise _bad(text, option)
            return (now - timedelta(days=days)).astimezone(timezone.utc)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            d = date.fromisoformat(s)
            return _day_start(d + timedelta(days=1 if end else 0), tz).astimezone(timezone.utc)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[t ][0-9:.,]+(z|[+-][0-9:]+)?", s):
            raise _bad(text, option, relative)
        t = datetime.fromisoformat(text.strip())
        return (t.replace(tzinfo=tz) if t.tzinfo is None else t).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise UsageError(_("%s: %s is not a time vaultd understands (out of range or not a real date)")
                         % (option, escape(repr(text))), hint=_("use %s") % forms(relative)) from None


def parse_optional(text: str | None, tz: ZoneInfo, now: datetime, option: str, *,
                   end: bool = False) -> datetime | None:
    """:func:`parse_when` for an option that may be absent (None or empty)."""
    if text is None or not text.strip():
        return None
    return parse_when(text, tz, now, option, end=end)
