"""Export and verify throughput against the standard tools, in the same run.

One generated tree of MP4-named files is ingested into a fresh vault (not
timed); then, each timed wall-clock until its output is durable:

  cp+sha256sum      cp -r SRC DST && sync && sha256sum every copied file   the export baseline
  vaultd-export     vaultd.export.create_export(...) under an export grant: BagIt bag
                    (SHA-256 + SHA-512 in one pass), custody chain, cover PDF/HTML,
                    CMS signature, fsync'd
  sha256sum -c      cd PKG && sha256sum -c manifest-sha256.txt               the verify baseline
  vaultd-verify     vaultd.verify.verify_package(PKG, pins): bag, every tag and payload
                    SHA-256, signature and chain, every custody proof

Targets: vaultd-export >= 1.2x of cp+sha256sum (it reads once, the baseline twice), vaultd-verify >= 0.8x of
sha256sum -c (ratios of MB/s). The page cache is dropped before every run
when root (--warm keeps it).

    .venv/bin/python benchmarks/export.py --size-mib 256
    .venv/bin/python benchmarks/export.py --size-mib 2048 --repeat 3 --json > export.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    MiB,
    Measure,
    OtherCpu,
    busy_note,
    drop_caches,
    machine,
    make_large_tree,
    measures_table,
    note,
    ratio,
    ratios_table,
    remove_tree,
    revision,
    run_checked,
    sync,
    timed,
)

REPO = Path(__file__).resolve().parent.parent
TARGETS = {("vaultd-export", "cp+sha256sum"): 1.2, ("vaultd-verify", "sha256sum -c"): 0.8}
BASELINE_EXPORT = 'cp -r -- "$1" "$2" && sync && find "$2" -type f -print0 | xargs -0 sha256sum > /dev/null'
BASELINE_VERIFY = 'cd "$1" && sha256sum -c --quiet manifest-sha256.txt'


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=2048, help="payload size (default 2048 MiB)")
    p.add_argument("--files", type=int, default=8, help="number of files (default 8)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--workdir", type=Path, help="where to put the tree, vault and outputs (default: a temp dir)")
    p.add_argument("--warm", action="store_true", help="do not drop the page cache between runs")
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def _vault(work: Path, tree_root: Path) -> tuple[Any, list[str], Any]:
    sys.path.insert(0, str(REPO))
    from vaultd import approvals, people
    from vaultd.access import RequestKind, Role
    from vaultd.catalog import people as people_db
    from vaultd.catalog import recordings as rec_db
    from vaultd.ingest import ingest_path
    from vaultd.model import Actor
    from vaultd.people import NewUser, local_owner, principal_of
    from vaultd.vault import init_vault, open_vault

    home = work / "home"
    init_vault(home)
    (home / "vaultd.toml").write_text("[ingest]\nsettle_s = 0.0\nreserve_bytes = 0\n", encoding="utf-8")
    vault = open_vault(home)
    owner = local_owner()
    people.add_user(vault, owner, NewUser("li", (Role.LEGAL,), None, None), None, "cli")
    people.add_user(vault, owner, NewUser("sun", (Role.LEADER,), None, None), None, "cli")
    note("ingesting the tree (not timed)")
    ingest_path(vault, tree_root, actor=Actor.local())
    with vault.engine.connect() as conn:
        ids = [r.id for r in rec_db.search(conn, rec_db.RecordingFilter())]
        li, sun = (principal_of(people_db.user_by_name(conn, n)) for n in ("li", "sun"))  # type: ignore[arg-type]
    req = approvals.request_access(vault, li, RequestKind.EXPORT, ids, "benchmark", notice=None,
                                   expires_days=1, uses=1000, via="cli")
    grant = approvals.approve(vault, sun, req.id, "cli")
    return vault, ids, grant.id


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="export_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    total = args.size_mib * MiB
    tree = make_large_tree(work / "tree", total, args.files)
    vault, ids, grant = _vault(work, tree.root)
    from vaultd import export, verify
    from vaultd.people import local_owner

    pins = verify.Pins(ca_pem=(vault.layout.keys_dir / "agency-ca.pem").read_bytes(),
                       log_key=_log_key(vault))
    m = {k: Measure("large", k, total, args.files) for k in
         ("cp+sha256sum", "vaultd-export", "sha256sum -c", "vaultd-verify")}
    load = OtherCpu()
    pkg: Path | None = None
    for n in range(args.repeat):
        dst = work / f"cp-{n}"
        _cold(args)
        m["cp+sha256sum"].seconds.append(timed(lambda: run_checked(["sh", "-c", BASELINE_EXPORT, "sh",
                                                                    str(tree.root), str(dst)])))
        remove_tree(dst)
        out = work / f"out-{n}"
        out.mkdir()
        _cold(args)
        holder: dict[str, Any] = {}

        def make() -> None:
            holder["r"] = export.create_export(vault, local_owner(), export.ExportRequest(
                out_dir=out, grant_id=grant, recording_refs=tuple(ids)))
            sync()

        m["vaultd-export"].seconds.append(timed(make))
        pkg = holder["r"].packages[0]
        _cold(args)
        m["sha256sum -c"].seconds.append(timed(lambda: run_checked(["sh", "-c", BASELINE_VERIFY, "sh", str(pkg)])))
        _cold(args)
        rep: dict[str, Any] = {}
        m["vaultd-verify"].seconds.append(timed(lambda: rep.setdefault("r", verify.verify_package(pkg, pins))))
        if rep["r"].status != verify.PASS:
            raise SystemExit(f"verify did not pass: {rep['r'].failures}")
        if n < args.repeat - 1:
            remove_tree(out)
    share = load.share()
    m_by = {(x.tree, x.contender): x for x in m.values()}
    ratios = [ratio(m_by, "large", s, b, t) for (s, b), t in TARGETS.items()]
    warning = busy_note(share, "during the run")
    if args.json:
        json.dump({"machine": machine(), "revision": revision(REPO), "other_cpu_share": share,
                   "measures": [x.as_dict() for x in m.values()], "ratios": [r.as_dict() for r in ratios]},
                  sys.stdout, indent=2)
        print()
    else:
        print(f"export benchmark: {args.size_mib} MiB in {args.files} files, {args.repeat} run(s), "
              f"{'warm' if args.warm else 'cold'} cache; {revision(REPO)}")
        print(measures_table(m.values()))
        print()
        print(ratios_table(ratios))
        print(f"other processes used {share:.0%} of the CPUs meanwhile")
    if warning:
        note(warning)
    vault.close()
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _log_key(vault: Any) -> str:
    from vaultd import audit, note as note_mod

    return note_mod.verifier_key_string(audit.verifier(vault))


def _cold(args: argparse.Namespace) -> None:
    if not args.warm:
        drop_caches()


if __name__ == "__main__":
    sys.exit(main())
