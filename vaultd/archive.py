"""An export package folder as one file to download: a zip or a tar.

The archive holds the folder itself, so unpacking it gives exactly the
package the station writes (``EXP-…/bagit.txt``, ``EXP-…/data/…``), and
``vaultd verify`` and the checks by hand in ``VERIFY.txt`` work on it.

* zip (the default: Windows and macOS open it without extra software):
  every entry stored as is, no compression (the originals are compressed
  media already), names in UTF-8 with the zip's UTF-8 flag so Chinese names
  survive, ZIP64 where a file or the archive passes 4 GiB. Written to a real
  file, so sizes and CRCs stand in the local headers and no reader needs the
  data-descriptor form.
* tar: POSIX pax (UTF-8 names, any size), owner 0/root, modes as packed.

Entries go in a stable order (folders first, then names sorted by their
UTF-8 bytes). The archive is hashed (SHA-256) once written: that is its ETag
and what the client checks after a download.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vaultd import bag
from vaultd.errors import StorageError
from vaultd.files import fsync_path
from vaultd.i18n import _

FORMATS = ("zip", "tar")
SUFFIX = {"zip": ".zip", "tar": ".tar"}
_CHUNK = 1 << 20
Advance = Callable[[int], None]


@dataclass(frozen=True)
class Archived:
    path: Path
    size_bytes: int
    sha256: str


def entries(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every folder and file under ``folder`` (itself first) with its name in the
    archive, in a stable order; a link or a special file is refused."""
    base = folder.name
    stack = [(folder, base)]
    while stack:
        here, name = stack.pop()
        yield here, name
        files, dirs = [], []
        with os.scandir(here) as it:
            for e in it:
                mode = e.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    dirs.append(e.name)
                elif stat.S_ISREG(mode):
                    files.append(e.name)
                else:
                    raise StorageError(_("%s is not a plain file or folder; the package cannot be archived")
                                       % Path(e.path))
        for f in sorted(files, key=os.fsencode):
            yield here / f, f"{name}/{f}"
        for d in sorted(dirs, key=os.fsencode, reverse=True):
            stack.append((here / d, f"{name}/{d}"))


def size_of(folder: Path) -> tuple[int, int]:
    """Files and bytes under ``folder``: what archiving it reads."""
    files = total = 0
    for path, _name in entries(folder):
        if path.is_file():
            files += 1
            total += path.stat().st_size
    return files, total


def write_archive(folder: Path, out: Path, fmt: str, advance: Advance | None = None) -> Archived:
    """Write ``folder`` as a ``fmt`` archive to the new file ``out`` (fsync'd), then hash it."""
    if fmt not in FORMATS:
        raise ValueError(fmt)
    try:
        with open(out, "xb") as f:
            if fmt == "zip":
                _zip(folder, f, advance)
            else:
                _tar(folder, f, advance)
            f.flush()
            os.fsync(f.fileno())
        fsync_path(out.parent)
        digest = bag.hash_file(out, ("sha256",))["sha256"]
        return Archived(out, out.stat().st_size, digest)
    except OSError as exc:
        out.unlink(missing_ok=True)
        raise StorageError(_("cannot write the archive %s: %s") % (out, exc.strerror or exc),
                           hint=_("check the free space under the vault's home")) from exc
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _copy(path: Path, dst: BinaryIO, advance: Advance | None) -> None:
    with open(path, "rb", buffering=0) as src:
        while data := src.read(_CHUNK):
            dst.write(data)
            if advance:
                advance(len(data))


def _zip(folder: Path, f: BinaryIO, advance: Advance | None) -> None:
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for path, name in entries(folder):
            info = zipfile.ZipInfo.from_file(path, name, strict_timestamps=False)
            info.compress_type = zipfile.ZIP_STORED
            if info.is_dir():
                zf.writestr(info, b"")
                continue
            with zf.open(info, "w") as dst:
                _copy(path, dst, advance)  # type: ignore[arg-type]


def _owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _tar(folder: Path, f: BinaryIO, advance: Advance | None) -> None:
    with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tf:
        for path, name in entries(folder):
            info = _owner(tf.gettarinfo(str(path), name))
            if info.isdir():
                tf.addfile(info)
                continue
            with open(path, "rb", buffering=0) as src:
                tf.addfile(info, _Counting(src, advance))


class _Counting:
    """A file read by tarfile, reporting each chunk read."""

    def __init__(self, src: BinaryIO, advance: Advance | None) -> None:
        self.src, self.advance = src, advance

    def read(self, size: int = -1) -> bytes:
        data = self.src.read(size)
        if self.advance and data:
            self.advance(len(data))
        return data
