"""One parser for every time filter (CLI and API), and times shown in the station's zone."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from vaultd import people, timefmt
from vaultd.access import Role
from vaultd.api.app import create_app
from vaultd.errors import UsageError
from vaultd.vault import Vault
from conftest import token_for

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
# 2026-12-07 01:30 in Shanghai (the day before in UTC)
NOW = datetime(2026, 12, 6, 17, 30, tzinfo=UTC)


@pytest.mark.parametrize(("text", "end", "want"), [
    ("today", False, datetime(2026, 12, 6, 16, 0, tzinfo=UTC)),
    ("today", True, datetime(2026, 12, 7, 16, 0, tzinfo=UTC)),
    ("Yesterday", False, datetime(2026, 12, 5, 16, 0, tzinfo=UTC)),
    ("yesterday", True, datetime(2026, 12, 6, 16, 0, tzinfo=UTC)),
    ("7d", False, NOW - timedelta(days=7)),
    ("0d", True, NOW),
    ("2026-11-21", False, datetime(2026, 11, 20, 16, 0, tzinfo=UTC)),
    ("2026-11-21", True, datetime(2026, 11, 21, 16, 0, tzinfo=UTC)),
    ("2026-11-21T08:30", False, datetime(2026, 11, 21, 0, 30, tzinfo=UTC)),
    ("2026-11-21 08:30:15", True, datetime(2026, 11, 21, 0, 30, 15, tzinfo=UTC)),
    ("2026-11-21T08:30:00+00:00", False, datetime(2026, 11, 21, 8, 30, tzinfo=UTC)),
    ("2026-11-21T08:30:00Z", False, datetime(2026, 11, 21, 8, 30, tzinfo=UTC)),
])
def test_parse_when_forms(text: str, end: bool, want: datetime) -> None:
    got = timefmt.parse_when(text, SH, NOW, "--since", end=end)
    assert got == want and got.tzinfo is not None


@pytest.mark.parametrize("text", [
    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31",  # out of range (end: +1 day)
    "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00", "1899-12-31",  # a deadline added later would overflow
    "2026-02-30", "tomorrowish", "7 days", "-7d", "99999999d", "2026-11-21T25:00", "", "\x1b[2J",
])
def test_parse_when_refuses_with_the_value_and_the_forms(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        timefmt.parse_when(text, SH, NOW, "--until", end=True)
    assert "--until" in exc.value.message and "\x1b" not in exc.value.message
    assert exc.value.hint is not None and "today" in exc.value.hint and "7d" in exc.value.hint


def test_format_local_names_the_zone() -> None:
    t = datetime(2026, 12, 7, 6, 5, 9, tzinfo=UTC)
    assert timefmt.format_local(t, SH) == "2026-12-07 14:05 (Asia/Shanghai)"
    assert timefmt.format_local(t, SH, seconds=True) == "2026-12-07 14:05:09 (Asia/Shanghai)"
    assert timefmt.format_local(None, SH) == "-"
    assert timefmt.format_iso_local("2026-12-07T06:05:09+00:00", SH) == "2026-12-07 14:05:09"
    assert "Asia/Shanghai" in timefmt.zone_note(SH) and "+08:00" in timefmt.zone_note(SH)


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vaultd.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120)


BAD = "9999-12-31T23:59:59-23:59"


@pytest.mark.parametrize("argv", [
    ("recordings", "list", "--since", BAD), ("recordings", "list", "--until", BAD),
    ("audit", "list", "--since", BAD),
    ("compliance", "report", "--from", BAD), ("compliance", "report", "--to", "9999-12-31"),
    ("gaps", "list", "--from", BAD), ("spotcheck", "draw", "--percent", "10", "--to", BAD),
    ("recordings", "list", "--since", "someday"),
    ("cases", "create", "X1", "--title", "t", "--act-ended", "9999-12-31"),
    ("trips", "add", "--device", "C", "--left", "0001-01-01T00:00:00+00:00", "--note", "n"),
    ("retention", "plan", "--at", "9999-12-31T23:59:59+00:00"),
    ("compliance", "report", "--from", "0001-01-01T00:00:00+00:00"),
    ("simulate", "camera", "cam", "--start", "9999-12-31T23:59:59+00:00"),
])
def test_cli_bad_time_is_a_clear_error_not_a_traceback(home: Path, argv: tuple[str, ...]) -> None:
    r = _cli(home, *argv)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and ("not a time vaultd understands" in r.stderr or "out of range" in r.stderr)
    assert "2026-11-21" in r.stderr  # the accepted forms


def test_cli_accepts_today_and_7d(home: Path) -> None:
    for argv in (("recordings", "list", "--since", "today"), ("recordings", "list", "--since", "7d",
                                                             "--until", "yesterday"),
                 ("audit", "list", "--since", "today"), ("compliance", "report", "--from", "7d", "--to", "today")):
        r = _cli(home, *argv)
        assert r.returncode == 0, (argv, r.stderr)


def test_api_filters_use_the_same_parser(vault: Vault) -> None:
    owner = people.local_owner()
    people.add_user(vault, owner, people.NewUser("zhou", (Role.LEGAL,), None, None), None, "cli")
    people.add_user(vault, owner, people.NewUser("aud", (Role.AUDITOR,), None, None), None, "cli")
    h = {name: {"Authorization": f"Bearer {token_for(vault, name)}"}
         for name in ("zhou", "aud")}
    with TestClient(create_app(vault)) as client:
        for path, who in (("/api/v1/recordings", "zhou"), ("/api/v1/compliance/report", "zhou"),
                          ("/api/v1/gaps", "zhou"), ("/api/v1/audit/entries", "aud")):
            r = client.get(path, headers=h[who], params={"since": "today"})
            assert r.status_code == 200, (path, r.text)
            r = client.get(path, headers=h[who], params={"since": "7d"})
            assert r.status_code == 200, (path, r.text)
            r = client.get(path, headers=h[who], params={"since": BAD})
            assert r.status_code == 400, (path, r.text)
            body = r.text
            assert BAD in body and "today" in body and "7d" in body
        r = client.post("/api/v1/spotchecks", headers=h["zhou"], json={"percent": 10, "since": "yesterday"})
        assert r.status_code == 200, r.text


def test_cli_tables_show_station_time_and_name_the_zone(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vaultd.cli import main

    h = ["--home", str(home)]
    assert main([*h, "trips", "add", "--device", "CAM7", "--left", "2026-10-03T08:00", "--note", "防汛"]) == 0
    capsys.readouterr()
    assert main([*h, "trips", "list"]) == 0
    out = capsys.readouterr().out
    assert "Asia/Shanghai" in out and "2026-10-03 08:00:00" in out
    assert main([*h, "cases", "create", "松执〔2026〕9号", "--title", "t", "--act-ended", "2026-10-03T08:00"]) == 0
    capsys.readouterr()
    assert main([*h, "cases", "list"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "(Asia/Shanghai)" in line and "T" not in line.split("file due")[1]
    assert main([*h, "audit", "list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert all(datetime.fromisoformat(e["time"].replace("Z", "+00:00")).tzinfo for e in entries)  # JSON: ISO 8601


def test_a_remote_client_shows_times_in_the_station_zone(home: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``vaultd --url`` at another PC shows the station's zone (the API names it), not a guess."""
    from serving import vaultd_serve
    from vaultd.cli import main
    from vaultd.vault import open_vault

    with (home / "vaultd.toml").open("a", encoding="utf-8") as f:
        f.write('[time]\nstation_tz = "Europe/Berlin"\n')
    vault = open_vault(home)
    owner = people.local_owner()
    people.add_user(vault, owner, people.NewUser("aud", (Role.AUDITOR,), None, None), None, "cli")
    token = token_for(vault, "aud")
    vault.close()
    monkeypatch.delenv("VAULTD_HOME", raising=False)
    with vaultd_serve(home) as url:
        assert main(["--url", url, "--token", token, "audit", "list"]) == 0
    out = capsys.readouterr().out
    assert "Europe/Berlin" in out.splitlines()[0]


def test_api_point_times_out_of_range_are_a_400_not_a_500(vault: Vault) -> None:
    owner = people.local_owner()
    people.add_user(vault, owner, people.NewUser("zhou", (Role.LEGAL,), None, None), None, "cli")
    h = {"Authorization": f"Bearer {token_for(vault, 'zhou')}"}
    with TestClient(create_app(vault), raise_server_exceptions=False) as client:
        for when in ("9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00"):
            r = client.post("/api/v1/cases", headers=h, json={"number": "X1", "title": "t", "act_ended_at": when})
            assert r.status_code == 400 and "out of range" in r.text, r.text
