"""Cross-check with Go's golang.org/x/mod/sumdb/note and sumdb/tlog.

An independent implementation must accept what vaultd writes (notes, key
strings, inclusion and consistency proofs) and reject what vaultd rejects.
The Go program is tests/gocheck/main.go, built offline in GOPATH mode against
Debian's golang-golang-x-mod-dev sources.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from vaultd.errors import IntegrityError
from vaultd.merkle import (
    Hash,
    MemoryNodes,
    consistency_proof,
    hash_leaf,
    inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from vaultd.note import (
    Signer,
    generate_signer,
    open_note,
    parse_signer_key,
    sign_note,
    signer_key_string,
    verifier_key_string,
)
from vaultd.tlogfmt import Checkpoint, checkpoint_body

pytestmark = pytest.mark.slow

GO_SOURCE = Path(__file__).parent / "gocheck"
GO_GOPATHS = ["/usr/share/gocode"]
INSTALL_HINT = "Go cross-check needs: apt-get install golang-go golang-golang-x-mod-dev"

Check = dict[str, Any]
GoCheck = Callable[[Sequence[Check]], list[dict[str, Any]]]


def _gopath() -> str | None:
    candidates = [*os.environ.get("GOPATH", "").split(os.pathsep), *GO_GOPATHS]
    for root in filter(None, candidates):
        xmod = Path(root, "src/golang.org/x/mod/sumdb")
        if (xmod / "note/note.go").is_file() and (xmod / "tlog/tlog.go").is_file():
            return root
    return None


@pytest.fixture(scope="session")
def gocheck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GoCheck]:
    go, gopath = shutil.which("go"), _gopath()
    if go is None or gopath is None:
        pytest.skip(INSTALL_HINT)
    work = tmp_path_factory.mktemp("gocheck")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(work),
        "GO111MODULE": "off",  # GOPATH mode: Debian's x/mod sources, no module download
        "GOPATH": gopath,
        "GOCACHE": str(work / "cache"),
        "GOFLAGS": "",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }
    binary = work / "gocheck"
    build = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=GO_SOURCE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if build.returncode != 0:
        pytest.fail(f"building {GO_SOURCE} failed ({INSTALL_HINT}):\n{build.stderr}")

    def run(checks: Sequence[Check]) -> list[dict[str, Any]]:
        request = json.dumps({"checks": list(checks)})
        done = subprocess.run(
            [str(binary)], input=request, capture_output=True, text=True, timeout=300, check=True
        )
        results: list[dict[str, Any]] = json.loads(done.stdout)["results"]
        assert len(results) == len(checks)
        return results

    yield run


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _inclusion(leaf: Hash, index: int, size: int, proof: Sequence[Hash], root: Hash) -> Check:
    return {
        "kind": "inclusion", "leaf_hash": _b64(leaf), "index": index, "size": size,
        "root": _b64(root), "proof": [_b64(h) for h in proof],
    }  # fmt: skip


def _consistency(
    old: int, new: int, old_root: Hash, new_root: Hash, proof: Sequence[Hash]
) -> Check:
    return {
        "kind": "consistency", "old_size": old, "new_size": new,
        "old_root": _b64(old_root), "new_root": _b64(new_root), "proof": [_b64(h) for h in proof],
    }  # fmt: skip


def _note(msg: bytes, *vkeys: str) -> Check:
    return {"kind": "note", "msg": _b64(msg), "vkeys": list(vkeys)}


def _build(size: int) -> tuple[MemoryNodes, list[Hash]]:
    tree = MemoryNodes()
    leaves = []
    for i in range(size):
        tree.append(f"record {i}".encode())
        leaves.append(hash_leaf(f"record {i}".encode()))
    return tree, leaves


SIZES = [*range(1, 71), 127, 128, 129, 300, 513]


# --- Merkle proofs -----------------------------------------------------------------------


def test_go_accepts_every_inclusion_proof(gocheck: GoCheck) -> None:
    tree, leaves = _build(max(SIZES))
    checks = []
    for size in SIZES:
        root = root_hash(size, tree)
        for index in range(size):
            checks.append(
                _inclusion(leaves[index], index, size, inclusion_proof(index, size, tree), root)
            )
    failures = [
        (c["index"], c["size"], r)
        for c, r in zip(checks, gocheck(checks), strict=True)
        if not r["ok"]
    ]
    assert not failures, failures[:5]
    assert len(checks) > 3000


def test_go_accepts_consistency_proofs(gocheck: GoCheck) -> None:
    tree, _leaves = _build(max(SIZES))
    pairs = [(old, new) for new in range(1, 71) for old in range(1, new + 1)]
    rng = random.Random(6962)
    pairs += [(rng.randint(1, new), new) for new in SIZES[70:] for _ in range(40)]
    checks = [
        _consistency(
            old, new, root_hash(old, tree), root_hash(new, tree), consistency_proof(old, new, tree)
        )
        for old, new in pairs
    ]
    failures = [
        (c["old_size"], c["new_size"], r)
        for c, r in zip(checks, gocheck(checks), strict=True)
        if not r["ok"]
    ]
    assert not failures, failures[:5]


def test_go_and_python_agree_on_broken_proofs(gocheck: GoCheck) -> None:
    tree, leaves = _build(45)
    size, index = 45, 22
    root = root_hash(size, tree)
    proof = inclusion_proof(index, size, tree)
    flipped = [proof[0], bytes([proof[1][0] ^ 1]) + proof[1][1:], *proof[2:]]
    broken_inclusion = [
        (leaves[index], index + 1, size, proof, root),
        (leaves[index], index, size * 2, proof, root),
        (leaves[index], index, size, proof[:-1], root),
        (leaves[index], index, size, [*proof, root], root),
        (leaves[index], index, size, flipped, root),
        (leaves[index + 1], index, size, proof, root),
    ]
    old = 13
    cproof = consistency_proof(old, size, tree)
    old_root = root_hash(old, tree)
    broken_consistency = [
        (old + 1, size, old_root, root, cproof),
        (old, size, old_root, root, cproof[:-1]),
        (old, size, old_root, root, [*cproof, root]),
        (old, size, root, old_root, cproof),
        (old, size, old_root, root_hash(size - 1, tree), cproof),
    ]
    checks = [_inclusion(*a) for a in broken_inclusion] + [
        _consistency(*a) for a in broken_consistency
    ]
    assert not any(r["ok"] for r in gocheck(checks))
    assert not any(verify_inclusion(*a) for a in broken_inclusion)
    assert not any(verify_consistency(*a) for a in broken_consistency)


# --- signed notes --------------------------------------------------------------------------


@pytest.fixture()
def log_key() -> Signer:
    return generate_signer("example.org/vault-log")


def _checkpoint_note(signers: Sequence[Signer], size: int = 70) -> tuple[str, bytes]:
    tree, _leaves = _build(size)
    text = checkpoint_body(Checkpoint("example.org/vault-log", size, tree.root()))
    return text, sign_note(text, signers)


def test_go_opens_our_checkpoint(gocheck: GoCheck, log_key: Signer) -> None:
    witness = generate_signer("witness.example/w1")
    text, msg = _checkpoint_note([log_key, witness])
    vkey = verifier_key_string(log_key.verifier())
    [result] = gocheck([_note(msg, vkey)])
    assert result["ok"], result
    assert result["text"] == text
    assert result["signers"] == [f"{log_key.name}+{log_key.key_id.hex()}"]


def test_go_rejects_what_we_reject(gocheck: GoCheck, log_key: Signer) -> None:
    _text, msg = _checkpoint_note([log_key])
    vkey = verifier_key_string(log_key.verifier())
    other = verifier_key_string(generate_signer(log_key.name).verifier())
    tampered = msg.replace(b"\n70\n", b"\n71\n")
    results = gocheck([_note(tampered, vkey), _note(msg, other), _note(msg[:-1], vkey)])
    assert [r["ok"] for r in results] == [False, False, False]
    assert "invalid signature" in results[0]["error"]
    assert "no verifiable signatures" in results[1]["error"]
    for bad, key in [
        (tampered, log_key),
        (msg, generate_signer(log_key.name)),
        (msg[:-1], log_key),
    ]:
        with pytest.raises(IntegrityError):
            open_note(bad, [key.verifier()])


def test_go_signer_accepts_our_signer_key(gocheck: GoCheck, log_key: Signer) -> None:
    text = checkpoint_body(Checkpoint("example.org/vault-log", 3, hash_leaf(b"x")))
    [result] = gocheck([{"kind": "sign", "skey": signer_key_string(log_key), "text": text}])
    assert result["ok"], result
    go_msg = base64.b64decode(result["msg"])
    assert go_msg == sign_note(text, [log_key])
    assert open_note(go_msg, [log_key.verifier()]) == (text, [log_key.verifier()])
    assert parse_signer_key(signer_key_string(log_key)) == log_key


def test_go_rejects_bad_key_strings(gocheck: GoCheck, log_key: Signer) -> None:
    vkey = verifier_key_string(log_key.verifier())
    name, id_hex, key64 = vkey.split("+", 2)
    wrong_id = f"{name}+{int(id_hex, 16) ^ 1:08x}+{key64}"
    _text, msg = _checkpoint_note([log_key])
    results = gocheck(
        [_note(msg, wrong_id), {"kind": "sign", "skey": "PRIVATE+KEY+" + wrong_id, "text": "x\n"}]
    )
    assert [r["ok"] for r in results] == [False, False]
