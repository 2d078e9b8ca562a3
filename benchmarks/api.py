"""HTTP API cost: metadata search and original downloads, against the services they front.

  search     GET /api/v1/recordings as a supervisor whose unit holds N synthetic
             recordings (--recordings, 100,000; rows inserted in bulk), through
             uvicorn on 127.0.0.1 with a keep-alive httpx client, one request at
             a time: p50/p95/max latency and requests/s; then --clients clients
             at once (requests/s). Against the same queries run in-process
             through evidence.list_recordings (same principal, same filters, same
             run). Queries rotate: first page, a one-day window, one device, one
             officer's videos, a page at a random offset below 2000; limit 100.
  download   GET /api/v1/recordings/{id}/original of one --original-mib (256) MiB
             original, streamed by httpx over 127.0.0.1 (one client made before
             the timing: making one costs ~20 ms of TLS setup that is not the
             server's; the body read as it arrives, since re-chunking it with
             iter_raw(n) copies every byte twice and halves httpx's rate), and
             by curl (a client that is not Python, when installed), against a
             one-pass read + SHA-256 of the same store file (1 MiB chunks,
             hashlib): the server hashes a whole download on the way (its last
             chunk goes only once the hash matches), so a download cannot beat
             reading and hashing the same bytes, and that is the baseline. A
             plain read is shown too; "bytes=0-" fetches the same bytes as a
             206, which is not hashed, to show what the check costs. Cold (page
             cache dropped before every run, when root can) and warm; the target
             is judged cold when there is a cold run, as in the other benchmarks.

The server runs in its own process (vaultd.api.serve), so client and server
do not share an interpreter. Targets: download >= 0.85x the read + SHA-256
rate, for httpx and for curl; search p95 < 50 ms at 100k recordings.

    .venv/bin/python benchmarks/api.py --quick
    .venv/bin/python benchmarks/api.py
    .venv/bin/python benchmarks/api.py --only download --repeat 7
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from _common import MB, MiB, OtherCpu, UniqueBytes, busy_note, drop_caches, machine, note, revision, table

TARGET_DOWNLOAD_RATIO = 0.85
BASELINE = "read + SHA-256"
JUDGED = ("HTTP original (httpx)", "HTTP original (curl)")
TARGET_SEARCH_P95_MS = 50.0
UNIT = "一大队"
SERIAL = "3201001"
OFFICER = "012345"
DEVICES = 40
OFFICERS = 200
CHUNK = MiB
BENCH_CONFIG = "[ingest]\nsettle_s = 0.0\nreserve_bytes = 0\n"
DAY0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recordings", type=int, help="synthetic recordings in the catalog (100,000; --quick: 20,000)")
    p.add_argument("--queries", type=int, help="timed search requests per contender (1000; --quick: 200)")
    p.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients for the throughput run")
    p.add_argument("--original-mib", type=int, help="size of the downloaded original (256; --quick: 64)")
    p.add_argument("--repeat", type=int, help="downloads per contender; the median is reported (5; --quick: 2)")
    p.add_argument("--work", type=Path, help="work folder (default: a new one under /var/tmp, removed)")
    p.add_argument("--quick", action="store_true", help="smoke run: 20k recordings, 64 MiB original")
    p.add_argument("--only", choices=("search", "download"), help="one part only (--only download: no synthetic rows)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    args = p.parse_args(argv)
    d = ({"recordings": 20_000, "queries": 200, "original_mib": 64, "repeat": 2} if args.quick else
         {"recordings": 100_000, "queries": 1000, "original_mib": 256, "repeat": 5})
    for k, v in d.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.only == "download":
        args.recordings = 0
    if min(args.recordings or 1, args.queries, args.clients, args.original_mib, args.repeat) < 1:
        p.error("counts and sizes must be at least 1")
    return args


# -- the vault ----------------------------------------------------------------------------

@dataclasses.dataclass
class Setup:
    home: Path
    original_id: str
    original_path: Path
    original_bytes: int
    original_sha256: str
    supervisor_token: str
    officer_token: str
    grant_id: str
    build_s: float


def build(work: Path, recordings: int, original_mib: int) -> Setup:
    """A vault with a supervisor and an officer of one unit, the officer's big
    original (ingested), N synthetic rows, and a grant to read the original."""
    from vaultd import approvals, evidence, people
    from vaultd.access import RequestKind, Role
    from vaultd.catalog.recordings import RecordingFilter
    from vaultd.ingest import ingest_path
    from vaultd.model import Actor
    from vaultd.vault import init_vault, open_vault

    start = time.perf_counter()
    home = work / "home"
    init_vault(home)
    (home / "vaultd.toml").write_text(BENCH_CONFIG, encoding="utf-8")
    vault = open_vault(home)
    owner = people.local_owner()
    for user in (people.NewUser("zhao", (Role.SUPERVISOR,), unit=UNIT),
                 people.NewUser("wang", (Role.OFFICER,), unit=UNIT, officer_number=OFFICER)):
        people.add_user(vault, owner, user, None, "cli")
    note(f"writing a {original_mib} MiB original and ingesting it ...")
    write_original(work / "camera" / "DCIM" / f"{SERIAL}_{OFFICER}_20261121083000_0001.MP4", original_mib)
    ingest_path(vault, work / "camera", actor=Actor.local())
    shutil.rmtree(work / "camera")
    (rec,) = evidence.list_recordings(vault, owner, RecordingFilter())
    note(f"inserting {recordings:,} synthetic recordings of unit {UNIT} ...")
    insert_synthetic(vault, rec, recordings)
    from vaultd.catalog import people as people_db

    with vault.engine.begin() as conn:  # as if each had signed in (people.create_token refuses it for them)
        tokens = {n: people._issue(conn, people_db.user_by_name(conn, n), 1, "login").secret  # type: ignore[arg-type]
                  for n in ("zhao", "wang")}
    req = approvals.request_access(vault, people.authenticate(vault, tokens["wang"], "bench"),
                                   RequestKind.VIEW_ORIGINAL, [rec.id], "benchmark", notice=None,
                                   expires_days=1, uses=1000, via="api")
    grant = approvals.approve(vault, people.authenticate(vault, tokens["zhao"], "bench"), req.id, "api")
    path = vault.store.object_path(rec.sha256)
    vault.close()
    return Setup(home, rec.id, path, rec.size_bytes, rec.sha256, tokens["zhao"], tokens["wang"], grant.id,
                 time.perf_counter() - start)


def write_original(path: Path, mib: int) -> None:
    """``mib`` MiB of incompressible, never-repeating bytes."""
    path.parent.mkdir(parents=True)
    blocks = UniqueBytes()
    with open(path, "wb") as f:
        for first in range(0, mib, 8):
            f.write(blocks.block(min(8, mib - first) * MiB))


def insert_synthetic(vault: Any, template: Any, n: int) -> None:
    """N rows like ``template``, spread over a year, 40 devices and 200 officers of one unit."""
    from vaultd.catalog import recordings as rec_db
    from vaultd.model import MediaType

    rng = random.Random(17)
    kinds = [MediaType.VIDEO] * 6 + [MediaType.PHOTO] * 3 + [MediaType.AUDIO]
    batch = 10_000
    for first in range(0, n, batch):
        with vault.engine.begin() as conn:
            for i in range(first, min(n, first + batch)):
                start = DAY0 + timedelta(seconds=rng.randrange(365 * 86400))
                rec_db.insert(conn, dataclasses.replace(
                    template, id=rec_db.new_id(), sha256=hashlib.sha256(b"synthetic %d" % i).hexdigest(),
                    size_bytes=rng.randrange(1 << 20, 1 << 30), media_type=rng.choice(kinds),
                    original_name=f"{SERIAL}_{i:06d}.MP4", original_name_raw=f"{SERIAL}_{i:06d}.MP4".encode(),
                    source_path=f"DCIM/{SERIAL}_{i:06d}.MP4", device_serial=f"D{i % DEVICES:03d}",
                    officer_id=f"{i % OFFICERS:06d}", recorded_start=start,
                    recorded_end=start + timedelta(minutes=5), ingested_at=start + timedelta(hours=3),
                    ingest_deadline=start + timedelta(hours=24), unit=UNIT))


# -- queries --------------------------------------------------------------------------

def queries(count: int) -> list[dict[str, Any]]:
    rng = random.Random(42)
    out: list[dict[str, Any]] = []
    for i in range(count):
        kind = i % 5
        if kind == 0:
            out.append({})
        elif kind == 1:
            day = DAY0 + timedelta(days=rng.randrange(365))
            out.append({"since": day.isoformat(), "until": (day + timedelta(days=1)).isoformat()})
        elif kind == 2:
            out.append({"device": f"D{rng.randrange(DEVICES):03d}"})
        elif kind == 3:
            out.append({"officer": f"{rng.randrange(OFFICERS):06d}", "media_type": "video"})
        else:
            out.append({"offset": rng.randrange(2000)})
    return out


def service_filter(q: dict[str, Any]) -> Any:
    from vaultd.catalog.recordings import RecordingFilter
    from vaultd.model import MediaType

    def when(key: str) -> datetime | None:
        return datetime.fromisoformat(q[key]) if key in q else None

    return RecordingFilter(device_serial=q.get("device"), officer_id=q.get("officer"), since=when("since"),
                           until=when("until"), media_type=MediaType(q["media_type"]) if "media_type" in q
                           else None, limit=100, offset=q.get("offset", 0))


@dataclasses.dataclass
class Latencies:
    contender: str
    seconds: list[float]
    wall_s: float
    returned: int

    def row(self) -> list[object]:
        ms = sorted(s * 1000 for s in self.seconds)
        p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
        return [self.contender, len(ms), len(ms) / self.wall_s, statistics.median(ms), p95, ms[-1],
                self.returned / len(ms)]

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(["contender", "requests", "per_s", "p50_ms", "p95_ms", "max_ms", "mean_items"],
                        self.row()))


def timed_each(name: str, qs: list[dict[str, Any]], call: Callable[[dict[str, Any]], int]) -> Latencies:
    for q in qs[:20]:  # warm-up, not timed
        call(q)
    times, returned = [], 0
    wall = time.perf_counter()
    for q in qs:
        t = time.perf_counter()
        returned += call(q)
        times.append(time.perf_counter() - t)
    return Latencies(name, times, time.perf_counter() - wall, returned)


def search(setup: Setup, base: str, count: int, clients: int) -> list[Latencies]:
    import httpx

    from vaultd import evidence, people
    from vaultd.vault import open_vault

    qs = queries(count)
    headers = {"Authorization": f"Bearer {setup.supervisor_token}"}
    vault = open_vault(setup.home)
    zhao = people.authenticate(vault, setup.supervisor_token, "bench")
    try:
        direct = timed_each("service list_recordings", qs,
                            lambda q: len(evidence.list_recordings(vault, zhao, service_filter(q), "api")))
    finally:
        vault.close()
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        def over_http(q: dict[str, Any]) -> int:
            r = client.get("/api/v1/recordings", params={**q, "limit": 100})
            r.raise_for_status()
            return len(r.json()["items"])

        http = timed_each("HTTP GET /recordings", qs, over_http)
    return [direct, http, concurrent(base, headers, qs, clients)]


def concurrent(base: str, headers: dict[str, str], qs: list[dict[str, Any]], clients: int) -> Latencies:
    import httpx

    times: list[float] = []
    returned = [0]
    lock = threading.Lock()

    def worker(part: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for q in part:
                t = time.perf_counter()
                r = client.get("/api/v1/recordings", params={**q, "limit": 100})
                r.raise_for_status()
                with lock:
                    times.append(time.perf_counter() - t)
                    returned[0] += len(r.json()["items"])

    threads = [threading.Thread(target=worker, args=(qs[i::clients],)) for i in range(clients)]
    wall = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Latencies(f"HTTP, {clients} clients at once", times, time.perf_counter() - wall, returned[0])


# -- downloads -------------------------------------------------------------------------

def plain_read(path: Path) -> int:
    buf = bytearray(CHUNK)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            total += n
    return total


def read_sha256(path: Path) -> int:
    """The baseline: one pass over the file, each chunk hashed as it is read."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    h = hashlib.sha256()
    total = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            total += n
    h.hexdigest()
    return total


