"""The #6 commands on the station: Chinese text shown as typed, clear errors,
and a purged recording that says so instead of failing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.register_assert_rewrite("retention_world")  # before its import: it is also a plugin here
from retention_world import load_world
from vaultd import retention
from vaultd.cli import main
from vaultd.vault import open_vault, utcnow

pytest_plugins = ("retention_world",)  # the w / world_home fixtures


def run(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--home", str(home), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cases_labels_holds_plan_purge_from_the_command_line(world_home: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    home = world_home
    vault = open_vault(home)
    try:
        w = load_world(vault)
    finally:
        vault.close()
    rid = w.recs[0].id
    num = "松城执〔2026〕第017号"
    assert run(capsys, home, "cases", "create", num, "--title", "占道经营", "--party", "张三", "--handler", "王五",
               "--act-ended", "2026-11-01")[0] == 0
    assert run(capsys, home, "cases", "link", num, rid)[0] == 0
    code, _out, err = run(capsys, home, "cases", "close", num)
    assert code == 2 and "not labelled" in err and rid in err
    code, out, _err = run(capsys, home, "recordings", "label", rid, "--case-number", num, "--party", "张三",
                          "--handler", "王五", "--proves", "当事人占道经营", "--json")
    label = json.loads(out)
    assert code == 0 and label["party"] == "张三" and label["labelled"] is True
    assert label["label_due"] and label["label_late"] is False  # labelled within the 2 working days
    code, out, _err = run(capsys, home, "cases", "close", num)
    assert code == 0 and "2026-11-30T16:00:00+00:00" in out  # 1 Nov (station time) + 30 days
    code, out, _err = run(capsys, home, "cases", "show", num)
    assert num in out and "张三" in out and rid in out
    code, out, _err = run(capsys, home, "holds", "add", "--recording", w.recs[1].id, "--reason", "other")
    assert code == 2  # 'other' needs a note
    code, out, _err = run(capsys, home, "holds", "add", "--recording", w.recs[1].id, "--reason", "dispute",
                          "--note", "当事人有异议")
    hold_id = out.strip()
    code, out, _err = run(capsys, home, "holds", "list")
    assert hold_id in out and "当事人有异议" in out
    code, _out, err = run(capsys, home, "holds", "release", hold_id)
    assert code == 2 and "second" in err  # the station's owner is nobody's second person
    code, out, _err = run(capsys, home, "retention", "plan", "--at", "2030-01-01", "--json")
    verdicts = {d["recording"]: d["verdict"] for d in json.loads(out)["items"]}
    assert w.recs[1].id not in verdicts, verdicts  # held
    assert verdicts[rid] == "expired"  # its case closed: 24 months after that
    assert run(capsys, home, "retention", "batch", "create")[1].strip() == "nothing has expired: no batch"
    code, _out, err = run(capsys, home, "retention", "batch", "approve", "bnope")
    assert code == 2 and "named users" in err
    # two named users approve (over the API in real life), the station runs the purge
    vault = open_vault(home)
    try:
        batch = retention.create_batch(vault, w.who["root"], now=utcnow().replace(year=2030))
        assert batch is not None
        for who in ("zhou", "sun"):
            retention.approve_batch(vault, w.who[who], batch.id)
        retention.purge(vault, w.who["root"], batch.id, now=utcnow().replace(year=2030))
    finally:
        vault.close()
    gone = w.recs[2]
    code, _out, err = run(capsys, home, "recordings", "get", gone.id, "--out", str(tmp_path / "x"),
                          "--reason", "复核")
    assert code == 4 and "purged" in err and gone.sha256 in err
    code, out, _err = run(capsys, home, "recordings", "show", gone.id)
    assert code == 0 and gone.sha256 in out and batch.id in out  # the metadata stays, and says it was purged
    code, _out, err = run(capsys, home, "retention", "purge", "--batch", batch.id)
    assert code == 2 and "purged already" in err
