"""Preview speed, overhead, storage, time to first playable second, and ingest beside it.

Generated 1080p30 H.264/AAC clips (testsrc2 + sine; made once, cached under
/tmp/previews_bench) are ingested into a throwaway vault, then:

  vaultd / ffmpeg     one whole preview job (video, poster, sprite, hashes,
                      catalog) against the same ffmpeg command lines run bare,
                      back to back, in the same run (target >= 0.95x)
  x real time         clip length / preview time, alone (one job), and with
                      ingest running back to back beside it (target >= 4x for
                      the default preview)
  ingest              ingest MB/s with previews being made beside it over
                      ingest alone (target >= 0.9x)

The last two are measured together, in the shipped default mode: the daemon's
preview service (its workers, its ffmpeg priority, its ingest gate told that a
camera is being ingested) makes the 60 s clip's preview while ingest runs back
to back; rounds alternate with ingest alone; medians of --repeat rounds with
their ranges.
  storage             preview files / original, in %
  first playable      "open this recording" with no preview: the on-demand
                      request until the first part is in place (target < 5 s
                      for a 10-minute clip), with an idle worker waiting

The machine is shared: figures are indicative; the ratios are what to quote.

    .venv/bin/python benchmarks/preview.py                # the 60 s clip
    .venv/bin/python benchmarks/preview.py --long         # and the 10-minute one
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import (
    FIRST_CLIP,
    OtherCpu,
    busy_note,
    camera_name,
    drop_caches,
    machine,
    make_large_tree,
    note,
    revision,
    run_checked,
    table,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vaultd import preview  # noqa: E402
from vaultd.catalog import previews as pdb  # noqa: E402
from vaultd.catalog import recordings as rec_db  # noqa: E402
from vaultd.ingest import ingest_path  # noqa: E402
from vaultd.model import Actor  # noqa: E402
from vaultd.people import local_owner  # noqa: E402
from vaultd.previewwork import PreviewService, Worker  # noqa: E402
from vaultd.vault import Vault, init_vault, open_vault  # noqa: E402

CACHE = Path("/tmp/previews_bench")
BENCH_CONFIG = "[ingest]\nsettle_s = 0.0\nreserve_bytes = 0\n[preview]\npoll_s = 0.2\n"
TARGETS = {"overhead": 0.95, "realtime": 4.0, "first_s": 5.0, "ingest": 0.9}
DEFAULTS = ("defaults (480p, 15 fps, veryfast + me=dia:subme=1:partitions=i8x8,i4x4, crf 28, area scaling, "
            "no deblocking in the decoder, AAC sound copied)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--long", action="store_true", help="also the 10-minute clip")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of each contender (alternating)")
    p.add_argument("--ingest-mb", type=int, default=1024, help="size of the ingest tree")
    p.add_argument("--preset", default=None, help="override [preview] preset")
    p.add_argument("--fps", type=int, default=None, help="override [preview] fps (0: the source's)")
    p.add_argument("--x264-params", default=None, help="override [preview] x264_params ('' for none)")
    p.add_argument("--audio-copy", default=None, action=argparse.BooleanOptionalAction,
                   help="override [preview] audio_copy")
    p.add_argument("--ingest-run-pct", type=int, default=None, help="override [preview] ingest_run_pct")
    p.add_argument("--pause-during-ingest", default=None, action=argparse.BooleanOptionalAction,
                   help="override [preview] pause_during_ingest")
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


# -- inputs ------------------------------------------------------------------------

def make_clip(seconds: int) -> Path:
    """A 1080p30 camera-like clip (2 s GOP, ~8 Mbit/s), cached by its parameters."""
    when = FIRST_CLIP + timedelta(hours=seconds)
    root = CACHE / f"clip{seconds}"
    out = root / "DCIM" / f"{when:%Y%m%d}" / camera_name(seconds, when, "MP4")
    if out.is_file():
        note(f"reusing {out}")
        return root
    shutil.rmtree(root, ignore_errors=True)
    out.parent.mkdir(parents=True)
    note(f"generating a {seconds} s 1080p30 clip (once) ...")
    tmp = out.with_suffix(".tmp.mp4")
    run_checked(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                 "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
                 "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                 "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M", "-maxrate", "8M", "-bufsize", "16M",
                 "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
                 "-metadata", f"creation_time={when:%Y-%m-%dT%H:%M:%S}Z", "-movflags", "+faststart", str(tmp)])
    os.replace(tmp, out)
    return root


def new_vault(where: Path, extra: str = "") -> Vault:
    home = Path(tempfile.mkdtemp(prefix="previews_bench_home_", dir=where))
    init_vault(home)
    (home / "vaultd.toml").write_text(BENCH_CONFIG + extra, encoding="utf-8")
    return open_vault(home)


def ingest_clip(vault: Vault, clip_root: Path) -> str:
    ingest_path(vault, clip_root, actor=Actor.local())
    with vault.engine.connect() as conn:
        return str(rec_db.all_hashes(conn)[0][0])


# -- measurements --------------------------------------------------------------------

def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wait_job(vault: Vault, rec_id: str, done: Callable[[Any], bool], limit_s: float) -> Any:
    """Wait (at most ``limit_s``) until this preview's job satisfies ``done``; the job as last seen."""
    deadline = time.monotonic() + limit_s
    while True:
        with vault.engine.connect() as conn:
            job = pdb.job_of(conn, rec_id)
        if done(job) or time.monotonic() >= deadline:
            return job
        time.sleep(0.05)