def http_download(client: Any, setup: Setup, whole: bool = True) -> int:
    """The original over HTTP; ``whole=False`` asks for ``bytes=0-`` (the same
    bytes as 206, which the server does not hash on the way)."""
    total = 0
    headers = {"Authorization": f"Bearer {setup.officer_token}", **({} if whole else {"Range": "bytes=0-"})}
    with client.stream("GET", f"/api/v1/recordings/{setup.original_id}/original",
                       params={"reason": "benchmark", "grant": setup.grant_id}, headers=headers) as r:
        r.raise_for_status()
        for chunk in r.iter_raw():
            total += len(chunk)
    return total


def curl_download(base: str, setup: Setup, whole: bool = True) -> int:
    url = (f"{base}/api/v1/recordings/{setup.original_id}/original?reason=benchmark&grant={setup.grant_id}")
    ranged = [] if whole else ["-H", "Range: bytes=0-"]
    done = subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download}",
                           "-H", f"Authorization: Bearer {setup.officer_token}", *ranged, url],
                          capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


def downloads(setup: Setup, base: str, repeat: int, cold: bool) -> dict[str, list[float]]:
    """Seconds per run of each contender; ``cold``: the page cache dropped before each run."""
    import httpx

    with httpx.Client(base_url=base, timeout=120) as client:
        return _downloads(setup, base, client, repeat, cold)


