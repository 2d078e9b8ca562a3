"""Docking benchmark (issue #5): four simulated cameras docked at once.

Measured in the same run, so the ratios hold on a noisy machine:

* ``cp x4``: ``cp -r`` of the four camera trees at once (four processes) + ``sync``;
* ``cp x1``: ``cp -r`` of one tree + ``sync``;
* ``vaultd x1``: the daemon (in this process, dock folder source) ingesting one
  camera, from the tree appearing in the dock folder until its session is complete;
* ``vaultd x4``: the same with the four trees appearing at once.

It prints the aggregate rates, ``vaultd x4 / cp x4`` (target >= 0.9) and
``vaultd x4 / vaultd x1``, the time from the dock event to the first byte copied
(target < 2 s), and, from a separate ``vaultd run`` process left idle with its
scheduler and API, its CPU share and resident memory (targets < 1 %, < 150 MB).

    .venv/bin/python benchmarks/dock.py [--per-camera-mib 512] [--files 4] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MB, MiB, drop_caches, make_large_tree, note, remove_tree, run_checked, sync  # noqa: E402

BENCH_CONFIG = "[ingest]\nreserve_bytes = 0\n"
SERIALS = ("3201001", "3201002", "3201003", "3201004")


def make_cameras(work: Path, per_camera: int, files: int) -> list[Path]:
    cams = []
    for n, serial in enumerate(SERIALS):
        root = work / "trees" / f"cam{n + 1}"
        make_large_tree(root, per_camera, files)
        ident = {"serial": serial, "model": "DSJ-BENCH", "officer_id": f"01234{n}", "unit": "一中队",
                 "clock_offset_s": 0.0}
        (root / "vaultd-camera.json").write_text(json.dumps(ident, ensure_ascii=False), encoding="utf-8")
        shift_end = time.time() - 3600  # recorded during the shift, docked after it
        for p in root.rglob("*"):
            if p.is_file():
                os.utime(p, (shift_end, shift_end))
        cams.append(root)
    return cams


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def cp_parallel(cams: list[Path], dst: Path) -> float:
    remove_tree(dst)
    dst.mkdir(parents=True)
    drop_caches()
    start = time.perf_counter()
    procs = [subprocess.Popen(["cp", "-r", str(c), str(dst / c.name)]) for c in cams]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("cp failed")
    sync()
    seconds = time.perf_counter() - start
    remove_tree(dst)
    return seconds


def vaultd_dock(cams: list[Path], scratch: Path) -> tuple[float, list[float]]:
    """Seconds from the trees appearing in the dock until every session is complete,
    and each session's dock-event-to-first-byte seconds."""
    from vaultd import devices, registry
    from vaultd.daemon import Daemon, Options
    from vaultd.dockfolder import FolderSource
    from vaultd.people import local_owner
    from vaultd.vault import init_vault, open_vault

    home, dock = scratch / "home", scratch / "dock"
    remove_tree(scratch)
    init_vault(home)
    (home / "vaultd.toml").write_text(BENCH_CONFIG, encoding="utf-8")
    vault = open_vault(home)
    for serial in SERIALS[:len(cams)]:
        devices.enroll(vault, local_owner(), serial)
    dock.mkdir(parents=True)
    staged = []
    for c in cams:  # docking = a rename into the dock folder (same filesystem: instant)
        aside = scratch / f"aside-{c.name}"
        os.rename(c, aside)
        staged.append((aside, c))
    d = Daemon(vault, registry.load_drivers(), [FolderSource(dock)], options=Options(max_sessions=4))
    import threading

    stop = threading.Event()
    t = threading.Thread(target=d.run, args=(stop,), daemon=True)
    t.start()
    while d.state != "running":
        time.sleep(0.01)
    drop_caches()
    start = time.perf_counter()
    for aside, c in staged:
        os.rename(aside, dock / c.name)
    try:
        while True:
            snap = d.snapshot()
            states = [s for s in snap["sessions"] + snap["recent"]]
            if len(states) == len(cams) and all(s["finished_at"] for s in states):
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        bad = [s for s in states if s["state"] != "complete"]
        if bad:
            raise RuntimeError(f"sessions not complete: {bad}")
        first = [float(s["first_byte_s"]) for s in states]
    finally:
        stop.set()
        t.join(60)
        vault.close()
        for aside, c in staged:  # give the trees back
            os.rename(dock / c.name, c)
    remove_tree(scratch)
    return seconds, first