def _idle(vault: Vault, rec_id: str) -> None:
    """Wait until no other worker is making this preview."""
    _wait_job(vault, rec_id, lambda job: job is None or job.state != "running", 600)


def vaultd_job(vault: Vault, rec_id: str) -> tuple[float, float]:
    """One whole preview job, made afresh: (wall s, CPU s of ffmpeg and of the job's own thread)."""
    _idle(vault, rec_id)
    preview.rebuild(vault, local_owner(), rec_id)
    cpu0, own0 = _children_cpu_s(), time.thread_time()
    start = time.perf_counter()
    assert Worker(vault, workers=1).run_once(rec_id)
    took = time.perf_counter() - start
    cpu = _children_cpu_s() - cpu0 + time.thread_time() - own0
    with vault.engine.connect() as conn:
        row = pdb.get(conn, rec_id)
        job = pdb.job_of(conn, rec_id)
    assert row is not None and row.state == "ready", job
    return took, cpu


def bare_commands(vault: Vault, rec_id: str) -> tuple[float, float]:
    """The job's own ffmpeg command lines (same parameters, same priority), run back to back,
    in a folder where the job had its work folder (drawtext reads its text from there)."""
    with vault.engine.connect() as conn:
        row = pdb.get(conn, rec_id)
    assert row is not None
    argvs = list(row.params["argv"].values())
    work = next(Path(a).parent for a in row.params["argv"]["video.mp4"] if a.endswith("/video.mp4"))
    work.mkdir(parents=True)
    (work / "strip.txt").write_text(row.params["spec"]["strip"], encoding="utf-8")
    (work / "poster.txt").write_text(row.params["poster"]["strip"], encoding="utf-8")
    try:
        cpu0 = _children_cpu_s()
        start = time.perf_counter()
        for argv in argvs:
            subprocess.run(argv, check=True, capture_output=True)
        return time.perf_counter() - start, _children_cpu_s() - cpu0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def storage_pct(vault: Vault, rec_id: str) -> float:
    with vault.engine.connect() as conn:
        row = pdb.get(conn, rec_id)
        rec = rec_db.get(conn, rec_id)
    assert row is not None
    return 100.0 * row.size_bytes / rec.size_bytes


def first_playable(vault: Vault, rec_id: str) -> float:
    """From "open this recording" (no preview yet) to its first part in place, an idle worker waiting."""
    preview.forget(vault, rec_id)
    stop = threading.Event()
    thread = threading.Thread(target=Worker(vault, workers=1).run_forever, args=(stop,), daemon=True)
    thread.start()
    time.sleep(1.0)  # the worker is idle and waiting
    start = time.perf_counter()
    preview.describe(vault, local_owner(), rec_id, request=True)
    took = None
    while took is None and time.perf_counter() - start < 600:
        with vault.engine.connect() as conn:
            row = pdb.get(conn, rec_id)
        if row is not None and row.state in ("partial", "ready"):  # a poster alone does not play
            took = time.perf_counter() - start
        else:
            time.sleep(0.05)
    stop.set()
    thread.join()
    assert took is not None
    return took


class Background:
    """Runs ``step`` again and again in a thread until stopped."""

    def __init__(self, step: Any) -> None:
        self.step, self.stop = step, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.step()

    def __enter__(self) -> "Background":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def ingest_rate(where: Path, tree: Path, size: int) -> float:
    vault = new_vault(where)
    try:
        drop_caches()
        start = time.perf_counter()
        ingest_path(vault, tree, actor=Actor.local())
        return size / 1e6 / (time.perf_counter() - start)
    finally:
        vault.close()
        shutil.rmtree(vault.layout.root, ignore_errors=True)


