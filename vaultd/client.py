"""The CLI as a client of the HTTP API (``--url``/``--token``, ``VAULTD_URL``/
``VAULTD_TOKEN``, or the token ``vaultd login`` keeps in the user's config).

Supervisors and legal staff never need access to the vault's files: the
server applies the same service functions, permission checks and audit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # httpx loads only when a command talks to a server
    import httpx

from vaultd.errors import (
    AccessDeniedError,
    AuthenticationError,
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
    url: str
    token: str | None

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
            with self._client() as c:
                resp = c.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise VaultError(_("cannot reach the vault at %s: %s") % (self.url, exc),
                             hint=_("check --url (or VAULTD_URL) and that 'vaultd serve' runs")) from None
        _raise_for(resp)
        return resp

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
