"""An auditor at another computer verifies a vault's log over its HTTP API.

``ApiSource`` is a ``logcheck.LogSource`` that fetches what the checks need
(the catalog's recording hashes, the log head and the checkpoint kept outside
the database, every entry and stored subtree hash in pages, the checkpoints,
one consistency proof), in that order, so that what the vault appends
meanwhile is never taken for tampering;
``logcheck.verify_log`` then recomputes everything here, against the log key
the auditor pins. The server's word on the result is never asked for: a
server that leaves things out, alters them or signs with another key fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from vaultd import logcheck, note, tlogfmt
from vaultd.client import ApiClient
from vaultd.errors import IntegrityError, UsageError
from vaultd.i18n import _
from vaultd.logcheck import CatalogHashes, LogState, StoredCheckpoint, StoredEntry, StoredNode, VerifyReport

PAGE = 10_000  # entries (or recordings) per request: the server's most
_PAGE_BYTES = 256 << 20  # refuse a page larger than this
_CHECKPOINTS_PAGE = 1000
NODES_PAGE = 1 << 16


class Progress(Protocol):
    """Entries fetched so far, of ``total``."""

    def begin(self, total: int) -> None: ...

    def advance(self, n: int) -> None: ...

    def end(self) -> None: ...


class ApiSource:
    """``logcheck.LogSource`` over a vault's API (``GET /audit/...``)."""

    def __init__(self, client: ApiClient, progress: Progress | None = None) -> None:
        self.client = client
        self.progress = progress

    def _json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            doc = self.client.json("GET", path, params=params)
            if not isinstance(doc, dict):
                raise TypeError
            return doc
        except (ValueError, TypeError):
            raise _garbled(path) from None

    def recordings(self) -> CatalogHashes:
        hashes: dict[str, str] = {}
        after, complete_below = "", None
        while True:
            doc = self._json("/audit/recordings", {"after": after, "limit": PAGE})
            try:
                items = [(str(i["id"]), str(i["sha256"])) for i in doc["items"]]
                complete_below = int(doc["size"]) if complete_below is None else complete_below
            except (KeyError, TypeError, ValueError):
                raise _garbled("/audit/recordings") from None
            hashes.update(items)
            if len(items) < PAGE or items[-1][0] <= after:
                return CatalogHashes(hashes, complete_below)
            after = items[-1][0]

    def state(self) -> LogState:
        doc = self._json("/audit/head")
        try:
            outside = doc["outside_checkpoint"]
            return LogState(int(doc["size"]), None if outside is None else str(outside).encode("utf-8"),
                            _("at the vault"))
        except (KeyError, TypeError, ValueError):
            raise _garbled("/audit/head") from None

    def entries(self, size: int) -> Iterator[StoredEntry]:
        if self.progress is not None:
            self.progress.begin(size)
        pages = [{"start": start, "end": min(start + PAGE, size)} for start in range(0, size, PAGE)]
        try:
            for page, data in self._fetched("/audit/range", pages):
                yield from logcheck.unpack_entries(data)
                if self.progress is not None:
                    self.progress.advance(page["end"] - page["start"])
        finally:
            if self.progress is not None:
                self.progress.end()

    def nodes(self, size: int) -> Iterator[StoredNode]:
        """Every stored subtree hash over the first ``size`` entries, level by level."""
        pages = [{"level": level, "start": start, "end": min(start + NODES_PAGE, size >> level)}
                 for level in range(size.bit_length()) for start in range(0, size >> level, NODES_PAGE)]
        for page, data in self._fetched("/audit/nodes", pages):
            yield from logcheck.unpack_nodes(page["level"], data)

    def _fetched(self, path: str, pages: list[dict[str, int]]) -> Iterator[tuple[dict[str, int], bytes]]:
        """Each page's body in order, the next one fetched while this one is checked."""
        with ThreadPoolExecutor(1) as pool:
            ahead = [pool.submit(self.client.get_bytes, path, page, _PAGE_BYTES) for page in pages[:1]]
            for n, page in enumerate(pages):
                data = ahead.pop().result()
                if n + 1 < len(pages):
                    ahead.append(pool.submit(self.client.get_bytes, path, pages[n + 1], _PAGE_BYTES))
                yield page, data

    def checkpoints(self, size: int) -> Iterator[StoredCheckpoint]:
        after = 0
        while True:
            doc = self._json("/audit/checkpoints", {"after": after, "upto": size, "limit": _CHECKPOINTS_PAGE})
            try:
                items = [StoredCheckpoint(int(i["size"]), str(i["note"]).encode("utf-8")) for i in doc["items"]]
            except (KeyError, TypeError, ValueError):
                raise _garbled("/audit/checkpoints") from None
            yield from items
            if len(items) < _CHECKPOINTS_PAGE or items[-1].size <= after:
                return
            after = items[-1].size

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        text = self.client.call("GET", "/audit/consistency", params={"old": old_size, "new": new_size}).text
        return tlogfmt.parse_consistency_proof(text)


def _garbled(path: str) -> IntegrityError:
    return IntegrityError(_("the vault's answer to %s is not what its API documents") % path,
                          hint=_("the vault or something between it and you altered it"))


def pinned_key(text: str | None) -> note.Verifier:
    """``--log-key`` (the key string, or a file holding it), required for a remote verify."""
    from vaultd.verify import load_log_key

    if not text:
        raise UsageError(_("--log-key is required to verify a vault's log over the API"),
                         hint=_("get the key from the station ('vaultd keys show --log') by a channel you "
                                "trust, and pass the string or a file holding it"))
    try:
        return note.parse_verifier_key(load_log_key(text))
    except UsageError as exc:
        raise UsageError(_("--log-key: %s") % exc.message,
                         hint=_("the key looks like <name>+<keyid>+<key>, as 'vaultd keys show --log' prints it")) from None


def verify(client: ApiClient, key: note.Verifier, held: bytes | None = None,
           progress: Progress | None = None) -> VerifyReport:
    """Fetch the vault's log over one connection and verify it here."""
    with client:
        report = logcheck.verify_log(ApiSource(client, progress), key, held)
    if report.ok and not report.checkpoints:
        # the vault seals one before it answers: without it nothing sent is signed
        report.problems.append(_("the vault shows no checkpoint signed by the log key"))
    return report
