"""The agency and its people by name on every export document (issue 17 point 2).

The agency's name and its units' names are configured once (``[agency]`` in
vaultd.toml) and printed on the cover (HTML and PDF), in bag-info.txt
(``Source-Organization``, which was ``-``) and in VERIFY.txt; people are shown by
display name with 警号 and unit (the unit's name). VERIFY.txt is Chinese first,
then English, throughout. Free text from people (a purpose) reaches no document
with its control or bidi characters raw."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from vaultd import approvals, config, export, people
from vaultd.access import RequestKind, Role
from vaultd.errors import ConfigError
from vaultd.people import NewUser, local_owner

from export_world import World, make_world

AGENCY = "某市城市管理综合执法局"
CONFIG = f"""
[agency]
name = "{AGENCY}"

[agency.units]
"一大队" = "第一执法大队"
"法制" = "法制科"
"""
PURPOSE = "移送法院 2026-017\x1b[2J\u202eforged"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, _sim_camera_master: Path) -> Iterator[World]:
    w = make_world(tmp_path_factory.mktemp("names"), _sim_camera_master)
    # the test world's [export] agency is the older key; [agency] name wins over it
    (w.home / "vaultd.toml").write_text((w.home / "vaultd.toml").read_text(encoding="utf-8") + CONFIG,
                                        encoding="utf-8")
    w.vault.close()
    from vaultd.vault import open_vault

    w.vault = open_vault(w.home)
    owner = local_owner()
    people.add_user(w.vault, owner, NewUser("zhao", (Role.LEGAL,), "法制", "300123", display_name="赵敏"),
                    None, "cli")
    people.add_user(w.vault, owner, NewUser("qian", (Role.LEADER,), None, None, display_name="钱局长"), None, "cli")
    yield w
    w.vault.close()


@pytest.fixture(scope="module")
def pkg(world: World) -> Path:
    video = next(r for r in world.recs if r.media_type.value == "video" and not r.damaged)
    req = approvals.request_access(world.vault, world.who("zhao"), RequestKind.EXPORT, [video.id], PURPOSE,
                                   notice="调取 2026-9", expires_days=7, uses=1, via="cli")
    grant = approvals.approve(world.vault, world.who("qian"), req.id, "cli").id
    out = world.out / "names"
    out.mkdir()
    return export.create_export(world.vault, local_owner(), export.ExportRequest(
        out_dir=out, grant_id=grant, recording_refs=(video.id,))).packages[0]


def _info(pkg: Path) -> dict[str, str]:
    lines = (pkg / "bag-info.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines)


def test_bag_info_names_the_agency_and_people(pkg: Path) -> None:
    info = _info(pkg)
    assert info["Source-Organization"] == AGENCY
    assert info["Requester"] == "赵敏 (警号 300123, 法制科)"
    assert info["Approver"] == "钱局长"
    assert "+08:00" in info["Made-At"]  # the station's zone, with its offset


def test_cover_names_the_agency_people_and_units_in_station_time(pkg: Path, world: World) -> None:
    page = (pkg / "cover.html").read_text(encoding="utf-8")
    assert AGENCY in page and "赵敏 (警号 300123, 法制科)" in page and "钱局长" in page
    assert "(警号 012345, 第一执法大队)" in page  # the officer who held the camera, by 警号 and unit name
    assert "Asia/Shanghai" in page
    assert (pkg / "cover.pdf").read_bytes().startswith(b"%PDF")


def test_no_document_carries_control_or_bidi_characters_raw(pkg: Path) -> None:
    for name in ("bag-info.txt", "cover.html", "VERIFY.txt"):
        text = (pkg / name).read_text(encoding="utf-8")
        assert "\x1b" not in text and "\u202e" not in text, name
    assert "\\x1b[2J\\u202eforged" in _info(pkg)["Purpose"]


def test_verify_txt_is_chinese_first_then_english_throughout(pkg: Path) -> None:
    lines = (pkg / "VERIFY.txt").read_text(encoding="utf-8").splitlines()
    cjk = re.compile(r"[\u4e00-\u9fff]")
    assert cjk.search(lines[0]) and lines[1].startswith("How to verify")
    assert any(AGENCY in line for line in lines[:6])
    prose = [line for line in lines if line.strip() and not line.lstrip().startswith(("$", "(printf"))]
    steps = [i for i, line in enumerate(lines) if line.startswith("Step ")]
    assert steps
    for i in steps:  # each step: its Chinese line, then its English one
        n = lines[i].split()[1].rstrip(".")
        assert lines[i - 1].startswith(f"第 {n} 步") and cjk.search(lines[i - 1])
    # every English paragraph follows a Chinese one: no English-only stretch
    english_only = [line for line in prose if not cjk.search(line)]
    for line in english_only:
        j = lines.index(line)
        assert any(cjk.search(x) for x in lines[max(0, j - 4):j]), line


@pytest.mark.parametrize("text, message", [
    ('[agency]\nname = "a\\u202eb"\n', "agency.name contains a control or bidi character"),
    ('[agency]\nname = 5\n', "agency.name must be a str"),
    ('[agency.units]\n"一大队" = 1\n', "agency.units.一大队 must be a string"),
    ('[agency.units]\n"一大队" = ""\n', "agency.units.一大队 must not be empty"),
    ('[agency]\nunits = "一大队"\n', "agency.units must be a table"),
    ('[agency]\nnmae = "x"\n', "unknown key agency.nmae"),
])
def test_bad_agency_config_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "vaultd.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert str(path) in err.value.message and message in err.value.message


def test_the_reference_config_documents_the_agency_keys() -> None:
    ref = Path(__file__).parents[1] / "config" / "vaultd.toml"
    cfg = config.load(ref)
    assert cfg.agency == config.AgencyConfig()
    text = ref.read_text(encoding="utf-8")
    assert "[agency]" in text and "[agency.units]" in text and "name = " in text


def _cli(*args: str) -> str:
    import contextlib
    import io

    from vaultd.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(list(args)) == 0, args
    return out.getvalue()


def test_reports_name_the_agency_and_units(world: World) -> None:
    import json

    h = ("--home", str(world.home))
    year = str(min(r.recorded_start for r in world.recs if r.recorded_start).year)
    for command in (("report", "stats", "--year", year), ("compliance", "report")):
        doc = json.loads(_cli(*h, *command, "--json"))
        assert doc["agency"] == AGENCY
        text = _cli(*h, *command)
        assert text.splitlines()[0] == AGENCY, text
        units = {r["key"] for r in doc.get("units", doc.get("by_unit", []))}
        if "一大队" in units:
            assert doc["unit_names"]["一大队"] == "第一执法大队" and "第一执法大队 (一大队)" in text
    doc = json.loads(_cli(*h, "report", "stats", "--year", year, "--unit", "一大队", "--json"))
    assert doc["unit_names"] == {"一大队": "第一执法大队"}
    assert "unit 第一执法大队 (一大队)" in _cli(*h, "report", "stats", "--year", year, "--unit", "一大队")


def test_export_list_and_show_name_people_in_station_time(world: World, pkg: Path) -> None:
    import json
    from datetime import datetime
    from zoneinfo import ZoneInfo

    h = ("--home", str(world.home))
    export_id = pkg.name
    row = next(r for r in json.loads(_cli(*h, "export", "list", "--json")) if r["id"] == export_id)
    local = datetime.fromisoformat(row["created_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    listed = next(line for line in _cli(*h, "export", "list").splitlines() if line.startswith(export_id))
    assert "赵敏 (警号 300123, 法制科) / 钱局长" in listed and f"{local:%Y-%m-%d %H:%M}" in listed
    shown = _cli(*h, "export", "show", export_id)
    assert "赵敏 (警号 300123, 法制科)" in shown and f"{local:%Y-%m-%d %H:%M:%S} (Asia/Shanghai)" in shown


@pytest.mark.slow
def test_remote_export_list_and_show_name_people_in_station_time(world: World, pkg: Path) -> None:
    """``vaultd --url U export list|show`` print what the station's do: display names, the station's zone."""
    import json
    import os
    import subprocess
    import sys
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from serving import vaultd_serve

    password = "names over the api"
    people.add_user(world.vault, local_owner(), NewUser("zhou", (Role.LEADER,), None, None, display_name="周局长"),
                    password, "cli")

    def run(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run([sys.executable, "-m", "vaultd.cli", *args], input=stdin, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "TZ": "America/New_York"})
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    export_id = pkg.name
    with vaultd_serve(world.home) as url:
        token = run("--url", url, "login", "--user", "zhou", "--password-stdin", "--print-token",
                    stdin=password + "\n").strip()
        r = ("--url", url, "--token", token)
        row = next(x for x in json.loads(run(*r, "export", "list", "--json")) if x["id"] == export_id)
        assert row["requester"] == "zhao" and row["requester_label"] == "赵敏 (警号 300123, 法制科)"
        local = datetime.fromisoformat(row["created_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
        out = run(*r, "export", "list")
        listed = next(line for line in out.splitlines() if line.startswith(export_id))
        assert "赵敏 (警号 300123, 法制科) / 钱局长" in listed and f"{local:%Y-%m-%d %H:%M}" in listed, out
        assert "Asia/Shanghai" in out.splitlines()[-1], out
        shown = run(*r, "export", "show", export_id)
        assert "赵敏 (警号 300123, 法制科)" in shown and "钱局长" in shown, shown
        assert f"{local:%Y-%m-%d %H:%M:%S} (Asia/Shanghai)" in shown, shown