@dataclass
class ClipResult:
    seconds: int
    vaultd_s: float
    bare_s: float
    vaultd_cpu_s: float
    bare_cpu_s: float
    storage_pct: float
    first_s: float


def bench_clip(seconds: int, work: Path, tree: Path, tree_bytes: int, extra: str, repeat: int,
               full: bool) -> ClipResult:
    """``full``: also the bare ffmpeg baseline."""
    clip = make_clip(seconds)
    vault = new_vault(work, extra)
    nan = float("nan")
    try:
        rec_id = ingest_clip(vault, clip)
        ours, bare = [], []
        for _ in range(repeat if full else 1):  # alternating, so that both meet the same load
            ours.append(vaultd_job(vault, rec_id))
            if full:
                bare.append(bare_commands(vault, rec_id))
        wall, cpu = statistics.median(t for t, _c in ours), statistics.median(c for _t, c in ours)
        bare_wall = statistics.median(t for t, _c in bare) if bare else nan
        bare_cpu = statistics.median(c for _t, c in bare) if bare else nan
        note(f"{seconds} s clip: vaultd {wall:.1f} s ({cpu:.1f} s CPU), bare ffmpeg {bare_wall:.1f} s "
             f"({bare_cpu:.1f} s CPU)")
        pct = storage_pct(vault, rec_id)
        first = first_playable(vault, rec_id)
        note(f"{seconds} s clip: first playable part after {first:.2f} s")
        return ClipResult(seconds, wall, bare_wall, cpu, bare_cpu, pct, first)
    finally:
        vault.close()
        shutil.rmtree(vault.layout.root, ignore_errors=True)


@dataclass
class Together:
    """Ingest and previews side by side in the shipped default mode, against ingest alone."""

    alone_mb_s: list[float]  # one per round
    beside_mb_s: list[float]  # per round: the median of the ingests that ended while the preview was made
    preview_s: list[float]  # per round: the 60 s clip's whole preview, queued to done
    ingests: int  # how many ingests ended beside a preview in all

    @property
    def ratios(self) -> list[float]:
        return [b / a for a, b in zip(self.alone_mb_s, self.beside_mb_s)]


def together(work: Path, tree: Path, tree_bytes: int, extra: str, rounds: int) -> Together:
    """Per round: ingest alone once; then the daemon's preview service (default workers and
    gate, told that a camera is being ingested while each ingest runs) makes the 60 s clip's
    preview while ingest runs back to back beside it."""
    ingest_rate(work, tree, tree_bytes)  # warm-up: the first run pays for imports and the tree's metadata
    vault = new_vault(work, extra)
    result = Together([], [], [], 0)
    try:
        rec_id = ingest_clip(vault, make_clip(60))
        for _ in range(rounds):
            result.alone_mb_s.append(ingest_rate(work, tree, tree_bytes))
            took, rates = _beside_round(work, tree, tree_bytes, vault, rec_id)
            result.preview_s.append(took)
            result.beside_mb_s.append(statistics.median(rates))
            result.ingests += len(rates)
            note(f"round: ingest alone {result.alone_mb_s[-1]:.0f} MB/s; beside a preview "
                 f"{[round(r) for r in rates]} MB/s; the preview took {took:.1f} s")
    finally:
        vault.close()
        shutil.rmtree(vault.layout.root, ignore_errors=True)
    return result


