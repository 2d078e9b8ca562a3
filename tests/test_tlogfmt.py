"""Checkpoint bodies, c2sp.org/tlog-proof@v1 documents and consistency proof text."""

from __future__ import annotations

import base64
import hashlib

import pytest

from vaultd.errors import UsageError
from vaultd.merkle import (
    MemoryNodes,
    consistency_proof,
    hash_leaf,
    inclusion_proof,
    verify_inclusion,
)
from vaultd.note import generate_signer, open_note, sign_note
from vaultd.tlogfmt import (
    Checkpoint,
    checkpoint_body,
    format_consistency_proof,
    format_tlog_proof,
    parse_checkpoint_body,
    parse_consistency_proof,
    parse_tlog_proof,
)

# The example in c2sp.org/tlog-checkpoint.
C2SP_CHECKPOINT_TEXT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
# The example in c2sp.org/tlog-proof (its signatures are elided by the spec with "[...]").
C2SP_PROOF_EXAMPLE = """c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

\u2014 example.com/fancylog hI2DJw[...]1roloI=
\u2014 witness1.example mJirIklj[...]qY9v2B/5bg==
""".encode()

ROOT = hashlib.sha256(b"root").digest()
H1, H2 = hashlib.sha256(b"1").digest(), hashlib.sha256(b"2").digest()
NOTE = (  # shaped like a signed checkpoint; tlogfmt does not check signatures
    f"example.org/log\n3\n{base64.b64encode(ROOT).decode()}\n\n\u2014 example.org/log AAAAAA==\n"
).encode()


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


# --- checkpoints ---------------------------------------------------------------------


def test_c2sp_checkpoint_example_round_trips() -> None:
    cp = parse_checkpoint_body(C2SP_CHECKPOINT_TEXT)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.extensions == ()
    assert checkpoint_body(cp) == C2SP_CHECKPOINT_TEXT


