"""The by-hand court check, as printed, refuses forgeries (issue 16 point 4).

The commands are taken from where people read them: the README's court flow
and the package's VERIFY.txt (the cover shows the same steps). They run in
bash against a good package and against forged ones: an original swapped with
its payload manifests fixed up (with and without the tag manifests fixed up),
and a package re-signed by another CA that ships its own ``agency-ca.pem``.
The agency's CA is the published copy outside the package, as a court holds it.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from vaultd import cover, export, pki, signing
from vaultd.verify import SIGNATURE

from export_world import World, make_world

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass(frozen=True)
class Made:
    pkg: Path
    published: Path  # a folder outside the package: the agency CA as published
    fingerprint: str  # as the agency publishes it (colon form)
    shim: Path  # a folder with a `vaultd` command
    keys: Path  # the vault's keys (the genuine signer's names are copied by the forger)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, _sim_camera_master: Path) -> Iterator[World]:
    w = make_world(tmp_path_factory.mktemp("court"), _sim_camera_master)
    yield w
    w.vault.close()


@pytest.fixture(scope="module")
def made(world: World, tmp_path_factory: pytest.TempPathFactory) -> Made:
    video = next(r for r in world.recs if r.media_type.value == "video" and not r.damaged)
    pkg = world.export([video.id], world.grant([video.id]), case_number="2026-017").packages[0]
    shim = tmp_path_factory.mktemp("bin")
    (shim / "vaultd").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m vaultd.cli "$@"\n', encoding="utf-8")
    (shim / "vaultd").chmod(0o755)
    published = tmp_path_factory.mktemp("published")
    done = _bash(_readme_lines("vaultd export ca"), published, shim, {"VAULTD_HOME": str(world.home)})
    assert done.returncode == 0, done.stdout
    assert (published / "agency-ca.pem").read_bytes() == export.agency_ca(world.vault)[0]
    return Made(pkg, published, cover.colon_fingerprint(export.agency_ca(world.vault)[1]), shim,
                world.home / "keys")


# -- the printed commands -------------------------------------------------------------------------

def _court_block() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if "openssl cms -verify" in b]
    assert len(found) == 1, "the README has one court flow block"
    return found[0].splitlines()


def _readme_lines(starting: str) -> str:
    """The court flow's line that starts with ``starting``."""
    return next(line for line in _court_block() if line.startswith(starting))


def readme_check() -> str:
    """The README's by-hand check: from ``CA=`` to the end of the court flow block."""
    lines = _court_block()
    start = next(i for i, line in enumerate(lines) if line.startswith("CA="))
    return "\n".join(lines[start:]) + "\n"


def verify_txt_check(pkg: Path, ca: Path) -> str:
    """VERIFY.txt's commands (the lines starting with ``$``), its two placeholders filled in."""
    text = (pkg / "VERIFY.txt").read_text(encoding="utf-8")
    commands = [m.group(1) for m in re.finditer(r"^\s*\$ (.*)$", text, re.M)]
    assert commands, "VERIFY.txt prints its commands"
    script = "\n".join(commands) + "\n"
    assert cover.CA_PLACEHOLDER in script and cover.PKG_PLACEHOLDER in script
    return script.replace(cover.CA_PLACEHOLDER, str(ca)).replace(cover.PKG_PLACEHOLDER, str(pkg))


def _bash(script: str, cwd: Path, shim: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", **env}, check=False,
                          stdin=subprocess.DEVNULL)


def run_readme(made: Made, pkg: Path) -> tuple[int, str]:
    done = _bash(readme_check(), made.published, made.shim, {"PKG": str(pkg)})
    return done.returncode, done.stdout + done.stderr


def run_verify_txt(made: Made, pkg: Path) -> tuple[int, str]:
    """The genuine package's instructions (a forged package's own VERIFY.txt proves nothing)."""
    script = verify_txt_check(made.pkg, made.published / "agency-ca.pem").replace(str(made.pkg), str(pkg))
    done = _bash(script, made.published, made.shim, {})
    return done.returncode, done.stdout + done.stderr


def _fingerprint_shown(out: str) -> str:
    m = re.search(r"Fingerprint=([0-9A-F:]+)", out, re.I)
    assert m, out
    return m.group(1).upper()


# -- forging ----------------------------------------------------------------------------------------

def _original(pkg: Path) -> Path:
    return next(p for p in (pkg / "data" / "recordings").rglob("*") if p.is_file() and p.name != "metadata.json")


