"""Chinese working days (法定工作日): public holidays and make-up working days
(调休) from the maintained ``chinese-calendar`` package.

That package knows the State Council's holiday schedule year by year (2004
to 2026 in version 1.11). For a year it does not know yet, vaultd counts
Monday to Friday, less the statutory holidays on fixed dates (1 January,
1-2 May, 1-3 October), and logs a warning once per year; it never fails.
The lunar holidays and make-up working days of such a year are unknown, so
a deadline may come out a little late, never early. Update the package when
the State Council publishes the next year's schedule (usually in November).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Protocol

import chinese_calendar  # type: ignore[import-untyped]

log = logging.getLogger(__name__)


class WorkCalendar(Protocol):
    def is_workday(self, day: date) -> bool | None:
        """True / False, or None when the calendar does not know that year."""


class ChineseCalendar:
    """The official calendar, as the ``chinese-calendar`` package knows it."""

    def is_workday(self, day: date) -> bool | None:
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            return None


CHINA = ChineseCalendar()
_warned_years: set[int] = set()
#: statutory holidays on fixed dates (全国年节及纪念日放假办法, as revised in 2024)
FIXED_HOLIDAYS = frozenset({(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)})


def is_workday(day: date, calendar: WorkCalendar = CHINA) -> tuple[bool, bool]:
    """(is it a working day, did the calendar know the year). Unknown years
    count Monday to Friday, with one warning per year in the log."""
    known = calendar.is_workday(day)
    if known is not None:
        return known, True
    if day.year not in _warned_years:
        _warned_years.add(day.year)
        log.warning("the holiday calendar does not know %d: counting Monday to Friday, less the fixed-date "
                    "holidays, as working days (update the chinese-calendar package)", day.year)
    return day.weekday() < 5 and (day.month, day.day) not in FIXED_HOLIDAYS, False


def add_working_days(start: date, days: int, calendar: WorkCalendar = CHINA) -> tuple[date, bool]:
    """The ``days``-th working day after ``start`` (``start`` itself not counted),
    and whether every day on the way was known to the calendar."""
    if days < 1:
        raise ValueError("days must be at least 1")
    day, left, all_known = start, days, True
    while left:
        day += timedelta(days=1)
        working, known = is_workday(day, calendar)
        all_known = all_known and known
        left -= working
    return day, all_known
