"""The README's walk-through, as a new user runs it: a real server on loopback,
the CLI as its client, and curl. Request, approval, download, all in the log."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving import vaultd_serve

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"


def vaultd(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "vaultd.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


@pytest.fixture
def server(home: Path, camera: Path, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    h = ["--home", str(home)]
    vaultd(*h, "users", "add", "wang", "--role", "officer", "--unit", "一大队", "--officer-number", "012345",
           "--password-stdin", stdin=PASSWORD + "\n")
    vaultd(*h, "users", "add", "li", "--role", "supervisor", "--unit", "一大队", "--password-stdin",
           stdin=PASSWORD + "\n")
    vaultd(*h, "users", "add", "zhao", "--role", "legal", "--password-stdin", stdin=PASSWORD + "\n")
    vaultd(*h, "ingest", str(camera))
    sock = tmp_path / "api.sock"
    with vaultd_serve(home, "--uds", str(sock)) as url:
        yield home, url


def test_request_approve_download_with_cli_and_curl(server: tuple[Path, str], tmp_path: Path) -> None:
    home, url = server
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "VAULTD_HOME": ""}
    officer = vaultd("--url", url, "login", "--user", "wang", "--password-stdin", stdin=PASSWORD + "\n", env=env)
    assert "logged in as wang" in officer
    # the officer now works through the saved login, no --url needed
    mine = json.loads(vaultd("recordings", "list", "--json", env=env))
    assert mine and all(r["officer_id"] == "012345" for r in mine)
    video = next(r for r in mine if r["media_type"] == "video" and not r["damaged"])
    request_id = vaultd("access", "request", "--kind", "view-original", "--recording", video["id"],
                        "--purpose", "复核 case 2026-017", "--uses", "2", env=env).strip()

    # the supervisor signs in with his own password (nobody can make a token for him: #16.2)
    sup_token = vaultd("--url", url, "login", "--user", "li", "--password-stdin", "--print-token",
                       stdin=PASSWORD + "\n", env=env).strip()
    sup = ["--url", url, "--token", sup_token]
    assert request_id in vaultd(*sup, "access", "pending")
    # the same API on the station's Unix socket
    assert request_id in vaultd("--url", f"unix:{tmp_path / 'api.sock'}", "--token", sup_token, "access", "pending")
    grant_id = vaultd(*sup, "access", "approve", request_id).strip().splitlines()[0]

    out = tmp_path / "copy.mp4"
    vaultd("recordings", "get", video["id"], "--grant", grant_id, "--out", str(out), "--reason", "复核", env=env)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == video["sha256"]

    officer_token = json.loads((tmp_path / "cfg" / "vaultd" / "credentials.json").read_text())["token"]
    part = subprocess.run(["curl", "-sf", "-r", "0-99", "-H", f"Authorization: Bearer {officer_token}",
                           f"{url}/api/v1/recordings/{video['id']}/original?grant={grant_id}&reason=curl"],
                          capture_output=True, check=True).stdout
    assert part == out.read_bytes()[:100]
    # that range began the second copy (the second use); the rest of it belongs to the same copy
    rest = subprocess.run(["curl", "-sf", "-r", "100-", "-H", f"Authorization: Bearer {officer_token}",
                           f"{url}/api/v1/recordings/{video['id']}/original?grant={grant_id}&reason=curl"],
                          capture_output=True, check=True).stdout
    assert part + rest == out.read_bytes()
    # both uses are spent now: two complete copies
    again = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                            f"Authorization: Bearer {officer_token}",
                            f"{url}/api/v1/recordings/{video['id']}/original?grant={grant_id}&reason=x"],
                           capture_output=True, text=True).stdout
    assert again == "403"

    log = json.loads(vaultd("--home", str(home), "audit", "list", "--recording", video["id"], "--json"))
    types = [e["type"] for e in log]
    assert types[0] == "ingest"
    assert types.count("grant.use") == 2 and "recording.get" in types and "access.denied" in types
    everything = vaultd("--home", str(home), "audit", "list", "--type", "access.*")
    assert "access.request" in everything and "access.approve" in everything
    assert "intact" in vaultd("--home", str(home), "audit", "verify")
