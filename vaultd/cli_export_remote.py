"""``vaultd --url URL export create|status|download``: exports the server builds as jobs.

The server checks the grant and writes the audit entries (the station's
service); this only asks, shows progress, and downloads the files, each
checked against the SHA-256 the server recorded, resuming a cut download
from its ``.part`` file.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from vaultd.client import ApiClient
from vaultd.clicommon import print_json
from vaultd.errors import IncompleteError, UsageError
from vaultd.i18n import _
from vaultd.progress import BytesBar, wanted

POLL_S = 0.5


def _stages() -> dict[str, str]:
    return {"queued": _("waiting for the builds before it"), "package": _("copying the originals"),
            "disc-image": _("writing the disc image"), "archive": _("packing the package to download"),
            "done": _("done"), "failed": _("failed")}


def create(client: ApiClient, args: argparse.Namespace) -> int:
    if args.as_token:
        raise UsageError(_("--as-token is for the station; over the API you act as the --token's user"))
    if getattr(args, "print_path", False):
        raise UsageError(_("--print-path is for the station, which writes package folders"),
                         hint=_("over the API, --json gives the files and their SHA-256"))
    if args.no_wait and args.out:
        raise UsageError(_("--no-wait returns before there is anything to download; leave out --out"),
                         hint=_("download later: 'vaultd --url URL export download ID --out DIR'"))
    job = client.json("POST", "/exports", json={
        "grant": args.grant, "recordings": args.recording, "case": args.case, "iso": args.iso,
        "disc": args.disc, "disc_bytes": args.disc_bytes, "with_previews": args.with_previews,
        "format": args.format})
    if args.no_wait:
        print(job["id"])
        print(_("building; see 'vaultd --url URL export status %s'") % job["id"], file=sys.stderr)
        return 0
    job = _wait(client, job, quiet=args.json)
    return _finish(client, job, args.out, args.json)


def status(client: ApiClient, args: argparse.Namespace) -> int:
    job = _job(client, args.id)
    if args.wait:
        job = _wait(client, job, quiet=args.json)
        return _finish(client, job, None, args.json)
    if args.json:
        print_json(job)
        return 0
    _print_job(job)
    return 0


def download(client: ApiClient, args: argparse.Namespace) -> int:
    job = _job(client, args.id)
    if job["state"] != "complete":
        raise UsageError(_("export %s is %s; nothing to download yet") % (job["id"], job["state"]),
                         hint=_("'vaultd --url URL export status %s --wait' waits for it") % job["id"])
    _download(client, job, args.out, args.file, sys.stdout)
    return 0


# -- waiting and showing -------------------------------------------------------------------

def _job(client: ApiClient, export_id: str) -> dict[str, Any]:
    job: dict[str, Any] = client.json("GET", f"/exports/{quote(export_id, safe='')}/job")
    return job


def _wait(client: ApiClient, job: dict[str, Any], quiet: bool) -> dict[str, Any]:
    line = _Line(sys.stderr, quiet)
    try:
        while True:
            line.show(job)
            if job["state"] != "building":
                return job
            time.sleep(POLL_S)
            job = _job(client, job["id"])
    finally:
        line.close()


class _Line:
    """One status line, redrawn on a terminal; elsewhere a line per stage."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream, self.quiet = stream, quiet
        self.tty = stream.isatty()
        self.last = ""

    def show(self, job: dict[str, Any]) -> None:
        if self.quiet:
            return
        stage = _stages().get(job["stage"], job["stage"])
        text = f"{job['id']}: {stage}"
        if job["stage"] in ("package", "archive") and job["bytes_total"]:
            text += _(" %d/%d files, %.1f/%.1f MiB") % (job["files_done"], job["files_total"],
                                                       job["bytes_done"] / 2**20, job["bytes_total"] / 2**20)
        if self.tty:
            self.stream.write("\r" + text.ljust(len(self.last)))
            self.stream.flush()
            self.last = text
        elif job["stage"] != self.last:
            print(text, file=self.stream)
            self.last = job["stage"]

    def close(self) -> None:
        if self.tty and self.last and not self.quiet:
            self.stream.write("\n")


def _print_job(job: dict[str, Any]) -> None:
    print(_("export %s: %s (%s)") % (job["id"], job["state"], _stages().get(job["stage"], job["stage"])))
    if job["state"] == "building":
        print(_("  %d of %d files, %d of %d bytes") % (job["files_done"], job["files_total"], job["bytes_done"],
                                                       job["bytes_total"]))
    if job["problem"]:
        print(_("  problem: %s") % job["problem"])
    for a in job["artefacts"]:
        print(f"  {a['name']}  {a['size_bytes']} bytes  sha256 {a['sha256']}")
    if job["artefacts"]:
        print(_("  kept for download until %s") % job["keep_until"])


def _finish(client: ApiClient, job: dict[str, Any], out: Path | None, as_json: bool) -> int:
    if job["state"] == "failed":
        raise IncompleteError(_("export %s failed: %s") % (job["id"], job["problem"]),
                              hint=_("nothing of it is kept; fix the cause and ask for a new export grant"))
    if as_json:
        print_json(job)
    else:
        _print_job(job)
    if out is not None:
        _download(client, job, out, [], sys.stderr if as_json else sys.stdout)  # --json: stdout is the JSON
    elif not as_json:
        print(_("download: vaultd --url URL export download %s --out DIR") % job["id"])
    return 0


# -- downloading ---------------------------------------------------------------------------

def _download(client: ApiClient, job: dict[str, Any], out: Path, names: list[str], say: TextIO) -> None:
    files = {a["name"]: a for a in job["artefacts"]}
    unknown = [n for n in names if n not in files]
    if unknown:
        raise UsageError(_("export %s has no file %s") % (job["id"], ", ".join(unknown)),
                         hint=_("its files: %s") % (", ".join(files) or _("none kept")))
    if not files:
        raise UsageError(_("export %s has no files to download") % job["id"],
                         hint=_("an export made at the station is in its --out folder there; "
                                "files built over the API are kept for a limited time"))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(_("cannot create %s: %s") % (out, exc.strerror)) from None
    for name in names or list(files):
        a = files[name]
        target = out / name
        if target.exists() and _same(target, a["sha256"]):
            print(_("%s is already there (sha256 matches)") % target, file=say)
            continue
        bar = BytesBar(name, sys.stderr) if wanted(False, sys.stderr) else None
        if bar:
            bar.begin(1, a["size_bytes"])
        try:
            client.download_resuming(f"/exports/{quote(job['id'], safe='')}/files/{quote(name, safe='')}",
                                     target, a["sha256"], a["size_bytes"], advance=bar.advance if bar else None)
        finally:
            if bar:
                bar.end()
        print(_("wrote %s (%d bytes, sha256 %s checked)") % (target, a["size_bytes"], a["sha256"]), file=say)


def _same(path: Path, sha256: str) -> bool:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(1 << 20):
            h.update(data)
    return h.hexdigest() == sha256
