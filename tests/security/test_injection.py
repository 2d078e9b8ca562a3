"""Terminal and log injection (issue 16 point 6): stored as sent, shown escaped, refused in names."""

from __future__ import annotations

import pytest

from vaultd.errors import UsageError
from vaultd.safetext import check_name, escape, escape_html

HOSTILE = ["\x1b[2K\r", "a\r\n     7  2026-12-07 audit.verify ok", "x\x00y", "\u202egpj.exe", "\u2028", "\x9b31m",
           "\u200b", "\ufeff", "\t"]


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_leaves_no_control_or_bidi_character(text: str) -> None:
    shown = escape(text)
    assert shown.isprintable() and "\\" in shown
    assert escape_html(text).isprintable()


def test_escape_keeps_ordinary_text_and_chinese() -> None:
    for text in ("wang", "王小明 一大队", "DCIM/100MEDIA/a b.mp4", "C:\\x", "（粤）2026第1号"):
        assert escape(text) == text
    assert escape("a\nb", multiline=True) == "a\nb" and escape("a\r\nb", multiline=True) == "a\\r\nb"
    assert escape("\x1b") == "\\x1b" and escape("\u202e") == "\\u202e" and escape(None) == "None"
    assert escape_html("<b>\x1b") == "&lt;b&gt;\\x1b"


