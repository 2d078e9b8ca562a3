"""Audit log cost: appends against plain SQLite inserts, proofs and verification at scale.

  single     one event per transaction: vaultd.audit.append on a fresh vault's
             engine, against inserting the same rows (same bytes) into a plain
             table, one transaction each, on an engine from
             vaultd.catalog.db.create (the same WAL + synchronous=FULL)
  batched    1000 events per transaction, against plain batched inserts
  proofs     inclusion proof generation, median over 1000 random indices, at
             N/10 and N entries (N = --entries): the proof alone on an open
             connection, and a whole receipt (audit.inclusion_receipt)
  verify     auditcheck.verify of the whole N-entry log

The N-entry log is built with batched appends (10k per transaction), and how
long that took is reported too. Targets: single appends >= 0.5x the plain
insert rate; an inclusion proof at N < 10 ms; verify of N < 60 s.

    .venv/bin/python benchmarks/audit.py --quick
    .venv/bin/python benchmarks/audit.py                  # N = 1,000,000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import machine, note, table

BATCH = 1000
BUILD_BATCH = 10_000
PROOF_SAMPLES = 1000
TARGET_SINGLE_RATIO = 0.5
TARGET_PROOF_MS = 10.0
TARGET_VERIFY_S = 60.0

PLAIN_DDL = ("CREATE TABLE plain_entries (idx BIGINT NOT NULL PRIMARY KEY, entry BLOB NOT NULL, "
             "type VARCHAR(48) NOT NULL, actor VARCHAR(160) NOT NULL, evidence_id VARCHAR(16), "
             "at DATETIME NOT NULL)")
PLAIN_INSERT = "INSERT INTO plain_entries VALUES (?, ?, ?, ?, ?, ?)"
ROWS_SQL = "SELECT idx, entry, type, actor, evidence_id, at FROM audit_entries ORDER BY idx"

Row = tuple[Any, ...]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", type=int, help="size N of the big log (1,000,000; --quick: 10,000)")
    p.add_argument("--single", type=int, help="events appended one per transaction (2000; --quick: 300)")
    p.add_argument("--batched", type=int, help="events appended 1000 per transaction (20,000; --quick: 5000)")
    p.add_argument("--repeat", type=int, help="runs of the single and batched contenders; median (3; --quick: 1)")
    p.add_argument("--quick", action="store_true", help="smoke run: a 10k-entry log, few appends")
    p.add_argument("--work", type=Path, help="work folder (default: a new one under /var/tmp)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    args = p.parse_args(argv)
    quick = {"entries": 10_000, "single": 300, "batched": 5000, "repeat": 1}
    full = {"entries": 1_000_000, "single": 2000, "batched": 20_000, "repeat": 3}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.entries < 10 or args.single < 1 or args.batched < 1 or args.repeat < 1:
        p.error("--entries must be at least 10; --single, --batched and --repeat at least 1")
    return args


# -- events ---------------------------------------------------------------------------------


TYPES = ("recording.show", "recording.get", "scrub.result", "recording.receipt")


def events(count: int, start: int = 0) -> Iterator[Any]:
    """Events about recordings, eight in a row about each, so custody links are looked up.

    No ``ingest`` entries: those need a catalogued recording for the log to verify.
    """
    from vaultd.audit import Event, EvidenceRef
    from vaultd.model import Actor

    actor = Actor("local", "bench", "cli")
    for i in range(start, start + count):
        rec = f"r{i // 8:012d}"
        sha = hashlib.sha256(rec.encode()).hexdigest()
        details = {
            "session": f"{i // 1000:032x}", "device_serial": "3201001",
            "source_path": f"DCIM/20261121/3201001_012345_20261121083000_{i % 10000:04d}.MP4",
            "reason": "case 2026-017 review", "out": f"/srv/exports/{rec}.MP4", "problem": None,
        }
        yield Event(TYPES[i % len(TYPES)], actor, details, EvidenceRef(rec, sha, 10_000_000 + i % 1000))


# -- vaults and plain databases ----------------------------------------------------------------


def fresh_vault(home: Path) -> Any:
    from vaultd.vault import init_vault, open_vault

    init_vault(home)
    return open_vault(home)


def plain_engine(path: Path) -> Any:
    from vaultd.catalog import db

    engine = db.create(db.sqlite_url(path))
    with engine.begin() as conn:
        conn.exec_driver_sql(PLAIN_DDL)
    return engine


def read_rows(vault: Any) -> list[Row]:
    with vault.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(ROWS_SQL)]


def append_all(vault: Any, count: int, per_txn: int, start: int = 0) -> float:
    from vaultd import audit

    evs = list(events(count, start))
    begin = time.perf_counter()
    for lo in range(0, count, per_txn):
        with vault.engine.begin() as conn:
            for ev in evs[lo:lo + per_txn]:
                audit.append(conn, ev)
    return time.perf_counter() - begin


def insert_all(engine: Any, rows: Sequence[Row], per_txn: int) -> float:
    begin = time.perf_counter()
    if per_txn == 1:
        for row in rows:
            with engine.begin() as conn:
                conn.exec_driver_sql(PLAIN_INSERT, row)
    else:
        for lo in range(0, len(rows), per_txn):
            with engine.begin() as conn:
                conn.exec_driver_sql(PLAIN_INSERT, list(rows[lo:lo + per_txn]))
    return time.perf_counter() - begin


# -- results ---------------------------------------------------------------------------------------


@dataclass
class Rate:
    phase: str  # "single" | "batched"
    contender: str  # "audit.append" | "plain insert"
    entries: int
    per_txn: int
    seconds: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def per_s(self) -> float:
        return self.entries / self.median_s

    def as_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "contender": self.contender, "entries": self.entries,
                "per_txn": self.per_txn, "seconds": self.seconds, "median_s": self.median_s,
                "per_s": self.per_s}


def measure_writes(work: Path, phase: str, count: int, per_txn: int, repeat: int) -> list[Rate]:
    audit_rate = Rate(phase, "audit.append", count, per_txn)
    plain_rate = Rate(phase, "plain insert", count, per_txn)
    rows: list[Row] = []
    for r in range(repeat):
        order = ("audit", "plain") if r % 2 == 0 else ("plain", "audit")
        for who in order:
            run_dir = work / f"{phase}-{r}-{who}"
            run_dir.mkdir(parents=True)
            if who == "audit":
                vault = fresh_vault(run_dir / "home")
                try:
                    seconds = append_all(vault, count, per_txn)
                    if not rows:
                        rows = read_rows(vault)
                        assert len(rows) == count, len(rows)
                finally:
                    vault.close()
                audit_rate.seconds.append(seconds)
            else:
                if not rows:  # the same bytes the audit log wrote: make them first
                    vault = fresh_vault(work / f"{phase}-rows" / "home")
                    try:
                        append_all(vault, count, BUILD_BATCH)
                        rows = read_rows(vault)
                    finally:
                        vault.close()
                engine = plain_engine(run_dir / "plain.sqlite")
                try:
                    seconds = insert_all(engine, rows, per_txn)
                finally:
                    engine.dispose()
                plain_rate.seconds.append(seconds)
            note(f"  {phase:<7} run {r + 1}/{repeat} {who:<5} {count} entries in {seconds:7.2f} s "
                 f"({count / seconds:9.0f}/s)")
            shutil.rmtree(run_dir, ignore_errors=True)
    return [audit_rate, plain_rate]


@dataclass
class ProofTimes:
    size: int
    proof_ms: list[float]
    receipt_ms: list[float]

    def as_dict(self) -> dict[str, Any]:
        def summary(xs: list[float]) -> dict[str, float]:
            s = sorted(xs)
            return {"median_ms": statistics.median(s), "p99_ms": s[int(len(s) * 0.99) - 1] if len(s) >= 100
                    else s[-1], "max_ms": s[-1]}

        return {"size": self.size, "samples": len(self.proof_ms), "proof": summary(self.proof_ms),
                "receipt": summary(self.receipt_ms)}


def measure_proofs(vault: Any, size: int, rng: random.Random) -> ProofTimes:
    from vaultd import audit, merkle

    signed = audit.current_checkpoint(vault)
    cp = audit.checkpoint_of(vault, signed)
    assert cp.size == size, (cp.size, size)
    indices = [rng.randrange(size) for _ in range(PROOF_SAMPLES)]
    proof_ms, receipt_ms = [], []
    with vault.engine.connect() as conn:
        nodes = audit.SqlNodes(conn)
        leaves = {}
        for i in indices[:20]:
            leaves[i] = merkle.hash_leaf(audit.entry_bytes(conn, i))
        for i in indices:
            t0 = time.perf_counter()
            proof = merkle.inclusion_proof(i, size, nodes)
            proof_ms.append((time.perf_counter() - t0) * 1000)
            if i in leaves:
                assert merkle.verify_inclusion(leaves[i], i, size, proof, cp.root), i
    for i in indices:
        t0 = time.perf_counter()
        audit.inclusion_receipt(vault, i)
        receipt_ms.append((time.perf_counter() - t0) * 1000)
    return ProofTimes(size, proof_ms, receipt_ms)


@dataclass
class BigLog:
    entries: int
    build_s: float = 0.0
    seal_s: list[float] = field(default_factory=list)
    proofs: list[ProofTimes] = field(default_factory=list)
    verify_s: float = 0.0
    verify_ok: bool = False
    db_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"entries": self.entries, "build_s": self.build_s,
                "build_per_s": self.entries / self.build_s, "build_batch": BUILD_BATCH,
                "seal_s": self.seal_s, "proofs": [p.as_dict() for p in self.proofs],
                "verify_s": self.verify_s, "verify_ok": self.verify_ok, "db_bytes": self.db_bytes}


def measure_big_log(work: Path, entries: int) -> BigLog:
    from vaultd import audit, auditcheck

    big = BigLog(entries)
    rng = random.Random(6962)
    vault = fresh_vault(work / "big" / "home")
    try:
        done = 0
        for target in (entries // 10, entries):
            while done < target:
                n = min(BUILD_BATCH * 10, target - done)
                big.build_s += append_all(vault, n, BUILD_BATCH, start=done)
                done += n
                note(f"  built {done:>9} entries, {big.build_s:7.1f} s ({done / big.build_s:7.0f}/s)")
            t0 = time.perf_counter()
            audit.seal(vault)
            big.seal_s.append(time.perf_counter() - t0)
            big.proofs.append(measure_proofs(vault, target, rng))
            p = big.proofs[-1].as_dict()
            note(f"  proofs at {target}: median {p['proof']['median_ms']:.3f} ms, "
                 f"receipt median {p['receipt']['median_ms']:.3f} ms")
        with vault.engine.connect() as conn:
            assert audit.size(conn) == entries
        note(f"  verifying {entries} entries ...")
        t0 = time.perf_counter()
        report = auditcheck.verify(vault)
        big.verify_s = time.perf_counter() - t0
        big.verify_ok = report.ok and report.entries == entries
        if not big.verify_ok:
            raise RuntimeError(f"verify of the benchmark log failed: {report.problems[:3]}")
        note(f"  verify {big.verify_s:.1f} s")
        big.db_bytes = sum(f.stat().st_size for f in vault.layout.root.glob("catalog.sqlite*"))
    finally:
        vault.close()
    return big


# -- the run -------------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report_text(result: dict[str, Any], rates: list[Rate], big: BigLog) -> str:
    by = {(r.phase, r.contender): r for r in rates}
    out = [f"vaultd audit log benchmark  ({result['machine']['cpus']} CPUs, {result['machine']['cpu']}, "
           f"python {result['machine']['python']}, {result['machine']['at']})",
           f"work folder: {result['work']}  (SQLite WAL, synchronous=FULL for every contender)", ""]
    out.append(table(
        ["phase", "contender", "entries", "per txn", "runs", "median s", "entries/s"],
        [[r.phase, r.contender, r.entries, r.per_txn, len(r.seconds), r.median_s, f"{r.per_s:.0f}"]
         for r in rates]))
    out.append("")
    ratio_rows = []
    for phase, target in (("single", TARGET_SINGLE_RATIO), ("batched", None)):
        value = by[(phase, "audit.append")].per_s / by[(phase, "plain insert")].per_s
        ratio_rows.append([phase, "audit.append / plain insert", f"{value:.2f}x",
                           f">= {target:.2f}x" if target else "-",
                           _verdict(value >= target) if target else "-"])
    out.append(table(["phase", "ratio", "value", "target", "verdict"], ratio_rows))
    out.append("")
    rows: list[list[object]] = [
        [f"build {big.entries} entries ({BUILD_BATCH} per txn)", f"{big.build_s:.1f} s",
         f"{big.entries / big.build_s:.0f}/s", "-", "-"],
    ]
    for p in big.proofs:
        d = p.as_dict()
        is_top = p.size == big.entries
        rows.append([f"inclusion proof at {p.size} (median of {d['samples']})",
                     f"{d['proof']['median_ms']:.3f} ms",
                     f"p99 {d['proof']['p99_ms']:.3f} / max {d['proof']['max_ms']:.3f} ms",
                     f"< {TARGET_PROOF_MS:.0f} ms" if is_top else "-",
                     _verdict(d["proof"]["median_ms"] < TARGET_PROOF_MS) if is_top else "-"])
        rows.append([f"receipt at {p.size} (audit.inclusion_receipt)",
                     f"{d['receipt']['median_ms']:.3f} ms",
                     f"p99 {d['receipt']['p99_ms']:.3f} / max {d['receipt']['max_ms']:.3f} ms",
                     f"< {TARGET_PROOF_MS:.0f} ms" if is_top else "-",
                     _verdict(d["receipt"]["median_ms"] < TARGET_PROOF_MS) if is_top else "-"])
    rows.append([f"seal (sign checkpoint) at {', '.join(str(p.size) for p in big.proofs)}",
                 " / ".join(f"{s * 1000:.1f} ms" for s in big.seal_s), "-", "-", "-"])
    rows.append([f"auditcheck.verify of {big.entries} entries", f"{big.verify_s:.1f} s",
                 f"{big.entries / big.verify_s:.0f} entries/s", f"< {TARGET_VERIFY_S:.0f} s",
                 _verdict(big.verify_s < TARGET_VERIFY_S)])
    rows.append(["catalog size on disk", f"{big.db_bytes / 1e6:.0f} MB",
                 f"{big.db_bytes / big.entries:.0f} B/entry", "-", "-"])
    out.append(table(["measure", "value", "spread / rate", "target", "verdict"], rows))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="vaultd-bench-audit-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        print(f"audit.py: work folder {work} is not empty", file=sys.stderr)
        return 2
    result: dict[str, Any] = {"machine": machine(), "work": str(work), "args": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    try:
        note(f"single appends: {args.single} events, one transaction each, x{args.repeat}")
        rates = measure_writes(work, "single", args.single, 1, args.repeat)
        note(f"batched appends: {args.batched} events, {BATCH} per transaction, x{args.repeat}")
        rates += measure_writes(work, "batched", args.batched, BATCH, args.repeat)
        note(f"big log: {args.entries} entries, {BUILD_BATCH} per transaction")
        big = measure_big_log(work, args.entries)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["writes"] = [r.as_dict() for r in rates]
    result["big_log"] = big.as_dict()
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report_text(result, rates, big))
    return 0


if __name__ == "__main__":
    sys.exit(main())
