"""The retention policy (R6): named classes, how long each keeps a recording,
and the agency-wide floor no class may go below. Read from
``config/retention.toml`` (the commented reference), checked once at load.

A class keeps a recording ``keep_months`` counted from either

* ``"recording"``: when it was recorded (or ingested, whichever is later),
  and never less than ``keep_months`` after any linked case closes; or
* ``"case-closed"``: while its case is open, then the case file's archive
  period (the case's own, else ``keep_months``) after the case closes.

An unclassified recording gets the longest ``recording`` class, never the
shortest. Month arithmetic is calendar months (31 Aug + 6 months = 28 Feb).
"""

from __future__ import annotations

import calendar
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vaultd.errors import ConfigError
from vaultd.i18n import _

FROM_RECORDING = "recording"
FROM_CASE_CLOSED = "case-closed"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class RetentionClass:
    name: str
    keep_months: int
    counted_from: str = FROM_RECORDING
    description: str = ""

    def length_key(self) -> tuple[int, int]:
        """Orders classes by how long they keep: a case-bound class outlasts a
        recording-bound one of the same months (it starts later)."""
        return (self.keep_months, 1 if self.counted_from == FROM_CASE_CLOSED else 0)


@dataclass(frozen=True)
class Policy:
    floor_months: int
    classes: Mapping[str, RetentionClass] = field(default_factory=dict)
    source: str = ""

    @property
    def default_class(self) -> RetentionClass:
        """What an unclassified recording gets: the longest recording-bound class."""
        bound = [c for c in self.classes.values() if c.counted_from == FROM_RECORDING]
        return max(bound, key=lambda c: (c.keep_months, c.name))

    def is_shorter(self, old: str | None, new: str) -> bool:
        """Would moving a recording from class ``old`` (None: unclassified) to
        ``new`` keep it for less time? Unknown classes count as the longest."""
        before = self.classes.get(old) if old else self.default_class
        after = self.classes[new]
        return before is None or after.length_key() < before.length_key()


DEFAULT_CLASSES = (
    RetentionClass("routine", 6, FROM_RECORDING,
                   "6 months after recording, or after the linked case closes, whichever is later"),
    RetentionClass("standard", 24, FROM_RECORDING,
                   "original recordings: 2 years (the default for unclassified recordings)"),
    RetentionClass("evidence", 120, FROM_CASE_CLOSED,
                   "used as evidence: while the case is open, then the case file's archive period "
                   "(10 years unless the case says otherwise)"),
)


def default_policy() -> Policy:
    return check(Policy(6, {c.name: c for c in DEFAULT_CLASSES}, _("built-in defaults")))


def add_months(t: datetime, months: int) -> datetime:
    """``t`` plus calendar months, the day clamped to the month's end."""
    years, month0 = divmod(t.month - 1 + months, 12)
    year, month = t.year + years, month0 + 1
    return t.replace(year=year, month=month, day=min(t.day, calendar.monthrange(year, month)[1]))


def check(policy: Policy) -> Policy:
    src = policy.source
    if policy.floor_months < 1:
        raise ConfigError(_("%s: floor_months must be at least 1, got %r") % (src, policy.floor_months))
    if not any(c.counted_from == FROM_RECORDING for c in policy.classes.values()):
        raise ConfigError(_("%s: at least one class must be counted from the recording") % src,
                          hint=_("unclassified recordings get the longest such class"))
    for c in policy.classes.values():
        if c.keep_months < policy.floor_months:
            raise ConfigError(
                _("%s: retention class %r keeps %d months, below the agency floor of %d months")
                % (src, c.name, c.keep_months, policy.floor_months),
                hint=_("lengthen the class, or lower floor_months if the agency's rules allow it"))
    return policy


def _class(name: str, raw: Any, src: str) -> RetentionClass:
    where = f"classes.{name}"
    if not _NAME.match(name):
        raise ConfigError(_("%s: class name %r: use lower-case letters, digits, '-' and '_'") % (src, name))
    if not isinstance(raw, dict):
        raise ConfigError(_("%s: [%s] must be a table") % (src, where))
    unknown = set(raw) - {"keep_months", "counted_from", "description"}
    if unknown:
        raise ConfigError(_("%s: unknown key %s.%s") % (src, where, sorted(unknown)[0]),
                          hint=_("allowed: keep_months, counted_from, description"))
    months = raw.get("keep_months")
    if not isinstance(months, int) or isinstance(months, bool) or months < 1:
        raise ConfigError(_("%s: %s.keep_months must be a whole number of months >= 1") % (src, where))
    counted = raw.get("counted_from", FROM_RECORDING)
    if counted not in (FROM_RECORDING, FROM_CASE_CLOSED):
        raise ConfigError(_("%s: %s.counted_from must be %r or %r, got %r")
                          % (src, where, FROM_RECORDING, FROM_CASE_CLOSED, counted))
    return RetentionClass(name, months, counted, str(raw.get("description", "")))


def from_dict(data: Mapping[str, Any], src: str) -> Policy:
    unknown = set(data) - {"floor_months", "classes"}
    if unknown:
        raise ConfigError(_("%s: unknown key %s") % (src, sorted(unknown)[0]),
                          hint=_("allowed: floor_months, [classes.NAME]"))
    floor = data.get("floor_months", 6)
    if not isinstance(floor, int) or isinstance(floor, bool):
        raise ConfigError(_("%s: floor_months must be a whole number of months") % src)
    raw_classes = data.get("classes")
    if not isinstance(raw_classes, dict) or not raw_classes:
        raise ConfigError(_("%s: no retention classes: add [classes.NAME] tables") % src)
    classes = {name: _class(name, raw, src) for name, raw in raw_classes.items()}
    return check(Policy(floor, classes, src))


def load(path: Path | None) -> Policy:
    """The policy in ``path``, or the built-in defaults for None."""
    if path is None:
        return default_policy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(_("retention policy %s does not exist") % path,
                          hint=_("set [retention] policy_file to an existing file, or leave it empty")) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(_("%s is not valid TOML: %s") % (path, exc)) from None
    return from_dict(data, str(path))
