"""Cases (R8): created with Chinese names kept exactly, recordings linked,
closed only once labelled, archived; the file deadline visible."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

pytest.register_assert_rewrite("retention_world")  # before its import: it is also a plugin here
from retention_world import World, logged
from vaultd import cases, labels
from vaultd.access import Level
from vaultd.cases import NewCase, case_json
from vaultd.errors import AccessDeniedError, NotFoundError, UsageError

NUM = "松城执〔2026〕第017号"

pytest_plugins = ("retention_world",)  # the w / world_home fixtures



def _label_all(w: World, ids: list[str]) -> None:
    for rid in ids:
        labels.set_label(w.vault, w.who["wang"], rid, {"case_number": NUM, "party": "张三", "handler": "王五",
                                                       "proves": "占道经营", "description": "执法人员告知权利"})


def test_case_lifecycle(w: World) -> None:
    ended = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
    c = cases.create(w.vault, w.who["wang"], NewCase(NUM, "占道经营案", unit="城管一中队", handler="王五",
                                                     party="张三", act_ended_at=ended))
    assert (c.number, c.party, c.status) == (NUM, "张三", "open")
    assert case_json(c)["file_deadline"] == (ended + timedelta(days=30)).isoformat()
    ids = [r.id for r in w.recs[:2]]
    assert cases.link(w.vault, w.who["wang"], NUM, ids) == ids
    assert cases.link(w.vault, w.who["wang"], NUM, ids[:1]) == []  # linked once
    detail = cases.show(w.vault, w.who["zhao"], NUM)
    assert set(detail.recording_ids) == set(ids) and set(detail.unlabelled) == set(ids)
    with pytest.raises(AccessDeniedError):
        cases.close(w.vault, w.who["wang"], NUM)  # an officer does not close
    with pytest.raises(UsageError, match="not labelled") as err:
        cases.close(w.vault, w.who["zhao"], NUM)
    assert ids[0] in err.value.message and "party" in err.value.message
    _label_all(w, ids)
    closed = cases.close(w.vault, w.who["zhao"], NUM)
    assert closed.status == "closed" and closed.act_ended_at == ended
    with pytest.raises(UsageError, match="open case"):
        cases.link(w.vault, w.who["wang"], NUM, [w.recs[2].id])
    archived = cases.archive(w.vault, w.who["sun"], NUM)
    assert archived.status == "archived"
    assert [e["details"]["case"] for e in logged(w.vault, "case.close")] == [NUM]
    assert logged(w.vault, "case.create")[0]["details"]["party"] == "张三"
    assert [c.number for c in cases.list_(w.vault, w.who["zhou"], status="archived")] == [NUM]


def test_case_refusals(w: World) -> None:
    with pytest.raises(UsageError):
        cases.create(w.vault, w.who["wang"], NewCase(" ", "无编号"))
    cases.create(w.vault, w.who["wang"], NewCase("A-1", "甲"))
    with pytest.raises(UsageError, match="exists"):
        cases.create(w.vault, w.who["li"], NewCase("A-1", "乙"))
    with pytest.raises(AccessDeniedError):
        cases.create(w.vault, w.who["wu"], NewCase("A-2", "审计员不立案"))
    with pytest.raises(NotFoundError):
        cases.link(w.vault, w.who["li"], "A-1", [w.recs[0].id])  # li cannot see wang's recording
    with pytest.raises(UsageError, match="archived"):
        cases.archive(w.vault, w.who["zhao"], "A-1")  # still open
    cases.create(w.vault, w.who["zhou"], NewCase("S-1", "涉密", confidentiality=Level.CONFIDENTIAL))
    with pytest.raises(NotFoundError):
        cases.show(w.vault, w.who["zhao"], "S-1")  # above the supervisor's clearance: not found
    assert "S-1" not in [c.number for c in cases.list_(w.vault, w.who["zhao"])]


def test_a_case_without_recordings_closes_and_act_end_defaults_to_now(w: World) -> None:
    cases.create(w.vault, w.who["wang"], NewCase("E-1", "空案"))
    closed = cases.close(w.vault, w.who["sun"], "E-1")
    assert closed.act_ended_at is not None and case_json(closed)["file_deadline"]
