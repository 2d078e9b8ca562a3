"""BagIt bags (RFC 8493) with SHA-256 and SHA-512 manifests, written streaming.

The writer copies each payload file once, hashing it with both algorithms in
the same pass (the hashes run on worker threads while the next chunk is
read). Manifest lines are ``<hex>  <path>``, so ``sha256sum -c
manifest-sha256.txt`` works from the bag's folder. Payload names are made
safe by :func:`safe_name` and never need RFC 8493 percent-encoding.

The reader is pure checking: it lists every problem it finds (missing,
extra, changed files, a wrong Payload-Oxum) instead of stopping at the first.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from vaultd.errors import StorageError, UsageError
from vaultd.files import fsync_path
from vaultd.i18n import _

ALGORITHMS = ("sha256", "sha512")
BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
SIGNATURE_DIR = "signature"
UNLISTED_TAG_FILES = frozenset({"tagmanifest-sha256.txt", "tagmanifest-sha512.txt"})
CHUNK = 8 << 20
Progress = Callable[[int], None]

_UNSAFE = re.compile(r'[\x00-\x1f\x7f"*:<>?|\\/%]')


def safe_name(name: str, max_bytes: int = 180) -> str:
    """A file name that every file system, sha256sum and ISO 9660/Joliet take as is."""
    text = _UNSAFE.sub("_", unicodedata.normalize("NFC", name)).strip(" .")
    while len(text.encode("utf-8")) > max_bytes:
        stem, dot, ext = text.rpartition(".")
        text = (stem[:-1] + dot + ext) if dot and stem else text[:-1]
    return text or "_"


@dataclass(frozen=True)
class Digests:
    sha256: str
    sha512: str
    size_bytes: int

    def get(self, algo: str) -> str:
        return self.sha256 if algo == "sha256" else self.sha512


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view):]


def copy_hashing(src_fd: int, dst_fd: int, chunk: int = CHUNK, progress: Progress | None = None) -> Digests:
    """Copy ``src_fd`` to ``dst_fd`` once, computing SHA-256 and SHA-512 on the way.

    SHA-512 and the write run on two worker threads while this thread hashes
    SHA-256 and reads the next chunk into the other buffer (hashlib and
    os.write release the GIL). The disk is kept busy on both ends: the chunk
    after the next is asked for before this one is hashed (``WILLNEED``: its
    read overlaps the hashing instead of waiting after it), and each written
    chunk's writeback starts at once (``DONTNEED`` on dirty pages), so the
    final fsync has little left and export pages do not crowd the cache."""
    _advise(src_fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    _advise(src_fd, 0, 2 * chunk, os.POSIX_FADV_WILLNEED)
    h256, h512 = hashlib.sha256(), hashlib.sha512()
    bufs = (bytearray(chunk), bytearray(chunk))
    size, turn = 0, 0
    pending: tuple[Future[None], Future[None]] | None = None
    with ThreadPoolExecutor(2, thread_name_prefix="vaultd-bag") as pool:
        while True:
            buf = bufs[turn]
            n = os.readv(src_fd, [buf])
            if n:
                _advise(src_fd, size + n + chunk, chunk, os.POSIX_FADV_WILLNEED)
            if pending:
                pending[0].result()
                pending[1].result()
                pending = None
            if n == 0:
                break
            view = memoryview(buf)[:n]
            pending = (pool.submit(h512.update, view), pool.submit(_write_chunk, dst_fd, view, size))
            h256.update(view)
            size += n
            turn ^= 1
            if progress:
                progress(n)
    return Digests(h256.hexdigest(), h512.hexdigest(), size)


def _write_chunk(fd: int, view: memoryview, offset: int) -> None:
    _write_all(fd, view)
    _advise(fd, offset, len(view), os.POSIX_FADV_DONTNEED)  # start its writeback now


def _advise(fd: int, offset: int, length: int, advice: int) -> None:
    try:
        os.posix_fadvise(fd, offset, length, advice)
    except OSError:
        pass  # a hint only


def hash_file(path: Path, algorithms: Iterable[str] = ALGORITHMS, chunk: int = CHUNK,
              progress: Progress | None = None) -> dict[str, str]:
    """Hash a file once with each algorithm (each on its own thread when more than one)."""
    algos = list(algorithms)
    hs = [hashlib.new(a) for a in algos]
    with open(path, "rb", buffering=0) as f:
        try:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError:
            pass
        if len(hs) == 1:
            buf = bytearray(chunk)
            view = memoryview(buf)
            while n := f.readinto(buf):
                hs[0].update(view[:n])
                if progress:
                    progress(n)
        else:
            _hash_parallel(f.fileno(), hs, chunk, progress)
    return {a: h.hexdigest() for a, h in zip(algos, hs)}


def _hash_parallel(fd: int, hs: list[hashlib._Hash], chunk: int, progress: Progress | None) -> None:
    bufs = (bytearray(chunk), bytearray(chunk))
    turn = 0
    pending: list[Future[None]] = []
    with ThreadPoolExecutor(len(hs) - 1) as pool:
        while True:
            buf = bufs[turn]
            n = os.readv(fd, [buf])
            for fut in pending:
                fut.result()
            pending = []
            if n == 0:
                return
            view = memoryview(buf)[:n]
            pending = [pool.submit(h.update, view) for h in hs[1:]]
            hs[0].update(view)
            turn ^= 1
            if progress:
                progress(n)


# -- writing --------------------------------------------------------------------------------

class BagWriter:
    """Builds a bag in a new folder: payload under ``data/``, then :meth:`finish`."""

    def __init__(self, root: Path, chunk_bytes: int = CHUNK) -> None:
        self.root = root
        self.chunk = chunk_bytes
        self.payload: dict[str, Digests] = {}
        self.tags: dict[str, Digests] = {}
        try:
            root.mkdir(parents=True, exist_ok=False)
            (root / "data").mkdir()
        except FileExistsError:
            raise UsageError(_("%s already exists") % root,
                             hint=_("choose a new folder with --out; vaultd never overwrites")) from None
        except OSError as exc:
            raise StorageError(_("cannot create %s: %s") % (root, exc.strerror)) from exc

    def _create(self, rel: str) -> int:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

    def add_stream(self, rel: str, src_fd: int, progress: Progress | None = None) -> Digests:
        """Copy a payload file (``rel`` under ``data/``) from an open fd."""
        dst = self._create(rel)
        try:
            d = copy_hashing(src_fd, dst, self.chunk, progress)
            os.fsync(dst)
        finally:
            os.close(dst)
        self.payload[rel] = d
        return d

    def _put(self, rel: str, data: bytes) -> Digests:
        fd = self._create(rel)
        try:
            _write_all(fd, memoryview(data))
        finally:
            os.close(fd)
        return Digests(hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest(), len(data))

    def add_bytes(self, rel: str, data: bytes) -> Digests:
        if not rel.startswith("data/"):
            raise ValueError(rel)
        self.payload[rel] = self._put(rel, data)
        return self.payload[rel]

    def add_tag(self, rel: str, data: bytes) -> None:
        """A tag file (outside ``data/``), listed in the tag manifests."""
        if rel.startswith("data/") or rel in UNLISTED_TAG_FILES or rel.startswith(SIGNATURE_DIR + "/"):
            raise ValueError(rel)
        self.tags[rel] = self._put(rel, data)

    def finish(self, info: list[tuple[str, str]]) -> bytes:
        """Write bagit.txt, bag-info.txt (with Payload-Oxum), the manifests and tag
        manifests; returns the bytes of tagmanifest-sha256.txt (what gets signed)."""
        total = sum(d.size_bytes for d in self.payload.values())
        lines = [*info, ("Payload-Oxum", f"{total}.{len(self.payload)}")]
        self.tags["bagit.txt"] = self._put("bagit.txt", BAGIT_TXT)
        self.tags["bag-info.txt"] = self._put("bag-info.txt", format_info(lines))
        for algo in ALGORITHMS:
            name = f"manifest-{algo}.txt"
            self.tags[name] = self._put(name, _manifest(self.payload, algo))
        out = b""
        for algo in ALGORITHMS:
            data = _manifest(self.tags, algo)
            self._put(f"tagmanifest-{algo}.txt", data)
            out = data if algo == "sha256" else out
        _fsync_tree(self.root)
        return out


def _manifest(files: dict[str, Digests], algo: str) -> bytes:
    return "".join(f"{files[rel].get(algo)}  {rel}\n" for rel in sorted(files)).encode("utf-8")


def format_info(lines: list[tuple[str, str]]) -> bytes:
    out = []
    for label, value in lines:
        clean = " ".join(str(value).split())  # one line per element: no newlines inside
        out.append(f"{label}: {clean}\n")
    return "".join(out).encode("utf-8")


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, _files in os.walk(root):
        fsync_path(Path(dirpath))


# -- reading and checking -----------------------------------------------------------------

@dataclass
class BagReport:
    """Everything found wrong with a bag, each as one sentence."""

    problems: list[str] = field(default_factory=list)
    info: list[tuple[str, str]] = field(default_factory=list)
    payload_files: int = 0
    payload_bytes: int = 0
    manifests: dict[str, dict[str, str]] = field(default_factory=dict)  # algo -> path -> hex
    tagmanifests: dict[str, dict[str, str]] = field(default_factory=dict)

    def value(self, label: str) -> str | None:
        return next((v for k, v in self.info if k == label), None)


def parse_manifest(data: bytes, name: str, problems: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(_("%s is not UTF-8") % name)
        return out
    for number, line in enumerate(text.splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or not re.fullmatch(r"[0-9a-f]+", digest) or not rel:
            problems.append(_("%s line %d is not '<hash>  <path>'") % (name, number))
            continue
        rel = rel.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")
        if rel in out:
            problems.append(_("%s lists %s twice") % (name, rel))
        if rel.startswith("/") or ".." in Path(rel).parts:
            problems.append(_("%s names a path outside the bag: %s") % (name, rel))
            continue
        out[rel] = digest
    return out


def parse_info(data: bytes) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
        elif ":" in line:
            k, _sep, v = line.partition(":")
            out.append((k.strip(), v.strip()))
    return out


def _files_under(root: Path, problems: list[str]) -> set[str]:
    out = set()
    for dirpath, dirs, files in os.walk(root):
        for name in [*files, *dirs]:
            path = Path(dirpath) / name
            if path.is_symlink():
                problems.append(_("%s is a symbolic link; a package holds only plain files")
                                % path.relative_to(root))
        for f in files:
            if not (Path(dirpath) / f).is_symlink():
                out.add(str((Path(dirpath) / f).relative_to(root)))
    return out


def read_bag(root: Path) -> BagReport:
    """Read a bag's tag files and check its structure (no payload hashing yet)."""
    rep = BagReport()
    p = rep.problems
    try:
        bagit = (root / "bagit.txt").read_bytes()
    except OSError:
        p.append(_("bagit.txt is missing: this is not a BagIt bag"))
        return rep
    if not bagit.startswith(b"BagIt-Version: "):
        p.append(_("bagit.txt does not declare a BagIt version"))
    try:
        rep.info = parse_info((root / "bag-info.txt").read_bytes())
    except OSError:
        p.append(_("bag-info.txt is missing"))
    for algo in ALGORITHMS:
        for kind, store in (("manifest", rep.manifests), ("tagmanifest", rep.tagmanifests)):
            name = f"{kind}-{algo}.txt"
            try:
                store[algo] = parse_manifest((root / name).read_bytes(), name, p)
            except OSError:
                p.append(_("%s is missing") % name)
    files = _files_under(root, p)
    payload = {f for f in files if f.startswith("data/")}
    for algo, listed in rep.manifests.items():
        for rel in sorted(set(listed) - payload):
            p.append(_("payload file %s is listed in manifest-%s.txt but missing") % (rel, algo))
        for rel in sorted(payload - set(listed)):
            p.append(_("payload file %s is not listed in manifest-%s.txt (added or renamed)") % (rel, algo))
        for rel in sorted(r for r in listed if not r.startswith("data/")):
            p.append(_("manifest-%s.txt lists %s, which is not under data/") % (algo, rel))
    tags = files - payload
    for algo, listed in rep.tagmanifests.items():
        for rel in sorted(set(listed) - tags):
            p.append(_("tag file %s is listed in tagmanifest-%s.txt but missing") % (rel, algo))
    listed_tags = set().union(*(set(t) for t in rep.tagmanifests.values())) if rep.tagmanifests else set()
    for rel in sorted(tags - listed_tags - UNLISTED_TAG_FILES):
        if not rel.startswith(SIGNATURE_DIR + "/"):
            p.append(_("file %s is not accounted for by any tag manifest (added or renamed)") % rel)
    rep.payload_files = len(payload)
    rep.payload_bytes = sum((root / f).stat().st_size for f in payload)
    oxum = rep.value("Payload-Oxum")
    if oxum is None:
        p.append(_("bag-info.txt has no Payload-Oxum"))
    elif oxum != f"{rep.payload_bytes}.{rep.payload_files}":
        p.append(_("Payload-Oxum says %s but the payload is %d bytes in %d files")
                 % (oxum, rep.payload_bytes, rep.payload_files))
    return rep


