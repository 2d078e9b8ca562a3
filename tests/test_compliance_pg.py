"""The compliance services on PostgreSQL: the month report, gaps, the scrub's
cursor (a row-value comparison), spot checks and statistics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from compliance_fixtures import Month, at, flip_a_bit, object_path
from pgserver import throwaway_postgres
from vaultd import compliance, gaps, scrub, spotcheck, stats
from vaultd.catalog import recordings as rec_db
from vaultd.model import Actor, Recording
from vaultd.people import local_owner
from vaultd.vault import Vault, init_vault, open_vault

pytestmark = [pytest.mark.pg, pytest.mark.slow]
PORT = 54341  # not test_postgres.py's, so both may run at once
OWNER = local_owner()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with throwaway_postgres(PORT, "compliance_test", "compliance-pg-") as url:
        yield url


def test_compliance_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = tmp_path / "vaultd.toml"
    config.write_text(f'[catalog]\nurl = "{pg_url}"\n[compliance]\nscrub_period_days = 1\n'
                      'scrub_interval_min = 1440\n')
    init_vault(home, config)
    vault = open_vault(home, config)
    try:
        assert vault.engine.dialect.name == "postgresql"
        m = Month(vault)
        compliance.add_trip(vault, OWNER, officer_number="1002", device_serial=None, left_at=at("10-14 08:00"),
                            returned_at=at("10-18 20:00"), note="trip")
        rep = compliance.report(vault, OWNER, since=at("10-01 00:00"), until=at("11-01 00:00"),
                                now=at("11-01 00:00"))
        assert {x.facts.id for x in rep.late} == m.late and rep.total.recordings == 31
        assert [g.id for g in gaps.list_gaps(vault, OWNER)] == [m.c3[1], m.c3[3]]
        check = spotcheck.draw(vault, OWNER, 10, seed="pg")
        assert check.sample == spotcheck.draw_sample(sorted(m.late | m.on_time), 10, "pg")
        assert stats.year_stats(vault, OWNER, 2026).total.recordings == 31
        flip_a_bit(object_path(vault, _rec(vault, m.last)))
        me = Actor("service", "test", "daemon")
        first = scrub.scrub_step(vault, me, at("11-02 00:00"), budget_s=0.0, max_bytes_per_s=1e9)
        rest = scrub.scrub_step(vault, me, at("11-02 00:00") + timedelta(minutes=1), budget_s=100,
                                max_bytes_per_s=1e9)
        assert first.checked == 1 and first.checked + rest.checked == 31 and rest.round_done
        assert [f.recording_id for f in first.failed + rest.failed] == [m.last]
        assert [a.subject for a in scrub.open_alarms(vault)] == [m.last]
    finally:
        vault.close()


def _rec(vault: Vault, rec_id: str) -> Recording:
    with vault.engine.connect() as conn:
        return rec_db.get(conn, rec_id)
