"""Shared helpers for the benchmarks: trees, cache state, timing, tables.

Nothing here imports vaultd, so a benchmark can measure its baselines even
while vaultd is broken. Rates are decimal: 1 MB = 10**6 bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

MB = 1_000_000
MiB = 1 << 20
GiB = 1 << 30
BLOCK_BYTES = 8 * MiB
MANIFEST = "tree.json"

CAMERA_SERIAL = "3201001"
OFFICER_ID = "012345"
FIRST_CLIP = datetime(2026, 11, 21, 8, 30, 0)


# -- messages -------------------------------------------------------------------

def note(text: str) -> None:
    """Progress for the person watching: stderr, so stdout stays the result."""
    print(text, file=sys.stderr, flush=True)


# -- trees ------------------------------------------------------------------------

@dataclass(frozen=True)
class Tree:
    """A generated source tree: where it is and what is in it."""

    root: Path
    kind: str  # "large" | "small"
    files: int
    total_bytes: int


def camera_name(seq: int, when: datetime, ext: str) -> str:
    """``<serial>_<officer>_<YYYYMMDDhhmmss>_<seq>.<ext>``, as the common cameras write."""
    return f"{CAMERA_SERIAL}_{OFFICER_ID}_{when:%Y%m%d%H%M%S}_{seq:04d}.{ext}"


class UniqueBytes:
    """Incompressible, never-repeating blocks without paying os.urandom per byte.

    One random block is made once; block ``n`` is that block rotated by an
    offset derived from ``n`` (not a multiple of the page size), with ``n``
    written over its first 16 bytes. No two blocks, and no two 4 KiB pages at
    the same offset, are alike.
    """

    def __init__(self, block_bytes: int = BLOCK_BYTES) -> None:
        self._base = os.urandom(block_bytes)
        self._count = 0

    def block(self, size: int) -> bytes:
        n = self._count
        self._count += 1
        base = self._base
        k = (n * 4099 + 1) % len(base)
        rotated = base[k:] + base[:k]
        return (n.to_bytes(16, "big") + rotated[16:size])[:size]


def _write_file(path: Path, size: int, source: UniqueBytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            chunk = source.block(min(left, BLOCK_BYTES))
            fh.write(chunk)
            left -= len(chunk)


def _jpeg_blob(size: int, source: UniqueBytes) -> bytes:
    """Starts FFD8 FFE0 (SOI + APP0), ends FFD9 (EOI), unique random middle."""
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    middle = source.block(max(0, size - len(head) - 2))
    return head + middle + b"\xff\xd9"


def _manifest(root: Path) -> Path:
    # beside the tree, not in it, so it is never copied or ingested
    return root.parent / f"{root.name}.{MANIFEST}"


def _load_tree(root: Path, params: dict[str, Any]) -> Tree | None:
    """The tree already at ``root`` when it was made with the same ``params``."""
    try:
        data = json.loads(_manifest(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("params") != params or not root.is_dir():
        return None
    return Tree(root, data["kind"], data["files"], data["total_bytes"])


def _save_manifest(tree: Tree, params: dict[str, Any]) -> None:
    data = {"params": params, "kind": tree.kind, "files": tree.files,
            "total_bytes": tree.total_bytes}
    _manifest(tree.root).write_text(json.dumps(data), encoding="utf-8")


def _clear(root: Path) -> None:
    _manifest(root).unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)


def make_large_tree(root: Path, total_bytes: int, files: int) -> Tree:
    """``DCIM/<date>/<camera name>.MP4`` files of random bytes, ``total_bytes`` in all."""
    params = {"kind": "large", "total_bytes": total_bytes, "files": files}
    found = _load_tree(root, params)
    if found:
        note(f"reusing large tree {root}")
        return found
    _clear(root)
    source = UniqueBytes()
    per_file, extra = divmod(total_bytes, files)
    for i in range(files):
        when = FIRST_CLIP + timedelta(minutes=5 * i)
        size = per_file + (1 if i < extra else 0)
        _write_file(root / "DCIM" / f"{when:%Y%m%d}" / camera_name(i + 1, when, "MP4"), size, source)
    tree = Tree(root, "large", files, total_bytes)
    _save_manifest(tree, params)
    return tree


def make_small_tree(root: Path, files: int, file_bytes: int) -> Tree:
    """``PHOTO/<date>/<camera name>.JPG`` JPEG-looking blobs of ``file_bytes`` each."""
    params = {"kind": "small", "files": files, "file_bytes": file_bytes}
    found = _load_tree(root, params)
    if found:
        note(f"reusing small tree {root}")
        return found
    _clear(root)
    source = UniqueBytes()
    for i in range(files):
        when = FIRST_CLIP + timedelta(seconds=30 * i)
        path = root / "PHOTO" / f"{when:%Y%m%d}" / camera_name(i + 1, when, "JPG")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_jpeg_blob(file_bytes, source))
    tree = Tree(root, "small", files, files * file_bytes)
    _save_manifest(tree, params)
    return tree


# -- cache state -------------------------------------------------------------------

def sync() -> None:
    subprocess.run(["sync"], check=True)


def drop_caches() -> bool:
    """sync, then drop the page cache when root. Returns whether it was dropped."""
    sync()
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as fh:
            fh.write("3\n")
    except OSError:
        return False
    return True


def remove_tree(path: Path) -> None:
    """Remove what a run wrote (read-only files included), then sync."""
    if path.exists():
        subprocess.run(["rm", "-rf", "--", str(path)], check=True)
    sync()


def same_filesystem(*paths: Path) -> bool:
    return len({os.stat(p).st_dev for p in paths}) == 1


# -- timing --------------------------------------------------------------------------

def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds that ``fn()`` took."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_checked(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(list(argv), capture_output=True, check=False, **kwargs)
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace")[-2000:]
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: {tail}")
    return done


@dataclass
class Measure:
    """Every timing of one contender on one tree."""

    tree: str
    contender: str
    total_bytes: int
    files: int
    seconds: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def mb_per_s(self) -> float:
        return self.total_bytes / MB / self.median_s

    @property
    def files_per_s(self) -> float:
        return self.files / self.median_s

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(median_s=self.median_s, mb_per_s=self.mb_per_s, files_per_s=self.files_per_s)
        return out


@dataclass(frozen=True)
class Ratio:
    """``subject`` rate over ``baseline`` rate, with an optional target."""

    tree: str
    subject: str
    baseline: str
    value: float
    target: float | None

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "-"
        return "PASS" if self.value >= self.target else "FAIL"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def ratio(measures: dict[tuple[str, str], Measure], tree: str, subject: str, baseline: str,
          target: float | None) -> Ratio:
    a, b = measures[(tree, subject)], measures[(tree, baseline)]
    return Ratio(tree, subject, baseline, a.mb_per_s / b.mb_per_s, target)


# -- printing ----------------------------------------------------------------------------

def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain text table: first column left-aligned, the rest right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def measures_table(measures: Iterable[Measure]) -> str:
    return table(
        ["tree", "contender", "runs", "median s", "MB/s", "files/s", "min s", "max s"],
        [[m.tree, m.contender, len(m.seconds), m.median_s, m.mb_per_s, m.files_per_s,
          min(m.seconds), max(m.seconds)] for m in measures])


def ratios_table(ratios: Iterable[Ratio]) -> str:
    return table(
        ["tree", "ratio", "value", "target", "verdict"],
        [[r.tree, f"{r.subject} / {r.baseline}", _times(r.value),
          f">= {_times(r.target)}" if r.target is not None else "-", r.verdict] for r in ratios])


def _times(value: float) -> str:
    """2 decimals, or 2 significant digits below 0.1 so that 0.004x does not read 0.00x."""
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.2g}x"


def revision(repo: Path, package: str = "vaultd") -> str:
    """``git`` commit of ``repo`` (``+dirty`` if the tree differs) and a digest of
    ``package``'s sources, so that code changed mid-run shows even uncommitted."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = "+dirty" if git("status", "--porcelain") else ""
    h = hashlib.sha256()
    for path in sorted((repo / package).rglob("*.py")):
        h.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes())
    return f"{commit}{dirty} {package}-src:{h.hexdigest()[:12]}"


