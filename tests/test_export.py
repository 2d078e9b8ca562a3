"""Signed evidence exports (#8): made only under an approved export grant, recorded,
and verifiable with vaultd and with the standard tools (sha256sum, openssl)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from typing import Any
from datetime import timedelta
from pathlib import Path

import pycdlib
import pytest
from sqlalchemy import select, update

from vaultd import export
from vaultd.access import RequestKind
from vaultd.catalog.schema import audit_entries, exports, grants
from vaultd.errors import AccessDeniedError
from vaultd.people import local_owner
from vaultd.vault import utcnow
from conftest import token_for

from export_world import World, first_export, make_world, pinned, run_verify


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, _sim_camera_master: Path) -> Iterator[World]:
    w = make_world(tmp_path_factory.mktemp("export"), _sim_camera_master)
    yield w
    w.vault.close()


@pytest.fixture(scope="module")
def made(world: World) -> export.ExportResult:
    """One export of a video, the file with a Chinese name and a damaged one."""
    return first_export(world)


# -- made and verified -----------------------------------------------------------------------

def test_export_verifies_with_pins_and_says_unpinned_without(world: World, made: export.ExportResult) -> None:
    pkg = made.packages[0]
    code, text = run_verify(pkg, *pinned(world))
    assert code == 0, text
    assert "PASS" in text and made.export.id in text
    code, text = run_verify(pkg)
    assert code == 1, text
    assert "signer not pinned" in text and "PASS" not in text


def test_standard_tools_verify_the_package(world: World, made: export.ExportResult) -> None:
    pkg = made.packages[0]
    for tool, manifest in (("sha256sum", "tagmanifest-sha256.txt"), ("sha256sum", "manifest-sha256.txt"),
                           ("sha512sum", "tagmanifest-sha512.txt"), ("sha512sum", "manifest-sha512.txt")):
        done = subprocess.run([tool, "-c", "--strict", manifest], cwd=pkg, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    cms = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
                          "signature/tagmanifest-sha256.txt.p7s", "-content", "tagmanifest-sha256.txt",
                          "-CAfile", str(world.ca), "-purpose", "any", "-out", "/dev/null"],
                         cwd=pkg, capture_output=True, text=True)
    assert cms.returncode == 0 and "Verification successful" in cms.stderr, cms.stderr
    verify_txt = (pkg / "VERIFY.txt").read_text(encoding="utf-8")
    assert "sha256sum -c" in verify_txt and "openssl cms -verify" in verify_txt and world.log_key in verify_txt


def test_package_content_originals_metadata_custody_cover(world: World, made: export.ExportResult) -> None:
    pkg = made.packages[0]
    info = (pkg / "bag-info.txt").read_text(encoding="utf-8")
    for field in ("Source-Organization: 某市城市管理综合执法局", f"External-Identifier: {made.export.id}",
                  "Case-Number: 2026-017", "Requester: li", "Approver: sun", "Purpose: 移送法院",
                  "Payload-Oxum: ", "Bagging-Date: "):
        assert field in info
    for rid in made.export.recording_ids:
        rec = next(r for r in world.recs if r.id == rid)
        stored = world.vault.store.object_path(rec.sha256)  # the original stays where it was, read-only
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == rec.sha256 and not stored.stat().st_mode & 0o222
        meta = json.loads((pkg / "data/recordings" / rid / "metadata.json").read_text(encoding="utf-8"))
        original = pkg / "data/recordings" / rid / meta["package_file"]
        assert hashlib.sha256(original.read_bytes()).hexdigest() == rec.sha256 == meta["sha256"]
        assert meta["damaged"] == rec.damaged and "clock_offset_s" in meta and "labels" in meta
        assert set(meta["r3"]) >= {"making_method", "making_time", "maker", "proves"}
    assert any("现场照片" in p.name for p in (pkg / "data/recordings").rglob("*"))
    index = json.loads((pkg / "data/custody/index.json").read_text())
    assert set(index["recordings"]) == set(made.export.recording_ids)
    html = (pkg / "cover.html").read_text(encoding="utf-8")
    assert "证明对象" in html and "What it proves" in html and made.export.id in html
    assert (pkg / "cover.pdf").read_bytes().startswith(b"%PDF")


def test_the_vault_records_what_left(world: World, made: export.ExportResult) -> None:
    row = made.export
    assert row.status == "complete" and row.requester == "li" and row.approver == "sun"
    tag = (made.packages[0] / "tagmanifest-sha256.txt").read_bytes()
    assert row.packages[0]["tagmanifest_sha256"] == hashlib.sha256(tag).hexdigest()
    with world.vault.engine.connect() as conn:
        created = [json.loads(e) for e, in conn.execute(
            select(audit_entries.c.entry).where(audit_entries.c.type == "export.created"))]
        sealed = [json.loads(e) for e, in conn.execute(
            select(audit_entries.c.entry).where(audit_entries.c.type == "export.sealed"))]
    mine = [e for e in created if e["details"]["export"] == row.id]
    assert len(mine) == 1 and mine[0]["details"]["approver"] == "sun"
    assert any(e["details"]["export"] == row.id and e["details"]["packages"][0]["tagmanifest_sha256"]
               == row.packages[0]["tagmanifest_sha256"] for e in sealed)
    shown = export.show_export(world.vault, local_owner(), row.id)
    assert shown.packages == row.packages
    assert row.id in [r.id for r in export.list_exports(world.vault, local_owner())]


# -- refused and logged -------------------------------------------------------------------------

def _denials(world: World) -> list[dict[str, object]]:
    with world.vault.engine.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.type == "access.denied"))
        return [d for d in (json.loads(e)["details"] for e, in rows) if d.get("action") == "export"]


@pytest.mark.parametrize("case", ["no-grant", "expired", "other-recording", "other-kind"])
def test_export_refused_without_a_valid_grant_and_logged(world: World, case: str) -> None:
    a, b = world.recs[0].id, world.recs[1].id
    grant: str | None = None
    if case == "expired":
        grant = world.grant([a])
        with world.vault.engine.begin() as conn:
            conn.execute(update(grants).where(grants.c.id == grant).values(expires_at=utcnow() - timedelta(hours=1)))
    elif case == "other-recording":
        grant = world.grant([a])
    elif case == "other-kind":
        grant = world.grant([a], kind=RequestKind.COPY)
    before = len(_denials(world))
    dirs = set(world.out.iterdir())
    with world.vault.engine.connect() as conn:
        n_exports = len(list(conn.execute(select(exports.c.id))))
    with pytest.raises(AccessDeniedError) as err:
        world.export([a, b] if case == "other-recording" else [a], grant)
    expected = {"no-grant": "no-grant", "expired": "grant-expired", "other-recording": "grant-other-recording",
                "other-kind": "grant-other-kind"}[case]
    assert err.value.rule == expected
    denials = _denials(world)
    assert len(denials) == before + 1 and denials[-1]["rule"] == expected
    with world.vault.engine.connect() as conn:
        assert len(list(conn.execute(select(exports.c.id)))) == n_exports  # nothing recorded as made
    assert all(not any(p.iterdir()) for p in set(world.out.iterdir()) - dirs)  # no package written


def test_a_grant_is_used_up(world: World) -> None:
    a = world.recs[2].id
    grant = world.grant([a], uses=1)
    world.export([a], grant)
    with pytest.raises(AccessDeniedError) as err:
        world.export([a], grant, case_number="again")
    assert err.value.rule == "grant-used-up"


# -- discs ----------------------------------------------------------------------------------------

def _extract(iso_path: Path, dest: Path) -> tuple[str, list[str]]:
    iso = pycdlib.PyCdlib()
    iso.open(str(iso_path))
    joliet: list[str] = []
    try:
        label = iso.pvd.volume_identifier.decode().strip()
        for dirpath, _dirs, files in iso.walk(rr_path="/"):
            for f in files:
                rr = f"{dirpath.rstrip('/')}/{f}"
                target = dest / rr.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                iso.get_file_from_iso(str(target), rr_path=rr)
        for dirpath, _dirs, files in iso.walk(joliet_path="/"):
            joliet += files
    finally:
        iso.close()
    return label, joliet


def test_iso_split_over_discs_each_verifies_alone(world: World, tmp_path: Path) -> None:
    recs = [r for r in world.recs if r.size_bytes > 0][:4]
    ids = [r.id for r in recs]
    room = (max(r.size_bytes for r in recs) + (256 << 10)) * 3 // 2  # one recording per disc, at most
    disc = int((room + (12 << 20)) / 0.98) + 1  # the file system's and the package's share added
    result = world.export(ids, world.grant(ids), iso=True, disc_bytes=disc)
    assert len(result.isos) >= 2 and len(result.isos) == len(result.packages)
    seen: set[str] = set()
    for k, iso_path in enumerate(result.isos, 1):
        dest = tmp_path / f"disc{k}"
        label, joliet = _extract(iso_path, dest)
        assert label.endswith(f"_{k}") and result.export.id.split("-")[-1] in label
        code, text = run_verify(dest, *pinned(world))
        assert code == 0, text
        assert f"Bag-Count: {k} of {len(result.isos)}" in (dest / "bag-info.txt").read_text()
        seen |= set(json.loads((dest / "data/custody/index.json").read_text())["recordings"])
    assert seen == set(ids)
    code, text = run_verify(result.isos[0], *pinned(world))  # the image itself, before burning
    assert code == 0 and "PASS" in text, text


def test_iso_keeps_chinese_and_long_names(world: World, made: export.ExportResult, tmp_path: Path) -> None:
    chinese = next(r for r in world.recs if "现场" in r.original_name)
    result = world.export([chinese.id], world.grant([chinese.id]), iso=True, disc="cd")
    _label, joliet = _extract(result.isos[0], tmp_path / "d")
    assert any("现场照片" in name for name in joliet)
    rr = list((tmp_path / "d/data/recordings" / chinese.id).iterdir())
    assert any(p.name == chinese.original_name for p in rr)


# -- an RFC 3161 timestamp from a local openssl ts authority ---------------------------------------

TSA_CONF = """\
[ tsa ]
default_tsa = tsa1
[ tsa1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/tsa.pem
signer_key = $dir/tsa-key.pem
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _tsa_keys(d: Path) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from vaultd import pki

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, ca = pki.make_ca("Test TSA root", "", now)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (d / "tsa-ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "tsa.pem").write_bytes(cert.public_bytes(pem))
    (d / "tsa-key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    (d / "serial").write_text("01\n")
    (d / "tsa.cnf").write_text(TSA_CONF.format(dir=d))


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A tiny HTTP timestamp authority: each POSTed query answered by `openssl ts -reply`."""
    import http.server
    import threading

    d = tmp_path / "tsa"
    d.mkdir()
    _tsa_keys(d)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            (d / "q.tsq").write_bytes(query)
            subprocess.run(["openssl", "ts", "-reply", "-config", str(d / "tsa.cnf"), "-queryfile",
                            str(d / "q.tsq"), "-out", str(d / "r.tsr")], check=True, capture_output=True)
            body = (d / "r.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa", d / "tsa-ca.pem"
    finally:
        server.shutdown()


def test_timestamp_from_a_configured_tsa(world: World, tsa: tuple[str, Path], tmp_path: Path) -> None:
    from export_world import CONFIG

    from vaultd.vault import open_vault

    url, tsa_ca = tsa
    cfg = tmp_path / "vaultd.toml"
    cfg.write_text(CONFIG + f'tsa_url = "{url}"\n', encoding="utf-8")
    vault = open_vault(world.home, cfg)
    try:
        rid = world.recs[3].id
        out = tmp_path / "out"
        out.mkdir()
        result = export.create_export(vault, local_owner(), export.ExportRequest(
            out_dir=out, grant_id=world.grant([rid]), recording_refs=(rid,)))
    finally:
        vault.close()
    pkg = result.packages[0]
    tsr = pkg / "signature/tagmanifest-sha256.txt.p7s.tsr"
    done = subprocess.run(["openssl", "ts", "-verify", "-in", str(tsr), "-data",
                           str(pkg / "signature/tagmanifest-sha256.txt.p7s"), "-CAfile", str(tsa_ca)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "Verification: OK" in done.stdout, done.stdout + done.stderr
    code, text = run_verify(pkg, *pinned(world), "--tsa-ca", str(tsa_ca))
    assert code == 0 and "(pinned TSA)" in text, text
    code, text = run_verify(pkg, *pinned(world))  # the TSA not pinned: intact, not a pass
    assert code == 1 and "TSA not pinned" in text, text
    code, text = run_verify(pkg, *pinned(world), "--tsa-ca", str(world.ca))  # the wrong TSA root
    assert code == 8 and "FAIL timestamp" in text, text
    assert "openssl ts -verify" in (pkg / "VERIFY.txt").read_text(encoding="utf-8")


# -- previews, the chain between exports, a failed build ------------------------------------------

def test_previews_only_when_asked_and_apart(world: World, made: export.ExportResult) -> None:
    from vaultd.catalog import previews as previews_db

    rec = next(r for r in world.recs if r.media_type.value == "video" and not r.damaged)
    folder = world.home / "previews" / rec.id
    folder.mkdir(parents=True, exist_ok=True)
    data = b"preview bytes, not evidence"
    (folder / "preview.mp4").write_bytes(data)
    with world.vault.engine.begin() as conn:
        previews_db.put(conn, previews_db.PreviewRow(
            recording_id=rec.id, state="ready", kind="video", main_file="preview.mp4",
            sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
            files={"preview.mp4": {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data),
                                   "role": "main"}},
            original_sha256=rec.sha256, tools={}, params={}, incomplete=False, problems="",
            made_at=utcnow(), seconds=1.0))
    assert not (made.packages[0] / "data/previews").exists()
    result = world.export([rec.id], world.grant([rec.id]), with_previews=True)
    pkg = result.packages[0]
    assert (pkg / f"data/previews/{rec.id}/preview.mp4").read_bytes() == data
    assert "NOT evidence" in (pkg / "data/previews/README.txt").read_text(encoding="utf-8")
    assert "NOT evidence" in (pkg / f"data/previews/{rec.id}/provenance.json").read_text(encoding="utf-8")
    code, text = run_verify(pkg, *pinned(world))
    assert code == 0, text


def test_a_later_export_proves_the_log_extends_the_earlier_one(world: World, made: export.ExportResult) -> None:
    rid = world.recs[4].id
    later = world.export([rid], world.grant([rid])).packages[0]
    index = json.loads((later / "data/custody/index.json").read_text())
    assert index["previous_checkpoint_size"] is not None
    assert index["previous_checkpoint_size"] < index["checkpoint_size"]
    assert (later / "data/custody/consistency.txt").read_text()
    code, text = run_verify(later, *pinned(world))
    assert code == 0, text
    # a consistency proof that does not hold says the log was rewritten
    proof = later / "data/custody/consistency.txt"
    lines = proof.read_text().splitlines()
    lines[0] = "A" * 43 + "="
    proof.write_text("\n".join(lines) + "\n")
    code, text = run_verify(later, *pinned(world))
    assert code == 8 and "does not extend the previous export's checkpoint" in text


def test_a_failed_build_is_recorded_and_leaves_no_partial_package(world: World) -> None:
    from vaultd.errors import StorageError

    rec = world.recs[5]
    original = world.vault.store.object_path(rec.sha256)
    hidden = original.with_name(original.name + ".away")
    original.rename(hidden)
    try:
        with pytest.raises(StorageError):
            world.export([rec.id], world.grant([rec.id]))
    finally:
        hidden.rename(original)
    with world.vault.engine.connect() as conn:
        row = conn.execute(select(exports).order_by(exports.c.created_at.desc()).limit(1)).first()
        failed = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.type == "export.failed")).all()
    assert row is not None and row.status == "failed" and "missing" in row.problem
    assert any(json.loads(e)["details"]["export"] == row.id for e, in failed)
    assert not any(p.name == row.id for p in world.out.rglob(row.id))


# -- an agency's own PKI ---------------------------------------------------------------------------

def _agency_pki(d: Path) -> tuple[Path, Path, Path, Path]:
    """root CA -> intermediate CA -> signing certificate, as an agency's PKI would issue."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from vaultd import pki

    now = dt.datetime.now(dt.timezone.utc)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "某省执法 Root CA")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .sign(root_key, hashes.SHA256()))
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "市局 Issuing CA")]))
             .issuer_name(root_name).public_key(inter_key.public_key()).serial_number(2)
             .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1800))
             .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(inter_key.public_key()), critical=False)
             .sign(root_key, hashes.SHA256()))
    key, cert = pki.issue_signing(inter_key, inter, "Evidence export signer", "某市城市管理综合执法局", now)
    pem = serialization.Encoding.PEM
    paths = d / "leaf.pem", d / "leaf-key.pem", d / "chain.pem", d / "root.pem"
    paths[0].write_bytes(cert.public_bytes(pem))
    paths[1].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths[2].write_bytes(inter.public_bytes(pem) + root.public_bytes(pem))
    paths[3].write_bytes(root.public_bytes(pem))
    return paths


