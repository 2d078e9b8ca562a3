"""Ingest throughput against the copy limit and the script an admin would write.

Two generated trees (large MP4-named files; many small JPG-named files), each
ingested by vaultd and copied by the baselines, every contender timed
wall-clock from start until its data is durable:

  cp+sync      cp -r SRC DST && sync                       the copy limit
  naive        cp -r; sync; find | xargs sha256sum          what an admin writes
  vaultd-api   vaultd.ingest.ingest_path(...)               in-process, open excluded
  vaultd-cli   vaultd --home H ingest SRC --json            includes interpreter start-up

The page cache is dropped before every measured run (when root), so each
contender reads the source cold. Ratios are of MB/s and are what to quote;
the absolute rates depend on the disk and on what else the machine does.

    .venv/bin/python benchmarks/ingest.py --quick
    .venv/bin/python benchmarks/ingest.py --repeat 3 --json > ingest.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    GiB,
    Measure,
    OtherCpu,
    Ratio,
    Tree,
    busy_note,
    drop_caches,
    idle_check,
    machine,
    make_large_tree,
    make_small_tree,
    measures_table,
    note,
    ratio,
    ratios_table,
    remove_tree,
    revision,
    run_checked,
    same_filesystem,
    timed,
)

REPO = Path(__file__).resolve().parent.parent

CONTENDERS = ("cp+sync", "naive", "vaultd-api", "vaultd-cli")
VAULTD = ("vaultd-api", "vaultd-cli")
#: (tree, vaultd contender, baseline) -> the least vaultd/baseline ratio of MB/s that passes.
#: Small files (#17.7): the in-process ingest against cp+sync, the CLI (start-up
#: included) against the naive script that a station would otherwise run.
TARGETS: dict[tuple[str, str, str], float | None] = {
    ("large", "vaultd-api", "cp+sync"): 0.7,
    ("large", "vaultd-cli", "cp+sync"): 0.7,
    ("large", "vaultd-api", "naive"): 2.5,
    ("large", "vaultd-cli", "naive"): 2.5,
    ("small", "vaultd-api", "cp+sync"): 0.8,
    ("small", "vaultd-cli", "naive"): 1.2,
}
BENCH_CONFIG = "[ingest]\nsettle_s = 0.0\nreserve_bytes = 0\n"
CP_SYNC = 'cp -r -- "$1" "$2" && sync'
NAIVE = (CP_SYNC + ' && cd "$2" && find . -type f -print0 | xargs -0 sha256sum > /dev/null')


@dataclass(frozen=True)
class Sizes:
    large_bytes: int
    large_files: int
    small_files: int
    small_bytes: int


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--large-gib", type=float, help="size of the large tree in GiB (2.0)")
    p.add_argument("--large-files", type=int, help="files in the large tree (16)")
    p.add_argument("--small-files", type=int, help="files in the small tree (2000)")
    p.add_argument("--small-kib", type=int, help="size of each small file in KiB (100)")
    p.add_argument("--work", type=Path, help="work folder (default: a new one under /var/tmp)")
    p.add_argument("--keep", action="store_true",
                   help="keep the work folder; a later run with the same --work reuses the trees")
    p.add_argument("--repeat", type=int, default=1, help="runs per contender; the median is reported")
    p.add_argument("--quick", action="store_true", help="smoke run: 128 MiB in 4 files, 200 small files")
    p.add_argument("--only", choices=("large", "small"), help="measure one tree only")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def sizes_from(args: argparse.Namespace) -> Sizes:
    quick = {"large_gib": 0.125, "large_files": 4, "small_files": 200, "small_kib": 100}
    full = {"large_gib": 2.0, "large_files": 16, "small_files": 2000, "small_kib": 100}
    d = quick if args.quick else full

    def pick(name: str) -> Any:
        value = getattr(args, name)
        return d[name] if value is None else value

    return Sizes(int(pick("large_gib") * GiB), pick("large_files"), pick("small_files"),
                 pick("small_kib") * 1024)


# -- contenders: each returns the seconds from start to durable ----------------------

def run_shell(script: str, src: Path, dst: Path) -> float:
    return timed(lambda: run_checked(["bash", "-o", "pipefail", "-c", script, "bash", str(src), str(dst)]))


def _fresh_home(home: Path) -> Path:
    """A new vault with the settle wait and the space reserve off (not timed)."""
    from vaultd.vault import init_vault

    init_vault(home)
    config = home / "vaultd.toml"
    config.write_text(BENCH_CONFIG, encoding="utf-8")
    return config


def _check_counts(counts: dict[str, int], complete: bool, tree: Tree, how: str) -> None:
    if not complete or counts.get("new") != tree.files:
        raise RuntimeError(f"{how}: ingest of {tree.root} not as expected: complete={complete} counts={counts}")


def run_vaultd_api(tree: Tree, home: Path) -> float:
    from vaultd.ingest import ingest_path
    from vaultd.model import Actor
    from vaultd.vault import open_vault

    config = _fresh_home(home)
    vault = open_vault(home, config)
    try:
        drop_caches()
        reports = []
        seconds = timed(lambda: reports.append(
            ingest_path(vault, tree.root, actor=Actor.local(), wipe=False)))
    finally:
        vault.close()
    _check_counts(reports[0].counts(), reports[0].complete, tree, "vaultd-api")
    return seconds


def _vaultd_argv() -> list[str]:
    script = Path(sys.executable).parent / "vaultd"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vaultd.cli"]


def run_vaultd_cli(tree: Tree, home: Path) -> float:
    _fresh_home(home)
    argv = _vaultd_argv() + ["--home", str(home), "ingest", str(tree.root), "--json"]
    drop_caches()
    done = []
    seconds = timed(lambda: done.append(run_checked(argv)))
    report = json.loads(done[0].stdout)
    _check_counts(report["counts"], report["complete"], tree, "vaultd-cli")
    return seconds


def measure_once(contender: str, tree: Tree, scratch: Path) -> float:
    dst = scratch / "dst"
    remove_tree(dst)
    try:
        if contender == "cp+sync":
            drop_caches()
            return run_shell(CP_SYNC, tree.root, dst)
        if contender == "naive":
            drop_caches()
            return run_shell(NAIVE, tree.root, dst)
        if contender == "vaultd-api":
            return run_vaultd_api(tree, dst)
        if contender == "vaultd-cli":
            return run_vaultd_cli(tree, dst)
        raise ValueError(contender)
    finally:
        remove_tree(dst)


def round_order(contenders: tuple[str, ...], r: int) -> tuple[str, ...]:
    """Round ``r``'s order: a balanced Latin square (Williams), so that over
    len(contenders) rounds each contender runs first once and right after each
    other one once. A plain rotation always ran each one after the same
    neighbour, and on a disk where one run's removed tree slows the next one's
    writes, that neighbour's effect always fell on the same contender."""
    n = len(contenders)
    first, low, high = [0], 1, n - 1
    while len(first) < n:
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    return tuple(contenders[(i + r) % n] for i in first)


