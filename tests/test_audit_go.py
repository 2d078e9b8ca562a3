"""End to end: a real vault's receipts and proofs, checked by Go's sumdb/note and sumdb/tlog.

Everything the Go program is given comes from ``vaultd`` commands, as an
auditor outside the vault would get it: the log key from ``keys show --log``,
receipts from ``recordings receipt``, entry bytes from ``audit entry``,
checkpoints from ``audit checkpoint --out`` and proofs from
``audit consistency``. The leaf hash and the checkpoint body are worked out
here with hashlib and string splitting, not with vaultd's own code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from test_gocheck import GoCheck, gocheck  # noqa: F401  (the session fixture that builds the Go program)
from vaultd import tlogfmt
from vaultd.cli import main

pytestmark = pytest.mark.slow

Vaultd = Callable[..., bytes]


@pytest.fixture
def vaultd(capsysbinary: pytest.CaptureFixture[bytes]) -> Vaultd:
    """``vaultd(home, *args)``: run the command line, return its exact stdout bytes."""

    def run(home: Path, *args: object) -> bytes:
        capsysbinary.readouterr()
        code = main(["--home", str(home), *map(str, args)])
        out, err = capsysbinary.readouterr()
        assert code == 0, (args, out, err)
        return out

    return run


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _body(text: str) -> tuple[str, int, bytes]:
    """origin, size and root of a checkpoint body, by the C2SP tlog-checkpoint layout."""
    origin, size, root = text.split("\n")[:3]
    return origin, int(size), base64.b64decode(root, validate=True)


def _leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _opened(result: dict[str, Any], vkey: str) -> tuple[str, int, bytes]:
    assert result["ok"], result
    assert result["signers"] == ["+".join(vkey.split("+")[:2])]
    return _body(result["text"])


def test_go_verifies_every_receipt_and_a_consistency_proof(
    gocheck: GoCheck, vaultd: Vaultd, home: Path, _sim_camera_master: Path, tmp_path: Path  # noqa: F811
) -> None:
    camera = tmp_path / "camera"
    shutil.copytree(_sim_camera_master, camera, symlinks=True)
    vaultd(home, "ingest", camera)
    vkey = vaultd(home, "keys", "show", "--log").decode().strip()
    old_file = tmp_path / "old-checkpoint.txt"
    vaultd(home, "audit", "checkpoint", "--out", old_file)

    recs = json.loads(vaultd(home, "recordings", "list", "--json"))
    assert len(recs) >= 8
    receipts = []
    for rec in recs:
        index, proof, signed, _extra = tlogfmt.parse_tlog_proof(
            vaultd(home, "recordings", "receipt", rec["id"]))
        entry = vaultd(home, "audit", "entry", index)
        doc = json.loads(entry)
        assert doc["type"] == "ingest"
        assert doc["evidence"] == {"id": rec["id"], "sha256": rec["sha256"], "size_bytes": rec["size_bytes"]}
        receipts.append((index, proof, signed, entry))

    notes = gocheck([{"kind": "note", "msg": _b64(signed), "vkeys": [vkey]}
                     for _i, _p, signed, _e in receipts])
    inclusion: list[dict[str, Any]] = []
    for (index, proof, _signed, entry), opened in zip(receipts, notes, strict=True):
        origin, size, root = _opened(opened, vkey)
        assert origin == vkey.split("+")[0]
        inclusion.append({"kind": "inclusion", "leaf_hash": _b64(_leaf_hash(entry)), "index": index,
                          "size": size, "root": _b64(root), "proof": [_b64(h) for h in proof]})
    results = gocheck(inclusion)
    assert [r for r in results if not r["ok"]] == []

    # the same proofs do not prove a changed entry, or the entry at another index
    first = inclusion[0]
    changed = {**first, "leaf_hash": _b64(_leaf_hash(receipts[0][3] + b" "))}
    moved = {**first, "index": first["index"] + 1}
    assert [r["ok"] for r in gocheck([changed, moved])] == [False, False]

    # a consistency proof between two checkpoints an auditor saved
    vaultd(home, "ingest", camera)  # duplicates: more entries
    new_file = tmp_path / "new-checkpoint.txt"
    vaultd(home, "audit", "checkpoint", "--out", new_file)
    old_open, new_open = gocheck([{"kind": "note", "msg": _b64(f.read_bytes()), "vkeys": [vkey]}
                                  for f in (old_file, new_file)])
    _o, old_size, old_root = _opened(old_open, vkey)
    _o, new_size, new_root = _opened(new_open, vkey)
    assert old_size < new_size
    text = vaultd(home, "audit", "consistency", old_size, new_size).decode()
    cproof = [_b64(base64.b64decode(line, validate=True)) for line in text.splitlines()]
    assert cproof
    check: dict[str, Any] = {"kind": "consistency", "old_size": old_size, "new_size": new_size,
             "old_root": _b64(old_root), "new_root": _b64(new_root), "proof": cproof}
    swapped = {**check, "old_root": _b64(new_root), "new_root": _b64(old_root)}
    assert [r["ok"] for r in gocheck([check, swapped])] == [True, False]


def test_go_rejects_a_checkpoint_under_another_vaults_key(
    gocheck: GoCheck, vaultd: Vaultd, home: Path, tmp_path: Path  # noqa: F811
) -> None:
    other = tmp_path / "other-home"
    vaultd(other, "init")
    vaultd(home, "recordings", "list")  # any command: the log gets its first checkpoint
    signed = vaultd(home, "audit", "checkpoint")
    mine = vaultd(home, "keys", "show", "--log").decode().strip()
    theirs = vaultd(other, "keys", "show", "--log").decode().strip()
    assert mine != theirs
    ok, wrong = gocheck([{"kind": "note", "msg": _b64(signed), "vkeys": [k]} for k in (mine, theirs)])
    assert ok["ok"] and not wrong["ok"], (ok, wrong)
