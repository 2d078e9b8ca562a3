"""``vaultd status`` in words: what a docked camera's session did, and for each file that did
not go into the vault, what it was and why (the demo once said only "skipped 1")."""

from __future__ import annotations

from vaultd.cli_daemon import _print_status, _session_lines
from vaultd.simulate import IDENTITY_FILE

import pytest

DONE = {
    "key": "folder:/dock/cam-3201001", "serial": "3201001", "state": "complete", "officer": "012345",
    "detail": "enrolled camera",
    "counts": {"new": 15, "duplicate": 2, "skipped": 2, "deferred": 0, "failed": 0},
    "not_ingested": [
        {"path": IDENTITY_FILE, "outcome": "skipped", "reason": "simulated camera identity, not a recording"},
        {"path": "DCIM/link\x1b[2J.MP4", "outcome": "skipped", "reason": "symbolic link, not followed"},
    ],
}


def test_a_finished_session_says_what_was_skipped_and_why() -> None:
    first, *rest = _session_lines(DONE)
    assert first == "3201001 [complete] officer 012345: 15 new, 2 already in the vault, 2 skipped (enrolled camera)"
    assert rest[0] == f"  skipped {IDENTITY_FILE}: simulated camera identity, not a recording"
    assert rest[1].startswith("  skipped DCIM/link") and rest[1].endswith(": symbolic link, not followed")
    assert "\x1b" not in rest[1]  # a camera's file name never reaches the terminal raw
    assert len(rest) == 2


def test_files_beyond_those_named_are_counted_with_where_to_see_them() -> None:
    many = {**DONE, "counts": {"new": 1, "skipped": 30, "failed": 2}}
    lines = _session_lines(many)
    assert lines[-1] == "  ... and 30 more: vaultd audit list --type 'ingest.*'"


def test_the_status_prints_each_sessions_files(capsys: pytest.CaptureFixture[str]) -> None:
    _print_status({"state": "running", "running": True, "pid": 1, "started_at": "t0", "updated_at": "t1",
                   "sessions": [DONE], "recent": [DONE]})
    out = capsys.readouterr().out
    assert out.count(f"    skipped {IDENTITY_FILE}: simulated camera identity, not a recording") == 2


def test_the_schedulers_times_are_in_station_time(capsys: pytest.CaptureFixture[str]) -> None:
    """A scheduler's next run is shown like every other time for people: station zone, not UTC ISO."""
    _print_status({"state": "running", "running": True, "pid": 1, "started_at": "2026-12-08T02:00:00+00:00",
                   "updated_at": "2026-12-08T02:00:01+00:00", "sessions": [],
                   "extras": {"scheduler": {"audit-checkpoint": {"next_run": "2026-12-08T02:05:11.5+00:00",
                                                                 "last": None}}}})
    out = capsys.readouterr().out
    assert "+00:00" not in out and "2026-12-08 10:05" in out, out
