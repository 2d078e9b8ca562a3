"""``vaultd verify``: check an export package on any machine, without a vault.

Checks, each reported on its own: the bag (structure, every file accounted
for, Payload-Oxum, every tag and payload hash); the CMS signature over
``tagmanifest-sha256.txt`` and its certificate path to the CA the caller pins;
the RFC 3161 timestamp over the signature; the custody chain (every entry's
inclusion proof against the checkpoint, the checkpoint's signature by the log
key the caller pins, the consistency proof from the previous export's
checkpoint, and that each original's hash is the one the log recorded).

Anchors carried inside the package (its CA copy, the log key, the TSA's
certificate) are never trusted by themselves: without pins the best result is
``intact`` ("intact, signer not pinned"), never ``pass``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaultd import bag, merkle, note, signing, tlogfmt
from vaultd.errors import IntegrityError, UsageError
from vaultd.i18n import _

SIGNATURE = "signature/tagmanifest-sha256.txt.p7s"
TIMESTAMP = "signature/tagmanifest-sha256.txt.p7s.tsr"
CUSTODY = "data/custody"
PASS, INTACT, FAIL = "pass", "intact", "fail"


@dataclass
class Report:
    """One line per check, ``ok`` True/False, or None for "holds but not pinned"."""

    checks: list[tuple[str, bool | None, str]] = field(default_factory=list)
    export_id: str | None = None

    def add(self, name: str, ok: bool | None, detail: str) -> None:
        self.checks.append((name, ok, detail))

    @property
    def failures(self) -> list[str]:
        return [f"{n}: {d}" for n, ok, d in self.checks if ok is False]

    @property
    def status(self) -> str:
        if self.failures:
            return FAIL
        return INTACT if any(ok is None for _n, ok, _d in self.checks) else PASS

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "export_id": self.export_id,
                "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in self.checks]}


@dataclass(frozen=True)
class Pins:
    ca_pem: bytes | None = None
    log_key: str | None = None
    tsa_ca_pem: bytes | None = None


def load_log_key(text: str) -> str:
    """``--log-key``: the key string itself, or a file holding it."""
    p = Path(text)
    if "+" not in text or p.is_file():
        try:
            return p.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(_("cannot read the log key %s: %s") % (text, exc.strerror)) from None
    return text.strip()


def verify_package(root: Path, pins: Pins, *, all_algorithms: bool = False,
                   progress: bag.Progress | None = None) -> Report:
    rep = Report()
    if not root.is_dir():
        raise UsageError(_("%s is not a folder") % root,
                         hint=_("give the export package's folder (the one with bagit.txt)"))
    b = bag.read_bag(root)
    rep.export_id = b.value("External-Identifier")
    bag.check_hashes(root, b, bag.ALGORITHMS if all_algorithms else ("sha256",), progress)
    for problem in b.problems:
        rep.add("bag", False, problem)
    if not b.problems:
        rep.add("bag", True, _("%d payload files, %d bytes, every hash matches, every file accounted for")
                % (b.payload_files, b.payload_bytes))
    sig = _check_signature(root, pins, rep)
    if sig is not None:
        _check_timestamp(root, sig, pins, rep)
    _check_custody(root, b, pins, rep)
    return rep


def _read(root: Path, rel: str) -> bytes | None:
    try:
        return (root / rel).read_bytes()
    except OSError:
        return None


def _check_signature(root: Path, pins: Pins, rep: Report) -> bytes | None:
    sig, content = _read(root, SIGNATURE), _read(root, "tagmanifest-sha256.txt")
    if sig is None or content is None:
        rep.add("signature", False, _("%s is missing") % (SIGNATURE if sig is None else "tagmanifest-sha256.txt"))
        return None
    try:
        check, _c = signing.check_cms(sig, content)
    except IntegrityError as exc:
        rep.add("signature", False, exc.message)
        return None
    if pins.ca_pem is None:
        rep.add("signature", None, _("intact, signer not pinned: signed by %s; pass --ca with the agency's CA "
                                     "certificate to check who signed") % check.signer)
        return sig
    try:
        anchor = signing.check_chain(check.signer_cert, check.certs, signing.load_pem_certs(pins.ca_pem),
                                     check.signing_time)
    except IntegrityError as exc:
        rep.add("signature", False, exc.message)
        return sig
    rep.add("signature", True, _("signed by %s, certified by the pinned CA %s, at %s")
            % (check.signer, anchor.subject.rfc4514_string(),
               check.signing_time.isoformat() if check.signing_time else "?"))
    return sig


def _check_timestamp(root: Path, sig: bytes, pins: Pins, rep: Report) -> None:
    tsr = _read(root, TIMESTAMP)
    if tsr is None:
        rep.add("timestamp", True, _("none (no timestamp authority was configured)"))
        return
    try:
        ts = signing.check_timestamp(tsr, sig)
    except IntegrityError as exc:
        rep.add("timestamp", False, exc.message)
        return
    if pins.tsa_ca_pem is None:
        rep.add("timestamp", None, _("intact, TSA not pinned: %s by %s; pass --tsa-ca to check the TSA")
                % (ts.time.isoformat(), ts.tsa))
        return
    try:
        signing.check_chain(ts.check.signer_cert, ts.check.certs, signing.load_pem_certs(pins.tsa_ca_pem), ts.time)
    except IntegrityError as exc:
        rep.add("timestamp", False, exc.message)
        return
    rep.add("timestamp", True, _("%s, by %s (pinned TSA)") % (ts.time.isoformat(), ts.tsa))


# -- the custody chain -------------------------------------------------------------------------

def _log_verifier(root: Path, pins: Pins, rep: Report) -> tuple[note.Verifier, bool] | None:
    carried = _read(root, f"{CUSTODY}/log-key.txt")
    text = pins.log_key or (carried.decode("utf-8", "replace").strip() if carried else None)
    if text is None:
        rep.add("custody", False, _("%s/log-key.txt is missing and no --log-key was given") % CUSTODY)
        return None
    try:
        return note.parse_verifier_key(text), pins.log_key is not None
    except UsageError as exc:
        rep.add("custody", False, _("the log key is not a verifier key: %s") % exc.message)
        return None


def _open_checkpoint(data: bytes, v: note.Verifier, what: str) -> tlogfmt.Checkpoint:
    try:
        text, _signers = note.open_note(data, [v])
        return tlogfmt.parse_checkpoint_body(text)
    except (IntegrityError, UsageError) as exc:
        raise IntegrityError(_("%s is not signed by the log key %s: %s") % (what, v.name, exc.message)) from None


def _check_custody(root: Path, b: bag.BagReport, pins: Pins, rep: Report) -> None:
    found = _log_verifier(root, pins, rep)
    signed, index_raw = _read(root, f"{CUSTODY}/checkpoint.txt"), _read(root, f"{CUSTODY}/index.json")
    if found is None:
        return
    if signed is None or index_raw is None:
        rep.add("custody", False, _("the custody chain is incomplete (checkpoint.txt or index.json missing)"))
        return
    verifier, pinned = found
    problems: list[str] = []
    try:
        cp = _open_checkpoint(signed, verifier, "checkpoint.txt")
        index = json.loads(index_raw)
        entries = _check_proofs(root, signed, cp, verifier, problems)
        _check_links(root, b, index, entries, rep.export_id, problems)
        _check_consistency(root, cp, verifier, problems)
    except IntegrityError as exc:
        problems.append(exc.message)
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(_("custody/index.json is malformed: %s") % exc)
    for p in problems:
        rep.add("custody", False, p)
    if problems:
        return
    summary = _("%d log entries proven against the checkpoint of size %d") % (len(entries), cp.size)
    if pinned:
        rep.add("custody", True, summary + _(", signed by the pinned log key %s") % verifier.name)
    else:
        rep.add("custody", None, summary + _("; intact, log key not pinned: pass --log-key to check it is "
                                             "the vault's log (%s)") % verifier.name)


def _check_proofs(root: Path, signed: bytes, cp: tlogfmt.Checkpoint, v: note.Verifier,
                  problems: list[str]) -> dict[int, dict[str, Any]]:
    entries: dict[int, dict[str, Any]] = {}
    entry_dir, proof_dir = root / CUSTODY / "entries", root / CUSTODY / "proofs"
    names = sorted(p.name for p in entry_dir.iterdir()) if entry_dir.is_dir() else []
    proofs = {p.name for p in proof_dir.iterdir()} if proof_dir.is_dir() else set()
    for name in names:
        stem = name.removesuffix(".json")
        if not stem.isdigit():
            problems.append(_("custody entry %s is not named by its index") % name)
            continue
        idx = int(stem)
        data = (entry_dir / name).read_bytes()
        proof_name = f"{stem}.tlog-proof"
        if proof_name not in proofs:
            problems.append(_("entry %d has no inclusion proof") % idx)
            continue
        proofs.discard(proof_name)
        try:
            p_idx, hashes, p_cp, _extra = tlogfmt.parse_tlog_proof((proof_dir / proof_name).read_bytes())
        except UsageError as exc:
            problems.append(_("proof of entry %d: %s") % (idx, exc.message))
            continue
        target = cp
        if p_cp != signed:
            try:
                target = _open_checkpoint(p_cp, v, _("the checkpoint in the proof of entry %d") % idx)
            except IntegrityError as exc:
                problems.append(exc.message + _(" (a proof from another log?)"))
                continue
        if p_idx != idx or not merkle.verify_inclusion(merkle.hash_leaf(data), idx, target.size, hashes, target.root):
            problems.append(_("entry %d is not in the log at that index: its inclusion proof fails "
                              "(the entry or the proof was changed)") % idx)
            continue
        entries[idx] = json.loads(data)
    for extra in sorted(proofs):
        problems.append(_("proof %s has no entry") % extra)
    return entries


def _check_links(root: Path, b: bag.BagReport, index: dict[str, Any], entries: dict[int, dict[str, Any]],
                 export_id: str | None, problems: list[str]) -> None:
    """The originals are the bytes the log recorded; the export's own entry is there."""
    manifest = b.manifests.get("sha256", {})
    for rid, chain in index["recordings"].items():
        missing = [i for i in chain if i not in entries]
        if missing:
            problems.append(_("recording %s: entries %s of its chain are missing") % (rid, missing))
            continue
        meta_raw = _read(root, f"data/recordings/{rid}/metadata.json")
        if meta_raw is None:
            problems.append(_("recording %s: metadata.json is missing") % rid)
            continue
        meta = json.loads(meta_raw)
        got = manifest.get(f"data/recordings/{rid}/{meta['package_file']}")
        logged = {e["evidence"]["sha256"] for i in chain if (e := entries[i]).get("evidence")}
        if not chain or logged != {meta["sha256"]} or got != meta["sha256"]:
            problems.append(_("recording %s: the original's SHA-256 in the package (%s) is not the one the "
                              "audit log recorded (%s)") % (rid, got, ", ".join(sorted(logged)) or "-"))
        if not any(entries[i]["type"] == "ingest" for i in chain):
            problems.append(_("recording %s: its ingest entry is not in the custody chain") % rid)
    _check_own_entry(root, index, entries, export_id, problems)


