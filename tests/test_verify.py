"""``vaultd verify`` on a tampered package: it fails, exits non-zero, and says why.

Each test copies one good package and changes it the way someone might; where
an attacker would also fix up the manifests (``rebag``) or sign again with a
key of their own, the test does too, so the check that must catch it is the
one named.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from vaultd import bag, export, merkle, note, pki, signing, tlogfmt
from vaultd.errors import IntegrityError
from export_world import World, first_export, make_world, pinned, run_verify


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, _sim_camera_master: Path) -> Iterator[World]:
    w = make_world(tmp_path_factory.mktemp("verify"), _sim_camera_master)
    yield w
    w.vault.close()


@pytest.fixture(scope="module")
def made(world: World) -> export.ExportResult:
    return first_export(world)


@pytest.fixture
def pkg(made: export.ExportResult, tmp_path: Path) -> Path:
    dest = tmp_path / "pkg"
    shutil.copytree(made.packages[0], dest)
    return dest


def video_of(pkg: Path) -> Path:
    return next(p for p in (pkg / "data/recordings").rglob("*.MP4"))


def rebag(pkg: Path) -> None:
    """Recompute every manifest and tag manifest, as someone covering their tracks would."""
    for algo in bag.ALGORITHMS:
        lines = sorted(f"{hashlib.new(algo, p.read_bytes()).hexdigest()}  {p.relative_to(pkg)}"
                       for p in (pkg / "data").rglob("*") if p.is_file())
        (pkg / f"manifest-{algo}.txt").write_text("".join(line + "\n" for line in lines))
    tags = [p for p in pkg.iterdir() if p.is_file() and not p.name.startswith("tagmanifest-")]
    for algo in bag.ALGORITHMS:
        lines = sorted(f"{hashlib.new(algo, p.read_bytes()).hexdigest()}  {p.name}" for p in tags)
        (pkg / f"tagmanifest-{algo}.txt").write_text("".join(line + "\n" for line in lines))


def resign_with_own_ca(pkg: Path) -> None:
    """Sign the tag manifest again with a CA of one's own (not the agency's)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, ca = pki.make_ca("Mallory CA", "", now)
    key, cert = pki.issue_signing(ca_key, ca, "Mallory signing", "", now)
    sig = signing.sign_detached((pkg / "tagmanifest-sha256.txt").read_bytes(), pki.SigningIdentity(key, cert, (ca,)))
    (pkg / "signature/tagmanifest-sha256.txt.p7s").write_bytes(sig)


def failed(world: World, pkg: Path, *expected: str) -> str:
    code, text = run_verify(pkg, *pinned(world))
    assert code == IntegrityError.exit_code, text
    assert "PASS" not in text
    for e in expected:
        assert e in text, (e, text)
    return text


def test_untouched_copy_passes(world: World, pkg: Path) -> None:
    code, text = run_verify(pkg, *pinned(world))
    assert code == 0, text


def test_flipped_byte_in_a_video(world: World, pkg: Path) -> None:
    video = video_of(pkg)
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0x01
    video.write_bytes(bytes(data))
    rel = str(video.relative_to(pkg))
    failed(world, pkg, "FAIL bag", f"{rel}: SHA256 does not match manifest-sha256.txt (changed)")


def test_renamed_file(world: World, pkg: Path) -> None:
    video = video_of(pkg)
    rel = str(video.relative_to(pkg))
    renamed = video.with_name("renamed.MP4")
    video.rename(renamed)
    failed(world, pkg, f"payload file {rel} is listed in manifest-sha256.txt but missing",
           f"payload file {renamed.relative_to(pkg)} is not listed in manifest-sha256.txt (added or renamed)")


def test_added_files(world: World, pkg: Path) -> None:
    (pkg / "data/recordings/extra.MP4").write_bytes(b"not evidence")
    (pkg / "README-court.txt").write_text("trust me")
    failed(world, pkg, "payload file data/recordings/extra.MP4 is not listed in manifest-sha256.txt",
           "file README-court.txt is not accounted for by any tag manifest")


def test_edited_metadata_json(world: World, pkg: Path) -> None:
    meta = next((pkg / "data/recordings").rglob("metadata.json"))
    meta.write_text(meta.read_text(encoding="utf-8").replace('"damaged": true', '"damaged": false')
                    .replace('"officer_id": "012345"', '"officer_id": "999999"'), encoding="utf-8")
    failed(world, pkg, f"{meta.relative_to(pkg)}: SHA256 does not match manifest-sha256.txt (changed)")


def test_edited_manifest(world: World, pkg: Path) -> None:
    manifest = pkg / "manifest-sha256.txt"
    lines = manifest.read_text().splitlines()
    lines[0] = "0" * 64 + lines[0][64:]
    manifest.write_text("\n".join(lines) + "\n")
    failed(world, pkg, "manifest-sha256.txt: SHA256 does not match tagmanifest-sha256.txt (changed)")