def _downloads(setup: Setup, base: str, client: Any, repeat: int, cold: bool) -> dict[str, list[float]]:
    contenders: dict[str, Callable[[], int]] = {
        "plain read": lambda: plain_read(setup.original_path),
        BASELINE: lambda: read_sha256(setup.original_path),
        "HTTP original (httpx)": lambda: http_download(client, setup),
        "HTTP bytes=0- (httpx, unhashed)": lambda: http_download(client, setup, whole=False),
    }
    if shutil.which("curl"):
        contenders["HTTP original (curl)"] = lambda: curl_download(base, setup)
        contenders["HTTP bytes=0- (curl, unhashed)"] = lambda: curl_download(base, setup, whole=False)
    plain_read(setup.original_path)  # warm the page cache for everyone
    out: dict[str, list[float]] = {name: [] for name in contenders}
    for r in range(repeat):
        names = list(contenders)
        names = names[r % len(names):] + names[:r % len(names)]  # rotate the order
        for name in names:
            if cold and not drop_caches():
                raise RuntimeError("cannot drop the page cache")
            t = time.perf_counter()
            got = contenders[name]()
            out[name].append(time.perf_counter() - t)
            if got != setup.original_bytes:
                raise RuntimeError(f"{name}: {got} bytes, expected {setup.original_bytes}")
    return out