@pytest.mark.parametrize("text", HOSTILE + [" wang", "", "   "])
def test_check_name_refuses_controls_bidi_and_blank(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        check_name(text, "user name")
    assert "user name" in exc.value.message and exc.value.message.isprintable()


def test_check_name_accepts_plain_names() -> None:
    for text in ("wang", "王小明", "一大队", "（粤）罚字〔2026〕第1号", "CAM-0001"):
        assert check_name(text, "name") == text


# -- the sinks: what a person reads --------------------------------------------------------------

import json  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

from compliance_fixtures import put_recording  # noqa: E402
from serving import vaultd_serve  # noqa: E402
from vaultd import approvals, cases, devices, people  # noqa: E402
from vaultd.access import RequestKind, Role  # noqa: E402
from vaultd.cli import main  # noqa: E402
from vaultd.errors import AuthenticationError  # noqa: E402
from vaultd.vault import Vault  # noqa: E402
from conftest import token_for  # noqa: E402

OWNER = people.local_owner()
FORGED = "x\x1b[2K\r\n     99  2026-12-07 08:00:00  local:root/cli       audit.verify  ok=yes\u202e\x00\x9b"


def _unsafe_chars(text: str) -> list[str]:
    from vaultd.safetext import is_unsafe
    return [ch for ch in text if is_unsafe(ch) and ch != "\n"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_audit_list_shows_a_forged_login_name_escaped(vault: Vault, home: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AuthenticationError):
        people.login(vault, FORGED, "wrong password", "10.0.0.9:5555")
    code, out, _ = _run(capsys, "--home", str(home), "audit", "list")
    assert code == 0
    assert not _unsafe_chars(out)
    assert not any(line.lstrip().startswith("99 ") for line in out.splitlines())  # no forged line
    assert "\\x1b[2K\\r\\n" in out and "\\u202e" in out
    code, out, _ = _run(capsys, "--home", str(home), "audit", "list", "--json")
    assert code == 0 and not _unsafe_chars(out)
    names = [e["actor"]["name"] for e in json.loads(out)]
    assert FORGED in names  # stored as sent, the same after a JSON round trip


def test_audit_list_prints_readable_fields_not_python_reprs(vault: Vault, home: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    people.add_user(vault, OWNER, people.NewUser("wang", (Role.OFFICER,), "一大队", "012345"), None, "cli")
    code, out, _ = _run(capsys, "--home", str(home), "audit", "list", "--type", "user.add")
    line = next(x for x in out.splitlines() if "user.add" in x)
    assert "{" not in line and "'" not in line
    assert "name=wang" in line and "unit=一大队" in line and "roles=officer" in line
    assert "Asia/Shanghai" in out  # the zone of the times is named


def test_access_pending_shows_the_purpose_escaped(vault: Vault, home: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rec = put_recording(vault, start=datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc))
    for name, role in (("zhou", Role.LEGAL), ("boss", Role.LEADER)):
        people.add_user(vault, OWNER, people.NewUser(name, (role,), "一中队"), None, "cli")
    zhou = people.principal_of(next(u for u in people.list_users(vault, OWNER, "cli") if u.name == "zhou"))
    approvals.request_access(vault, zhou, RequestKind.EXTERNAL, [rec.id], FORGED, notice="通知书 7",
                             expires_days=1, uses=1, via="api")
    token = token_for(vault, "boss")
    monkeypatch.delenv("VAULTD_HOME", raising=False)
    with vaultd_serve(home) as url:
        code, out, _ = _run(capsys, "--url", url, "--token", token, "access", "pending")
    assert code == 0 and "\\x1b[2K" in out
    assert not _unsafe_chars(out)
    assert len([x for x in out.splitlines() if x.strip()]) == 2  # the zone note and the one request


def test_error_messages_escape_what_was_typed(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--home", str(home), "recordings", "show", "r\x1b[31mnope\u202e")
    assert code == 4 and not _unsafe_chars(err)


@pytest.mark.parametrize("field", ["number", "unit", "party", "handler"])
def test_case_names_and_numbers_refuse_control_characters(vault: Vault, field: str) -> None:
    values = {"number": "2026-001", "title": "占道经营", "unit": "一大队", "party": "张三", "handler": "李四"}
    values[field] = values[field] + "\x1b[2K"
    with pytest.raises(UsageError, match="control or bidi"):
        cases.create(vault, OWNER, cases.NewCase(**values))  # type: ignore[arg-type]
    title_ok = {**values, field: values[field].replace("\x1b[2K", ""), "title": "a\x1b title is free text"}
    assert cases.create(vault, OWNER, cases.NewCase(**title_ok)).title == "a\x1b title is free text"  # type: ignore[arg-type]


def test_user_unit_officer_number_serial_and_notice_refuse_control_characters(vault: Vault) -> None:
    with pytest.raises(UsageError, match="unit name"):
        people.add_user(vault, OWNER, people.NewUser("wang", (Role.OFFICER,), "一大队\u202e"), None, "cli")
    with pytest.raises(UsageError, match="officer number"):
        people.add_user(vault, OWNER, people.NewUser("wang", (Role.OFFICER,), "一大队", "01\n2"), None, "cli")
    with pytest.raises(UsageError, match="device serial"):
        people.assign_device(vault, OWNER, "CAM\x001", "012345", "cli")
    with pytest.raises(UsageError, match="device serial"):
        devices.enroll(vault, OWNER, "CAM\r1")
    rec = put_recording(vault, start=datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc))
    with pytest.raises(UsageError, match="notice number"):
        approvals.request_access(vault, OWNER, RequestKind.EXTERNAL, [rec.id], "p", notice="7\x1b",
                                 expires_days=1, uses=1, via="cli")
    with pytest.raises(UsageError, match="recording id"):
        approvals.request_access(vault, OWNER, RequestKind.EXTERNAL, ["r1\x1b[2K"], "p", notice="7",
                                 expires_days=1, uses=1, via="cli")


def test_label_names_refuse_control_characters_free_text_is_kept(vault: Vault) -> None:
    from vaultd import labels

    rec = put_recording(vault, start=datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc))
    for field in ("case_number", "party", "handler", "maker"):
        with pytest.raises(UsageError, match=f"label field {field}"):
            labels.set_label(vault, OWNER, rec.id, {field: "张三\u202e"})
    kept = labels.set_label(vault, OWNER, rec.id, {"description": "第一行\n第二行\x1b"})
    assert kept.description == "第一行\n第二行\x1b"  # stored as sent; escaped where shown


def test_label_show_keeps_a_multiline_description_on_one_line(vault: Vault, home: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from vaultd import labels

    rec = put_recording(vault, start=datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc))
    labels.set_label(vault, OWNER, rec.id, {"description": "ok\nlabelled       True", "party": "张三"})
    code, out, _ = _run(capsys, "--home", str(home), "recordings", "label", rec.id)
    assert code == 0 and "ok\\nlabelled       True" in out
    assert [x for x in out.splitlines() if x.startswith("labelled ")] == ["labelled       False"]
    assert "(Asia/Shanghai)" in next(x for x in out.splitlines() if x.startswith("label_due"))


@pytest.mark.slow
def test_ingest_report_shows_a_hostile_camera_file_name_escaped(home: Path, camera: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    hostile = camera / "DCIM" / "x\n  new       rforged000000 ok\x1b[2K.MP4"
    hostile.parent.mkdir(exist_ok=True)
    hostile.write_bytes(b"not a video")
    code, out, _ = _run(capsys, "--home", str(home), "ingest", str(camera))
    assert not _unsafe_chars(out)
    assert not any(line.lstrip().startswith("new       rforged") for line in out.splitlines())
    assert "rforged000000 ok" in out and "odd name" in out  # on the line of the file, neutralised at ingest