def check_hashes(root: Path, rep: BagReport, payload_algorithms: tuple[str, ...] = ("sha256",),
                 progress: Progress | None = None) -> None:
    """Hash every tag file (both algorithms) and every payload file (the given
    algorithms, read once), adding a problem for each mismatch."""
    for algo, listed in rep.tagmanifests.items():
        for rel, want in sorted(listed.items()):
            _compare(root, rel, {algo: want}, f"tagmanifest-{algo}.txt", rep.problems, None)
    paths = sorted(set().union(*(set(m) for m in rep.manifests.values()))) if rep.manifests else []
    for rel in paths:
        wants = {a: rep.manifests[a][rel] for a in payload_algorithms if rel in rep.manifests.get(a, {})}
        if wants:
            _compare(root, rel, wants, "manifest", rep.problems, progress)


def _compare(root: Path, rel: str, wants: dict[str, str], where: str, problems: list[str],
             progress: Progress | None) -> None:
    path = root / rel
    if not path.is_file():
        return  # already reported as missing
    try:
        got = hash_file(path, wants, progress=progress)
    except OSError as exc:
        problems.append(_("cannot read %s: %s") % (rel, exc.strerror))
        return
    for algo, want in wants.items():
        if got[algo] != want:
            label = where if where != "manifest" else f"manifest-{algo}.txt"
            problems.append(_("%s: %s does not match %s (changed)") % (rel, algo.upper(), label))