def test_an_agencys_own_pki_signs_instead(world: World, tmp_path: Path) -> None:
    from export_world import CONFIG

    from vaultd.errors import ConfigError
    from vaultd.vault import open_vault

    leaf, key, chain, root = _agency_pki(tmp_path)
    cfg = tmp_path / "vaultd.toml"
    cfg.write_text(CONFIG + f'signing_cert = "{leaf}"\nsigning_key = "{key}"\nsigning_chain = "{chain}"\n',
                   encoding="utf-8")
    vault = open_vault(world.home, cfg)
    try:
        assert export.agency_ca(vault)[0] == root.read_bytes()
        rid = world.recs[6].id
        out = tmp_path / "out"
        out.mkdir()
        pkg = export.create_export(vault, local_owner(), export.ExportRequest(
            out_dir=out, grant_id=world.grant([rid]), recording_refs=(rid,))).packages[0]
    finally:
        vault.close()
    code, text = run_verify(pkg, "--ca", str(root), "--log-key", world.log_key)
    assert code == 0 and "Evidence export signer" in text, text
    code, text = run_verify(pkg, *pinned(world))  # the embedded CA did not sign this one
    assert code == 8 and "not the pinned CA" in text, text
    cms = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
                          "signature/tagmanifest-sha256.txt.p7s", "-content", "tagmanifest-sha256.txt",
                          "-CAfile", str(root), "-purpose", "any", "-out", "/dev/null"],
                         cwd=pkg, capture_output=True, text=True)
    assert cms.returncode == 0, cms.stderr
    # a key that is not the certificate's is refused before anything is made
    other_key = tmp_path / "other"
    other_key.mkdir()
    cfg.write_text(CONFIG + f'signing_cert = "{leaf}"\nsigning_key = "{_agency_pki(other_key)[1]}"\n',
                   encoding="utf-8")
    vault = open_vault(world.home, cfg)
    try:
        with pytest.raises(ConfigError, match="does not belong"):
            export.create_export(vault, local_owner(), export.ExportRequest(
                out_dir=out, grant_id="gnone", recording_refs=(rid,)))
    finally:
        vault.close()


