"""Yearly statistics (R14) per month, unit and officer; exports and purges
counted from the audit log."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from compliance_fixtures import Month, at, put_recording
from vaultd import audit, compliance, stats
from vaultd.audit import Event
from vaultd.cli import main
from vaultd.errors import UsageError
from vaultd.model import Actor
from vaultd.people import local_owner
from vaultd.vault import Vault

OWNER = local_owner()


def test_year_stats_over_the_month(vault: Vault, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = Month(vault)
    compliance.add_trip(vault, OWNER, officer_number="1002", device_serial=None, left_at=at("10-14 08:00"),
                        returned_at=at("10-18 20:00"), note="山区巡查")
    put_recording(vault, serial="CAM1", officer="1001", start=at("12-31 23:30"), seconds=3600,
                  ingested_at=at("12-31 23:59"))  # still 2026 in Beijing
    with vault.engine.begin() as conn:
        for when, type_ in ((at("10-21 10:00"), "export.created"), (at("11-02 10:00"), "export.created"),
                            (at("10-25 10:00"), "retention.purge.done"), (at("10-25 10:00"), "other.thing")):
            audit.append(conn, Event(type_, Actor.local(), {}), when)
    s = stats.year_stats(vault, OWNER, 2026)
    assert s.total.recordings == 32 and s.total.late == 4 and s.total.packages == 2
    assert s.total.exports == 0 and s.total.purges == 0  # entries about no recording count no recording
    months = {r.key: r for r in s.months}
    october = months["2026-10"]
    assert october.recordings == 31 and october.on_time == 27 and october.labelled == len(m.labelled)
    assert october.hours == pytest.approx((30 * 10 + 9.5) / 60, abs=1e-3)
    assert october.bytes == 31 * 2048
    assert (october.packages, months["2026-11"].packages) == (1, 1)
    assert months["2026-12"].recordings == 1 and months["2026-01"].recordings == 0
    assert {r.key: r.recordings for r in s.units} == {"一中队": 25, "二中队": 7}
    assert {r.key: (r.recordings, r.late) for r in s.officers} == {"1001": (21, 2), "1002": (4, 2), "2001": (7, 0)}
    assert october.labelling_rate == pytest.approx(len(m.labelled) / 31)

    assert main(["--home", str(home), "report", "stats", "--year", "2026", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["scope"] == "total" and rows[0]["recordings"] == "32" and rows[0]["packages"] == "2"
    assert [r["key"] for r in rows if r["scope"] == "month"] == [f"2026-{i:02d}" for i in range(1, 13)]
    assert main(["--home", str(home), "report", "stats", "--year", "2026", "--unit", "二中队", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total"]["recordings"] == 7 and doc["total"]["packages"] is None
    assert main(["--home", str(home), "report", "stats", "--year", "2025"]) == 0
    assert "2025" in capsys.readouterr().out


def test_a_year_out_of_range_is_refused(vault: Vault) -> None:
    with pytest.raises(UsageError, match="--year"):
        stats.year_stats(vault, OWNER, 26)


def test_exports_and_purges_count_per_unit_and_officer_by_whose_recording_it_was(vault: Vault) -> None:
    from vaultd.audit import EvidenceRef

    a = put_recording(vault, officer="1001", unit="一中队", start=at("10-03 09:00"))
    b = put_recording(vault, officer="2001", unit="二中队", start=at("10-04 09:00"))
    with vault.engine.begin() as conn:
        audit.append(conn, Event("export.created", Actor.local(), {}), at("10-21 10:00"))
        for rec in (a, b):
            audit.append(conn, Event("export.recording", Actor.local(), {}, EvidenceRef.of(rec)), at("10-21 10:00"))
        audit.append(conn, Event("retention.purge.done", Actor.local(), {}, EvidenceRef.of(b)), at("10-25 10:00"))
    s = stats.year_stats(vault, OWNER, 2026)
    assert s.total.packages == 1 and s.total.exports == 2 and s.total.purges == 1  # one package of two
    assert {r.key: (r.exports, r.purges) for r in s.units} == {"一中队": (1, 0), "二中队": (1, 1)}
    assert {r.key: (r.exports, r.purges) for r in s.officers} == {"1001": (1, 0), "2001": (1, 1)}
    one = stats.year_stats(vault, OWNER, 2026, unit="二中队")
    assert one.total.packages is None and {r.key: (r.exports, r.purges) for r in one.units} == {"二中队": (1, 1)}
    assert (one.total.exports, one.total.purges) == (1, 1)


def test_totals_add_up_over_months_units_and_officers(vault: Vault) -> None:
    """issue 17.6: the exports total (1 package) disagreed with the unit and officer rows (3 recordings each)."""
    from vaultd.audit import EvidenceRef

    recs = [put_recording(vault, officer=o, unit=u, start=at(d)) for o, u, d in (
        ("1001", "一中队", "10-03 09:00"), ("1002", "一中队", "10-04 09:00"), ("2001", "二中队", "11-05 09:00"))]
    with vault.engine.begin() as conn:
        audit.append(conn, Event("export.created", Actor.local(), {}), at("11-21 10:00"))
        for rec in recs:
            audit.append(conn, Event("export.recording", Actor.local(), {}, EvidenceRef.of(rec)), at("11-21 10:00"))
        audit.append(conn, Event("export.created", Actor.local(), {}), at("12-01 10:00"))
        audit.append(conn, Event("export.recording", Actor.local(), {}, EvidenceRef.of(recs[0])), at("12-01 10:00"))
        audit.append(conn, Event("retention.purge.done", Actor.local(), {}, EvidenceRef.of(recs[2])), at("12-02 10:00"))
    s = stats.year_stats(vault, OWNER, 2026)
    for attr in ("recordings", "exports", "purges", "labelled", "on_time", "late", "bytes"):
        want = getattr(s.total, attr)
        for rows in (s.months, s.units, s.officers):
            assert sum(getattr(r, attr) for r in rows) == want, (attr, [r.key for r in rows])
    assert (s.total.exports, s.total.purges, s.total.packages) == (4, 1, 2)
