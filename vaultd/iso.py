"""Burn-ready ISO 9660 images of an export package (Joliet + Rock Ridge).

pycdlib (pure Python, from PyPI) writes the image streaming from the package's
files: ISO 9660 level 3 names (files over 4 GiB as multi-extent), Joliet for
Windows (UCS-2, up to 64 characters; Chinese names kept), Rock Ridge 1.09 for
everything else (the full UTF-8 name, POSIX modes). The package folder becomes
the disc's root, so each disc is a complete bag that verifies on its own.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vaultd.errors import StorageError
from vaultd.i18n import _

DISCS = {"cd": 737_280_000, "dvd": 4_700_372_992, "bd": 25_025_314_816}
_D_CHARS = re.compile(r"[^A-Z0-9_]")
_JOLIET_BAD = re.compile(r"[*/:;?\\\x00-\x1f]")


def volume_label(export_id: str, part: int, parts: int) -> str:
    """The disc's volume label from the export id: ``EXP-20261121-A1B2C3`` disc 2 of 3 is
    ``20261121A1B2C3_2`` (d-characters; at most 16, the Joliet limit)."""
    base = _D_CHARS.sub("", export_id.upper().removeprefix("EXP-"))
    suffix = f"_{part}" if parts > 1 else ""
    if len(base) + len(suffix) > 16:
        base = base[len(base) + len(suffix) - 16:]
    return base + suffix


def usable_bytes(disc_bytes: int) -> int:
    """What a package may take on a disc: 2 % and 8 MiB kept for the file system."""
    return int(disc_bytes * 0.98) - (8 << 20)


class _Names:
    """Unique ISO 9660 and Joliet names per folder."""

    def __init__(self) -> None:
        self.used: dict[tuple[str, str], set[str]] = {}

    def _unique(self, kind: str, parent: str, name: str, limit: int, upper: bool) -> str:
        taken = self.used.setdefault((kind, parent), set())
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        ext = ext[:8]
        n = 0
        while True:
            tag = f"~{n}" if n else ""
            room = limit - len(tag) - (len(ext) + 1 if ext else 0)
            cand = stem[:room] + tag + ("." + ext if ext else "")
            key = cand.upper() if upper else cand.lower()
            if key not in taken:
                taken.add(key)
                return cand
            n += 1

    def iso(self, parent: str, name: str, is_dir: bool) -> str:
        if not is_dir and "." in name:
            stem, _d, ext = name.rpartition(".")
            clean = _D_CHARS.sub("_", stem.upper()) + "." + _D_CHARS.sub("_", ext.upper())
        else:
            clean = _D_CHARS.sub("_", name.upper())
        return self._unique("iso", parent, clean or "_", 30, True)

    def joliet(self, parent: str, name: str) -> str:
        clean = _JOLIET_BAD.sub("_", "".join(ch if ord(ch) <= 0xFFFF else "_" for ch in name))
        return self._unique("joliet", parent, clean or "_", 64, False)


def write_iso(package: Path, out: Path, label: str) -> int:
    """Write ``package`` (a folder) as an ISO image at ``out``; returns its size."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=label, app_ident_str="vaultd")
    names = _Names()
    paths: dict[Path, tuple[str, str]] = {package: ("/", "/")}
    try:
        for dirpath, dirs, files in os.walk(package):
            dirs.sort()
            here = Path(dirpath)
            iso_parent, jol_parent = paths[here]
            for d in dirs:
                ip = _join(iso_parent, names.iso(iso_parent, d, True))
                jp = _join(jol_parent, names.joliet(jol_parent, d))
                iso.add_directory(ip, rr_name=d, joliet_path=jp)
                paths[here / d] = (ip, jp)
            for f in sorted(files):
                ip = _join(iso_parent, names.iso(iso_parent, f, False)) + ";1"
                jp = _join(jol_parent, names.joliet(jol_parent, f))
                iso.add_file(str(here / f), ip, rr_name=f, joliet_path=jp, file_mode=0o100444)
        iso.write(str(out))
    except (OSError, pycdlib.pycdlibexception.PyCdlibException) as exc:
        out.unlink(missing_ok=True)
        raise StorageError(_("cannot write the disc image %s: %s") % (out, exc)) from exc
    finally:
        iso.close()
    return out.stat().st_size


def _join(parent: str, name: str) -> str:
    return parent.rstrip("/") + "/" + name


def extract(image: Path, dest: Path) -> str:
    """Copy every file of a disc image (by its Rock Ridge names) under ``dest``; returns
    the volume label. For checking an image before it is burned."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(image))
    except (OSError, pycdlib.pycdlibexception.PyCdlibException) as exc:
        raise StorageError(_("cannot read the disc image %s: %s") % (image, exc)) from exc
    try:
        label = str(iso.pvd.volume_identifier.decode("ascii", "replace")).strip()
        for dirpath, _dirs, files in iso.walk(rr_path="/"):
            for name in files:
                rr = f"{dirpath.rstrip('/')}/{name}"
                target = dest / rr.lstrip("/")
                if ".." in Path(rr).parts:
                    raise StorageError(_("the disc image names a path outside itself: %s") % rr)
                target.parent.mkdir(parents=True, exist_ok=True)
                iso.get_file_from_iso(str(target), rr_path=rr)
    except pycdlib.pycdlibexception.PyCdlibException as exc:
        raise StorageError(_("cannot read the disc image %s: %s") % (image, exc)) from exc
    finally:
        iso.close()
    return label
