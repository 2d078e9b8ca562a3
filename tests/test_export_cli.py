"""The export flow as a new user runs it from the command line: ingest, request,
approve (over the API, as named users), export at the station, verify elsewhere.

The commands go through ``vaultd.cli.main`` in this process (argument parsing,
exit codes, output: all as from a shell) except the server and ``verify`` on
"another machine", which are separate processes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving import vaultd_serve
from vaultd.cli import main

pytestmark = pytest.mark.slow


PASSWORD = "correct horse battery"


def login(url: str, name: str) -> str:
    """A token for ``name``, who signs in with the password (no one else can make one: #16.2)."""
    done = run("--url", url, "login", "--user", name, "--password-stdin", "--print-token", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vaultd.cli", *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def ok(*args: str) -> str:
    code, out, err = cli(*args)
    assert code == 0, (args, out, err)
    return out


@pytest.fixture
def server(home: Path, _sim_camera_master: Path, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    h = ["--home", str(home)]
    for name, *roles in (("wang", "--role", "officer", "--officer-number", "012345"),
                         ("li", "--role", "supervisor"), ("sun", "--role", "leader")):
        added = run(*h, "users", "add", name, *roles, "--unit", "一大队", "--password-stdin", stdin=PASSWORD)
        assert added.returncode == 0, added.stderr
    cam = tmp_path / "camera"
    shutil.copytree(_sim_camera_master, cam, symlinks=True)
    ok(*h, "ingest", str(cam))
    with vaultd_serve(home) as url:
        yield home, url


def test_ingest_request_approve_export_verify(server: tuple[Path, str], tmp_path: Path) -> None:
    home, url = server
    h = ["--home", str(home)]
    sup = ["--url", url, "--token", login(url, "li")]
    leader = ["--url", url, "--token", login(url, "sun")]
    recs = json.loads(ok(*sup, "recordings", "list", "--json"))
    ids = [r["id"] for r in recs if r["media_type"] == "video"][:2]
    ask = ["access", "request", "--kind", "export", "--purpose", "移送人民法院 case 2026-017"]
    request_id = ok(*sup, *ask, *[a for i in ids for a in ("--recording", i)]).strip()
    grant = ok(*leader, "access", "approve", request_id).strip().splitlines()[0]

    out = tmp_path / "discs"
    out.mkdir()
    # the station makes it; without the grant it refuses
    code, _out, err = cli(*h, "export", "create", "--recording", ids[0], "--out", str(out))
    assert code == 7 and "no-grant" in err
    # someone else's token with li's grant: refused, the grant is li's
    wang = login(url, "wang")
    code, _out, err = cli(*h, "export", "create", "--recording", ids[0], "--grant", grant, "--out", str(out),
                          "--as-token", wang)
    assert code == 7 and "grant-other-user" in err, err
    made = json.loads(ok(*h, "export", "create", *[a for i in ids for a in ("--recording", i)],
                             "--case", "2026-017", "--grant", grant, "--out", str(out), "--iso", "--disc", "cd",
                             "--json"))
    assert made["status"] == "complete" and made["requester"] == "li" and made["approver"] == "sun"
    pkg = Path(made["packages"][0]["path"])
    assert Path(made["packages"][0]["iso"]).stat().st_size > 0
    assert made["id"] in ok(*h, "export", "list")
    assert made["packages"][0]["tagmanifest_sha256"] in ok(*h, "export", "show", made["id"])

    # "another machine": only the package, the agency CA and the log key, no vault
    ca = tmp_path / "agency-ca.pem"
    assert "SHA-256 fingerprint" in ok(*h, "export", "ca", "--out", str(ca))
    assert ca.read_bytes() == (home / "keys" / "agency-ca.pem").read_bytes()
    log_key = ok(*h, "keys", "show", "--log").strip()
    elsewhere = {"VAULTD_HOME": str(tmp_path / "no-vault-here"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    passed = run("verify", str(pkg), "--ca", str(ca), "--log-key", log_key, env=elsewhere)
    assert passed.returncode == 0 and "PASS" in passed.stdout, passed.stdout + passed.stderr
    assert not (tmp_path / "no-vault-here").exists()
    unpinned = run("verify", str(pkg), env=elsewhere)
    assert unpinned.returncode == 1 and "SIGNER NOT PINNED" in unpinned.stdout
    assert subprocess.run(["sha256sum", "-c", "--quiet", "manifest-sha256.txt"], cwd=pkg).returncode == 0

    # a second export into the same folder: `EXP-*` now matches two folders and two images, so
    # scripts (and the README) take the package's path from --print-path (issue 17 point 6)
    request_id = ok(*sup, *ask, "--recording", ids[1]).strip()
    grant = ok(*leader, "access", "approve", request_id).strip().splitlines()[0]
    printed = ok(*h, "export", "create", "--recording", ids[1], "--grant", grant, "--out", str(out), "--iso",
                 "--disc", "dvd", "--print-path")
    assert len(printed.splitlines()) == 1, printed
    second = Path(printed.strip())
    assert second.is_dir() and second != pkg and second.parent == out
    assert Path(f"{second}.iso").is_file() and len(list(out.glob("EXP-*"))) == 4
    passed = run("verify", f"{second}.iso", "--ca", str(ca), "--log-key", log_key, env=elsewhere)
    assert passed.returncode == 0 and "PASS" in passed.stdout, passed.stdout + passed.stderr

    entries = json.loads(ok(*h, "audit", "list", "--type", "export.*", "--json"))
    assert [e["type"] for e in entries].count("export.created") == 2
    denied = json.loads(ok(*h, "audit", "list", "--type", "access.denied", "--json"))
    assert any(e["details"].get("action") == "export" and e["details"]["rule"] == "no-grant" for e in denied)


def test_init_makes_the_agency_ca_once_and_keeps_keys_private(tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert "agency-ca.pem" in ok("--home", str(home), "init")
    keys = home / "keys"
    before = {p.name: p.read_bytes() for p in keys.iterdir()}
    assert "nothing changed" in ok("--home", str(home), "init")
    assert {p.name: p.read_bytes() for p in keys.iterdir()} == before
    for name in ("agency-ca-key.pem", "export-signing-key.pem", "agency-ca.pem", "export-signing.pem"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    check = subprocess.run(["openssl", "verify", "-CAfile", str(keys / "agency-ca.pem"),
                            str(keys / "export-signing.pem")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
