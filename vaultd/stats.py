"""Yearly statistics (R14: reported by 15 January, published by 31 January):
recordings, hours, bytes, on-time rate, labelling rate, exports and purges,
per month (station time), unit and officer.

``build_stats`` is pure; ``year_stats`` reads the catalog and the audit log
and logs that the statistics were read. Months, units and officers count a
recording by when it was recorded (by its ingest when its time is unknown).

What is counted, the same in every row so that totals add up (the total row
equals the sum of the months, of the units and of the officers):

- ``exports``: recordings exported, one per recording in each export package
  (``export.recording`` entries), in the month the package was made and in the
  unit and officer whose recording it was;
- ``purges``: originals purged at retention expiry (``retention.purge.done``,
  one per recording), counted the same way;
- ``packages``: export packages made (``export.created``), on the total and
  month rows only (a package may hold several units' recordings); None in a
  report for one unit.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from vaultd import audit
from vaultd.access import Principal
from vaultd.audit import Event
from vaultd.catalog import compliance as db
from vaultd.catalog.compliance import RecordingFacts, TripRow
from vaultd.compliance import timeliness
from vaultd.errors import UsageError
from vaultd.i18n import _
from vaultd.people import actor_of
from vaultd.reportscope import report_scope
from vaultd.vault import Vault

EXPORT_ENTRY = "export.created"
PURGE_ENTRY = "retention.purge.done"
EXPORTED_ENTRY = "export.recording"  # one per recording in an export: counted per unit and officer


@dataclass
class Row:
    scope: str  # total | month | unit | officer
    key: str
    recordings: int = 0
    seconds: float = 0.0
    bytes: int = 0
    on_time: int = 0
    late: int = 0
    unknown: int = 0
    labelled: int = 0
    exports: int = 0  # recordings exported (one per recording per package)
    purges: int = 0  # originals purged
    packages: int | None = None  # export packages: total and months of an agency-wide report only

    @property
    def hours(self) -> float:
        return round(self.seconds / 3600, 3)

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / (self.on_time + self.late) if self.on_time + self.late else None

    @property
    def labelling_rate(self) -> float | None:
        return self.labelled / self.recordings if self.recordings else None

    def as_json(self) -> dict[str, Any]:
        return {"scope": self.scope, "key": self.key, "recordings": self.recordings, "hours": self.hours,
                "bytes": self.bytes, "on_time": self.on_time, "late": self.late, "unknown": self.unknown,
                "on_time_rate": self.on_time_rate, "labelled": self.labelled,
                "labelling_rate": self.labelling_rate, "exports": self.exports, "purges": self.purges,
                "packages": self.packages}


@dataclass(frozen=True)
class YearStats:
    year: int
    unit: str | None
    total: Row
    months: list[Row] = field(default_factory=list)
    units: list[Row] = field(default_factory=list)
    officers: list[Row] = field(default_factory=list)
    agency: str = ""  # [agency] name: who reports
    unit_names: tuple[tuple[str, str], ...] = ()  # [agency.units] of the units in the rows

    def rows(self) -> list[Row]:
        return [self.total, *self.months, *self.units, *self.officers]

    def as_json(self) -> dict[str, Any]:
        return {"agency": self.agency, "unit_names": dict(self.unit_names),
                "year": self.year, "unit": self.unit, "total": self.total.as_json(),
                "months": [r.as_json() for r in self.months], "units": [r.as_json() for r in self.units],
                "officers": [r.as_json() for r in self.officers]}

    def as_csv(self) -> str:
        cols = ["scope", "key", "recordings", "hours", "bytes", "on_time", "late", "unknown", "on_time_rate",
                "labelled", "labelling_rate", "exports", "purges", "packages"]
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(cols)
        for r in self.rows():
            doc = r.as_json()
            w.writerow(["" if doc[c] is None else (f"{doc[c]:.4f}" if isinstance(doc[c], float) and "rate" in c
                                                   else doc[c]) for c in cols])
        return out.getvalue()


def _month(t: datetime, tz: ZoneInfo) -> str:
    return t.astimezone(tz).strftime("%Y-%m")


def build_stats(year: int, facts: Sequence[RecordingFacts], trips: Sequence[TripRow], *, hours: float,
                packages: Sequence[datetime] | None, tz: ZoneInfo, unit: str | None = None,
                per_recording: Sequence[tuple[str, datetime, str | None, str | None]] = ()) -> YearStats:
    """The year's statistics (pure). ``packages``: when each export package was made
    (None: not counted, a report for one unit). ``per_recording``: (type, at, unit,
    officer) of each recording exported (``export.recording``) or purged
    (``retention.purge.done``): the exports and purges of every row."""
    counted = 0 if packages is not None else None
    total = Row("total", str(year), packages=counted)
    months = {f"{year}-{m:02d}": Row("month", f"{year}-{m:02d}", packages=counted) for m in range(1, 13)}
    units: dict[str, Row] = {}
    officers: dict[str, Row] = {}

    def unit_row(key: str | None) -> Row:
        return units.setdefault(key or "-", Row("unit", key or "-"))

    def officer_row(key: str | None) -> Row:
        return officers.setdefault(key or "-", Row("officer", key or "-"))

    for f in facts:
        when = f.recorded_start or f.ingested_at
        status = timeliness(f, trips, hours).status
        month = months.get(_month(when, tz))
        if month is None:
            continue
        for row in (total, month, unit_row(f.unit), officer_row(f.officer_id)):
            row.recordings += 1
            row.seconds += f.duration_s or 0.0
            row.bytes += f.size_bytes
            row.on_time += status == "on-time"
            row.late += status == "late"
            row.unknown += status == "unknown"
            row.labelled += f.labelled_at is not None
    for type_, at, rec_unit, officer in per_recording:
        month = months.get(_month(at, tz))
        if month is None:
            continue
        attr = "exports" if type_ == EXPORTED_ENTRY else "purges"
        for row in (total, month, unit_row(rec_unit), officer_row(officer)):
            setattr(row, attr, getattr(row, attr) + 1)
    for t in packages or ():
        month = months.get(_month(t, tz))
        if month is not None and month.packages is not None and total.packages is not None:
            month.packages += 1
            total.packages += 1
    return YearStats(year, unit, total, list(months.values()), sorted(units.values(), key=lambda r: r.key),
                     sorted(officers.values(), key=lambda r: r.key))


def year_stats(vault: Vault, actor: Principal, year: int, *, unit: str | None = None,
               via: str = "cli") -> YearStats:
    if not 2000 <= year <= 2200:
        raise UsageError(_("--year must be a year such as 2026, got %d") % year)
    unit = report_scope(vault, actor, unit, via, _("read statistics"))
    tz = ZoneInfo(vault.config.time.station_tz)
    since = datetime(year, 1, 1, tzinfo=tz)
    until = datetime(year + 1, 1, 1, tzinfo=tz)
    with vault.engine.begin() as conn:
        facts = db.facts(conn, since=since, until=until, unit=unit, records_only=True)
        packages = None if unit else db.audit_times(conn, (EXPORT_ENTRY,), since, until)[EXPORT_ENTRY]
        per_recording = [e for e in db.evidence_events(conn, (EXPORTED_ENTRY, PURGE_ENTRY), since, until)
                         if unit is None or e[2] == unit]
        stats = build_stats(year, facts, db.all_trips(conn), hours=vault.config.ingest.deadline_hours,
                            packages=packages, tz=tz, unit=unit, per_recording=per_recording)
        audit.append(conn, Event("report.stats", actor_of(actor, via), {
            "year": year, "unit": unit, "recordings": stats.total.recordings}))
    shown = {r.key for r in stats.units} | ({unit} if unit else set())
    return dataclasses.replace(stats, agency=vault.config.agency_name,
                               unit_names=tuple((u, n) for u, n in vault.config.agency.units if u in shown))
