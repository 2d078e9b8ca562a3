"""Spot checks for the legal office (R10): a reproducible sample with its seed
kept and logged, findings per recording against the checklist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from compliance_fixtures import Month
from vaultd import spotcheck
from vaultd.access import Role
from vaultd.catalog.schema import audit_entries
from vaultd.cli import main
from vaultd.errors import AccessDeniedError, NotFoundError, UsageError
from vaultd.people import NewUser, add_user, local_owner, principal_of
from vaultd.vault import Vault

OWNER = local_owner()


@pytest.mark.parametrize("population, percent, size", [
    (0, 10, 0), (1, 1, 1), (31, 10, 4), (30, 10, 3), (10, 100, 10), (7, 50, 4), (200, 0.5, 1),
])
def test_sample_size(population: int, percent: float, size: int) -> None:
    assert spotcheck.sample_size(population, percent) == size


def test_the_same_seed_draws_the_same_sample() -> None:
    ids = [f"r{i:03d}" for i in range(100)]
    one = spotcheck.draw_sample(ids, 10, "seed-1")
    assert one == spotcheck.draw_sample(list(reversed(ids)), 10, "seed-1")  # order of the population: no matter
    assert len(one) == 10 and len(set(one)) == 10 and set(one) <= set(ids)
    assert one != spotcheck.draw_sample(ids, 10, "seed-2")


def _logged(vault: Vault, type_: str) -> list[dict[str, object]]:
    with vault.engine.connect() as conn:
        return [json.loads(r.entry) for r in conn.execute(select(audit_entries.c.entry).where(
            audit_entries.c.type == type_).order_by(audit_entries.c.idx))]


def test_draw_show_and_findings(vault: Vault, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = Month(vault)
    legal = principal_of(add_user(vault, OWNER, NewUser("zhou", (Role.LEGAL,)), None, "cli"))
    check = spotcheck.draw(vault, legal, 20, unit="二中队")
    assert check.population == 7 and len(check.sample) == 2 and set(check.sample) <= set(m.by_officer["2001"])
    [entry] = _logged(vault, "spotcheck.draw")
    details = entry["details"]
    assert isinstance(details, dict)
    assert details["seed"] == check.seed and details["sample"] == check.sample
    # the logged seed draws the same sample again
    again = spotcheck.draw(vault, legal, 20, unit="二中队", seed=check.seed)
    assert again.sample == check.sample and again.id != check.id
    # the catalog's facts per sampled recording help the reviewer
    some = check.sample[0]
    assert check.hints[some]["on-time"]["status"] == "on-time"
    # findings: one per item, a failure needs a note, the latest counts, all are logged
    spotcheck.finding(vault, legal, check.id, some, "on-time", "pass")
    with pytest.raises(UsageError, match="note"):
        spotcheck.finding(vault, legal, check.id, some, "labelled", "fail")
    spotcheck.finding(vault, legal, check.id, some, "labelled", "fail", "未标注案件编号 / no case number")
    with pytest.raises(UsageError, match="unknown checklist item"):
        spotcheck.finding(vault, legal, check.id, some, "pretty", "pass")
    outsider = next(r for r in m.by_officer["1001"])
    with pytest.raises(UsageError, match="not in spot check"):
        spotcheck.finding(vault, legal, check.id, outsider, "on-time", "pass")
    with pytest.raises(NotFoundError):
        spotcheck.show(vault, legal, "scnothere")
    shown = spotcheck.show(vault, legal, check.id)
    assert [(f["item"], f["result"]) for f in shown.findings] == [("on-time", "pass"), ("labelled", "fail")]
    assert [e["evidence"]["id"] for e in _logged(vault, "spotcheck.finding")] == [some, some]  # type: ignore[index]
    # the command line
    assert main(["--home", str(home), "spotcheck", "draw", "--percent", "10", "--from", "2026-10-01",
                 "--to", "2026-10-31", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["population"] == 31 and len(doc["sample"]) == 4
    assert main(["--home", str(home), "spotcheck", "finding", doc["id"], doc["sample"][0], "--item", "access",
                 "--result", "pass"]) == 0
    assert main(["--home", str(home), "spotcheck", "show", doc["id"]]) == 0
    out = capsys.readouterr().out
    assert doc["seed"] in out and "access=pass" in out


@pytest.mark.parametrize("role", [Role.OFFICER, Role.SUPERVISOR, Role.LEADER, Role.ADMIN])
def test_only_legal_and_auditors_draw(vault: Vault, role: Role) -> None:
    p = principal_of(add_user(vault, OWNER, NewUser("x", (role,), "一中队"), None, "cli"))
    with pytest.raises(AccessDeniedError):
        spotcheck.draw(vault, p, 10)
    assert [e["details"]["rule"] for e in _logged(vault, "access.denied")] == ["role"]  # type: ignore[index]


@pytest.mark.parametrize("percent", [0, -5, 101])
def test_bad_percent_is_refused(vault: Vault, percent: float) -> None:
    with pytest.raises(UsageError, match="--percent"):
        spotcheck.draw(vault, OWNER, percent)
    assert _logged(vault, "spotcheck.draw") == []
