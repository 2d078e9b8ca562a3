"""The CLI as a client of the HTTP API (``--url``/``--token``, ``VAULTD_URL``/
``VAULTD_TOKEN``, or the token ``vaultd login`` keeps in the user's config).

Supervisors and legal staff never need access to the vault's files: the
server applies the same service functions, permission checks and audit.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # httpx loads only when a command talks to a server
    import httpx

from vaultd.errors import (
    AccessDeniedError,
    AuthenticationError,
    HashMismatchError,
    IntegrityError,
    NotFoundError,
    TooManyAttemptsError,
    UsageError,
    VaultError,
)
from vaultd.files import fsync_path, write_durably
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

    def download_resuming(self, path: str, out: Path, sha256: str, size_bytes: int, *, attempts: int = 3,
                          advance: Callable[[int], None] | None = None) -> int:
        """Download a file whose SHA-256 and size are known (an export's) into ``out``
        (never overwritten) by way of ``out.part``: a ``.part`` left by a cut
        download is resumed (Range from its end, If-Range the ETag, which is the
        SHA-256), and a cut during this run is resumed up to ``attempts`` times.
        ``out`` appears only complete and hashing to ``sha256``. Returns the
        bytes fetched now."""
        import httpx

        if out.exists():
            raise UsageError(_("%s already exists") % out,
                             hint=_("choose another --out folder; vaultd never overwrites"))
        part = out.with_name(out.name + ".part")
        fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            digest, have = _hash_prefix(fd, size_bytes)
            fetched = 0
            for attempt in range(1, attempts + 1):
                if have >= size_bytes:
                    break
                try:
                    got, digest, have = self._fetch_from(path, fd, digest, have, sha256, advance)
                    fetched += got
                except httpx.TransportError as exc:
                    digest, have = _hash_prefix(fd, size_bytes)  # what did arrive is kept
                    if attempt == attempts:
                        raise VaultError(
                            _("the download of %s was cut at %d of %d bytes: %s") % (out.name, have, size_bytes, exc),
                            hint=_("run the same command again: it resumes from %s") % part) from None
            os.fsync(fd)
        finally:
            os.close(fd)
        if digest.hexdigest() != sha256:
            part.unlink()
            raise HashMismatchError(_("%s does not match the SHA-256 the vault recorded for it; removed") % part,
                                    hint=_("download it again; if it fails again, the file kept on the vault is "
                                           "damaged: tell the station's administrator, who can build the "
                                           "export again"))
        os.link(part, out)  # never replaces a file that appeared meanwhile
        part.unlink()
        fsync_path(out.parent)
        return fetched

    def _fetch_from(self, path: str, fd: int, digest: hashlib._Hash, have: int, sha256: str,
                    advance: Callable[[int], None] | None) -> tuple[int, hashlib._Hash, int]:
        """One request from byte ``have`` on, appended to ``fd``; a 200 (the file
        changed, If-Range did not match) starts over."""
        headers = {"Range": f"bytes={have}-", "If-Range": f'"{sha256}"'} if have else {}
        got = 0
        with self._client() as c, c.stream("GET", path, headers=headers) as resp:
            if resp.status_code >= 400:
                resp.read()
                _raise_for(resp)
            if resp.status_code == 200 and have:
                os.ftruncate(fd, 0)
                digest, have = hashlib.sha256(), 0
            elif resp.status_code == 206 and not resp.headers.get("content-range", "").startswith(f"bytes {have}-"):
                raise VaultError(_("the vault sent another range than the one asked for (%s)")
                                 % resp.headers.get("content-range"))
            for chunk in resp.iter_bytes(1 << 20):
                os.pwrite(fd, chunk, have)
                digest.update(chunk)
                have += len(chunk)
                got += len(chunk)
                if advance:
                    advance(len(chunk))
        return got, digest, have


def _hash_prefix(fd: int, size_bytes: int) -> tuple[hashlib._Hash, int]:
    """The SHA-256 of what a ``.part`` file holds, and its length; one longer than
    the whole file is not a part of it and is emptied."""
    digest = hashlib.sha256()
    if os.fstat(fd).st_size > size_bytes:
        os.ftruncate(fd, 0)
    have = 0
    while data := os.pread(fd, 1 << 20, have):
        digest.update(data)
        have += len(data)
    return digest, have


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
