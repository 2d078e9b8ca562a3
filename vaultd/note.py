"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys.

Interoperable with Go's ``golang.org/x/mod/sumdb/note``: the key strings are
the ones ``note.NewVerifier`` and ``note.NewSigner`` parse, and the notes are
the ones ``note.Sign`` writes and ``note.Open`` reads.

Pure apart from key generation (which reads the OS random source).

Errors: bad keys, names or texts given to us raise
:class:`~vaultd.errors.UsageError`. :func:`open_note` is a verification, so
everything that stops a note from verifying is in the integrity family: a
signature by a trusted key that does not verify is
:class:`~vaultd.errors.LogTamperedError`; a malformed note, or one that no
trusted key signed, is :class:`~vaultd.errors.IntegrityError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from vaultd.errors import IntegrityError, LogTamperedError, UsageError
from vaultd.i18n import _

ALG_ED25519 = 0x01
"""Signature type byte of Ed25519 in c2sp.org/signed-note."""

MAX_SIGNATURES = 100
"""Most signature lines accepted in one note (Go's note.Open uses the same)."""

_KEY_SIZE = 32
_SIG_SIZE = 64
_EM_DASH_PREFIX = "\u2014 "
_PRIVATE_PREFIX = "PRIVATE+KEY+"

# Ed25519 public keys of small order (y = 1, -1, 0 and the two order-8 values,
# in any encoding): such a "key" lets anyone forge signatures that verify, so
# it is refused as a trusted key.
_P25519 = 2**255 - 19
_Y_ORDER_8 = int.from_bytes(
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
)
_SMALL_ORDER_Y = frozenset({0, 1, _P25519 - 1, _Y_ORDER_8, _P25519 - _Y_ORDER_8})


def _is_small_order(public_key: bytes) -> bool:
    y = int.from_bytes(public_key, "little") & ((1 << 255) - 1)
    return y % _P25519 in _SMALL_ORDER_Y


# Unicode White_Space (what Go's unicode.IsSpace matches): not allowed in names.
_UNICODE_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


# --- names, ids, encodings -------------------------------------------------------


def _name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid key name, or ``None`` when it is."""
    if not name:
        return _("a key name must not be empty")
    if "+" in name:
        return _("a key name must not contain '+'")
    if any(ch in _UNICODE_SPACES for ch in name):
        return _("a key name must not contain spaces")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return _("a key name must not contain control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return _("a key name must be valid UTF-8")
    return None


def _check_name(name: str) -> None:
    problem = _name_problem(name)
    if problem:
        raise UsageError(_("invalid key name %r: %s") % (name, problem))


def key_id(name: str, public_key_raw: bytes) -> bytes:
    """Key ID: ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``."""
    _check_name(name)
    if len(public_key_raw) != _KEY_SIZE:
        raise UsageError(
            _("an Ed25519 public key is %d bytes, not %d") % (_KEY_SIZE, len(public_key_raw))
        )
    data = name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key_raw
    return hashlib.sha256(data).digest()[:4]


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict standard base64 (padded, canonical); ``None`` if it is not."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None
    return raw if _b64encode(raw) == text else None


# --- keys --------------------------------------------------------------------------


@dataclass(frozen=True)
class Verifier:
    """A trusted public key: name, 4-byte key ID and raw Ed25519 key."""

    name: str
    key_id: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        if key_id(self.name, self.public_key) != self.key_id:
            raise UsageError(_("key ID %s does not match key %r") % (self.key_id.hex(), self.name))
        if _is_small_order(self.public_key):
            raise UsageError(
                _("key %r is a weak Ed25519 key: anyone can forge its signatures") % self.name
            )

    def verify(self, msg: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``msg``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, msg)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A private signing key. ``seed`` is the 32-byte Ed25519 private key."""

    name: str
    key_id: bytes
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != _KEY_SIZE:
            raise UsageError(_("an Ed25519 private key is %d bytes") % _KEY_SIZE)
        if key_id(self.name, self.public_key) != self.key_id:
            raise UsageError(_("key ID %s does not match key %r") % (self.key_id.hex(), self.name))

    @property
    def public_key(self) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes_raw()

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.public_key)

    def sign(self, msg: bytes) -> bytes:
        """Ed25519 signature (64 bytes) of ``msg``."""
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(msg)


def generate_signer(name: str) -> Signer:
    """A new random Ed25519 signer named ``name``."""
    _check_name(name)
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return Signer(name, key_id(name, public), seed)


def verifier_key_string(v: Verifier) -> str:
    """``<name>+<8 hex key ID>+<base64(0x01 || public key)>``."""
    return f"{v.name}+{v.key_id.hex()}+{_b64encode(bytes([ALG_ED25519]) + v.public_key)}"


def signer_key_string(s: Signer) -> str:
    """``PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || seed)>``. Secret."""
    key64 = _b64encode(bytes([ALG_ED25519]) + s.seed)
    return f"{_PRIVATE_PREFIX}{s.name}+{s.key_id.hex()}+{key64}"


def _parse_key_fields(kind: str, name: str, id_hex: str, key64: str) -> tuple[bytes, bytes]:
    """Check the three fields of a key string; returns (key ID, raw key)."""
    _check_name(name)
    if len(id_hex) != 8 or any(ch not in "0123456789abcdefABCDEF" for ch in id_hex):
        raise UsageError(_("%s key for %r: the key ID must be 8 hex digits") % (kind, name))
    raw = _b64decode(key64)
    if raw is None or not raw:
        raise UsageError(_("%s key for %r: the key is not valid base64") % (kind, name))
    if raw[0] != ALG_ED25519:
        raise UsageError(
            _("%s key for %r: unknown key algorithm %d") % (kind, name, raw[0]),
            hint=_("only Ed25519 keys (algorithm 1) are supported"),
        )
    if len(raw) != 1 + _KEY_SIZE:
        raise UsageError(_("%s key for %r: an Ed25519 key is %d bytes") % (kind, name, _KEY_SIZE))
    return bytes.fromhex(id_hex), raw[1:]


def parse_verifier_key(s: str) -> Verifier:
    """Parse ``<name>+<hex id>+<base64 key>`` (Go's ``note.NewVerifier`` format)."""
    text = s.strip()
    parts = text.split("+", 2)
    if len(parts) != 3 or text.startswith(_PRIVATE_PREFIX):
        raise UsageError(
            _("not a verifier key: expected <name>+<key id>+<key>"),
            hint=_("a verifier key looks like example.org/log+1a2b3c4d+AXyz...="),
        )
    kid, public = _parse_key_fields(_("verifier"), *parts)
    if key_id(parts[0], public) != kid:
        raise UsageError(_("verifier key for %r: the key ID does not match the key") % parts[0])
    return Verifier(parts[0], kid, public)


def parse_signer_key(s: str) -> Signer:
    """Parse ``PRIVATE+KEY+<name>+<hex id>+<base64 seed>`` (``note.NewSigner``)."""
    text = s.strip()
    if not text.startswith(_PRIVATE_PREFIX) or len(text.split("+", 4)) != 5:
        raise UsageError(_("not a signer key: expected PRIVATE+KEY+<name>+<key id>+<key>"))
    name, id_hex, key64 = text[len(_PRIVATE_PREFIX) :].split("+", 2)
    kid, seed = _parse_key_fields(_("signer"), name, id_hex, key64)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    if key_id(name, public) != kid:
        raise UsageError(_("signer key for %r: the key ID does not match the key") % name)
    return Signer(name, kid, seed)


# --- signing -----------------------------------------------------------------------


def _text_problem(text: str) -> str | None:
    """Why ``text`` cannot be a note text, or ``None`` when it can."""
    if not text.endswith("\n"):
        return _("a note text must end with a newline")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        return _("a note text must not contain control characters other than newline")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _("a note text must be valid UTF-8")
    return None


def sign_note(text: str, signers: Sequence[Signer]) -> bytes:
    """``text`` + blank line + one ``— <name> <base64(id || sig)>`` line per signer."""
    problem = _text_problem(text)
    if problem:
        raise UsageError(problem)
    if not signers or len(signers) > MAX_SIGNATURES:
        raise UsageError(_("a note needs 1 to %d signers") % MAX_SIGNATURES)
    if len({(s.name, s.key_id) for s in signers}) != len(signers):
        raise UsageError(_("the same key is listed twice among the signers"))
    body = text.encode("utf-8")
    lines = [f"{_EM_DASH_PREFIX}{s.name} {_b64encode(s.key_id + s.sign(body))}\n" for s in signers]
    return body + b"\n" + "".join(lines).encode("utf-8")


# --- opening -----------------------------------------------------------------------


@dataclass(frozen=True)
class _SigLine:
    name: str
    key_id: bytes
    signature: bytes


def _malformed(reason: str) -> IntegrityError:
    return IntegrityError(
        _("malformed signed note: %s") % reason,
        hint=_("the note was damaged or is not a c2sp.org/signed-note"),
    )


def _split_note(msg: bytes) -> tuple[str, list[str]]:
    """Text and signature lines of a signed note, checked for shape only."""
    try:
        decoded = msg.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed(_("not valid UTF-8")) from None
    if any(ord(ch) < 0x20 and ch != "\n" for ch in decoded):
        raise _malformed(_("control characters other than newline"))
    split = decoded.rfind("\n\n")
    if split < 0:
        raise _malformed(_("no blank line before the signatures"))
    text, sigs = decoded[: split + 1], decoded[split + 2 :]
    if not sigs or not sigs.endswith("\n"):
        raise _malformed(_("no signature lines, or the last one has no newline"))
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise _malformed(_("more than %d signatures") % MAX_SIGNATURES)
    return text, lines


def _parse_sig_line(number: int, line: str) -> _SigLine:
    if not line.startswith(_EM_DASH_PREFIX):
        raise _malformed(_("signature line %d does not start with an em dash") % number)
    name, _sep, b64 = line[len(_EM_DASH_PREFIX) :].partition(" ")
    raw = _b64decode(b64)
    if _name_problem(name) or raw is None or len(raw) < 5:
        raise _malformed(_("signature line %d is not '<name> <base64>'") % number)
    return _SigLine(name, raw[:4], raw[4:])


def _trusted_index(verifiers: Sequence[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    if not verifiers:
        raise UsageError(_("no trusted keys given to check the note against"))
    known: dict[tuple[str, bytes], Verifier] = {}
    for v in verifiers:
        other = known.setdefault((v.name, v.key_id), v)
        if other.public_key != v.public_key:
            raise UsageError(
                _("two trusted keys share name %r and key ID %s") % (v.name, v.key_id.hex())
            )
    return known


def open_note(msg: bytes, verifiers: Sequence[Verifier]) -> tuple[str, list[Verifier]]:
    """Check a signed note; returns its text and the trusted keys that signed it.

    Signatures by unknown keys are ignored. Every signature by a trusted key
    must verify (:class:`LogTamperedError` otherwise) and at least one must be
    present (:class:`IntegrityError` otherwise, naming the keys seen).
    """
    known = _trusted_index(verifiers)
    text, lines = _split_note(msg)
    body = text.encode("utf-8")
    verified: list[Verifier] = []
    unknown: list[str] = []
    for number, line in enumerate(lines, start=1):
        sig = _parse_sig_line(number, line)
        v = known.get((sig.name, sig.key_id))
        if v is None:
            unknown.append(f"{sig.name}+{sig.key_id.hex()}")
        elif len(sig.signature) != _SIG_SIZE or not v.verify(body, sig.signature):
            raise LogTamperedError(
                _("signature by trusted key %s+%s does not verify") % (v.name, v.key_id.hex()),
                hint=_("the signed text was changed after signing, or the signature was damaged"),
            )
        elif v not in verified:
            verified.append(v)
    if not verified:
        raise IntegrityError(
            _("note is not signed by any trusted key; signed by: %s; trusted: %s")
            % (", ".join(unknown), ", ".join(sorted(f"{n}+{k.hex()}" for n, k in known))),
            hint=_("check that the right verifier key is configured"),
        )
    return text, verified
