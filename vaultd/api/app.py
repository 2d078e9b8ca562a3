"""The HTTP API: a thin front end over the same service functions as the CLI.

Access checks and audit entries live in the services (they take the caller
and ``via="api"``); this package only turns HTTP into service calls and
service answers into JSON. ``serve`` runs it under uvicorn.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

import vaultd
from vaultd.api import (
    errors,
    routes_access,
    routes_audit,
    routes_cases,
    routes_compliance,
    routes_daemon,
    routes_evidence,
    routes_export,
    routes_people,
    routes_previews,
)
from vaultd.api.headers import ZONE_HEADER, SecurityHeaders
from vaultd.api.limits import BodyLimit
from vaultd.api.zerocopy import ZeroCopyH11Protocol
from vaultd.errors import ConfigError
from vaultd.i18n import _
from vaultd.vault import Vault

log = logging.getLogger(__name__)
PREFIX = "/api/v1"


def create_app(vault: Vault) -> FastAPI:
    """The API over one open vault, shared by every request."""
    app = FastAPI(title="vaultd", version=vaultd.__version__, openapi_url="/openapi.json",
                  docs_url=None, redoc_url=None,  # they load scripts from a CDN
                  description="Evidence vault for body-worn cameras. Every call is checked and audited "
                              "by the same services the command line uses.")
    app.state.vault = vault
    app.include_router(routes_people.public, prefix=PREFIX)
    for router in (routes_people.admin, routes_evidence.router, routes_access.router, routes_audit.router,
                   routes_previews.router, routes_compliance.router, routes_cases.router, routes_export.router,
                   routes_daemon.router):
        app.include_router(router, prefix=PREFIX, responses=errors.responses())
    errors.install(app)
    inner = app.build_middleware_stack

    def build() -> ASGIApp:  # outside Starlette's own error handler: its 500s get the headers too
        zone = (ZONE_HEADER, vault.config.time.station_tz.encode("ascii"))
        return SecurityHeaders(BodyLimit(inner(), app.openapi), extra=(zone,))

    app.build_middleware_stack = build  # type: ignore[method-assign]
    _reap_exports(vault)
    return app


def _reap_exports(vault: Vault) -> None:
    """Export builds a stopped server cut off are recorded failed before it serves again."""
    from vaultd import exportjobs
    from vaultd.vault import utcnow

    try:
        exportjobs.reap(vault, utcnow())
    except Exception:  # a start-up task: the API serves anyway, a job's status reaps it again
        log.exception("could not check the exports left by an earlier server")


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(_("listen address %r is not host:port") % listen,
                          hint=_("e.g. 127.0.0.1:8470 or [::1]:8470"))
    return host, int(port)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(vault: Vault, listen: str = "127.0.0.1:8470", *, certfile: Path | str | None = None,
          keyfile: Path | str | None = None, uds: str | None = None, insecure_http: bool = False,
          announce: Callable[[str], None] | None = None) -> None:
    """Run the API under uvicorn until stopped: on ``listen`` (TLS when both files
    are given) and, when ``uds`` is given, on that Unix socket as well, for
    local clients (``--url unix:/run/vaultd/api.sock``). Once every server
    listens, ``announce`` gets a line or two for a person (address, home,
    version). Logging is left to the caller."""
    servers = make_servers(vault, listen, certfile=certfile, keyfile=keyfile, uds=uds, insecure_http=insecure_http)
    text = banner(vault, listen, tls=certfile is not None, uds=uds)
    asyncio.run(_serve_all(servers, (lambda: announce(text)) if announce else None))


def banner(vault: Vault, listen: str | None, *, tls: bool, uds: str | None) -> str:
    """What ``vaultd serve`` says once it listens: where, for which vault, which version."""
    where = [f"{'https' if tls else 'http'}://{listen}"] if listen else []
    where += [f"unix:{uds}"] if uds else []
    return (_("vaultd %s serving the API on %s for the vault at %s")
            % (vaultd.__version__, _(" and ").join(where), vault.layout.root) + "\n"
            + _("schema at %s/openapi.json; stop with Ctrl-C or SIGTERM") % where[0])


def make_servers(vault: Vault, listen: str | None, *, certfile: Path | str | None = None,
                 keyfile: Path | str | None = None, uds: str | None = None,
                 insecure_http: bool = False) -> list[uvicorn.Server]:
    """The uvicorn servers for ``serve`` and the daemon (``listen`` None or "": no TCP).

    Plain HTTP is served on a loopback address only, unless ``insecure_http``:
    elsewhere bearer tokens and evidence would cross the network in clear."""
    if (certfile is None) != (keyfile is None):
        raise ConfigError(_("TLS needs both a certificate and a key file"),
                          hint=_("give both, or neither for plain HTTP on loopback"))
    if not listen and not uds:
        raise ConfigError(_("the API needs a listen address or a Unix socket"))
    if listen and certfile is None and not insecure_http and not _loopback(parse_listen(listen)[0]):
        raise ConfigError(
            _("refusing to serve plain HTTP on %s, which is not a loopback address: bearer tokens and "
              "evidence would cross the network unencrypted") % listen,
            hint=_("give a TLS certificate and key (serve: --tls-cert and --tls-key; run: [dock] api_tls_cert "
                   "and api_tls_key), listen on 127.0.0.1, or accept the risk with --insecure-http"))
    _ignore_sigpipe()
    app = create_app(vault)
    common = {"log_config": None, "proxy_headers": False, "server_header": False,
              "timeout_graceful_shutdown": 30,
              "http": ZeroCopyH11Protocol}  # originals leave by sendfile (plain HTTP; TLS sends chunks)
    servers = []
    if listen:
        host, port = parse_listen(listen)
        if certfile is None and not _loopback(host):
            log.warning("serving plain HTTP on %s: bearer tokens and evidence cross the network unencrypted",
                        listen)
        servers.append(uvicorn.Server(uvicorn.Config(
            app, host=host, port=port, ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None, **common)))  # type: ignore[arg-type]
    if uds:
        servers.append(uvicorn.Server(uvicorn.Config(app, uds=uds, **common)))  # type: ignore[arg-type]
    return servers


def _ignore_sigpipe() -> None:
    """A client that hangs up mid-download is an EPIPE for that response, not the
    end of the server: ``cli.console`` gives SIGPIPE its default action (so that
    ``vaultd ... | head`` ends quietly), which would kill the whole process."""
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    except ValueError:  # not the main thread: whoever made the thread decides
        log.debug("SIGPIPE left as it is (not the main thread)")


async def _serve_all(servers: list[uvicorn.Server], on_started: Callable[[], None] | None = None) -> None:
    async def announce() -> None:
        while not all(server.started for server in servers):
            if any(server.should_exit for server in servers):
                return
            await asyncio.sleep(0.05)
        if on_started is not None:
            on_started()

    await asyncio.gather(announce(), *(server.serve() for server in servers))


class ApiThread:
    """The API in a thread of the daemon; stopped with the daemon."""

    name = "api"

    def __init__(self, vault: Vault, listen: str | None, uds: str | None, *,
                 certfile: str | None = None, keyfile: str | None = None, insecure_http: bool = False) -> None:
        self.listen, self.uds = listen, uds
        self.servers = make_servers(vault, listen, uds=uds, certfile=certfile, keyfile=keyfile,
                                    insecure_http=insecure_http)
        self.thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> None:
        def run() -> None:
            try:
                asyncio.run(_serve_all(self.servers))
            except BaseException as exc:  # e.g. the port is taken: the dock keeps working
                self.error = f"{type(exc).__name__}: {exc}"
                log.error("the API stopped: %s", self.error)
        self.thread = threading.Thread(target=run, name="vaultd-api", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        for server in self.servers:
            server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=35)

    def status(self) -> dict[str, object]:
        return {"listen": self.listen, "socket": self.uds, "error": self.error,
                "running": bool(self.thread and self.thread.is_alive())}
