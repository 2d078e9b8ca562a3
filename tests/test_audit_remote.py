"""An auditor at another computer verifies the station's log over the API.

``vaultd --url URL --token T audit verify --log-key KEY`` fetches the log and
checks it on the auditor's side with the same code as the station's own
``audit verify``. The station runs a real ``vaultd serve``; its database is
tampered with plain ``sqlite3`` (triggers dropped), while it serves or
between runs; a lying server is a proxy in front of the real one that alters
what it forwards.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from serving import vaultd_serve
from test_audit import (
    Ran,
    _copy_db,
    _restore_db,
    a_video,
    attacker,
    catalog,
    edit_details,
    entries,
    latest_checkpoint,
    log_size,
    of_type,
    rebuild_nodes,
)
from vaultd import audit, auditremote, logcheck, merkle, note, people, tlogfmt
from vaultd.access import Role
from vaultd.cli import main
from vaultd.errors import IntegrityError, LogTamperedError
from vaultd.vault import open_vault
from conftest import ingested_home, token_for

pytestmark = pytest.mark.slow  # the vault holds a camera made with ffmpeg

TAMPERED = LogTamperedError.exit_code
OWNER = people.local_owner()
ROLES = {"kong": Role.AUDITOR, "zhao": Role.LEGAL, "qian": Role.LEADER, "wang": Role.OFFICER}


# -- a station with a served vault, and an auditor's computer --------------------------------------


@pytest.fixture(scope="module")
def _station_master(tmp_path_factory: pytest.TempPathFactory, _sim_camera_master: Path) -> Path:
    """A home with one camera ingested and a user (with a token file) per role."""
    root = tmp_path_factory.mktemp("station")
    home = ingested_home(root, _sim_camera_master)
    vault = open_vault(home)
    try:
        for name, role in ROLES.items():
            people.add_user(vault, OWNER, people.NewUser(name, (role,), "一大队"), None, "cli")
            (home / f"token-{name}").write_text(token_for(vault, name))
        audit.seal(vault)
    finally:
        vault.close()
    return home


@pytest.fixture
def station(_station_master: Path, tmp_path: Path) -> Path:
    home = tmp_path / "station"
    shutil.copytree(_station_master, home)
    return home


@pytest.fixture
def log_key(station: Path, tmp_path: Path) -> Path:
    """The station's log key, as the auditor keeps it (a file)."""
    vault = open_vault(station)
    try:
        key = tmp_path / "log-key.txt"
        key.write_text(note.verifier_key_string(audit.verifier(vault)) + "\n", encoding="utf-8")
        return key
    finally:
        vault.close()


Auditor = Callable[..., Ran]


