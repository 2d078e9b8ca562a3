"""The scrub: how fast a full check hashes, whether the background step keeps
to its rate limit, and what a background step running at its limit costs an
ingest that runs at the same time.

  full / sha256sum      vaultd scrub (scrub_all) against sha256sum of the same store objects
  step / limit          the background step's read rate against its max_bytes_per_s
  ingest+step / ingest  ingest MB/s with a background step running alongside (it yields to
                        ingest), against ingest alone; and the same with yielding turned off

Caches are dropped before each measured run (when root). Indicative only on a
shared machine: run once, quote the ratios.

    .venv/bin/python benchmarks/scrub.py --quick
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _common import (
    MB,
    MiB,
    Measure,
    Ratio,
    drop_caches,
    make_large_tree,
    measures_table,
    note,
    ratio,
    ratios_table,
    run_checked,
    timed,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vaultd import scrub  # noqa: E402
from vaultd.ingest import ingest_path  # noqa: E402
from vaultd.model import Actor  # noqa: E402
from vaultd.vault import init_vault, open_vault  # noqa: E402

ME = Actor("service", "bench", "daemon")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="64 MB trees instead of 512 MB")
    p.add_argument("--limit-mib-s", type=float, default=40.0, help="the background step's rate limit")
    p.add_argument("--work", type=Path, help="where to put trees and vaults (default: a temp folder)")
    args = p.parse_args(argv)
    total = (64 if args.quick else 512) * MB
    work = args.work or Path(tempfile.mkdtemp(prefix="scrub_bench_"))
    limit = args.limit_mib_s * MiB
    measures: dict[tuple[str, str], Measure] = {}

    def record(tree: str, who: str, nbytes: int, files: int, seconds: float) -> None:
        measures.setdefault((tree, who), Measure(tree, who, nbytes, files)).seconds.append(seconds)

    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    init_vault(home)
    (home / "vaultd.toml").write_text("[ingest]\nsettle_s = 0.0\nreserve_bytes = 0\n"
                                      "[compliance]\nscrub_period_days = 1\nscrub_interval_min = 1440\n")
    vault = open_vault(home)
    first = make_large_tree(work / "tree1", total, 8)
    second = make_large_tree(work / "tree2", total, 8)
    note("ingesting the first tree")
    ingest_path(vault, first.root, actor=ME)
    objects = sorted(str(p) for p in (home / "store").rglob("*") if p.is_file())

    drop_caches()
    record("store", "sha256sum", total, 8, timed(lambda: run_checked(["sha256sum", *objects])))
    drop_caches()
    record("store", "full", total, 8, timed(lambda: scrub.scrub_all(vault, ME)))

    drop_caches()
    now = datetime.now(timezone.utc)
    step_s = timed(lambda: scrub.scrub_step(vault, ME, now, budget_s=1e6, max_bytes_per_s=limit))
    record("store", "step", total, 8, step_s)
    measures[("store", "limit")] = Measure("store", "limit", total, 8, [total / limit])

    # the same vault (with the first tree only) twice: ingest alone, and with a step alongside
    home2 = work / "home2"
    shutil.rmtree(home2, ignore_errors=True)
    vault.close()
    shutil.copytree(home, home2, symlinks=True)
    vault = open_vault(home)
    drop_caches()
    record("ingest", "ingest", total, 8, timed(lambda: ingest_path(vault, second.root, actor=ME)))

    for who, yielding in (("ingest+step", True), ("ingest+step-noyield", False)):
        home3 = work / who
        shutil.rmtree(home3, ignore_errors=True)
        shutil.copytree(home2, home3, symlinks=True)
        vault3 = open_vault(home3)
        stop = threading.Event()
        later = now + timedelta(days=2)  # a new round is due: the step re-reads the first tree

        def background() -> None:
            while not stop.is_set():
                step = scrub.scrub_step(vault3, ME, later, budget_s=1e6, max_bytes_per_s=limit,
                                        should_stop=stop.is_set, yield_to_ingest=yielding)
                if step.idle or step.stopped:  # yielded to the ingest: wait as the daemon's next run would
                    stop.wait(1.0)

        drop_caches()
        worker = threading.Thread(target=background, daemon=True)
        worker.start()
        record("ingest", who, total, 8, timed(lambda: ingest_path(vault3, second.root, actor=ME)))
        stop.set()
        worker.join()
        vault3.close()

    ratios: list[Ratio] = [
        ratio(measures, "store", "full", "sha256sum", None),
        ratio(measures, "store", "step", "limit", None),
        ratio(measures, "ingest", "ingest+step", "ingest", None),
        ratio(measures, "ingest", "ingest+step-noyield", "ingest", None),
    ]
    print(measures_table(measures.values()))
    print()
    print(ratios_table(ratios))
    vault.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
