"""The compliance commands as an API client (``--url``/``--token``) against a
real ``vaultd serve``: the same answers and refusals as locally."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from compliance_fixtures import Month
from serving import vaultd_serve
from vaultd import people
from vaultd.access import Role
from vaultd.cli import main
from vaultd.vault import Vault
from conftest import token_for

OWNER = people.local_owner()


@pytest.fixture
def served(vault: Vault, home: Path) -> Iterator[tuple[Month, str, dict[str, str]]]:
    month = Month(vault)
    tokens = {}
    for name, role, unit in (("zhou", Role.LEGAL, None), ("sup", Role.SUPERVISOR, "二中队")):
        people.add_user(vault, OWNER, people.NewUser(name, (role,), unit), None, "cli")
        tokens[name] = token_for(vault, name)
    with vaultd_serve(home) as url:
        yield month, url, tokens


def test_compliance_commands_over_the_api(served: tuple[Month, str, dict[str, str]],
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    month, url, tokens = served
    monkeypatch.delenv("VAULTD_HOME", raising=False)

    def as_(who: str, *args: str) -> tuple[int, str, str]:
        code = main(["--url", url, "--token", tokens[who], *args])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = as_("sup", "compliance", "report", "--from", "2026-10-01", "--to", "2026-10-31", "--json")
    assert code == 0 and json.loads(out)["total"]["recordings"] == 7  # their unit only
    code, _, err = as_("sup", "compliance", "report", "--unit", "一中队")
    assert code == 7 and "own unit" in err
    code, out, _ = as_("zhou", "compliance", "report", "--to", "2026-10-12", "--json")
    assert code == 0 and {x["id"] for x in json.loads(out)["late"]} == set(month.cam1_late)  # the 12th included
    code, out, _ = as_("sup", "trips", "add", "--officer", "2001", "--left", "2026-10-29T08:00", "--note", "驻点")
    assert code == 0 and "(away)" in out
    trip_id = out.split()[1]
    code, out, _ = as_("sup", "trips", "return", trip_id, "--at", "2026-10-31T08:00")
    assert code == 0 and "2026-10-31 08:00:00" in out
    code, out, _ = as_("sup", "trips", "list", "--officer", "2001", "--json")
    assert code == 0 and [t["returned_at"] for t in json.loads(out)] == ["2026-10-31T00:00:00+00:00"]
    code, out, _ = as_("sup", "gaps", "note", month.c3[3], "--text", "暴雨")
    assert code == 0 and "暴雨" in out
    code, out, _ = as_("sup", "gaps", "list", "--unnoted", "--json")
    assert code == 0 and [g["id"] for g in json.loads(out)] == [month.c3[1]]
    code, out, _ = as_("zhou", "spotcheck", "draw", "--percent", "10", "--seed", "s1", "--json")
    check = json.loads(out)
    assert code == 0 and len(check["sample"]) == 4
    code, out, _ = as_("zhou", "spotcheck", "finding", check["id"], check["sample"][0], "--item", "recorded",
                       "--result", "pass")
    assert code == 0
    code, out, _ = as_("zhou", "spotcheck", "show", check["id"])
    assert code == 0 and "recorded=pass" in out and "s1" in out
    code, out, _ = as_("zhou", "spotcheck", "list")
    assert code == 0 and check["id"] in out
    code, _, err = as_("sup", "spotcheck", "draw", "--percent", "10")
    assert code == 7
    code, out, _ = as_("zhou", "report", "stats", "--year", "2026", "--csv")
    assert code == 0 and out.splitlines()[1].startswith("total,2026,31,")