def test_checkpoint_with_extensions_and_size_zero() -> None:
    cp = Checkpoint("example.org/log", 0, ROOT, ("ext one", "ext two"))
    body = checkpoint_body(cp)
    assert body == f"example.org/log\n0\n{_b64(ROOT)}\next one\next two\n"
    assert parse_checkpoint_body(body) == cp


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("example.org/log\n5\n" + _b64(ROOT), "end with a newline"),
        ("example.org/log\n5\n", "origin, size and root"),
        ("\n5\n" + _b64(ROOT) + "\n", "line 1 is empty"),
        ("example.org/log\n05\n" + _b64(ROOT) + "\n", "not a tree size"),
        ("example.org/log\n+5\n" + _b64(ROOT) + "\n", "not a tree size"),
        ("example.org/log\n-5\n" + _b64(ROOT) + "\n", "not a tree size"),
        ("example.org/log\n 5\n" + _b64(ROOT) + "\n", "not a tree size"),
        ("example.org/log\n\u0665\n" + _b64(ROOT) + "\n", "not a tree size"),
        ("example.org/log\n9223372036854775808\n" + _b64(ROOT) + "\n", "not a tree size"),
        ("example.org/log\n\n" + _b64(ROOT) + "\n", "line 2 is empty"),
        ("example.org/log\n5\n" + _b64(ROOT[:31]) + "\n", "32-byte root"),
        ("example.org/log\n5\n" + _b64(ROOT).rstrip("=") + "\n", "32-byte root"),
        ("example.org/log\n5\n" + _b64(ROOT)[:-2] + "B=\n", "32-byte root"),
        ("example.org/log\n5\n" + _b64(ROOT) + "\n\n", "line 4 is empty"),
        ("example.org/log\n5\n" + _b64(ROOT) + "\nx\ty\n", "control character"),
    ],
)
def test_parse_checkpoint_body_is_strict(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_checkpoint_body(text)


def test_checkpoint_values_are_validated() -> None:
    with pytest.raises(UsageError, match="origin"):
        Checkpoint("", 1, ROOT)
    with pytest.raises(UsageError, match="origin"):
        Checkpoint("a\nb", 1, ROOT)
    with pytest.raises(UsageError, match="size"):
        Checkpoint("o", -1, ROOT)
    with pytest.raises(UsageError, match="root"):
        Checkpoint("o", 1, ROOT[:31])
    with pytest.raises(UsageError, match="extension"):
        Checkpoint("o", 1, ROOT, ("",))


# --- tlog-proof@v1 -------------------------------------------------------------------


def test_format_tlog_proof_layout() -> None:
    doc = format_tlog_proof(2, [H1, H2], NOTE, extra=b"context")
    expected = (
        f"c2sp.org/tlog-proof@v1\nextra {_b64(b'context')}\nindex 2\n{_b64(H1)}\n{_b64(H2)}\n\n"
    ).encode() + NOTE
    assert doc == expected
    assert format_tlog_proof(0, [], NOTE) == b"c2sp.org/tlog-proof@v1\nindex 0\n\n" + NOTE


@pytest.mark.parametrize("extra", [None, b"", b"\x00\xff opaque"])
@pytest.mark.parametrize("proof", [[], [H1], [H1, H2]])
def test_tlog_proof_round_trips(extra: bytes | None, proof: list[bytes]) -> None:
    doc = format_tlog_proof(73894, proof, NOTE, extra)
    assert parse_tlog_proof(doc) == (73894, proof, NOTE, extra)


def test_parse_c2sp_tlog_proof_example() -> None:
    index, proof, checkpoint, extra = parse_tlog_proof(C2SP_PROOF_EXAMPLE)
    assert index == 73894
    assert len(proof) == 5
    assert proof[0] == base64.b64decode("gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=")
    assert extra == base64.b64decode("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ")
    assert checkpoint.startswith(b"example.com/fancylog\n109482\n")
    assert checkpoint.endswith(b"qY9v2B/5bg==\n")


def _doc(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode() + b"\n" + NOTE


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "line 1 has no empty line"),
        (_doc("c2sp.org/tlog-proof@v2", "index 0"), "line 1 is not"),
        (_doc("c2sp.org/tlog-proof@v1"), "line 2 is not 'index N'"),
        (_doc("c2sp.org/tlog-proof@v1", "index 01"), "line 2 is not 'index N'"),
        (_doc("c2sp.org/tlog-proof@v1", "index -1"), "line 2 is not 'index N'"),
        (_doc("c2sp.org/tlog-proof@v1", "index  1"), "line 2 is not 'index N'"),
        (_doc("c2sp.org/tlog-proof@v1", "extra !!", "index 1"), "line 2 has extra data"),
        (_doc("c2sp.org/tlog-proof@v1", "index 1", "extra AA=="), "line 3 is not the base64"),
        (_doc("c2sp.org/tlog-proof@v1", "index 1", _b64(H1)[:-4]), "line 3 is not the base64"),
        (_doc("c2sp.org/tlog-proof@v1", "index 1", _b64(H1), "x"), "line 4 is not the base64"),
        (_doc("c2sp.org/tlog-proof@v1", "index 1", *[_b64(H1)] * 65), "more than 64"),
        (b"c2sp.org/tlog-proof@v1\nindex 1\n\n", "line 4 .*signed checkpoint"),
        (b"c2sp.org/tlog-proof@v1\nindex 1\n\nexample.org/log", "line 4 .*newline"),
    ],
)
def test_parse_tlog_proof_rejects(data: bytes, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_tlog_proof(data)


def test_format_tlog_proof_rejects_bad_values() -> None:
    with pytest.raises(UsageError):
        format_tlog_proof(-1, [], NOTE)
    with pytest.raises(UsageError):
        format_tlog_proof(0, [H1[:31]], NOTE)
    with pytest.raises(UsageError):
        format_tlog_proof(0, [], b"")
    with pytest.raises(UsageError):
        format_tlog_proof(0, [], NOTE.rstrip(b"\n"))


def test_signed_proof_end_to_end() -> None:
    tree = MemoryNodes()
    for i in range(21):
        tree.append(f"entry {i}".encode())
    signer = generate_signer("example.org/vault-log")
    cp = Checkpoint("example.org/vault-log", tree.size, tree.root())
    note = sign_note(checkpoint_body(cp), [signer])
    doc = format_tlog_proof(13, inclusion_proof(13, tree.size, tree), note)

    index, proof, checkpoint, extra = parse_tlog_proof(doc)
    text, _signed_by = open_note(checkpoint, [signer.verifier()])
    parsed = parse_checkpoint_body(text)
    assert parsed == cp and extra is None
    assert verify_inclusion(hash_leaf(b"entry 13"), index, parsed.size, proof, parsed.root)
    assert not verify_inclusion(hash_leaf(b"entry 12"), index, parsed.size, proof, parsed.root)


# --- consistency proofs --------------------------------------------------------------


def test_consistency_proof_text_round_trips() -> None:
    tree = MemoryNodes()
    for i in range(11):
        tree.append(bytes([i]))
    proof = consistency_proof(3, 11, tree)
    text = format_consistency_proof(proof)
    assert text == "".join(_b64(h) + "\n" for h in proof)
    assert parse_consistency_proof(text) == proof
    assert format_consistency_proof([]) == "" and parse_consistency_proof("") == []
    with pytest.raises(UsageError, match="line 2"):
        parse_consistency_proof(_b64(H1) + "\nnope\n")
    with pytest.raises(UsageError, match="newline"):
        parse_consistency_proof(_b64(H1))
    with pytest.raises(UsageError):
        format_consistency_proof([b"short"])