def _fix_manifest(pkg: Path, name: str, algo: str) -> None:
    lines = []
    for line in (pkg / name).read_text(encoding="utf-8").splitlines():
        _digest, _sep, rel = line.partition("  ")
        lines.append(f"{hashlib.new(algo, (pkg / rel).read_bytes()).hexdigest()}  {rel}")
    (pkg / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def swapped(made: Made, dest: Path, *, tag_manifests: bool) -> Path:
    """One original replaced by other bytes; the payload manifests (and the tag manifests) fixed up."""
    pkg = dest / made.pkg.name
    shutil.copytree(made.pkg, pkg)
    original = _original(pkg)
    original.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"forged" * 4096)
    for algo in ("sha256", "sha512"):
        _fix_manifest(pkg, f"manifest-{algo}.txt", algo)
    if tag_manifests:
        for algo in ("sha256", "sha512"):
            _fix_manifest(pkg, f"tagmanifest-{algo}.txt", algo)
    return pkg


def resigned(made: Made, dest: Path) -> Path:
    """A swapped original, every manifest fixed up, signed by another CA that the package carries."""
    pkg = swapped(made, dest, tag_manifests=False)
    now = datetime.now(timezone.utc)
    genuine = pki.signing_identity(made.keys)
    ca_key, ca = pki.make_ca(genuine.chain[-1].subject.rfc4514_string(), "", now)
    key, cert = pki.issue_signing(ca_key, ca, genuine.cert.subject.rfc4514_string(), "", now)
    (pkg / "agency-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for algo in ("sha256", "sha512"):
        _fix_manifest(pkg, f"tagmanifest-{algo}.txt", algo)
    tag = (pkg / "tagmanifest-sha256.txt").read_bytes()
    (pkg / SIGNATURE).write_bytes(signing.sign_detached(tag, pki.SigningIdentity(key, cert, (ca,))))
    # the forgery holds together with its own CA copy: what the old README check trusted
    own = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", SIGNATURE,
                          "-content", "tagmanifest-sha256.txt", "-CAfile", "agency-ca.pem", "-purpose", "any",
                          "-out", "/dev/null"], cwd=pkg, capture_output=True, text=True, check=False)
    assert own.returncode == 0, own.stderr
    return pkg


# -- the checks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("run", [run_readme, run_verify_txt], ids=["README", "VERIFY.txt"])
def test_the_printed_check_passes_a_good_package(made: Made, run: object) -> None:
    code, out = run(made, made.pkg)  # type: ignore[operator]
    assert code == 0, out
    assert _fingerprint_shown(out) == made.fingerprint  # what the court compares with the published one
    assert "Verification successful" in out and "FAILED" not in out
    assert ": OK" in out


@pytest.mark.parametrize("run", [run_readme, run_verify_txt], ids=["README", "VERIFY.txt"])
def test_the_printed_check_refuses_a_swapped_original(made: Made, run: object, tmp_path: Path) -> None:
    pkg = swapped(made, tmp_path, tag_manifests=False)
    code, out = run(made, pkg)  # type: ignore[operator]
    assert code != 0, out
    assert "manifest-sha256.txt: FAILED" in out and "Verification successful" not in out


@pytest.mark.parametrize("run", [run_readme, run_verify_txt], ids=["README", "VERIFY.txt"])
def test_the_printed_check_refuses_a_swapped_original_with_every_manifest_fixed(made: Made, run: object,
                                                                             tmp_path: Path) -> None:
    pkg = swapped(made, tmp_path, tag_manifests=True)
    code, out = run(made, pkg)  # type: ignore[operator]
    assert code != 0, out
    assert "Verification successful" not in out


@pytest.mark.parametrize("run", [run_readme, run_verify_txt], ids=["README", "VERIFY.txt"])
def test_the_printed_check_refuses_a_package_resigned_by_another_ca(made: Made, run: object,
                                                                    tmp_path: Path) -> None:
    pkg = resigned(made, tmp_path)
    code, out = run(made, pkg)  # type: ignore[operator]
    assert code != 0, out
    assert "Verification successful" not in out
    assert _fingerprint_shown(out) == made.fingerprint  # the published CA was used, not the package's copy


def test_the_cover_prints_the_same_commands(made: Made) -> None:
    text = (made.pkg / "VERIFY.txt").read_text(encoding="utf-8")
    commands = [m.group(1) for m in re.finditer(r"^\s*\$ (.*)$", text, re.M)]
    page = html.unescape((made.pkg / "cover.html").read_text(encoding="utf-8"))
    for command in commands:
        assert command in page
    assert made.fingerprint in page and made.fingerprint in text
    assert "-CAfile agency-ca.pem" not in text + page  # never the copy inside the package
