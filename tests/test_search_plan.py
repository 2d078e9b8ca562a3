"""Search stays an index walk (#17.7): every filter of ``recordings list`` reads one
index in the order of the result, for every scope, so a page costs its 100 rows and
not the catalog's size. Checked on SQLite's query plan, not on timings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event

from compliance_fixtures import put_recording
from vaultd import evidence, people
from vaultd.access import Role
from vaultd.catalog import people as people_db
from vaultd.catalog.recordings import RecordingFilter
from vaultd.model import MediaType
from vaultd.vault import Vault

OWNER = people.local_owner()
DAY = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)


@contextmanager
def _captured(vault: Vault) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM recordings" in statement:
            seen.append((statement, parameters))

    event.listen(vault.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(vault.engine, "before_cursor_execute", before)


def _plan(vault: Vault, actor: Any, flt: RecordingFilter) -> list[str]:
    with _captured(vault) as seen:
        evidence.list_recordings(vault, actor, flt, "api")
    (statement, parameters), = seen
    raw = vault.engine.raw_connection()
    try:
        return [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
    finally:
        raw.close()


@pytest.mark.parametrize("who", ["zhao", "zhou", "owner"])
@pytest.mark.parametrize("flt", [
    RecordingFilter(device_serial="CAM2", limit=100),
    RecordingFilter(officer_id="1002", media_type=MediaType.VIDEO, limit=100),
    RecordingFilter(since=DAY, until=DAY + timedelta(days=1), limit=100),
    RecordingFilter(limit=100, offset=3),
], ids=["device", "officer", "day", "page"])
def test_each_filter_walks_an_index_in_result_order(vault: Vault, who: str, flt: RecordingFilter) -> None:
    people.add_user(vault, OWNER, people.NewUser("zhao", (Role.SUPERVISOR,), "一中队", None), None, "cli")
    people.add_user(vault, OWNER, people.NewUser("zhou", (Role.LEGAL,), None, None), None, "cli")
    for i in range(6):
        put_recording(vault, serial=f"CAM{i % 3}", officer=f"100{i % 3}", start=DAY + timedelta(hours=i))
    if who == "owner":
        actor = OWNER
    else:
        with vault.engine.connect() as conn:
            actor = people.principal_of(people_db.user_by_name(conn, who))  # type: ignore[arg-type]
    plan = _plan(vault, actor, flt)
    outer = [p for p in plan if "recordings USING" in p and "case_recordings" not in p]
    walk = "SCAN" if who != "zhao" and flt.offset else "SEARCH"  # a page of everything: the time index
    assert outer and all(p.startswith(f"{walk} recordings USING INDEX") for p in outer), plan
    assert not any("TEMP B-TREE" in p for p in plan), plan  # no sort of every matching row
    if flt.device_serial:
        assert "ix_recordings_device_start" in outer[0], plan