def measure_tree(tree: Tree, scratch: Path, repeat: int) -> list[Measure]:
    # the first write after the trees were made or removed runs slow on some disks: not timed
    warm = measure_once("cp+sync", tree, scratch)
    note(f"  {tree.kind:<5} warm-up    cp+sync    {warm:8.2f} s (not counted)")
    measures = {c: Measure(tree.kind, c, tree.total_bytes, tree.files) for c in CONTENDERS}
    for r in range(repeat):
        order = round_order(CONTENDERS, r)
        for contender in order:
            seconds = measure_once(contender, tree, scratch)
            measures[contender].seconds.append(seconds)
            note(f"  {tree.kind:<5} run {r + 1}/{repeat} {contender:<10} {seconds:8.2f} s "
                 f"{tree.total_bytes / 1e6 / seconds:9.1f} MB/s")
    return list(measures.values())


def ratios_for(measures: list[Measure]) -> list[Ratio]:
    by_key = {(m.tree, m.contender): m for m in measures}
    out = []
    for kind in dict.fromkeys(m.tree for m in measures):
        for subject in VAULTD:
            for baseline in ("cp+sync", "naive"):
                out.append(ratio(by_key, kind, subject, baseline, TARGETS.get((kind, subject, baseline))))
        out.append(ratio(by_key, kind, "naive", "cp+sync", None))
    return out


# -- the run ---------------------------------------------------------------------------

