"""The audit log as a user meets it: what gets logged, sealing, proofs, tampering.

Every test drives the real ``vaultd`` command line (in-process through
``cli.main``; as a subprocess where exact bytes on stdout matter) against a
real vault, and reads the catalog with plain ``sqlite3`` as an outsider would.
Tampering is done the way an attacker with write access to the home would:
drop the append-only triggers, then edit rows or files directly.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import TEST_CONFIG, ingested_home
from vaultd import audit, auditcheck, merkle, note, tlogfmt
from vaultd.cli import main
from vaultd.errors import LogTamperedError, NotFoundError, UsageError
from vaultd.model import Actor
from vaultd.vault import open_vault

pytestmark = pytest.mark.slow  # every vault here holds a camera made with ffmpeg

ME = Actor.local()
APPEND_ONLY = ("audit_entries", "audit_nodes", "audit_checkpoints")
TAMPERED = LogTamperedError.exit_code


# -- running the command line ------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


Cli = Callable[..., Ran]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli(home, "audit", "list")``: run vaultd in-process, capture its output."""

    def run(home: Path, *args: object) -> Ran:
        capsys.readouterr()
        code = main(["--home", str(home), *map(str, args)])
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def vaultd_bytes(home: Path, *args: object) -> bytes:
    """Run vaultd as a subprocess and return its exact stdout bytes."""
    done = subprocess.run([sys.executable, "-m", "vaultd.cli", "--home", str(home), *map(str, args)],
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


# -- reading the catalog as an outsider ------------------------------------------------------


def db_path(home: Path) -> Path:
    return home / "catalog.sqlite"


@contextmanager
def sql(home: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db_path(home))
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


@dataclass(frozen=True)
class Row:
    idx: int
    entry: bytes
    type: str
    evidence_id: str | None

    @property
    def doc(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.entry)
        return value

    @property
    def rec(self) -> str:
        """The recording the entry is about (it must be about one)."""
        assert self.evidence_id is not None, self.idx
        return self.evidence_id


def entries(home: Path) -> list[Row]:
    with sql(home) as conn:
        return [Row(i, bytes(e), t, ev) for i, e, t, ev in conn.execute(
            "SELECT idx, entry, type, evidence_id FROM audit_entries ORDER BY idx")]


def of_type(home: Path, type_: str) -> list[Row]:
    return [r for r in entries(home) if r.type == type_]


def log_size(home: Path) -> int:
    with sql(home) as conn:
        return int(conn.execute("SELECT size FROM audit_head WHERE id = 1").fetchone()[0])


def latest_checkpoint(home: Path) -> tuple[int, bytes]:
    with sql(home) as conn:
        size, signed = conn.execute(
            "SELECT size, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
    return int(size), bytes(signed)


def catalog(home: Path) -> dict[str, tuple[str, int]]:
    """recording id -> (sha256, size_bytes), straight from the recordings table."""
    with sql(home) as conn:
        return {i: (s, n) for i, s, n in conn.execute("SELECT id, sha256, size_bytes FROM recordings")}


def log_verifier(home: Path, cli: Cli) -> note.Verifier:
    ran = cli(home, "keys", "show", "--log")
    assert ran.code == 0, ran.text
    return note.parse_verifier_key(ran.out.strip())


def open_checkpoint(signed: bytes, v: note.Verifier) -> tlogfmt.Checkpoint:
    text, _signers = note.open_note(signed, [v])
    return tlogfmt.parse_checkpoint_body(text)


# -- an attacker with write access to the home -----------------------------------------------


@contextmanager
def attacker(home: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection with the append-only triggers dropped."""
    with sql(home) as conn:
        triggers = [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'")]
        assert triggers, "the append-only triggers should exist before the attack"
        for name in triggers:
            conn.execute(f'DROP TRIGGER "{name}"')
        yield conn


def rebuild_nodes(conn: sqlite3.Connection) -> None:
    """Recompute every stored subtree hash from the (edited) entries."""
    tree = merkle.MemoryNodes()
    for (entry,) in conn.execute("SELECT entry FROM audit_entries ORDER BY idx").fetchall():
        tree.append(bytes(entry))
    conn.execute("DELETE FROM audit_nodes")
    conn.executemany("INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)",
                     [(lv, i, h) for (lv, i), h in tree.nodes.items()])


def edit_details(entry: bytes, **changes: Any) -> bytes:
    doc = json.loads(entry)
    doc["details"].update(changes)
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


# -- vaults ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _ingested_master(tmp_path_factory: pytest.TempPathFactory, _sim_camera_master: Path) -> Path:
    """A home made with ``vaultd init`` holding one camera ingested with ``vaultd ingest``."""
    root = tmp_path_factory.mktemp("audit-master")
    home = ingested_home(root, _sim_camera_master)
    return home


@pytest.fixture
def ingested(_ingested_master: Path, tmp_path: Path) -> Path:
    """This test's own copy of an initialised home with one camera ingested."""
    home = tmp_path / "ingested"
    shutil.copytree(_ingested_master, home)
    return home


def a_video(home: Path) -> str:
    """The id of one recording (the first by id: any will do, and this one is stable)."""
    return sorted(catalog(home))[0]


# -- what gets logged ----------------------------------------------------------------------------


def test_every_recording_has_an_ingest_entry_with_the_catalog_hash(ingested: Path) -> None:
    recs = catalog(ingested)
    ingests = of_type(ingested, "ingest")
    assert len(recs) >= 8
    assert sorted(r.rec for r in ingests) == sorted(recs)
    for r in ingests:
        ev = r.doc["evidence"]
        assert (ev["sha256"], ev["size_bytes"]) == recs[ev["id"]], r.idx
        assert r.doc["prev"] is None  # the first entry of its custody chain
        assert r.doc["actor"] == {"kind": "local", "name": ME.name, "via": "cli"}
    start, end = of_type(ingested, "ingest.session.start"), of_type(ingested, "ingest.session.end")
    assert len(start) == len(end) == 1
    assert start[0].doc["details"]["session"] == end[0].doc["details"]["session"]
    assert end[0].doc["details"]["status"] == "complete"
    assert start[0].idx < min(r.idx for r in ingests) <= max(r.idx for r in ingests) < end[0].idx
    skipped = of_type(ingested, "ingest.skipped")
    assert [r.doc["details"]["source_path"] for r in skipped] == ["vaultd-camera.json"]


def test_init_is_logged_once_with_the_log_key(tmp_path: Path, cli: Cli) -> None:
    home = tmp_path / "fresh"
    assert cli(home, "init").code == 0
    first = entries(home)
    assert first[0].type == "vault.init"
    assert first[0].doc["details"]["log_key"] == note.verifier_key_string(log_verifier(home, cli))
    again = cli(home, "init")
    assert again.code == 0 and "already initialised" in again.out
    assert of_type(home, "vault.init") == [first[0]]


def test_a_config_change_is_logged_once(ingested: Path, cli: Cli) -> None:
    before = of_type(ingested, "config.changed")
    assert cli(ingested, "recordings", "list").code == 0
    assert of_type(ingested, "config.changed") == before  # unchanged: nothing new

    new_text = TEST_CONFIG.replace("defer_retries = 1", "defer_retries = 2")
    assert new_text != TEST_CONFIG
    (ingested / "vaultd.toml").write_text(new_text, encoding="utf-8")
    assert cli(ingested, "recordings", "list").code == 0
    assert cli(ingested, "audit", "checkpoint").code == 0
    after = of_type(ingested, "config.changed")
    assert after[: len(before)] == before and len(after) == len(before) + 1
    details = after[-1].doc["details"]
    assert details["text"] == new_text
    assert details["sha256"] == hashlib.sha256(new_text.encode()).hexdigest()


def test_a_second_ingest_logs_duplicates_linked_to_the_first(ingested: Path, tmp_path: Path,
                                                            _sim_camera_master: Path, cli: Cli) -> None:
    cam = tmp_path / "camera"
    shutil.copytree(_sim_camera_master, cam, symlinks=True)
    ingest_of = {r.rec: r.idx for r in of_type(ingested, "ingest")}
    ran = cli(ingested, "ingest", cam)
    assert ran.code == 0, ran.text
    dups = of_type(ingested, "ingest.duplicate")
    assert sorted(r.rec for r in dups) == sorted(ingest_of)
    for r in dups:
        assert r.doc["prev"] == ingest_of[r.rec]
        assert r.doc["evidence"]["sha256"] == catalog(ingested)[r.rec][0]
    assert len(of_type(ingested, "ingest")) == len(ingest_of)  # nothing new
    assert len(of_type(ingested, "ingest.skipped")) == 2


def test_reads_are_logged(ingested: Path, tmp_path: Path, cli: Cli) -> None:
    rec = a_video(ingested)
    assert cli(ingested, "recordings", "list").code == 0
    [lst] = of_type(ingested, "recording.list")
    assert sorted(lst.doc["details"]["ids"]) == sorted(catalog(ingested))

    assert cli(ingested, "recordings", "show", rec).code == 0
    [show] = of_type(ingested, "recording.show")
    assert show.evidence_id == rec

    out = tmp_path / "copy.bin"
    assert cli(ingested, "recordings", "get", rec, "--out", out, "--reason", "case 17 review").code == 0
    [get] = of_type(ingested, "recording.get")
    assert get.evidence_id == rec
    assert get.doc["details"]["reason"] == "case 17 review"
    assert get.doc["evidence"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()

    refused = cli(ingested, "recordings", "get", rec, "--out", out, "--reason", "again")
    assert refused.code == UsageError.exit_code and "already exists" in refused.err
    [failed] = of_type(ingested, "recording.get.failed")
    assert failed.evidence_id == rec and "already exists" in failed.doc["details"]["problem"]


def test_scrub_results_are_logged(ingested: Path, cli: Cli) -> None:
    recs = catalog(ingested)
    bad = a_video(ingested)
    obj = open_vault(ingested)
    try:
        path = obj.store.object_path(recs[bad][0])
    finally:
        obj.close()
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    ran = cli(ingested, "scrub")
    assert ran.code != 0 and bad in ran.text
    results = of_type(ingested, "scrub.result")
    assert sorted(r.rec for r in results) == sorted(recs)
    assert {r.evidence_id for r in results if not r.doc["details"]["ok"]} == {bad}
    [run] = of_type(ingested, "scrub.run")
    assert run.doc["details"]["checked"] == len(recs)
    assert run.doc["details"]["failed"] == [bad]


def test_wipes_are_logged(home: Path, camera: Path, cli: Cli) -> None:
    ran = cli(home, "ingest", camera, "--wipe")
    assert ran.code == 0, ran.text
    recs = catalog(home)
    wipes = of_type(home, "camera.wipe")
    ingest_of = {r.rec: r.idx for r in of_type(home, "ingest")}
    assert sorted(r.rec for r in wipes) == sorted(recs)
    for r in wipes:
        assert r.doc["evidence"]["sha256"] == recs[r.rec][0]
        assert r.doc["prev"] == ingest_of[r.rec]
        assert r.doc["details"]["problem"] is None
        assert not (camera / r.doc["details"]["source_path"]).exists()


def test_reading_the_log_is_logged(ingested: Path, cli: Cli) -> None:
    before = log_size(ingested)
    ran = cli(ingested, "audit", "list", "--type", "ingest")
    assert ran.code == 0
    reads = of_type(ingested, "audit.read")
    assert len(reads) == 1 and reads[0].idx == before
    assert reads[0].doc["details"]["filter"]["type"] == "ingest"
    assert reads[0].doc["details"]["returned"] == len(catalog(ingested))
    shown = json.loads(cli(ingested, "audit", "list", "--json").out)
    assert shown[-1]["index"] == before and shown[-1]["type"] == "audit.read"


def test_custody_chain_of_one_recording(ingested: Path, tmp_path: Path, _sim_camera_master: Path,
                                        cli: Cli) -> None:
    rec = a_video(ingested)
    cam = tmp_path / "camera"
    shutil.copytree(_sim_camera_master, cam, symlinks=True)
    steps: list[tuple[str, list[object]]] = [
        ("recording.show", ["recordings", "show", rec]),
        ("recording.get", ["recordings", "get", rec, "--out", tmp_path / "o", "--reason", "court"]),
        ("scrub.result", ["scrub"]),
        ("ingest.duplicate", ["ingest", cam]),
        ("recording.receipt", ["recordings", "receipt", rec]),
    ]
    for _type, args in steps:
        ran = cli(ingested, *args)
        assert ran.code == 0, (args, ran.text)
    by_idx = {r.idx: r for r in entries(ingested)}
    last = max(r.idx for r in by_idx.values() if r.evidence_id == rec)
    chain = []
    at: int | None = last
    while at is not None:
        row = by_idx[at]
        assert row.evidence_id == rec and row.doc["evidence"]["id"] == rec
        chain.append(row.type)
        prev = row.doc["prev"]
        assert prev is None or prev < at
        at = prev
    assert chain[::-1] == ["ingest", *(t for t, _args in steps)]
    # every entry about the recording is on the chain: none skipped
    assert len(chain) == sum(1 for r in by_idx.values() if r.evidence_id == rec)


# -- sealing and numbering ---------------------------------------------------------------------------


def test_every_command_leaves_the_log_covered_by_a_checkpoint(ingested: Path, tmp_path: Path,
                                                              _sim_camera_master: Path, cli: Cli) -> None:
    rec = a_video(ingested)
    cam = tmp_path / "camera"
    shutil.copytree(_sim_camera_master, cam, symlinks=True)
    v = log_verifier(ingested, cli)
    commands: list[list[object]] = [
        ["ingest", cam],
        ["recordings", "list"],
        ["recordings", "show", rec],
        ["recordings", "get", rec, "--out", tmp_path / "o", "--reason", "x"],
        ["recordings", "get", rec, "--out", tmp_path / "o", "--reason", "x"],  # fails, still logged
        ["recordings", "receipt", rec],
        ["scrub"],
        ["audit", "list"],
        ["audit", "verify"],
        ["audit", "entry", "3"],
        ["audit", "checkpoint"],
        ["audit", "consistency", "2"],
        ["keys", "show", "--log"],
    ]
    for args in commands:
        size_before = log_size(ingested)
        cli(ingested, *args)
        n = log_size(ingested)
        cp_size, signed = latest_checkpoint(ingested)
        assert cp_size == n, args
        cp = open_checkpoint(signed, v)
        assert cp.size == n
        assert (ingested / audit.CHECKPOINT_FILE).read_bytes() == signed, args
        assert n >= size_before


def test_entries_are_numbered_without_gaps(ingested: Path, cli: Cli) -> None:
    cli(ingested, "recordings", "list")
    cli(ingested, "audit", "list")
    idx = [r.idx for r in entries(ingested)]
    assert idx == list(range(len(idx)))
    assert log_size(ingested) == len(idx)


def test_audit_entry_prints_exactly_the_stored_bytes(ingested: Path, cli: Cli) -> None:
    rec = a_video(ingested)
    [ingest_row] = [r for r in of_type(ingested, "ingest") if r.evidence_id == rec]
    printed = vaultd_bytes(ingested, "audit", "entry", ingest_row.idx)
    assert printed == ingest_row.entry

    receipt = vaultd_bytes(ingested, "recordings", "receipt", rec)
    index, proof, signed, _extra = tlogfmt.parse_tlog_proof(receipt)
    assert index == ingest_row.idx
    cp = open_checkpoint(signed, log_verifier(ingested, cli))
    assert merkle.verify_inclusion(merkle.hash_leaf(printed), index, cp.size, proof, cp.root)
    assert not merkle.verify_inclusion(merkle.hash_leaf(printed + b" "), index, cp.size, proof, cp.root)

    missing = cli(ingested, "audit", "entry", log_size(ingested) + 5)
    assert missing.code == NotFoundError.exit_code and "no audit entry" in missing.err


# -- the database refuses edits -----------------------------------------------------------------------


@pytest.mark.parametrize("table", APPEND_ONLY)
@pytest.mark.parametrize("statement", ["UPDATE {t} SET idx = idx + 1000 WHERE rowid IN "
                                       "(SELECT rowid FROM {t} LIMIT 1)", "DELETE FROM {t}"])
def test_triggers_refuse_update_and_delete(ingested: Path, table: str, statement: str) -> None:
    if table == "audit_checkpoints":
        statement = statement.replace("idx = idx", "size = size")
    with sql(ingested) as conn:
        count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        assert count > 0
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(statement.format(t=table))
        conn.rollback()
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == count


# -- tampering is caught -----------------------------------------------------------------------------


def verify(home: Path, cli: Cli, *extra: object) -> Ran:
    return cli(home, "audit", "verify", *extra)


def assert_caught(ran: Ran, *words: str) -> None:
    assert ran.code == TAMPERED, ran.text
    assert "intact" not in ran.out
    for w in words:
        assert w in ran.text, (w, ran.text)


def test_an_untouched_log_verifies(ingested: Path, cli: Cli) -> None:
    ran = verify(ingested, cli)
    assert ran.code == 0, ran.text
    assert "intact" in ran.out
    assert "FAIL" not in ran.out


def test_verify_json_is_one_json_document(ingested: Path, cli: Cli) -> None:
    ran = verify(ingested, cli, "--json")
    assert ran.code == 0, ran.text
    as_json = json.loads(ran.out)  # what `| jq` would read
    assert as_json["ok"] is True and as_json["problems"] == []
    assert as_json["recordings"] == len(catalog(ingested))
    assert as_json["entries"] == log_size(ingested) - 1  # the verify itself is logged after

    with attacker(ingested) as conn:
        conn.execute("DELETE FROM recordings WHERE id = ?", (a_video(ingested),))
    ran = verify(ingested, cli, "--json")
    assert ran.code == TAMPERED
    bad = json.loads(ran.out)
    assert bad["ok"] is False and bad["problems"]


def test_an_edited_entry_is_caught(ingested: Path, cli: Cli) -> None:
    [skip] = of_type(ingested, "ingest.skipped")
    with attacker(ingested) as conn:
        conn.execute("UPDATE audit_entries SET entry = ? WHERE idx = ?",
                     (edit_details(skip.entry, reason="nothing to see"), skip.idx))
    assert_caught(verify(ingested, cli), f"audit entry {skip.idx}")


def test_an_edited_entry_with_recomputed_nodes_is_caught_by_the_signatures(ingested: Path,
                                                                          cli: Cli) -> None:
    [skip] = of_type(ingested, "ingest.skipped")
    with attacker(ingested) as conn:
        conn.execute("UPDATE audit_entries SET entry = ? WHERE idx = ?",
                     (edit_details(skip.entry, reason="nothing to see"), skip.idx))
        rebuild_nodes(conn)
    with sql(ingested) as conn:
        first_cp = conn.execute("SELECT min(size) FROM audit_checkpoints WHERE size > ?",
                                (skip.idx,)).fetchone()[0]
    assert_caught(verify(ingested, cli), f"checkpoint at size {first_cp}", "does not match")


def test_a_deleted_entry_is_caught(ingested: Path, cli: Cli) -> None:
    victim = of_type(ingested, "ingest")[2]
    with attacker(ingested) as conn:
        conn.execute("DELETE FROM audit_entries WHERE idx = ?", (victim.idx,))
    assert_caught(verify(ingested, cli), f"audit entry {victim.idx} is missing")


def test_reordered_entries_are_caught(ingested: Path, cli: Cli) -> None:
    a, b = of_type(ingested, "ingest")[1:3]
    with attacker(ingested) as conn:
        conn.execute("UPDATE audit_entries SET entry = ? WHERE idx = ?", (b.entry, a.idx))
        conn.execute("UPDATE audit_entries SET entry = ? WHERE idx = ?", (a.entry, b.idx))
    assert_caught(verify(ingested, cli), f"audit entry {a.idx}")


def test_reordered_rows_with_recomputed_nodes_are_caught(ingested: Path, cli: Cli) -> None:
    """Whole rows swapped (bytes and indexed columns alike), nodes rebuilt to match."""
    a, b = of_type(ingested, "ingest")[1:3]
    with attacker(ingested) as conn:
        for src, dst in ((b, a), (a, b)):
            conn.execute("UPDATE audit_entries SET entry = ?, evidence_id = ? WHERE idx = ?",
                         (src.entry, src.evidence_id, dst.idx))
        rebuild_nodes(conn)
    assert_caught(verify(ingested, cli), "checkpoint at size", "does not match")


def _copy_db(home: Path, dest: Path) -> None:
    dest.mkdir()
    for suffix in ("", "-wal", "-shm"):
        src = home / f"catalog.sqlite{suffix}"
        if src.exists():
            shutil.copy2(src, dest / src.name)


def _restore_db(saved: Path, home: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (home / f"catalog.sqlite{suffix}").unlink(missing_ok=True)
    for f in saved.iterdir():
        shutil.copy2(f, home / f.name)


def _do_more_work(home: Path, tmp_path: Path, cli: Cli) -> None:
    rec = a_video(home)
    assert cli(home, "recordings", "get", rec, "--out", tmp_path / "leak", "--reason", "x").code == 0
    assert cli(home, "recordings", "list").code == 0


def test_a_database_replaced_with_an_older_copy_is_caught(ingested: Path, tmp_path: Path,
                                                          cli: Cli) -> None:
    saved = tmp_path / "old-db"
    _copy_db(ingested, saved)
    old_size = log_size(ingested)
    _do_more_work(ingested, tmp_path, cli)
    _restore_db(saved, ingested)
    assert log_size(ingested) == old_size
    assert_caught(verify(ingested, cli), "outside the database", "older copy")


def test_a_rollback_stays_caught_after_later_commands(ingested: Path, tmp_path: Path,
                                                      cli: Cli) -> None:
    """Neither a later command nor the first verify may launder a rolled-back database.

    Sealing must not replace the checkpoint kept outside the database with one
    that is not an extension of it.
    """
    saved = tmp_path / "old-db"
    _copy_db(ingested, saved)
    _do_more_work(ingested, tmp_path, cli)
    _restore_db(saved, ingested)
    assert_caught(verify(ingested, cli), "outside the database")
    assert_caught(verify(ingested, cli), "outside the database")  # still, the second time
    assert cli(ingested, "recordings", "list").code in (0, TAMPERED)
    assert_caught(verify(ingested, cli), "outside the database")


def test_a_changed_recording_hash_is_caught(ingested: Path, cli: Cli) -> None:
    rec = a_video(ingested)
    with attacker(ingested) as conn:
        conn.execute("UPDATE recordings SET sha256 = ? WHERE id = ?", ("0" * 64, rec))
    assert_caught(verify(ingested, cli), f"recording {rec}", "differs")


def test_a_deleted_recording_is_caught(ingested: Path, cli: Cli) -> None:
    rec = a_video(ingested)
    with attacker(ingested) as conn:
        conn.execute("DELETE FROM sightings WHERE recording_id = ?", (rec,))
        conn.execute("DELETE FROM recordings WHERE id = ?", (rec,))
    assert_caught(verify(ingested, cli), f"recording {rec}", "missing from the catalog")


def test_a_checkpoint_signed_by_another_key_is_caught(ingested: Path, cli: Cli) -> None:
    size, signed = latest_checkpoint(ingested)
    real = open_checkpoint(signed, log_verifier(ingested, cli))
    forger = note.generate_signer(real.origin)  # same name, another key
    forged = note.sign_note(tlogfmt.checkpoint_body(real), [forger])
    assert forged != signed
    with attacker(ingested) as conn:
        conn.execute("UPDATE audit_checkpoints SET note = ? WHERE size = ?", (forged, size))
    assert_caught(verify(ingested, cli), f"checkpoint at size {size}", "signature")


def test_a_held_checkpoint_catches_a_complete_rewrite(ingested: Path, tmp_path: Path,
                                                      cli: Cli) -> None:
    held = tmp_path / "held-checkpoint.txt"
    assert cli(ingested, "audit", "checkpoint", "--out", held).code == 0
    assert cli(ingested, "recordings", "list").code == 0

    # The attacker edits history, rebuilds every hash, throws the checkpoints
    # away and signs new ones with the vault's own key (it is in the home),
    # which also replaces the checkpoint file outside the database.
    [skip] = of_type(ingested, "ingest.skipped")
    with attacker(ingested) as conn:
        conn.execute("UPDATE audit_entries SET entry = ? WHERE idx = ?",
                     (edit_details(skip.entry, reason="nothing to see"), skip.idx))
        rebuild_nodes(conn)
        conn.execute("DELETE FROM audit_checkpoints")
    (ingested / audit.CHECKPOINT_FILE).unlink()  # seal refuses to sign over it, so the attacker removes it
    vault = open_vault(ingested)
    try:
        assert audit.seal(vault) is not None
        assert auditcheck.verify(vault).ok  # everything the vault holds agrees now
    finally:
        vault.close()

    assert verify(ingested, cli).code == 0  # so the vault alone cannot tell
    assert_caught(verify(ingested, cli, "--since", held), "--since", "rewritten")


def test_a_held_checkpoint_of_another_log_is_refused(ingested: Path, tmp_path: Path, cli: Cli) -> None:
    other = note.generate_signer("vaultd/elsewhere")
    forged = tmp_path / "other.txt"
    forged.write_bytes(note.sign_note(tlogfmt.checkpoint_body(
        tlogfmt.Checkpoint("vaultd/elsewhere", 3, merkle.hash_leaf(b"x"))), [other]))
    assert_caught(verify(ingested, cli, "--since", forged), "--since", "signature")


# -- consistency proofs --------------------------------------------------------------------------------


def test_consistency_between_saved_checkpoints(ingested: Path, tmp_path: Path, cli: Cli) -> None:
    v = log_verifier(ingested, cli)
    f1, f2 = tmp_path / "one.txt", tmp_path / "two.txt"
    assert cli(ingested, "audit", "checkpoint", "--out", f1).code == 0
    _do_more_work(ingested, tmp_path, cli)
    assert cli(ingested, "audit", "checkpoint", "--out", f2).code == 0
    one, two = open_checkpoint(f1.read_bytes(), v), open_checkpoint(f2.read_bytes(), v)
    assert one.size < two.size

    ran = cli(ingested, "audit", "consistency", one.size, two.size)
    assert ran.code == 0, ran.text
    proof = tlogfmt.parse_consistency_proof(ran.out)
    assert merkle.verify_consistency(one.size, two.size, one.root, two.root, proof)
    assert not merkle.verify_consistency(one.size, two.size, merkle.hash_leaf(b"x"), two.root, proof)

    # NEW defaults to the current size
    n = log_size(ingested)
    ran = cli(ingested, "audit", "consistency", one.size)
    cp = open_checkpoint(latest_checkpoint(ingested)[1], v)
    assert cp.size == n
    assert merkle.verify_consistency(one.size, n, one.root, cp.root,
                                     tlogfmt.parse_consistency_proof(ran.out))


@pytest.mark.parametrize("sizes", [(0, 5), (5, 3), (-1, 4), (3, 10**9)])
def test_consistency_with_bad_sizes_is_a_clear_error(ingested: Path, cli: Cli,
                                                     sizes: tuple[int, int]) -> None:
    ran = cli(ingested, "audit", "consistency", *sizes)
    assert ran.code == UsageError.exit_code
    assert "OLD_SIZE" in ran.err and "log size" in ran.err
    assert ran.out == ""


# -- listing with filters ------------------------------------------------------------------------------


def listed(home: Path, cli: Cli, *args: object) -> list[dict[str, Any]]:
    ran = cli(home, "audit", "list", "--json", *args)
    assert ran.code == 0, ran.text
    value: list[dict[str, Any]] = json.loads(ran.out)
    return value


def test_audit_list_filters(ingested: Path, cli: Cli) -> None:
    rec = a_video(ingested)
    cli(ingested, "recordings", "show", rec)
    stored = entries(ingested)

    about = listed(ingested, cli, "--recording", rec)
    assert [e["index"] for e in about] == [r.idx for r in stored if r.evidence_id == rec]
    assert [e["type"] for e in about] == ["ingest", "recording.show"]

    sub = listed(ingested, cli, "--type", "ingest.*")
    assert {e["type"] for e in sub} == {"ingest.session.start", "ingest.skipped", "ingest.session.end"}
    exact = listed(ingested, cli, "--type", "ingest")
    assert len(exact) == len(catalog(ingested)) and {e["type"] for e in exact} == {"ingest"}

    mine = listed(ingested, cli, "--actor", ME.name)
    assert mine and all(e["actor"]["name"] == ME.name for e in mine)
    assert len(listed(ingested, cli, "--actor", f"local:{ME.name}")) == len(mine) + 1  # +1: the read before
    assert listed(ingested, cli, "--actor", "nobody-at-all") == []

    both = listed(ingested, cli, "--recording", rec, "--type", "recording.show")
    assert [e["type"] for e in both] == ["recording.show"]
    for e in listed(ingested, cli, "--limit", "3"):
        # --json gives the entries themselves, plus their index
        assert json.loads(vaultd_bytes(ingested, "audit", "entry", e["index"])) == {
            k: v for k, v in e.items() if k != "index"}