@pytest.fixture
def auditor(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Auditor:
    """``auditor(url, token, "audit", "verify", ...)``: vaultd at a computer without a home."""
    monkeypatch.delenv("VAULTD_HOME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")

    def run(url: str, token: str | None, *args: object) -> Ran:
        capsys.readouterr()
        code = main(["--url", url, *(["--token", token] if token else []), *map(str, args)])
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def token(home: Path, name: str) -> str:
    return (home / f"token-{name}").read_text()


@pytest.fixture
def served(station: Path) -> Iterator[str]:
    with vaultd_serve(station) as url:
        yield url


def remote_verify(auditor: Auditor, url: str, key: object, *extra: object, who: str = "kong",
                  home: Path | None = None) -> Ran:
    assert home is not None
    return auditor(url, token(home, who), "audit", "verify", "--log-key", key, *extra)


def assert_caught(ran: Ran, *words: str) -> None:
    assert ran.code == TAMPERED, ran.text
    assert "intact" not in ran.out
    for w in words:
        assert w in ran.text, (w, ran.text)


# -- an intact log --------------------------------------------------------------------------------


def test_each_reading_role_verifies_the_served_log(station: Path, served: str, log_key: Path,
                                                    auditor: Auditor) -> None:
    for who in ("kong", "zhao", "qian"):
        ran = remote_verify(auditor, served, log_key, home=station, who=who)
        assert ran.code == 0, ran.text
        assert "intact" in ran.out and "FAIL" not in ran.out and served in ran.out
    ran = remote_verify(auditor, served, log_key, "--json", home=station)
    assert ran.code == 0, ran.text
    doc = json.loads(ran.out)
    assert doc["ok"] is True and doc["problems"] == [] and doc["vault"] == served
    assert doc["recordings"] == len(catalog(station)) > 0 and doc["checkpoints"] >= 1
    assert 0 < doc["entries"] < log_size(station)  # the reads of this verify are logged after its head


def test_the_log_key_may_be_given_as_the_string(station: Path, served: str, log_key: Path,
                                                auditor: Auditor) -> None:
    ran = remote_verify(auditor, served, log_key.read_text().strip(), home=station)
    assert ran.code == 0, ran.text


def test_entries_and_hashes_come_in_pages_and_each_fetch_is_logged(
        station: Path, served: str, log_key: Path, auditor: Auditor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auditremote, "PAGE", 4)
    monkeypatch.setattr(auditremote, "NODES_PAGE", 4)
    before = log_size(station)
    ran = remote_verify(auditor, served, log_key, "--json", home=station)
    assert ran.code == 0, ran.text
    n = json.loads(ran.out)["entries"]
    reads = [r.doc for r in entries(station)[before:] if r.type == "audit.read"]
    assert all(r["actor"] == {"kind": "user", "name": "kong", "via": "api"} for r in reads)
    ranges = [(r["details"]["filter"]["start"], r["details"]["filter"]["end"]) for r in reads
              if set(r["details"]["filter"]) == {"start", "end"}]
    assert ranges == [(s, min(s + 4, n)) for s in range(0, n, 4)]
    leaves = [r for r in reads if r["details"]["filter"].get("level") == 0]
    assert len(leaves) == (n + 3) // 4
    catalog_pages = [r for r in reads if "recordings_after" in r["details"]["filter"]]
    assert len(catalog_pages) == len(catalog(station)) // 4 + 1  # 4 a page, until one comes back short


# -- the station's database tampered with -------------------------------------------------------------


def _edit_entry(home: Path) -> str:
    [skip] = of_type(home, "ingest.skipped")
    with attacker(home) as conn:
        conn.execute("UPDATE audit_entries SET entry = ? WHERE idx = ?",
                     (edit_details(skip.entry, reason="nothing to see"), skip.idx))
    return f"stored hash of audit entry {skip.idx} does not match"


def _edit_entry_and_rebuild(home: Path) -> str:
    [skip] = of_type(home, "ingest.skipped")
    with attacker(home) as conn:
        conn.execute("UPDATE audit_entries SET entry = ? WHERE idx = ?",
                     (edit_details(skip.entry, reason="nothing to see"), skip.idx))
        rebuild_nodes(conn)
        first = conn.execute("SELECT min(size) FROM audit_checkpoints WHERE size > ?", (skip.idx,)).fetchone()[0]
    return f"checkpoint at size {first} does not match the entries"


def _delete_entry(home: Path) -> str:
    victim = of_type(home, "ingest")[2]
    with attacker(home) as conn:
        conn.execute("DELETE FROM audit_entries WHERE idx = ?", (victim.idx,))
    return f"audit entry {victim.idx} is missing"


def _move_entry_to_another_recording(home: Path) -> str:
    a, b = of_type(home, "ingest")[1:3]
    with attacker(home) as conn:
        conn.execute("UPDATE audit_entries SET evidence_id = ? WHERE idx = ?", (b.rec, a.idx))
    return f"audit entry {a.idx}: its indexed columns do not match its bytes"


def _change_recording_hash(home: Path) -> str:
    rec = a_video(home)
    with attacker(home) as conn:
        conn.execute("UPDATE recordings SET sha256 = ? WHERE id = ?", ("0" * 64, rec))
    return f"recording {rec}: catalog sha256 {'0' * 64} differs"


def _delete_recording(home: Path) -> str:
    rec = a_video(home)
    with attacker(home) as conn:
        conn.execute("DELETE FROM sightings WHERE recording_id = ?", (rec,))
        conn.execute("DELETE FROM recordings WHERE id = ?", (rec,))
    return f"recording {rec} (ingest entry"


def _forge_checkpoint(home: Path) -> str:
    size, signed = latest_checkpoint(home)
    real = tlogfmt.parse_checkpoint_body(signed.decode().split("\n\n")[0] + "\n")
    forged = note.sign_note(tlogfmt.checkpoint_body(real), [note.generate_signer(real.origin)])
    with attacker(home) as conn:
        conn.execute("UPDATE audit_checkpoints SET note = ? WHERE size = ?", (forged, size))
    return f"checkpoint at size {size}: signature or format invalid"


TAMPERS = {"edited entry": _edit_entry, "edited entry, hashes rebuilt": _edit_entry_and_rebuild,
           "deleted entry": _delete_entry, "entry moved to another recording": _move_entry_to_another_recording,
           "recording hash changed": _change_recording_hash, "recording deleted": _delete_recording,
           "checkpoint signed by another key": _forge_checkpoint}


@pytest.mark.parametrize("tamper", TAMPERS.values(), ids=TAMPERS.keys())
def test_a_tampered_database_fails_at_the_auditors_computer(station: Path, served: str, log_key: Path,
                                                             auditor: Auditor,
                                                             tamper: Callable[[Path], str]) -> None:
    assert remote_verify(auditor, served, log_key, home=station).code == 0
    expected = tamper(station)  # while the station serves
    ran = remote_verify(auditor, served, log_key, home=station)
    assert_caught(ran, expected)
    local = main(["--home", str(station), "audit", "verify"])
    assert local == TAMPERED  # the station's own verify agrees


def test_an_older_database_copy_put_back_fails(station: Path, log_key: Path, auditor: Auditor,
                                               tmp_path: Path) -> None:
    saved = tmp_path / "old-db"
    _copy_db(station, saved)
    with vaultd_serve(station) as url:
        assert remote_verify(auditor, url, log_key, home=station).code == 0  # logs reads and seals over them
    _restore_db(saved, station)  # between runs
    with vaultd_serve(station) as url:
        ran = remote_verify(auditor, url, log_key, home=station)
        assert_caught(ran, "the checkpoint kept outside the database covers", "older copy")
        assert_caught(remote_verify(auditor, url, log_key, home=station), "outside the database")  # still


def test_a_checkpoint_held_by_the_auditor_catches_a_complete_rewrite(station: Path, served: str, log_key: Path,
                                                                      auditor: Auditor, tmp_path: Path) -> None:
    held = tmp_path / "held.txt"
    ran = remote_verify(auditor, served, log_key, "--save", held, home=station)
    assert ran.code == 0 and "saved" in ran.out, ran.text
    assert remote_verify(auditor, served, log_key, "--since", held, home=station).code == 0

    # the attacker rewrites history, rebuilds every hash and re-signs with the key in the home
    [skip] = of_type(station, "ingest.skipped")
    with attacker(station) as conn:
        conn.execute("UPDATE audit_entries SET entry = ? WHERE idx = ?",
                     (edit_details(skip.entry, reason="nothing to see"), skip.idx))
        rebuild_nodes(conn)
        conn.execute("DELETE FROM audit_checkpoints")
    (station / audit.CHECKPOINT_FILE).unlink()
    vault = open_vault(station)
    try:
        assert audit.seal(vault) is not None
    finally:
        vault.close()

    assert remote_verify(auditor, served, log_key, home=station).code == 0  # the vault alone cannot tell
    assert_caught(remote_verify(auditor, served, log_key, "--since", held, home=station),
                  "the checkpoint given with --since does not match the entries")


def test_a_held_checkpoint_of_a_longer_log_fails(station: Path, served: str, log_key: Path, auditor: Auditor,
                                                 tmp_path: Path) -> None:
    """Entries cut off the end, and the head lowered to match: the auditor's checkpoint is longer."""
    held = tmp_path / "held.txt"
    assert remote_verify(auditor, served, log_key, "--save", held, home=station).code == 0
    size = tlogfmt.parse_checkpoint_body(note.open_note(held.read_bytes(), [
        note.parse_verifier_key(log_key.read_text().strip())])[0]).size
    with attacker(station) as conn:
        conn.execute("DELETE FROM audit_entries WHERE idx >= ?", (size - 5,))
        conn.execute("DELETE FROM audit_checkpoints")
        conn.execute("UPDATE audit_head SET size = ?", (size - 5,))
        rebuild_nodes(conn)
    (station / audit.CHECKPOINT_FILE).unlink()
    assert_caught(remote_verify(auditor, served, log_key, "--since", held, home=station),
                  f"the checkpoint given with --since covers {size} entries")


def test_tampered_subtree_hashes_fail(station: Path, served: str, log_key: Path, auditor: Auditor,
                                      tmp_path: Path) -> None:
    """The subtree hashes the station makes its proofs and receipts from are checked too."""
    held = tmp_path / "held.txt"
    assert remote_verify(auditor, served, log_key, "--save", held, home=station).code == 0
    assert remote_verify(auditor, served, log_key, "--since", held, home=station).code == 0
    with attacker(station) as conn:
        conn.execute("UPDATE audit_nodes SET hash = ? WHERE level = 1 AND idx = 0", (b"\x00" * 32,))
    assert_caught(remote_verify(auditor, served, log_key, "--since", held, home=station),
                  "stored hash of subtree (level 1, index 0) does not match")


# -- keys ------------------------------------------------------------------------------------------


def test_a_wrong_log_key_fails(station: Path, served: str, auditor: Auditor, tmp_path: Path) -> None:
    other = tmp_path / "other-key.txt"
    other.write_text(note.verifier_key_string(note.generate_signer("vaultd/elsewhere").verifier()))
    ran = remote_verify(auditor, served, other, home=station)
    assert_caught(ran, "signature or format invalid")
    # the same name as the station's log, another key
    vault = open_vault(station)
    try:
        name = audit.origin(vault)
    finally:
        vault.close()
    other.write_text(note.verifier_key_string(note.generate_signer(name).verifier()))
    assert_caught(remote_verify(auditor, served, other, home=station), "signature or format invalid")


def test_a_log_key_is_required_and_must_be_one(station: Path, served: str, auditor: Auditor,
                                               tmp_path: Path) -> None:
    ran = auditor(served, token(station, "kong"), "audit", "verify")
    assert ran.code == 2 and "--log-key is required" in ran.err and "keys show --log" in ran.err
    bad = tmp_path / "bad.txt"
    bad.write_text("not+a+key")
    ran = remote_verify(auditor, served, bad, home=station)
    assert ran.code == 2 and "--log-key" in ran.err and "Traceback" not in ran.text
    ran = remote_verify(auditor, served, tmp_path / "missing.txt", home=station)
    assert ran.code == 2 and "cannot read the log key" in ran.err


def test_a_pinned_key_also_checks_the_stations_own_verify(station: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other-key.txt"
    other.write_text(note.verifier_key_string(note.generate_signer("vaultd/elsewhere").verifier()))
    assert main(["--home", str(station), "audit", "verify", "--log-key", str(other)]) == TAMPERED
    assert "signature or format invalid" in capsys.readouterr().out


# -- a server that lies --------------------------------------------------------------------------------


Alter = Callable[[str, bytes], bytes]


@pytest.fixture
def liar(served: str) -> Iterator[Callable[[Alter], str]]:
    """``liar(alter)``: the URL of a proxy in front of the served vault that
    passes every answer through ``alter(path, body)``."""
    servers: list[ThreadingHTTPServer] = []

    def start(alter: Alter) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                resp = httpx.get(served + self.path, headers={"Authorization": self.headers["Authorization"]})
                body = alter(self.path.split("?")[0], resp.content)
                self.send_response(resp.status_code)
                self.send_header("Content-Type", resp.headers["content-type"])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _altered_entry(path: str, body: bytes) -> bytes:
    if not path.endswith("/audit/range"):
        return body
    rows = logcheck.unpack_entries(body)
    [skip] = [r for r in rows if r.type == "ingest.skipped"]
    rows[skip.idx] = skip._replace(entry=edit_details(skip.entry, reason="nothing to see"))
    return logcheck.pack_entries(rows)


def _dropped_entry(path: str, body: bytes) -> bytes:
    if not path.endswith("/audit/range"):
        return body
    rows = logcheck.unpack_entries(body)
    return logcheck.pack_entries(rows[:5] + rows[6:])


def _resigned(path: str, body: bytes) -> bytes:
    """Every checkpoint re-signed with a key of the same name (the server's own claim)."""
    if not path.endswith(("/audit/head", "/audit/checkpoints")):
        return body
    doc = json.loads(body)
    notes = ([doc] if "outside_checkpoint" in doc else doc["items"])
    field = "outside_checkpoint" if "outside_checkpoint" in doc else "note"
    for item in notes:
        signed = item[field].encode()
        body_text = signed.decode().split("\n\n")[0] + "\n"
        origin = body_text.splitlines()[0]
        item[field] = note.sign_note(body_text, [_FORGER.setdefault(origin, note.generate_signer(origin))]).decode()
    return json.dumps(doc).encode()


_FORGER: dict[str, note.Signer] = {}


def _claims_a_short_log(path: str, body: bytes) -> bytes:
    """The head and the outside checkpoint hidden; the catalog still names every recording."""
    if not path.endswith("/audit/head"):
        return body
    doc = json.loads(body)
    doc["size"] = 5
    doc["outside_checkpoint"] = None
    return json.dumps(doc).encode()


def _bad_proof(path: str, body: bytes) -> bytes:
    if not path.endswith("/audit/consistency"):
        return body
    return tlogfmt.format_consistency_proof([merkle.hash_leaf(b"x")] * len(body.splitlines())).encode()


def _garbage(path: str, body: bytes) -> bytes:
    return b"\x00\x01 not what you asked for" if path.endswith(("/audit/range", "/audit/head")) else body


LIES = {"an altered entry": (_altered_entry, "stored hash of audit entry"),
        "a dropped entry": (_dropped_entry, "audit entry 5 is missing (found 6 next)"),
        "checkpoints signed by another key": (_resigned, "signature or format invalid"),
        "a log cut short": (_claims_a_short_log, "has no ingest entry in the audit log"),
        "a bad consistency proof": (_bad_proof, "the consistency proof from size"),
        "garbage": (_garbage, "not what its API documents")}


@pytest.mark.parametrize(("alter", "expected"), LIES.values(), ids=LIES.keys())
def test_a_lying_server_fails(station: Path, log_key: Path, auditor: Auditor, liar: Callable[[Alter], str],
                              alter: Alter, expected: str) -> None:
    url = liar(lambda _path, body: body)
    assert remote_verify(auditor, url, log_key, home=station).code == 0  # an honest proxy changes nothing
    ran = remote_verify(auditor, liar(alter), log_key, home=station)
    assert ran.code in (TAMPERED, IntegrityError.exit_code), ran.text
    assert "intact" not in ran.out and "Traceback" not in ran.text
    assert expected in ran.text, ran.text


def test_malformed_records_are_an_integrity_error() -> None:
    good = logcheck.pack_entries([logcheck.StoredEntry(0, b"{}", "x", None)])
    assert logcheck.unpack_entries(good) == [logcheck.StoredEntry(0, b"{}", "x", None)]
    for bad in (good[:-1], good + b"\x00", b"\xff" * 20 + good):
        with pytest.raises(IntegrityError, match="malformed"):
            logcheck.unpack_entries(bad)
    nodes = logcheck.pack_nodes([logcheck.StoredNode(2, 7, merkle.hash_leaf(b"x"))])
    assert logcheck.unpack_nodes(2, nodes) == [logcheck.StoredNode(2, 7, merkle.hash_leaf(b"x"))]
    with pytest.raises(IntegrityError, match="malformed"):
        logcheck.unpack_nodes(2, nodes[:-3])
