"""C2SP signed notes: key strings, signing, opening, and refusal of bad input."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vaultd.errors import IntegrityError, LogTamperedError, UsageError
from vaultd.note import (
    Signer,
    Verifier,
    generate_signer,
    key_id,
    open_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
    signer_key_string,
    verifier_key_string,
)

# The worked example in the documentation of golang.org/x/mod/sumdb/note.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_MSG = (
    GO_TEXT + "\n"
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfq"
    "dngotpRZb6KE6RyyBwJnAM=\n"
).encode()


@pytest.fixture()
def log_key() -> Signer:
    return generate_signer("example.org/vault-log")


@pytest.fixture()
def witness_key() -> Signer:
    return generate_signer("witness.example/w1")


def _exact(exc_type: type[Exception], excinfo: pytest.ExceptionInfo[Exception]) -> None:
    assert type(excinfo.value) is exc_type, repr(excinfo.value)


# --- keys ----------------------------------------------------------------------------


def test_go_example_keys_parse_and_reproduce_the_signed_note() -> None:
    signer = parse_signer_key(GO_SKEY)
    verifier = parse_verifier_key(GO_VKEY)
    assert signer.verifier() == verifier
    assert verifier.key_id.hex() == "c74f20a3"
    assert verifier_key_string(verifier) == GO_VKEY
    assert signer_key_string(signer) == GO_SKEY
    assert sign_note(GO_TEXT, [signer]) == GO_MSG  # Ed25519 is deterministic
    text, signed_by = open_note(GO_MSG, [verifier])
    assert text == GO_TEXT
    assert signed_by == [verifier]


def test_key_id_is_the_c2sp_formula() -> None:
    public = bytes(range(32))
    expected = hashlib.sha256(b"example.org/log\n\x01" + public).digest()[:4]
    assert key_id("example.org/log", public) == expected
    assert key_id("example.org/log2", public) != expected


def test_key_strings_round_trip(log_key: Signer) -> None:
    assert parse_signer_key(signer_key_string(log_key)) == log_key
    v = log_key.verifier()
    vkey = verifier_key_string(v)
    assert vkey.startswith(f"example.org/vault-log+{log_key.key_id.hex()}+")
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 1
    assert parse_verifier_key(vkey + "\n") == v
    assert log_key.seed.hex() not in repr(log_key)


def _vkey(raw: bytes, name: str = "PeterNeumann", id_hex: str = "c74f20a3") -> str:
    return f"{name}+{id_hex}+{base64.b64encode(raw).decode()}"


GO_PUB = base64.b64decode(GO_VKEY.split("+")[2])[1:]
_SHORT = _vkey(b"\x01" + GO_PUB[:31])  # 32 bytes: base64 ends in one "="
_NON_CANONICAL = _SHORT[:-2] + chr(ord(_SHORT[-2]) + 1) + "="  # non-zero padding bits


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("", "not a verifier key"),
        ("PeterNeumann", "not a verifier key"),
        ("PeterNeumann+c74f20a3", "not a verifier key"),
        (GO_SKEY, "not a verifier key"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "must not be empty"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "spaces"),
        ("Peter\u00a0Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "spaces"),
        ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
        ("PeterNeumann+c74f20ag+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "base64"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW==", "base64"),
        (_NON_CANONICAL, "base64"),
        (_vkey(b"\x02" + GO_PUB), "algorithm 2"),
        (_SHORT, "32 bytes"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("Peterneumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
    ],
)
def test_parse_verifier_key_rejects(vkey: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_verifier_key(vkey)


@pytest.mark.parametrize(
    ("skey", "message"),
    [
        ("", "not a signer key"),
        (GO_VKEY, "not a signer key"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3", "not a signer key"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz", "match"),
        ("PRIVATE+KEY+Peter+Neumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz", "hex"),
        (
            "PRIVATE+KEY+PeterNeumann+c74f20a3+AoEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
            "algorithm",
        ),
    ],
)
def test_parse_signer_key_rejects(skey: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_signer_key(skey)


def test_key_objects_check_their_key_id(log_key: Signer) -> None:
    with pytest.raises(UsageError, match="does not match"):
        Verifier(log_key.name, b"\0\0\0\0", log_key.public_key)
    with pytest.raises(UsageError, match="does not match"):
        Signer("other.example", log_key.key_id, log_key.seed)
    with pytest.raises(UsageError, match="'\\+'"):
        generate_signer("a+b")


# --- signing -------------------------------------------------------------------------


def test_sign_note_layout(log_key: Signer, witness_key: Signer) -> None:
    msg = sign_note("hello\n", [log_key, witness_key])
    body, _sep, sigs = msg.partition(b"\n\n")
    assert body == b"hello"
    lines = sigs.decode().splitlines()
    assert [line.split(" ")[:2] for line in lines] == [
        ["\u2014", log_key.name],
        ["\u2014", witness_key.name],
    ]
    raw = base64.b64decode(lines[0].split(" ")[2])
    assert raw[:4] == log_key.key_id and len(raw) == 4 + 64
    assert msg.endswith(b"\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "end with a newline"),
        ("no newline", "end with a newline"),
        ("tab\there\n", "control characters"),
        ("cr\r\n", "control characters"),
        ("bad \udc80 surrogate\n", "UTF-8"),
    ],
)
def test_sign_note_rejects_bad_text(log_key: Signer, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        sign_note(text, [log_key])


def test_sign_note_needs_distinct_signers(log_key: Signer) -> None:
    with pytest.raises(UsageError, match="signers"):
        sign_note("x\n", [])
    with pytest.raises(UsageError, match="twice"):
        sign_note("x\n", [log_key, log_key])


def test_text_with_empty_lines_round_trips(log_key: Signer) -> None:
    text = "first\n\nafter an empty line\n\n"
    assert open_note(sign_note(text, [log_key]), [log_key.verifier()])[0] == text


# --- opening -------------------------------------------------------------------------


def test_open_returns_only_trusted_signers(log_key: Signer, witness_key: Signer) -> None:
    stranger = generate_signer("stranger.example")
    msg = sign_note("tree\n", [stranger, log_key, witness_key])
    text, signed_by = open_note(msg, [witness_key.verifier(), log_key.verifier()])
    assert text == "tree\n"
    assert signed_by == [log_key.verifier(), witness_key.verifier()]
    assert open_note(msg, [log_key.verifier()])[1] == [log_key.verifier()]


def test_changed_text_is_tampering(log_key: Signer) -> None:
    msg = sign_note("example.org/vault-log\n5\n" + "A" * 43 + "=\n", [log_key])
    with pytest.raises(LogTamperedError, match=log_key.name) as excinfo:
        open_note(msg.replace(b"\n5\n", b"\n6\n"), [log_key.verifier()])
    _exact(LogTamperedError, excinfo)


def test_changed_signature_is_tampering(log_key: Signer) -> None:
    msg = sign_note("hello\n", [log_key])
    text, _sep, line = msg.partition(b"\n\n")
    prefix, b64 = line.rstrip(b"\n").rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[10] ^= 1
    forged = text + b"\n\n" + prefix + b" " + base64.b64encode(bytes(raw)) + b"\n"
    with pytest.raises(LogTamperedError):
        open_note(forged, [log_key.verifier()])


def test_a_bad_second_signature_by_a_trusted_key_is_tampering(log_key: Signer) -> None:
    msg = sign_note("hello\n", [log_key])
    other = sign_note("other\n", [log_key])
    extra_line = other.partition(b"\n\n")[2]
    with pytest.raises(LogTamperedError):
        open_note(msg + extra_line, [log_key.verifier()])


def test_unsigned_by_trusted_key_names_the_keys(log_key: Signer, witness_key: Signer) -> None:
    msg = sign_note("hello\n", [log_key])
    with pytest.raises(IntegrityError) as excinfo:
        open_note(msg, [witness_key.verifier()])
    _exact(IntegrityError, excinfo)
    text = str(excinfo.value)
    assert f"{log_key.name}+{log_key.key_id.hex()}" in text
    assert witness_key.name in text


def test_same_name_other_key_is_ignored_not_tampering(log_key: Signer) -> None:
    impostor = generate_signer(log_key.name)
    msg = sign_note("hello\n", [impostor])
    with pytest.raises(IntegrityError) as excinfo:
        open_note(msg, [log_key.verifier()])
    _exact(IntegrityError, excinfo)


def test_open_needs_trusted_keys(log_key: Signer) -> None:
    with pytest.raises(UsageError, match="no trusted keys"):
        open_note(sign_note("x\n", [log_key]), [])


def _malformed_notes(good: bytes) -> list[tuple[str, bytes]]:
    text, _sep, line = good.partition(b"\n\n")
    prefix, b64 = line.rstrip(b"\n").rsplit(b" ", 1)
    return [
        ("no blank line", text + b"\n" + line),
        ("no final newline", good[:-1]),
        ("no signatures", text + b"\n\n"),
        ("hyphen, not em dash", good.replace("\u2014".encode(), b"-")),
        ("no space after name", text + b"\n\n" + prefix + b"\n"),
        ("base64 unpadded", text + b"\n\n" + prefix + b" " + b64.rstrip(b"=") + b"\n"),
        ("base64 garbage", text + b"\n\n" + prefix + b" !!!!\n"),
        ("signature too short", text + b"\n\n" + prefix + b" AAAAAA==\n"),
        ("not UTF-8", b"\xff" + good),
        ("control character", b"\x07" + good),
        ("carriage return", good.replace(b"\n", b"\r\n")),
        ("101 signatures", text + b"\n\n" + line * 101),
    ]


def test_malformed_notes_are_rejected(log_key: Signer) -> None:
    good = sign_note("hello\n", [log_key])
    assert open_note(good, [log_key.verifier()])[0] == "hello\n"
    for name, bad in _malformed_notes(good):
        with pytest.raises(IntegrityError) as excinfo:
            open_note(bad, [log_key.verifier()])
        assert type(excinfo.value) is IntegrityError, name
        assert "malformed signed note" in str(excinfo.value), name


def test_small_order_keys_are_refused() -> None:
    """A small-order "public key" verifies forged signatures, so it is never trusted."""
    zero = bytes(32)
    forged = 0
    for i in range(64):  # the all-zero signature verifies for about 1 message in 4
        try:
            Ed25519PublicKey.from_public_bytes(zero).verify(bytes(64), b"msg %d\n" % i)
            forged += 1
        except InvalidSignature:
            pass
    assert forged > 0
    order_8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
    p_plus_1 = (2**255 - 19 + 1).to_bytes(32, "little")  # a non-canonical encoding of y = 1
    for weak in (zero, order_8, p_plus_1, bytes([1]) + bytes(31)):
        kid = key_id("weak.example", weak).hex()
        with pytest.raises(UsageError, match="weak Ed25519 key"):
            parse_verifier_key(_vkey(b"\x01" + weak, "weak.example", kid))
