"""Exports over the API, as legal staff at their own PC do it: a real ``vaultd
serve``, the CLI as its client (``--url``, tokens from password logins). Legal
asks, the leader approves, the server builds as a job with progress, the zip
(or tar) and the disc image come down, unpack and verify with ``vaultd
verify``; a cut download resumes byte-identical; a server killed mid-build
leaves nothing listed as done."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import wait_for
from serving import vaultd_serve

pytestmark = pytest.mark.slow
PASSWORD = "export over the api"


def vaultd(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "vaultd.cli", *args], input=stdin, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})
    if check:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


@dataclass
class Office:
    home: Path
    url: str
    tmp: Path

    def env(self, who: str) -> dict[str, str]:
        """Each person's PC: their own config (the token their login keeps), no vault."""
        return {"XDG_CONFIG_HOME": str(self.tmp / f"pc-{who}"), "VAULTD_HOME": ""}

    def login(self, who: str) -> None:
        out = vaultd("--url", self.url, "login", "--user", who, "--password-stdin", stdin=PASSWORD + "\n",
                     env=self.env(who)).stdout
        assert f"logged in as {who}" in out

    def as_(self, who: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return vaultd("--url", self.url, *args, env=self.env(who), check=check)

    def token(self, who: str) -> str:
        doc = json.loads((self.tmp / f"pc-{who}" / "vaultd" / "credentials.json").read_text())
        return str(doc["token"])

    def station(self, *args: str) -> str:
        return vaultd("--home", str(self.home), *args).stdout

    def entries(self, type_: str) -> list[dict[str, Any]]:
        return list(json.loads(self.station("audit", "list", "--type", type_, "--json")))


def _users(home: Path, camera: Path) -> None:
    h = ["--home", str(home)]
    for name, roles in (("wang", ["officer", "--unit", "一大队", "--officer-number", "012345"]),
                        ("zhao", ["legal"]), ("sun", ["leader"])):
        vaultd(*h, "users", "add", name, "--role", *roles, "--password-stdin", stdin=PASSWORD + "\n")
    vaultd(*h, "ingest", str(camera))


@pytest.fixture
def office(home: Path, camera: Path, tmp_path: Path) -> Iterator[Office]:
    _users(home, camera)
    with vaultd_serve(home) as url:
        o = Office(home, url, tmp_path)
        o.login("zhao")
        o.login("sun")
        yield o


def _granted(o: Office, ids: list[str]) -> str:
    """zhao (legal) asks, sun (leader) approves, both from their own PCs."""
    q = o.as_("zhao", "access", "request", "--kind", "export", "--purpose", "移送人民法院 2026-017",
              *[a for i in ids for a in ("--recording", i)]).stdout.strip()
    return o.as_("sun", "access", "approve", q).stdout.strip().splitlines()[0]


def _pick(o: Office) -> list[dict[str, Any]]:
    recs = json.loads(o.as_("zhao", "recordings", "list", "--json").stdout)
    video = next(r for r in recs if r["media_type"] == "video" and not r["damaged"])
    chinese = next(r for r in recs if "现场" in r["original_name"])
    return [video, chinese]


def _verify(o: Office, path: Path) -> None:
    ca = o.tmp / "agency-ca.pem"
    if not ca.exists():  # from the API, as a court's clerk or legal staff would get it
        assert "SHA-256 fingerprint" in o.as_("zhao", "export", "ca", "--out", str(ca)).stdout
    key = o.station("keys", "show", "--log").strip()
    done = vaultd("verify", str(path), "--ca", str(ca), "--log-key", key, env=o.env("court"), check=False)
    assert done.returncode == 0 and "PASS" in done.stdout, done.stdout + done.stderr


def test_legal_builds_downloads_and_verifies_an_export_over_the_api(office: Office) -> None:
    o = office
    recs = _pick(o)
    ids = [r["id"] for r in recs]
    grant = _granted(o, ids)
    job_id = o.as_("zhao", "export", "create", "--grant", grant, *[a for i in ids for a in ("--recording", i)],
                   "--case", "2026-017", "--iso", "--disc", "cd", "--no-wait").stdout.strip()
    assert job_id.startswith("EXP-")
    job = json.loads(o.as_("zhao", "export", "status", job_id, "--wait", "--json").stdout)
    assert job["state"] == "complete" and job["stage"] == "done"
    assert job["files_total"] == 2 and job["bytes_total"] == sum(r["size_bytes"] for r in recs)
    assert job["files_done"] == 2 and job["bytes_done"] == job["bytes_total"]
    names = [a["name"] for a in job["artefacts"]]
    assert names == [f"{job_id}.zip", f"{job_id}.iso"]
    shown = o.as_("zhao", "export", "status", job_id).stdout
    assert "complete" in shown and f"{job_id}.zip" in shown

    out = o.tmp / "downloads"
    got = o.as_("zhao", "export", "download", job_id, "--out", str(out)).stdout
    assert got.count("checked") == 2
    for a in job["artefacts"]:
        assert hashlib.sha256((out / a["name"]).read_bytes()).hexdigest() == a["sha256"]
    with zipfile.ZipFile(out / f"{job_id}.zip") as zf:
        zf.extractall(o.tmp / "unzipped")
    pkg = o.tmp / "unzipped" / job_id
    _verify(o, pkg)
    _verify(o, out / f"{job_id}.iso")
    assert subprocess.run(["sha256sum", "-c", "--quiet", "manifest-sha256.txt"], cwd=pkg).returncode == 0
    for r in recs:  # the originals, byte for byte
        (copy,) = (pkg / "data" / "recordings" / r["id"]).glob("[!m]*")
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == r["sha256"]

    # the same entries as the station's path, with the API user as maker, and each download
    created = [e for e in o.entries("export.created") if e["details"]["export"] == job_id]
    assert len(created) == 1 and created[0]["actor"]["name"] == "zhao" and created[0]["actor"]["via"] == "api"
    assert created[0]["details"]["approver"] == "sun" and created[0]["details"]["requester"] == "zhao"
    assert [e["details"]["export"] for e in o.entries("export.sealed")] == [job_id]
    assert len([e for e in o.entries("export.recording") if e["details"]["export"] == job_id]) == 2
    downloads = o.entries("export.download")
    assert sorted(e["details"]["file"] for e in downloads) == sorted(names)
    assert all(" bytes 0-" in e["details"]["out"] and e["actor"]["name"] == "zhao" for e in downloads)
    assert job_id in o.as_("zhao", "export", "list").stdout  # legal reads the record too


def test_a_cut_download_resumes_byte_identical(office: Office) -> None:
    o = office
    ids = [r["id"] for r in _pick(o)]
    made = o.as_("zhao", "export", "create", "--grant", _granted(o, ids), *[a for i in ids for a in ("--recording", i)],
                 "--format", "tar", "--json", "--out", str(o.tmp / "direct"))
    job = json.loads(made.stdout)  # it waited for the build, then downloaded into --out
    (art,) = job["artefacts"]
    assert art["name"] == f"{job['id']}.tar"
    assert hashlib.sha256((o.tmp / "direct" / art["name"]).read_bytes()).hexdigest() == art["sha256"]
    url = f"{o.url}/api/v1/exports/{job['id']}/files/{art['name']}"
    auth = {"Authorization": f"Bearer {o.token('zhao')}"}
    whole = httpx.get(url, headers=auth, timeout=60)
    assert whole.status_code == 200 and whole.headers["etag"] == f'"{art["sha256"]}"'
    assert whole.headers["accept-ranges"] == "bytes"

    # the line drops after the first 10,000 bytes: what arrived is the .part file
    out = o.tmp / "resumed"
    out.mkdir()
    cut = 10_000
    with httpx.stream("GET", url, headers=auth, timeout=60) as resp:
        part = b""
        for chunk in resp.iter_raw(1000):
            part += chunk
            if len(part) >= cut:
                break
    (out / (art["name"] + ".part")).write_bytes(part[:cut])
    o.as_("zhao", "export", "download", job["id"], "--out", str(out))
    assert (out / art["name"]).read_bytes() == whole.content
    assert not (out / (art["name"] + ".part")).exists()
    resumed = [e for e in o.entries("export.download") if e["details"]["out"].endswith(f"bytes {cut}-{art['size_bytes'] - 1}")]
    assert len(resumed) == 1, o.entries("export.download")


    def sent_whole() -> list[dict[str, Any]]:  # create --out, the whole GET, the cut GET
        return [e for t in ("export.download", "export.download.failed") for e in o.entries(t)
                if e["details"]["out"].endswith("(whole)")]

    # the cut GET is an entry too: failed (the client went away) or, when the server had
    # handed every byte to the kernel before the client hung up, a complete send
    wait_for(lambda: len(sent_whole()) == 3, what="the cut download's entry")
    # a range has the same ETag; a stale If-Range gives the whole file again
    part2 = httpx.get(url, headers={**auth, "Range": "bytes=5-9", "If-Range": f'"{art["sha256"]}"'}, timeout=60)
    assert part2.status_code == 206 and part2.content == whole.content[5:10]
    assert part2.headers["etag"] == whole.headers["etag"]
    stale = httpx.get(url, headers={**auth, "Range": "bytes=5-9", "If-Range": '"0000"'}, timeout=60)
    assert stale.status_code == 200 and stale.content == whole.content

    with tarfile.open(out / art["name"]) as tf:
        tf.extractall(o.tmp / "untarred", filter="data")
    _verify(o, o.tmp / "untarred" / job["id"])


def test_a_server_killed_mid_build_leaves_nothing_listed_as_done(home: Path, camera: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _users(home, camera)
    monkeypatch.setenv("VAULTD_KILL_AT", "1")  # the server kills itself at the first crash point: mid-build
    with vaultd_serve(home) as url:
        monkeypatch.delenv("VAULTD_KILL_AT")
        o = Office(home, url, tmp_path)
        o.login("zhao")
        o.login("sun")
        ids = [r["id"] for r in _pick(o)]
        job_id = o.as_("zhao", "export", "create", "--grant", _granted(o, ids), "--recording", ids[0],
                       "--no-wait").stdout.strip()

        def down() -> bool:
            try:
                httpx.get(url + "/api/v1/health", timeout=1)
                return False
            except httpx.HTTPError:
                return True

        wait_for(down, what="the server to die mid-build")
    assert (home / "exports" / job_id).is_dir()  # the half-built folder is still there
    with vaultd_serve(home) as url:  # on another port: the token zhao's login kept, given with --token
        again = ["--url", url, "--token", o.token("zhao")]
        status = json.loads(vaultd(*again, "export", "status", job_id, "--json", env=o.env("zhao")).stdout)
        assert status["state"] == "failed" and "cut off" in status["problem"] and status["artefacts"] == []
        assert not (home / "exports" / job_id).exists()
        failed = vaultd(*again, "export", "download", job_id, "--out", str(tmp_path / "nothing"), env=o.env("zhao"),
                        check=False)
        assert failed.returncode == 2 and "failed" in failed.stderr
    assert [e["details"]["export"] for e in o.entries("export.failed")] == [job_id]
    assert not o.entries("export.sealed")


def test_a_client_hanging_up_cannot_kill_the_server(home: Path) -> None:
    """``vaultd`` gives SIGPIPE its default action (for ``| head``); a server that kept
    it died silently when a client hung up mid-download (the cut above did, at times)."""
    from vaultd.api.app import make_servers
    from vaultd.vault import open_vault

    before = signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as cli.console leaves it
    vault = open_vault(home)
    try:
        make_servers(vault, "127.0.0.1:8470")  # made, never started
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGPIPE, before)
        vault.close()