def idle_daemon(scratch: Path, seconds: float) -> tuple[float, float]:
    """(CPU % of one core, RSS MB) of an idle ``vaultd run`` (scheduler + API + dock folder)."""
    home = scratch / "idle-home"
    remove_tree(scratch)
    run_checked([sys.executable, "-m", "vaultd.cli", "--home", str(home), "init"])
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "vaultd.cli", "--home", str(home), "run",
                             "--dock-folder", str(scratch / "dock"), "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)  # start-up is not idle
        tick = os.sysconf("SC_CLK_TCK")

        def cpu_s() -> float:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick

        c0, t0 = cpu_s(), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_s(), time.monotonic()
        rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                      if line.startswith("VmRSS:"))
    finally:
        proc.terminate()
        proc.wait(60)
    remove_tree(scratch)
    return 100 * (c1 - c0) / (t1 - t0), rss_kb * 1024 / MB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-camera-mib", type=int, default=512)
    ap.add_argument("--files", type=int, default=4, help="files per camera")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--idle-s", type=float, default=20.0)
    ap.add_argument("--work", type=Path, help="work folder (default: a temp folder under /var/tmp)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="vaultd-bench-dock-", dir="/var/tmp"))
    cams = make_cameras(work, args.per_camera_mib * MiB, args.files)
    total4 = sum(tree_bytes(c) for c in cams)
    total1 = tree_bytes(cams[0])
    times: dict[str, list[float]] = {"cp x4": [], "cp x1": [], "vaultd x4": [], "vaultd x1": []}
    first_bytes: list[float] = []
    cp_parallel(cams, work / "cp-out")  # warm-up, not counted
    for r in range(args.repeat):
        times["cp x4"].append(cp_parallel(cams, work / "cp-out"))
        times["cp x1"].append(cp_parallel(cams[:1], work / "cp-out"))
        s4, fb = vaultd_dock(cams, work / "vaultd")
        times["vaultd x4"].append(s4)
        first_bytes += fb
        s1, fb1 = vaultd_dock(cams[:1], work / "vaultd")
        times["vaultd x1"].append(s1)
        first_bytes += fb1
        note(f"run {r + 1}/{args.repeat}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: (total4 if "x4" in k else total1) / MB / med[k] for k in med}
    cpu_pct, rss_mb = idle_daemon(work / "idle", args.idle_s)
    result: dict[str, Any] = {
        "bytes_four_cameras": total4, "files_per_camera": args.files,
        "median_s": med, "mb_per_s": rate,
        "ratio_vaultd4_over_cp4": rate["vaultd x4"] / rate["cp x4"],
        "ratio_vaultd4_over_vaultd1": rate["vaultd x4"] / rate["vaultd x1"],
        "dock_to_first_byte_s_max": max(first_bytes), "dock_to_first_byte_s_median": statistics.median(first_bytes),
        "idle_cpu_percent": cpu_pct, "idle_rss_mb": rss_mb,
    }
    shutil.rmtree(work, ignore_errors=True) if args.work is None else None
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"four cameras, {total4 / MB:.0f} MB in all ({args.files} files each); medians of {args.repeat} runs")
    for k in times:
        print(f"  {k:<10} {med[k]:7.2f} s {rate[k]:8.1f} MB/s")
    print(f"  vaultd x4 / cp x4        {result['ratio_vaultd4_over_cp4']:.2f}  (target >= 0.90) "
          f"{'PASS' if result['ratio_vaultd4_over_cp4'] >= 0.9 else 'FAIL'}")
    print(f"  vaultd x4 / vaultd x1    {result['ratio_vaultd4_over_vaultd1']:.2f}  (aggregate over single camera)")
    print(f"  dock to first byte       median {result['dock_to_first_byte_s_median']:.2f} s, "
          f"max {result['dock_to_first_byte_s_max']:.2f} s  (target < 2 s) "
          f"{'PASS' if result['dock_to_first_byte_s_max'] < 2 else 'FAIL'}")
    print(f"  idle daemon              {cpu_pct:.2f} % CPU, {rss_mb:.0f} MB RSS  (targets < 1 %, < 150 MB) "
          f"{'PASS' if cpu_pct < 1 and rss_mb < 150 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
