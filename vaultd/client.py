"""The CLI as a client of the HTTP API (``--url``/``--token``, ``VAULTD_URL``/
``VAULTD_TOKEN``, or the token ``vaultd login`` keeps in the user's config).

Supervisors and legal staff never need access to the vault's files: the
server applies the same service functions, permission checks and audit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # httpx loads only when a command talks to a server
    import httpx

from vaultd.errors import (
    AccessDeniedError,
    AuthenticationError,
    IntegrityError,
    NotFoundError,
    TooManyAttemptsError,
    UsageError,
    VaultError,
)
from vaultd.files import write_durably
from vaultd.i18n import _

PREFIX = "/api/v1"


def credentials_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vaultd" / "credentials.json"


def saved_credentials() -> tuple[str, str] | None:
    try:
        doc = json.loads(credentials_file().read_text(encoding="utf-8"))
        return str(doc["url"]), str(doc["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_credentials(url: str, token: str) -> Path:
    path = credentials_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_durably(path, json.dumps({"url": url, "token": token}).encode(), replace=True)
    return path


_ERRORS: dict[int, type[VaultError]] = {
    400: UsageError, 401: AuthenticationError, 403: AccessDeniedError, 404: NotFoundError,
    422: UsageError, 429: TooManyAttemptsError,
}


@dataclass
class ApiClient:
    """``with client:`` keeps one connection open for the calls made inside."""

    url: str
    token: str | None
    _open: httpx.Client | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> ApiClient:
        self._open = self._client()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def _client(self) -> httpx.Client:
        """HTTP(S) to ``url``, or the server's Unix socket for ``unix:/path/to.sock``."""
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if self.url.startswith("unix:"):
            transport = httpx.HTTPTransport(uds=self.url.removeprefix("unix:").removeprefix("//"))
            return httpx.Client(transport=transport, base_url="http://vaultd" + PREFIX, headers=headers,
                                timeout=60.0)
        return httpx.Client(base_url=self.url.rstrip("/") + PREFIX, headers=headers, timeout=60.0)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            if self._open is not None:
                resp = self._open.request(method, path, **kwargs)
            else:
                with self._client() as c:
                    resp = c.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        _raise_for(resp)
        _note_zone(resp.headers.get("x-vaultd-station-zone"))
        return resp

    def _unreachable(self, exc: Exception) -> VaultError:
        return VaultError(_("cannot reach the vault at %s: %s") % (self.url, exc),
                          hint=_("check --url (or VAULTD_URL) and that 'vaultd serve' runs"))

    def get_bytes(self, path: str, params: dict[str, Any], max_bytes: int) -> bytes:
        """A GET's body, refusing one larger than ``max_bytes`` (a server may lie)."""
        import httpx

        if self._open is None:
            with self:
                return self.get_bytes(path, params, max_bytes)
        parts, got = [], 0
        try:
            with self._open.stream("GET", path, params=params) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    _raise_for(resp)
                for chunk in resp.iter_bytes(1 << 20):
                    got += len(chunk)
                    if got > max_bytes:
                        raise IntegrityError(_("the vault's answer to %s is larger than %d bytes") % (path, max_bytes),
                                             hint=_("the vault or something between it and you is misbehaving"))
                    parts.append(chunk)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return b"".join(parts)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).json()

    def download(self, path: str, out: Path, params: dict[str, str]) -> int:
        """Stream a download into a new file (never overwritten)."""
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise UsageError(_("%s already exists") % out,
                             hint=_("choose a new file name with --out; vaultd never overwrites")) from None
        size = 0
        try:
            with self._client() as c, c.stream("GET", path, params=params) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    _raise_for(resp)
                for chunk in resp.iter_bytes(1 << 20):
                    os.write(fd, chunk)
                    size += len(chunk)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            out.unlink(missing_ok=True)
            raise
        os.close(fd)
        return size


#: the station's zone as its API last said (``X-Vaultd-Station-Zone``); None before any answer
station_zone: list[str | None] = [None]


def _note_zone(name: str | None) -> None:
    if name and name.isascii() and name.replace("/", "").replace("_", "").replace("-", "").replace("+", "").isalnum():
        station_zone[0] = name


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        err = resp.json()["error"]
        message, hint, rule = err.get("message", ""), err.get("hint"), err.get("rule")
    except (ValueError, KeyError, TypeError):
        message, hint, rule = resp.text[:300], None, None
    cls = _ERRORS.get(resp.status_code, VaultError)
    if cls is AccessDeniedError:
        raise AccessDeniedError(message, rule=rule or "", hint=hint)
    raise cls(message or _("HTTP %d from the vault") % resp.status_code, hint=hint)