def test_api_reads_the_record_and_the_ca(world: World, made: export.ExportResult) -> None:
    import warnings

    from vaultd import people
    from vaultd.access import Role
    from vaultd.api import create_app
    from vaultd.people import NewUser

    from starlette.exceptions import StarletteDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient
    people.add_user(world.vault, local_owner(), NewUser("wu", (Role.AUDITOR,), None, None), None, "cli")
    auditor = token_for(world.vault, "wu")
    officer = token_for(world.vault, "wang")
    client = TestClient(create_app(world.vault))

    def get(token: str, path: str) -> Any:
        return client.get("/api/v1/exports" + path, headers={"Authorization": f"Bearer {token}"})

    items = get(auditor, "").json()["items"]
    assert made.export.id in [i["id"] for i in items]
    one = get(auditor, f"/{made.export.id}").json()
    assert one["packages"][0]["tagmanifest_sha256"] == made.export.packages[0]["tagmanifest_sha256"]
    assert get(officer, "").status_code == 403  # an officer may not read the record of exports
    assert get(auditor, "/EXP-nope").status_code == 404
    ca = get(officer, "/ca")
    assert ca.text.encode() == world.ca.read_bytes() and len(ca.headers["X-SHA256-Fingerprint"]) == 64


def test_export_a_case_by_number(world: World) -> None:
    from vaultd import cases
    from vaultd.errors import NotFoundError

    ids = [world.recs[7].id, world.recs[8].id]
    cases.create(world.vault, local_owner(), cases.NewCase("2026-031", "占道经营 street vending"))
    cases.link(world.vault, local_owner(), "2026-031", ids)
    result = world.export([], world.grant(ids), case_number="2026-031")
    assert sorted(result.export.recording_ids) == sorted(ids) and result.export.case_number == "2026-031"
    assert "Case-Number: 2026-031" in (result.packages[0] / "bag-info.txt").read_text(encoding="utf-8")
    with pytest.raises(NotFoundError):
        world.export([], world.grant(ids), case_number="no-such-case")
    # a grant for one of the case's recordings does not cover the case
    with pytest.raises(AccessDeniedError):
        world.export([], world.grant(ids[:1]), case_number="2026-031")


def test_every_path_verify_txt_names_is_in_the_package(made: export.ExportResult) -> None:
    """The by-hand steps name the files as they are (entries and proofs are zero-padded)."""
    import re

    pkg = made.packages[0]
    text = (pkg / "VERIFY.txt").read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![\w/.-])((?:data|signature)/[\w/.-]*\w)", text))
    assert "data/custody/entries/NNNNNNNNNNNN.json" in named and "data/custody/checkpoint.txt" in named
    only_after_a_first_export = {"data/custody/consistency.txt", "data/custody/previous-checkpoint.txt"}
    for path in sorted(named):
        found = list(pkg.glob(path.replace("NNNNNNNNNNNN", "[0-9]" * 12)))
        assert found or path in only_after_a_first_export, f"VERIFY.txt names {path}, which is not in the package"