def _beside_round(work: Path, tree: Path, tree_bytes: int, vault: Vault, rec_id: str
                  ) -> tuple[float, list[float]]:
    ingesting = threading.Event()
    ended: list[tuple[float, float]] = []  # (when it ended, MB/s)

    def one_ingest() -> None:
        ingesting.set()  # what the daemon's sessions tell the gate
        try:
            rate = ingest_rate(work, tree, tree_bytes)
        finally:
            ingesting.clear()
        ended.append((time.perf_counter(), rate))

    service = PreviewService(vault, busy=ingesting.is_set)  # default workers, priority and gate
    _idle(vault, rec_id)
    with Background(one_ingest):
        time.sleep(1.0)  # ingest is under way
        service.start()
        try:
            start = time.perf_counter()
            preview.rebuild(vault, local_owner(), rec_id)
            job = _wait_job(vault, rec_id, lambda j: j is not None and j.state in ("done", "failed"), 900)
            done = time.perf_counter()
            assert job is not None and job.state == "done", job
        finally:
            service.stop()
    rates = [rate for at, rate in ended if start <= at <= done] or [rate for _at, rate in ended]
    return done - start, rates


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    extra = "".join(f"{k} = {_toml(v)}\n" for k, v in
                    (("preset", args.preset), ("fps", args.fps), ("x264_params", args.x264_params),
                     ("audio_copy", args.audio_copy), ("ingest_run_pct", args.ingest_run_pct),
                     ("pause_during_ingest", args.pause_during_ingest)) if v is not None)
    # BENCH_CONFIG ends in its [preview] table: the overrides go under it
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="previews_bench_", dir="/tmp"))
    busy = OtherCpu()
    try:
        tree = make_large_tree(CACHE / "ingest_tree", args.ingest_mb * 1_000_000, 8)
        results = [bench_clip(60, work, tree.root, tree.total_bytes, extra, args.repeat, True)]
        if args.long:  # the 10-minute clip: speed alone, storage and the first playable part
            results.append(bench_clip(600, work, tree.root, tree.total_bytes, extra, 1, False))
        both = together(work, tree.root, tree.total_bytes, extra, max(1, args.repeat))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    share = busy.share()
    report = {"machine": machine(), "revision": revision(REPO), "other_cpu_share": share,
              "config_extra": extra, "clips": [r.__dict__ for r in results],
              "together": {**both.__dict__, "ratios": both.ratios}}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    rows = []
    for r in results:
        if r.bare_s != r.bare_s:  # nan: the long clip measures less
            rows += [[f"{r.seconds} s", "x real time, alone", f"{r.seconds / r.vaultd_s:.1f}x", ">= 4x",
                      _verdict(r.seconds / r.vaultd_s >= TARGETS["realtime"])],
                     [f"{r.seconds} s", "storage, % of original", f"{r.storage_pct:.1f}%", "-", "-"],
                     [f"{r.seconds} s", "first playable part, s", f"{r.first_s:.2f}", "< 5 s",
                      _verdict(r.first_s < TARGETS["first_s"])]]
            continue
        rows += [
            [f"{r.seconds} s", "vaultd / bare ffmpeg (wall)", f"{r.bare_s / r.vaultd_s:.2f}x", ">= 0.95x",
             _verdict(r.bare_s / r.vaultd_s >= TARGETS["overhead"])],
            [f"{r.seconds} s", "vaultd / bare ffmpeg (CPU)", f"{r.bare_cpu_s / r.vaultd_cpu_s:.2f}x", ">= 0.95x",
             _verdict(r.bare_cpu_s / r.vaultd_cpu_s >= TARGETS["overhead"])],
            [f"{r.seconds} s", "x real time, alone", f"{r.seconds / r.vaultd_s:.1f}x", ">= 4x",
             _verdict(r.seconds / r.vaultd_s >= TARGETS["realtime"])],
            [f"{r.seconds} s", "storage, % of original", f"{r.storage_pct:.1f}%", "-", "-"],
            [f"{r.seconds} s", "first playable part, s", f"{r.first_s:.2f}", "< 5 s" if r.seconds >= 600 else "-",
             _verdict(r.first_s < TARGETS["first_s"]) if r.seconds >= 600 else "-"],
        ]
    speed = statistics.median(60 / t for t in both.preview_s)
    ratio = statistics.median(both.ratios)
    rows.append(["60 s", "x real time, ingest beside (default mode)",
                 f"{speed:.1f}x ({_spread(60, both.preview_s)})", ">= 4x", _verdict(speed >= TARGETS["realtime"])])
    rows.append(["ingest", "with previews / alone (default mode)",
                 f"{ratio:.2f}x ({min(both.ratios):.2f}-{max(both.ratios):.2f}x)", ">= 0.9x",
                 _verdict(ratio >= TARGETS["ingest"])])
    print(table(["clip", "measure", "value", "target", "verdict"], rows))
    print(f"\nboth in one mode: {_verdict(speed >= TARGETS['realtime'] and ratio >= TARGETS['ingest'])}; "
          f"ingest alone {statistics.median(both.alone_mb_s):.0f} MB/s "
          f"({min(both.alone_mb_s):.0f}-{max(both.alone_mb_s):.0f}), beside previews "
          f"{statistics.median(both.beside_mb_s):.0f} MB/s ({both.ingests} ingests over {len(both.preview_s)} "
          f"previews); preview settings: {extra.strip() or DEFAULTS}")
    warning = busy_note(share, "during the run")
    if warning:
        print(warning)
    print(f"machine: {report['machine']}; {report['revision']}")
    return 0


def _toml(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else json.dumps(value)


def _spread(seconds: int, runs: list[float]) -> str:
    speeds = sorted(seconds / r for r in runs)
    return f"{speeds[0]:.1f}-{speeds[-1]:.1f}x over {len(speeds)} runs"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


if __name__ == "__main__":
    raise SystemExit(main())
