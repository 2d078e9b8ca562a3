"""``vaultd previews ...`` and ``vaultd recordings preview``: thin front ends over
``vaultd.preview`` (queue, access, audit) and ``vaultd.previewwork`` (the worker)."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from vaultd import preview
from vaultd.clicommon import cmd, open_, print_json, remote, zone
from vaultd.errors import UsageError
from vaultd.i18n import _
from vaultd.safetext import escape
from vaultd.model import Actor
from vaultd.people import local_owner
from vaultd.previewwork import Worker


def add_commands(sub: Any) -> None:
    """Register this concern's commands on the top-level subparsers."""
    pv = sub.add_parser("previews", help=_("preview copies for watching (never evidence): queue and rebuilds"))
    ps = pv.add_subparsers(metavar="ACTION", required=True)
    st = cmd(ps, "status", _run_status, _("the preview queue: counts, failures with their errors, encoder"))
    st.add_argument("--json", action="store_true")
    rb = cmd(ps, "rebuild", _run_rebuild, _("make a recording's preview again, or every preview (--all)"))
    rb.add_argument("id", nargs="?", help=_("recording id, or a sha256 prefix of 8+ hex digits"))
    rb.add_argument("--all", action="store_true", help=_("every recording that can have a preview"))
    run = cmd(ps, "run", _run_work, _("make queued previews in the foreground (the daemon does it in the "
                                      "background)"))
    run.add_argument("--forever", action="store_true", help=_("keep waiting for new jobs until interrupted"))
    run.add_argument("--workers", type=int, default=None, help=_("jobs at once (default: [preview] workers)"))


def add_recording_commands(rs: Any) -> None:
    """``vaultd recordings preview ID --out FILE`` (registered by cli_recordings)."""
    pr = cmd(rs, "preview", _run_fetch, _("write a recording's preview (a marked copy, not evidence) to a new "
                                          "file; audited like any access"))
    pr.add_argument("id", help=_("recording id, or a sha256 prefix"))
    pr.add_argument("--out", type=Path, required=True, help=_("new file to write (never overwritten)"))
    pr.add_argument("--file", dest="name", default=None,
                    help=_("which file: video.mp4, poster.jpg, sprite.jpg, audio.m4a, waveform.png, photo.jpg, "
                           "first.mp4, provenance (default: the main one)"))
    pr.add_argument("--wait", action="store_true",
                    help=_("on the station: make the preview now when there is none yet"))


def _run_status(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        data = client.json("GET", "/previews")
    else:
        vault = open_(args)
        data = preview.status_json(preview.status(vault, local_owner()), zone(vault))
    if args.json:
        print_json(data)
        return 0
    jobs = data["jobs"]
    print(_("jobs: %s") % (", ".join(f"{k} {v}" for k, v in sorted(jobs.items())) or _("none")))
    print(_("previews kept: %d (%.1f MB)") % (data["previews"], data["preview_bytes"] / 1e6))
    print(_("encoder: %s (%s); workers: %d; font: %s")
          % (data["encoder"], data["encoder_reason"], data["workers"], data["font"] or _("none (latin-only strip)")))
    for job in data["waiting"]:
        print(_("%-8s %s  priority %d, try %d  %s") % (job["state"], job["recording"], job["priority"],
                                                       job["attempts"], job["error"] or ""))
    for job in data["failed"]:
        print(_("failed   %s  after %d tries: %s") % (job["recording"], job["attempts"], escape(job["error"])))
    return 0


def _run_rebuild(args: argparse.Namespace) -> int:
    if bool(args.id) == bool(args.all):
        raise UsageError(_("name one recording or --all"), hint=_("vaultd previews rebuild ID | --all"))
    client = remote(args)
    if client:
        n = int(client.json("POST", "/previews/rebuild", json={"recording": args.id})["queued"])
    else:
        n = preview.rebuild(open_(args), local_owner(), args.id)
    print(_("%d previews queued to be made again") % n)
    return 0


def _run_work(args: argparse.Namespace) -> int:
    worker = Worker(open_(args), actor=Actor.local(), workers=args.workers)
    if not args.forever:
        done = worker.run_until_idle()
        print(_("%d preview jobs run") % done)
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    try:
        worker.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def _run_fetch(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        size = client.download(f"/recordings/{args.id}/preview/{args.name or 'main'}", args.out, {})
        print(_("wrote %s (%d bytes; a preview, not evidence)") % (args.out, size))
        return 0
    vault = open_(args)
    me = local_owner()
    if args.wait:
        rec, row, _job = preview.describe(vault, me, args.id, request=True)
        if row is None or row.state != "ready":
            Worker(vault, actor=Actor.local(), workers=1).run_once(rec.id)
    got = preview.write_copy(vault, me, args.id, args.out, args.name)
    print(_("wrote %s (%d bytes, sha256 %s; a preview of %s, not evidence)")
          % (args.out, got.size_bytes, got.sha256, got.recording.id))
    return 0