def make_trees(work: Path, sizes: Sizes, only: str | None) -> list[Tree]:
    trees = []
    if only in (None, "large"):
        note(f"generating large tree: {sizes.large_bytes / GiB:.3f} GiB in {sizes.large_files} files")
        trees.append(make_large_tree(work / "src-large", sizes.large_bytes, sizes.large_files))
    if only in (None, "small"):
        note(f"generating small tree: {sizes.small_files} files of {sizes.small_bytes // 1024} KiB")
        trees.append(make_small_tree(work / "src-small", sizes.small_files, sizes.small_bytes))
    return trees


def report_text(result: dict[str, Any], measures: list[Measure], ratios: list[Ratio]) -> str:
    m, s, other = result["machine"], result["sizes"], result["other_cpu_share"]
    lines = [
        f"vaultd ingest benchmark  {m['at']}  {m['cpus']} CPUs  {m['cpu']}  Python {m['python']}",
        (f"large: {s['large_bytes'] / GiB:.3f} GiB in {s['large_files']} files; "
        f"small: {s['small_files']} files of {s['small_bytes'] // 1024} KiB; "
        f"repeat {result['repeat']} (median); page cache dropped before each run: "
        f"{'yes' if result['caches_dropped'] else 'NO'}"),
        (f"vaultd revision: {result['revision']}"
         + ("" if result["revision_at_end"] == result["revision"]
            else f" (changed to {result['revision_at_end']} during the run)")),
        f"work: {result['work']}  (MB = 10^6 bytes)",
        (f"CPU used by other processes: {other['before']:.0%} before the run, "
         f"{other['during']:.0%} during it"),
        *filter(None, [busy_note(other["before"], "before the run"),
                       busy_note(other["during"], "during the run")]),
        "",
        measures_table(measures),
        "",
        ratios_table(ratios),
    ]
    return "\n".join(lines)


def _work_dir(args: argparse.Namespace) -> tuple[Path, Callable[[], None]]:
    """The work folder and how to clean it up afterwards."""
    if args.work is None:
        work = Path(tempfile.mkdtemp(prefix="vaultd-bench-", dir="/var/tmp"))
        return work, lambda: shutil.rmtree(work, ignore_errors=True)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    names = ("src-large", "src-small", "src-large.tree.json", "src-small.tree.json", "scratch")

    def clean() -> None:
        for name in names:
            path = work / name
            if path.is_dir():
                remove_tree(path)
            else:
                path.unlink(missing_ok=True)

    return work, clean


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = sizes_from(args)
    # import now, so that vaultd-api runs the code of the revision recorded here
    import vaultd.ingest  # noqa: F401
    rev_start = revision(REPO)
    work, clean = _work_dir(args)
    try:
        trees = make_trees(work, sizes, args.only)
        scratch = work / "scratch"
        scratch.mkdir(exist_ok=True)
        if not same_filesystem(work, scratch, *(t.root for t in trees)):
            raise SystemExit("the trees and the destinations must be on one filesystem")
        caches_dropped = drop_caches()
        idle_share = idle_check()
        for warning in filter(None, [busy_note(idle_share, "before the run")]):
            note(warning)
        others = OtherCpu()
        measures: list[Measure] = []
        for tree in trees:
            note(f"measuring {tree.kind} tree ({tree.files} files, {tree.total_bytes / 1e6:.0f} MB)")
            measures += measure_tree(tree, scratch, args.repeat)
    finally:
        if args.keep:
            note(f"kept {work}")
        else:
            clean()
    ratios = ratios_for(measures)
    rev_end, run_share = revision(REPO), others.share()
    if rev_end != rev_start:
        note(f"WARNING: the repository changed during the run ({rev_start} -> {rev_end}); "
             "vaultd-cli ran newer code than vaultd-api")
    result = {
        "machine": machine(), "revision": rev_start, "revision_at_end": rev_end,
        "sizes": sizes.__dict__, "repeat": args.repeat,
        "caches_dropped": caches_dropped, "work": str(work),
        "other_cpu_share": {"before": idle_share, "during": run_share},
        "measures": [m.as_dict() for m in measures], "ratios": [r.as_dict() for r in ratios],
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report_text(result, measures, ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