_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
_PF_KTHREAD = 0x00200000


@dataclass(frozen=True)
class _Proc:
    ppid: int
    cpu_s: float
    started_s: float  # since boot
    kernel: bool


def _procs() -> dict[int, _Proc]:
    out: dict[int, _Proc] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                rest = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        out[int(entry.name)] = _Proc(
            ppid=int(rest[1]), cpu_s=(int(rest[11]) + int(rest[12])) * _TICK_S,
            started_s=int(rest[19]) * _TICK_S, kernel=bool(int(rest[6]) & _PF_KTHREAD))
    return out


def _uptime_s() -> float:
    return float(Path("/proc/uptime").read_text(encoding="ascii").split()[0])


def _descendants(root: int, procs: dict[int, _Proc]) -> set[int]:
    ours = {root}
    for pid in procs:
        chain, p = [], pid
        while p not in ours and p in procs and p > 1:
            chain.append(p)
            p = procs[p].ppid
        if p in ours:
            ours.update(chain)
    return ours


class OtherCpu:
    """CPU that other user processes (not this one, not its children, not the
    kernel's threads) use while this is open; /proc is sampled twice a second."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self._interval_s = interval_s
        self._since_s = _uptime_s()
        self._wall = time.monotonic()
        self._seen: dict[int, float] = {}
        self._other_s = 0.0
        self._result: float | None = None
        self._stop = threading.Event()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="other-cpu", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _sample(self) -> None:
        procs = _procs()
        ours = _descendants(os.getpid(), procs)
        for pid, proc in procs.items():
            if proc.kernel or pid in ours:
                continue
            before = self._seen.get(pid)
            if before is None:  # first seen: count it all only if it started after us
                before = 0.0 if proc.started_s >= self._since_s else proc.cpu_s
            self._other_s += max(0.0, proc.cpu_s - before)
            self._seen[pid] = proc.cpu_s

    def share(self) -> float:
        """Stop sampling; others' CPU seconds per wall second, as a share of all CPUs."""
        if self._result is None:
            self._stop.set()
            self._thread.join()
            self._sample()
            wall = max(time.monotonic() - self._wall, 1e-9)
            self._result = self._other_s / (wall * (os.cpu_count() or 1))
        return self._result


def idle_check(seconds: float = 3.0) -> float:
    """Share of all CPUs that other processes use over ``seconds``."""
    probe = OtherCpu()
    time.sleep(seconds)
    return probe.share()


def busy_note(share: float, when: str) -> str | None:
    if share >= 0.15:
        return (f"WARNING: other work used {share:.0%} of the CPUs {when}; "
                "the figures are not comparable with a quiet run")
    return None


def machine() -> dict[str, Any]:
    """What the figures were measured on, for the record."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": model, "python": sys.version.split()[0],
            "at": datetime.now().astimezone().isoformat(timespec="seconds")}
