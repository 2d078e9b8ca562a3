"""Issue 16 #13 (headers, plain HTTP off loopback) and issue 17 #6 (``serve`` says where it listens).

Every answer carries ``X-Content-Type-Options: nosniff``; JSON with evidence
metadata or tokens carries ``Cache-Control: no-store``; the API refuses to
serve bearer tokens in clear on a network address unless told to.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import test_api
from serving import free_port, vaultd_server
from test_api import API, PASSWORD, World

import vaultd
from vaultd.api.app import make_servers
from vaultd.errors import ConfigError
from vaultd.vault import Vault

world = test_api.world  # the API world of tests/test_api.py: its users, tokens and recordings


def secured(r: object, *, store: bool = False) -> None:
    headers = getattr(r, "headers")
    assert headers["x-content-type-options"] == "nosniff", dict(headers)
    if not store:
        assert "no-store" in headers["cache-control"], dict(headers)


def test_evidence_metadata_tokens_and_errors_are_never_stored_nor_sniffed(world: World) -> None:
    rec = world.rec()
    login = world.client.post(API + "/login", json={"name": "wang", "password": PASSWORD})
    assert login.status_code == 200
    secured(login)  # a bearer token
    secured(world.get("wang", "/recordings"))  # evidence metadata
    secured(world.get("wang", f"/recordings/{rec.id}"))
    secured(world.get("wu", "/audit/entries"))
    secured(world.get("wang", "/access/grants"))
    secured(world.get("li", f"/recordings/{rec.id}"))  # a 404
    secured(world.client.get(API + "/recordings"))  # a 401
    secured(world.client.get(API + "/health"))
    secured(world.client.get("/openapi.json"))


def test_an_original_is_not_sniffed_and_keeps_its_own_cache_control(world: World) -> None:
    rec = world.rec()
    gid = world.granted("wang", rec, "zhao")
    r = world.original("wang", rec, gid)
    assert r.status_code == 200
    secured(r)
    assert r.headers.get_list("cache-control") == ["no-store"]


@pytest.mark.parametrize("listen", ["0.0.0.0:8470", "192.0.2.7:8470", "[::]:8470", "vault.example:8470"])
def test_plain_http_off_loopback_is_refused(vault: Vault, listen: str) -> None:
    with pytest.raises(ConfigError, match="not a loopback address") as exc:
        make_servers(vault, listen)
    assert "--insecure-http" in (exc.value.hint or "")
    assert make_servers(vault, listen, insecure_http=True)
    assert make_servers(vault, listen, certfile="cert.pem", keyfile="key.pem")


@pytest.mark.parametrize("listen", ["127.0.0.1:8470", "[::1]:8470", "localhost:8470", "127.0.0.2:8470"])
def test_plain_http_on_loopback_is_served(vault: Vault, listen: str) -> None:
    assert make_servers(vault, listen)


def _vaultd(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vaultd.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=60)


def test_serve_and_run_refuse_to_start_on_a_network_address_without_tls(vault: Vault, home: Path) -> None:
    listen = f"0.0.0.0:{free_port()}"
    served = _vaultd(home, "serve", "--listen", listen)
    assert served.returncode == 3 and "not a loopback address" in served.stderr, served.stderr
    assert "--insecure-http" in served.stderr and "Traceback" not in served.stderr
    ran = _vaultd(home, "run", "--no-udev", "--no-previews", "--listen", listen)
    assert ran.returncode == 3 and "not a loopback address" in ran.stderr, ran.stderr


def test_serve_says_where_it_listens_which_home_and_version(vault: Vault, home: Path) -> None:
    with vaultd_server(home, stderr=subprocess.PIPE) as (url, proc):
        pass
    assert proc.stderr is not None
    said = proc.stderr.read().decode()
    first = said.splitlines()[0]
    assert url in first and str(home) in first and vaultd.__version__ in first, said