def test_replaced_video_with_manifests_fixed_up(world: World, pkg: Path) -> None:
    video = video_of(pkg)
    video.write_bytes(video.read_bytes()[:-100])
    rebag(pkg)
    failed(world, pkg, "the signed file does not match the signature (message digest differs)",
           "is not the one the audit log recorded")


def test_replaced_signature(world: World, pkg: Path) -> None:
    rebag(pkg)
    resign_with_own_ca(pkg)
    failed(world, pkg, "FAIL signature", "which is not the pinned CA")
    # without --ca the same package is "intact" but never a pass: the pins are what make it one
    code, text = run_verify(pkg)
    assert code == 1 and "signed by CN=Mallory signing" in text and "signer not pinned" in text


def test_damaged_signature(world: World, pkg: Path) -> None:
    (pkg / "signature/tagmanifest-sha256.txt.p7s").write_bytes(b"\x30\x03\x02\x01\x01")
    failed(world, pkg, "FAIL signature", "not valid CMS")


def test_a_proof_from_another_log(world: World, pkg: Path) -> None:
    proof = sorted((pkg / "data/custody/proofs").iterdir())[0]
    idx = int(proof.name.split(".")[0])
    entry = (pkg / f"data/custody/entries/{idx:012d}.json").read_bytes()
    other = note.generate_signer("other-agency.example/log")
    body = tlogfmt.checkpoint_body(tlogfmt.Checkpoint(other.name, idx + 1, _root_with(entry, idx)))
    proof.write_bytes(tlogfmt.format_tlog_proof(idx, [], note.sign_note(body, [other])))
    rebag(pkg)
    failed(world, pkg, f"the checkpoint in the proof of entry {idx} is not signed by the log key",
           "(a proof from another log?)")


def _root_with(entry: bytes, idx: int) -> bytes:
    """A tree of ``idx`` zero leaves then ``entry``: another log's root holding the same entry."""
    leaves = [merkle.hash_leaf(b"x")] * idx + [merkle.hash_leaf(entry)]
    return merkle.leaf_hashes_root(leaves)


def test_a_checkpoint_signed_by_another_key(world: World, pkg: Path) -> None:
    cp = pkg / "data/custody/checkpoint.txt"
    body = cp.read_bytes().split(b"\n\n")[0] + b"\n"
    origin = body.decode().splitlines()[0]
    mallory = note.generate_signer(origin)  # same name, another key
    cp.write_bytes(note.sign_note(body.decode(), [mallory]))
    (pkg / "data/custody/log-key.txt").write_text(note.verifier_key_string(mallory.verifier()) + "\n")
    rebag(pkg)
    resign_with_own_ca(pkg)
    failed(world, pkg, "FAIL custody", "checkpoint.txt is not signed by the log key")


def test_edited_audit_entry(world: World, pkg: Path) -> None:
    entry = sorted((pkg / "data/custody/entries").iterdir())[0]
    entry.write_bytes(entry.read_bytes().replace(b'"v":1', b'"v":1 '))
    rebag(pkg)
    idx = int(entry.name.split(".")[0])
    failed(world, pkg, f"entry {idx} is not in the log at that index: its inclusion proof fails")


def test_json_report_names_every_failure(world: World, pkg: Path) -> None:
    import json

    video_of(pkg).write_bytes(b"gone")
    (pkg / "signature/tagmanifest-sha256.txt.p7s").unlink()
    code, text = run_verify(pkg, "--json", *pinned(world))
    assert code == IntegrityError.exit_code
    doc = json.loads(text[: text.rindex("}") + 1])
    assert doc["status"] == "fail"
    failing = {c["check"] for c in doc["checks"] if c["ok"] is False}
    assert {"bag", "signature"} <= failing


def test_a_symbolic_link_in_place_of_a_file(world: World, pkg: Path, tmp_path: Path) -> None:
    video = video_of(pkg)
    kept = tmp_path / "elsewhere.MP4"
    video.rename(kept)
    video.symlink_to(kept)
    failed(world, pkg, f"{video.relative_to(pkg)} is a symbolic link")


def test_a_recording_slipped_in(world: World, pkg: Path) -> None:
    extra = pkg / "data/recordings/rforged000000"
    extra.mkdir()
    (extra / "planted.MP4").write_bytes(b"\x00\x00\x00\x18ftypmp42 planted")
    (extra / "metadata.json").write_text('{"sha256": "x", "package_file": "planted.MP4"}')
    rebag(pkg)
    resign_with_own_ca(pkg)
    failed(world, pkg, "FAIL signature", "recording folder rforged000000 is not in the custody index")