# -- the server -------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(home: Path) -> Iterator[str]:
    import httpx

    port = free_port()
    code = ("import sys; from pathlib import Path; from vaultd.api import serve; "
            "from vaultd.vault import open_vault; serve(open_vault(Path(sys.argv[1])), sys.argv[2])")
    proc = subprocess.Popen([sys.executable, "-c", code, str(home), f"127.0.0.1:{port}"])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/api/v1/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the API server did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- main ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="vaultd-bench-api-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    repo = Path(__file__).resolve().parent.parent
    try:
        setup = build(work, args.recordings, args.original_mib)
        note(f"built in {setup.build_s:.1f} s; starting the server ...")
        load = OtherCpu()
        with server(setup.home) as base:
            lat: list[Latencies] = []
            if args.only != "download":
                note(f"search: {args.queries} queries per contender ...")
                lat = search(setup, base, args.queries, args.clients)
            cold = drop_caches()
            dl = {}
            for phase in (["cold", "warm"] if cold else ["warm"]) if args.only != "search" else []:
                note(f"downloads ({phase}): {args.repeat} x {args.original_mib} MiB per contender ...")
                dl[phase] = downloads(setup, base, args.repeat, cold=phase == "cold")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    share = load.share()
    rates = {phase: {name: setup.original_bytes / MB / statistics.median(s) for name, s in runs.items()}
             for phase, runs in dl.items()}
    judged = "cold" if "cold" in rates else "warm"
    verdicts: list[list[object]] = []
    if lat:
        http_p95 = float(lat[1].as_dict()["p95_ms"])
        verdicts.append([f"search p95 at {args.recordings:,} recordings", f"{http_p95:.1f} ms",
                         f"< {TARGET_SEARCH_P95_MS:.0f} ms", "PASS" if http_p95 < TARGET_SEARCH_P95_MS else "FAIL"])
    for phase, r in rates.items():
        for name in r:
            if name == BASELINE:
                continue
            value = r[name] / r[BASELINE]
            target = name in JUDGED and phase == judged
            verdicts.append([f"{name} / {BASELINE}, {phase}", f"{value:.2f}x",
                             f">= {TARGET_DOWNLOAD_RATIO}x" if target else "-",
                             ("PASS" if value >= TARGET_DOWNLOAD_RATIO else "FAIL") if target else "-"])
    result = {"machine": machine(), "revision": revision(repo), "recordings": args.recordings,
              "page_cache_dropped": "cold" in rates, "search": [x.as_dict() for x in lat],
              "download": {phase: {name: {"seconds": s, "mb_per_s": rates[phase][name]} for name, s in runs.items()}
                           for phase, runs in dl.items()},
              "original_bytes": setup.original_bytes, "verdicts": verdicts, "other_cpu_share": share}
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    warning = busy_note(share, "during the measurements")
    m = result["machine"]
    print(f"vaultd {result['revision']}  on {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, {m['at']}")
    print(f"catalog: {args.recordings:,} recordings of one unit; supervisor token; limit 100; "
          f"page cache dropped before each download run: {'yes' if 'cold' in rates else 'NO'}\n")
    print(f"CPU used by other processes during the measurements: {share:.0%}\n")
    if lat:
        print(table(["search", "requests", "req/s", "p50 ms", "p95 ms", "max ms", "items/req"],
                    [x.row() for x in lat]))
        print()
    if dl:
        print(table([f"download of {args.original_mib} MiB", "cache", "runs", "median s", "MB/s", "min s", "max s"],
                    [[n, phase, len(s), statistics.median(s), rates[phase][n], min(s), max(s)]
                     for phase, runs in dl.items() for n, s in runs.items()]))
        print()
    print(table(["measure", "value", "target", "verdict"], verdicts))
    if warning:
        note(warning)
    return 0


if __name__ == "__main__":
    sys.exit(main())