def _check_own_entry(root: Path, index: dict[str, Any], entries: dict[int, dict[str, Any]],
                     export_id: str | None, problems: list[str]) -> None:
    """The export's own entry is in the chain and names exactly the recordings on board."""
    own = [entries.get(i) for i in index["export_entries"]]
    created = next((e for e in own if e and e["type"] == "export.created"
                    and e["details"].get("export") == export_id), None)
    if created is None:
        problems.append(_("the export's own audit entry (export.created %s) is not in the custody chain") % export_id)
        return
    logged = {r["id"]: r["sha256"] for r in created["details"].get("recordings", [])}
    folder = root / "data" / "recordings"
    on_board = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    for rid in sorted(on_board - set(index["recordings"])):
        problems.append(_("recording folder %s is not in the custody index") % rid)
    for rid in sorted(set(index["recordings"]) - set(logged)):
        problems.append(_("recording %s is not among those the export's audit entry names") % rid)


def _check_consistency(root: Path, cp: tlogfmt.Checkpoint, v: note.Verifier, problems: list[str]) -> None:
    old_raw = _read(root, f"{CUSTODY}/previous-checkpoint.txt")
    if old_raw is None:
        return
    old = _open_checkpoint(old_raw, v, "previous-checkpoint.txt")
    try:
        proof = tlogfmt.parse_consistency_proof((_read(root, f"{CUSTODY}/consistency.txt") or b"").decode("ascii"))
    except (UsageError, UnicodeDecodeError):
        problems.append(_("consistency.txt is not a consistency proof"))
        return
    if not merkle.verify_consistency(old.size, cp.size, old.root, cp.root, proof):
        problems.append(_("the log at this export does not extend the previous export's checkpoint "
                          "(size %d): the log was rewritten") % old.size)
