"""Text formats of the transparency log: checkpoints and proofs.

- c2sp.org/tlog-checkpoint: the note text of a signed tree head.
- c2sp.org/tlog-proof@v1: an offline-verifiable inclusion proof bundled with
  the signed checkpoint it verifies against.
- consistency proofs: base64 hashes, one per line.

Pure: parsing and formatting only; signatures are checked by
:mod:`vaultd.note`, proofs by :mod:`vaultd.merkle`. Malformed input raises
:class:`~vaultd.errors.UsageError` naming the line at fault.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from vaultd.errors import UsageError
from vaultd.i18n import _
from vaultd.merkle import HASH_SIZE, Hash

TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_TREE_SIZE = 2**63 - 1
"""Largest size or index accepted (Go's tlog uses int64)."""
MAX_PROOF_HASHES = 64

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _b64decode(text: str) -> bytes | None:
    """Strict standard base64 (padded, canonical); ``None`` if it is not."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _b64hash(text: str) -> Hash | None:
    raw = _b64decode(text)
    return raw if raw is not None and len(raw) == HASH_SIZE else None


def _decimal(text: str) -> int | None:
    """An ASCII decimal without leading zeros, up to :data:`MAX_TREE_SIZE`."""
    if len(text) > 19 or not _DECIMAL.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_TREE_SIZE else None


def _line_problem(line: str) -> str | None:
    if not line:
        return _("is empty")
    if any(ord(ch) < 0x20 for ch in line):
        return _("contains a control character or newline")
    return None


# --- checkpoints -------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin line, its size and its root hash."""

    origin: str
    size: int
    root: Hash
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _line_problem(self.origin)
        if problem:
            raise UsageError(_("checkpoint origin %s") % problem)
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise UsageError(_("checkpoint size out of range: %d") % self.size)
        if len(self.root) != HASH_SIZE:
            raise UsageError(_("checkpoint root must be %d bytes") % HASH_SIZE)
        for line in self.extensions:
            problem = _line_problem(line)
            if problem:
                raise UsageError(_("checkpoint extension line %s") % problem)


def checkpoint_body(cp: Checkpoint) -> str:
    """The note text: ``origin``, ``size``, base64 ``root``, extension lines."""
    lines = [cp.origin, str(cp.size), base64.b64encode(cp.root).decode("ascii")]
    return "".join(line + "\n" for line in [*lines, *cp.extensions])


def parse_checkpoint_body(text: str) -> Checkpoint:
    """Parse a checkpoint note text (strict: c2sp.org/tlog-checkpoint)."""
    if not text.endswith("\n"):
        raise UsageError(_("checkpoint text must end with a newline"))
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise UsageError(_("checkpoint text needs origin, size and root lines"))
    for number, line in enumerate(lines, start=1):
        problem = _line_problem(line)
        if problem:
            raise UsageError(_("checkpoint line %d %s") % (number, problem))
    size = _decimal(lines[1])
    if size is None:
        raise UsageError(
            _("checkpoint line 2: %r is not a tree size") % lines[1],
            hint=_("the size is a decimal number without leading zeros"),
        )
    root = _b64hash(lines[2])
    if root is None:
        raise UsageError(_("checkpoint line 3: not the base64 of a 32-byte root hash"))
    return Checkpoint(lines[0], size, root, tuple(lines[3:]))


# --- tlog-proof@v1 -----------------------------------------------------------------


def format_tlog_proof(
    index: int, proof: Sequence[Hash], signed_checkpoint: bytes, extra: bytes | None = None
) -> bytes:
    """A c2sp.org/tlog-proof@v1 document.

    Header line; ``extra <base64>`` only when ``extra`` is given; ``index N``;
    one base64 hash per line from the leaf's sibling up; an empty line; the
    signed checkpoint verbatim.
    """
    if not 0 <= index <= MAX_TREE_SIZE:
        raise UsageError(_("proof index out of range: %d") % index)
    if len(proof) > MAX_PROOF_HASHES or any(len(h) != HASH_SIZE for h in proof):
        raise UsageError(
            _("an inclusion proof is at most %d hashes of %d bytes") % (MAX_PROOF_HASHES, HASH_SIZE)
        )
    _check_signed_checkpoint(signed_checkpoint)
    lines = [TLOG_PROOF_HEADER]
    if extra is not None:
        lines.append("extra " + base64.b64encode(extra).decode("ascii"))
    lines.append(f"index {index}")
    lines.extend(base64.b64encode(h).decode("ascii") for h in proof)
    return "".join(line + "\n" for line in lines).encode("ascii") + b"\n" + signed_checkpoint


def _check_signed_checkpoint(note: bytes) -> None:
    if not note or note.startswith(b"\n") or not note.endswith(b"\n"):
        raise UsageError(_("the signed checkpoint must be a signed note ending in a newline"))
    try:
        note.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(_("the signed checkpoint is not valid UTF-8")) from None


def _proof_error(number: int, reason: str) -> UsageError:
    return UsageError(
        _("not a c2sp.org/tlog-proof@v1 document: line %d %s") % (number, reason),
        hint=_("a tlog proof starts with the line %s") % TLOG_PROOF_HEADER,
    )


def parse_tlog_proof(data: bytes) -> tuple[int, list[Hash], bytes, bytes | None]:
    """Parse a c2sp.org/tlog-proof@v1 document: (index, proof, checkpoint, extra).

    The checkpoint note is returned verbatim and is not verified here.
    """
    head, sep, checkpoint = data.partition(b"\n\n")
    if not sep:
        raise _proof_error(1, _("has no empty line before the checkpoint"))
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise _proof_error(1, _("has non-ASCII bytes before the checkpoint")) from None
    if lines[0] != TLOG_PROOF_HEADER:
        raise _proof_error(1, _("is not %s") % TLOG_PROOF_HEADER)
    extra = None
    at = 1
    if at < len(lines) and lines[at].startswith("extra "):
        extra = _b64decode(lines[at][len("extra ") :])
        if extra is None:
            raise _proof_error(at + 1, _("has extra data that is not base64"))
        at += 1
    index_line = lines[at] if at < len(lines) else ""
    index = _decimal(index_line[len("index ") :]) if index_line.startswith("index ") else None
    if index is None:
        raise _proof_error(at + 1, _("is not 'index N' (decimal, no leading zeros)"))
    proof = _parse_proof_lines(lines[at + 1 :], first_number=at + 2)
    try:
        _check_signed_checkpoint(checkpoint)
    except UsageError as exc:
        raise _proof_error(len(lines) + 2, exc.message) from None
    return index, proof, checkpoint, extra


def _parse_proof_lines(lines: Sequence[str], first_number: int) -> list[Hash]:
    if len(lines) > MAX_PROOF_HASHES:
        raise _proof_error(first_number, _("begins more than %d proof hashes") % MAX_PROOF_HASHES)
    proof: list[Hash] = []
    for number, line in enumerate(lines, start=first_number):
        h = _b64hash(line)
        if h is None:
            raise _proof_error(number, _("is not the base64 of a 32-byte hash"))
        proof.append(h)
    return proof


# --- consistency proofs ------------------------------------------------------------


def format_consistency_proof(proof: Sequence[Hash]) -> str:
    """Base64 hashes, one per line, each ending in a newline (``""`` if none)."""
    if any(len(h) != HASH_SIZE for h in proof):
        raise UsageError(_("every proof hash must be %d bytes") % HASH_SIZE)
    return "".join(base64.b64encode(h).decode("ascii") + "\n" for h in proof)


def parse_consistency_proof(text: str) -> list[Hash]:
    """Inverse of :func:`format_consistency_proof`."""
    if not text:
        return []
    if not text.endswith("\n"):
        raise UsageError(_("consistency proof must end with a newline"))
    lines = text[:-1].split("\n")
    proof: list[Hash] = []
    for number, line in enumerate(lines, start=1):
        h = _b64hash(line)
        if h is None:
            raise UsageError(
                _("consistency proof line %d is not the base64 of a 32-byte hash") % number
            )
        proof.append(h)
    return proof
