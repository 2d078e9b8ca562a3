"""``vaultd export create|status|download|list|show|ca`` and ``vaultd verify`` (#8).

At the station (``--home``) ``export create`` writes the package into
``--out``. With ``--url`` it asks the server to build it as a job (the
same service, grants and audit entries), shows its progress and, with
``--out``, downloads the zip/tar and disc images, resuming a cut download.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from urllib.parse import quote

from vaultd import cli_export_remote as remote_export
from vaultd import iso, timefmt
from vaultd.client import ApiClient
from vaultd.clicommon import at, cmd, open_, print_json, remote, shown_zone, write_out
from vaultd.errors import IntegrityError, UsageError
from vaultd.i18n import _
from vaultd.safetext import escape
from vaultd.iso import DISCS
from vaultd.people import authenticate, directory, local_owner
from vaultd.progress import BytesBar, wanted

# export and verify (cryptography, asn1crypto, httpx) are imported where used: most commands need neither


def add_commands(sub: Any) -> None:
    e = sub.add_parser("export", help=_("signed evidence exports for a case file, procuratorate or court (R7)"))
    esub = e.add_subparsers(metavar="ACTION", required=True)
    c = cmd(esub, "create", _run_create,
            _("make a signed, self-verifying package (and disc images) under an approved export grant"))
    what = c.add_argument_group(_("what to export (one or both)"))
    what.add_argument("--case", help=_("case number: its linked recordings, unless --recording names some"))
    what.add_argument("--recording", action="append", default=[], metavar="ID",
                      help=_("recording id (repeatable)"))
    c.add_argument("--grant", help=_("the approved export grant (see 'vaultd access grants')"))
    c.add_argument("--out", type=Path, help=_("folder to write the package into (at the station: required; "
                                              "with --url: download the built files into it)"))
    c.add_argument("--iso", action="store_true", help=_("also write burn-ready ISO 9660 images"))
    c.add_argument("--disc", choices=sorted(DISCS), help=_("disc size for --iso (default: [export] disc)"))
    c.add_argument("--disc-bytes", type=int, help=_("disc capacity in bytes, for other media"))
    c.add_argument("--with-previews", action="store_true", help=_("also include previews (clearly separated)"))
    c.add_argument("--as-token", metavar="TOKEN",
                   help=_("act as the user holding this API token instead of the station's owner"))
    c.add_argument("--format", choices=("zip", "tar"), default="zip",
                   help=_("with --url: how the server packs the package folder to download (default zip)"))
    c.add_argument("--no-wait", action="store_true",
                   help=_("with --url: print the job id (the export id) at once; see 'export status'"))
    out = c.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--print-path", action="store_true",
                     help=_("print only each package's folder, one per line (for scripts: "
                            "PKG=$(vaultd export create ... --print-path)); a disc image is the folder + .iso"))
    st = cmd(esub, "status", _run_status, _("with --url: an export job's state, progress and files"))
    st.add_argument("id", help=_("the export id (EXP-...) that 'export create' printed"))
    st.add_argument("--wait", action="store_true", help=_("wait until the build ends, showing progress"))
    st.add_argument("--json", action="store_true")
    dl = cmd(esub, "download", _run_download,
             _("with --url: download an export's zip/tar and disc images (a cut download resumes)"))
    dl.add_argument("id", help=_("the export id (EXP-...)"))
    dl.add_argument("--out", type=Path, required=True, help=_("folder to download into"))
    dl.add_argument("--file", action="append", default=[], metavar="NAME",
                    help=_("only this file (repeatable; default: all of them)"))
    lst = cmd(esub, "list", _run_list, _("exports made: what left, to whom, when"))
    lst.add_argument("--json", action="store_true")
    show = cmd(esub, "show", _run_show, _("one export's record, with its packages' tagmanifest hashes"))
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    ca = cmd(esub, "ca", _run_ca, _("print the agency CA certificate that verifiers pin with --ca, "
                                    "and its SHA-256 fingerprint"))
    ca.add_argument("--out", type=Path, help=_("also write the certificate (PEM) to this file"))
    v = cmd(sub, "verify", _run_verify,
            _("check an export package offline: bag, hashes, signature, timestamp, custody proofs"))
    v.add_argument("path", type=Path, help=_("the package folder (the one with bagit.txt, e.g. the mounted "
                                             "disc), or a disc image (.iso) made by export create --iso"))
    v.add_argument("--ca", type=Path, help=_("the agency CA certificate to pin (PEM)"))
    v.add_argument("--log-key", help=_("the audit log's verifier key to pin (the string, or a file)"))
    v.add_argument("--tsa-ca", type=Path, help=_("the timestamp authority's CA certificate to pin (PEM)"))
    v.add_argument("--all-algorithms", action="store_true",
                   help=_("also recompute SHA-512 of every payload file (SHA-256, which the signature "
                          "covers, is always checked)"))
    v.add_argument("--json", action="store_true")


def _run_create(args: argparse.Namespace) -> int:
    from vaultd import export

    client = remote(args)
    if client:
        return remote_export.create(client, args)
    if args.out is None:
        raise UsageError(_("the station writes the package into a folder: give --out DIR"))
    if args.no_wait or args.format != "zip":
        raise UsageError(_("--no-wait and --format are for exports built over the API (--url)"),
                         hint=_("at the station the package is written into --out as a folder"))
    vault = open_(args)
    actor = authenticate(vault, args.as_token, "cli") if args.as_token else local_owner()
    req = export.ExportRequest(out_dir=args.out, grant_id=args.grant, recording_refs=tuple(args.recording),
                        case_number=args.case, iso=args.iso, disc=args.disc, disc_bytes=args.disc_bytes,
                        with_previews=args.with_previews)
    bar = BytesBar(_("exporting"), sys.stderr) if wanted(args.json, sys.stderr) else None
    result = export.create_export(vault, actor, req, "cli", bar)
    if args.json:
        print_json(result.export.as_dict())
        return 0
    if args.print_path:
        for path in result.packages:
            print(path)
        return 0
    row = result.export
    who = directory(vault)
    print(_("export %s: %d recordings, %d bytes, for %s (approved by %s)")
          % (row.id, len(row.recording_ids), row.payload_bytes, who.name(row.requester), who.name(row.approver)))
    for pkg in row.packages:
        print(_("  package %s  tagmanifest-sha256 %s") % (pkg["path"], pkg["tagmanifest_sha256"]))
        if "iso" in pkg:
            print(_("  disc image %s (%s, %d bytes)") % (pkg["iso"], pkg["volume_label"], pkg["iso_bytes"]))
    print(_("verify it: vaultd export ca --out agency-ca.pem && vaultd verify %s --ca agency-ca.pem "
            "--log-key \"$(vaultd keys show --log)\"") % shlex.quote(str(result.packages[0])))
    return 0


def _run_status(args: argparse.Namespace) -> int:
    return remote_export.status(_remote_only(args, "export status"), args)


def _run_download(args: argparse.Namespace) -> int:
    return remote_export.download(_remote_only(args, "export download"), args)


def _remote_only(args: argparse.Namespace, what: str) -> ApiClient:
    client = remote(args)
    if client is None:
        raise UsageError(_("'%s' is for exports built over the API") % what,
                         hint=_("give --url (or 'vaultd login'); at the station the package is in the "
                                "--out folder of 'export create'"))
    return client


def _run_list(args: argparse.Namespace) -> int:
    from vaultd import export

    client = remote(args)
    if client:
        return _list_remote(client, args)
    vault = open_(args)
    rows = export.list_exports(vault, local_owner())
    if args.json:
        print_json([r.as_dict() for r in rows])
        return 0
    who, tz = directory(vault), timefmt.station_zone(vault.config.time.station_tz)
    for r in rows:
        print(f"{r.id:<22} {r.status:<9} {timefmt.local(r.created_at, tz, seconds=False)}  "
              f"{len(r.recording_ids):>4} rec  {escape(who.name(r.requester))} / {escape(who.name(r.approver))}  "
              f"{escape(r.case_number or '-')}")
    print(_("%d exports") % len(rows) + " " + timefmt.zone_note(tz))
    return 0


def _list_remote(client: ApiClient, args: argparse.Namespace) -> int:
    items: list[dict[str, Any]] = client.json("GET", "/exports")["items"]
    if args.json:
        print_json(items)
        return 0
    tz = shown_zone()  # the station's, as the API said
    for r in items:
        print(f"{r['id']:<22} {r['status']:<9} {timefmt.format_iso_local(r['created_at'], tz, seconds=False)}  "
              f"{len(r['recording_ids']):>4} rec  {_person(r, 'requester')} / {_person(r, 'approver')}  "
              f"{escape(r['case_number'] or '-')}")
    print(_("%d exports") % len(items) + " " + timefmt.zone_note(tz))
    return 0


def _person(d: dict[str, Any], key: str) -> str:
    """A requester or approver as the API labels them (display name, 警号), else the login name."""
    label = d.get(key + "_label")
    return escape(label) if label else escape(d[key] or "-")


def _run_show(args: argparse.Namespace) -> int:
    from vaultd import export

    client = remote(args)
    if client:
        d: dict[str, Any] = client.json("GET", f"/exports/{quote(args.id, safe='')}")
        if args.json:
            print_json(d)
            return 0
        d.update(requester=d.get("requester_label") or d["requester"],
                 approver=d.get("approver_label") or d["approver"],
                 created_at=at(d["created_at"], with_zone=True),
                 finished_at=at(d["finished_at"], with_zone=True) if d.get("finished_at") else None)
    else:
        vault = open_(args)
        row = export.show_export(vault, local_owner(), args.id)
        if args.json:
            print_json(row.as_dict())
            return 0
        who, tz = directory(vault), timefmt.station_zone(vault.config.time.station_tz)
        d = row.as_dict()
        d.update(requester=who.name(row.requester), approver=who.name(row.approver),
                 created_at=timefmt.format_local(row.created_at, tz, seconds=True),
                 finished_at=timefmt.format_local(row.finished_at, tz, seconds=True) if row.finished_at else None)
    for key in ("id", "status", "created_at", "finished_at", "maker", "grant_id", "requester", "approver",
                "purpose", "case_number", "out_path", "payload_bytes", "checkpoint_size", "entry_index", "problem"):
        print(f"{key:<16} {escape(d[key]) if d[key] is not None else '-'}")
    print(f"{'recordings':<16} {', '.join(d['recording_ids'])}")
    for pkg in d["packages"]:
        print(f"{'package':<16} {pkg['path']}  tagmanifest-sha256 {pkg['tagmanifest_sha256']}")
        for key in ("archive", "iso"):
            if key in pkg:
                print(f"{'':<16} {Path(pkg[key]).name}  {pkg[key + '_bytes']} bytes"
                      + (f"  sha256 {pkg[key + '_sha256']}" if key + "_sha256" in pkg else ""))
    return 0


def _run_ca(args: argparse.Namespace) -> int:
    from vaultd import export
    from vaultd.cover import colon_fingerprint

    client = remote(args)
    if client:
        resp = client.call("GET", "/exports/ca")
        pem, fingerprint = resp.content, resp.headers.get("x-sha256-fingerprint", "?")
    else:
        pem, fingerprint = export.agency_ca(open_(args))
    if args.out:
        write_out(args.out, pem)
    sys.stdout.write(pem.decode("ascii"))
    print(_("SHA-256 fingerprint: %s") % colon_fingerprint(fingerprint))
    print(_("(publish it apart from the discs; 'openssl x509 -noout -fingerprint -sha256 -in FILE' "
            "prints the same for the file a court holds)"))
    return 0


def _read_pin(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(_("cannot read %s %s: %s") % (what, path, exc.strerror)) from None


def _run_verify(args: argparse.Namespace) -> int:
    from vaultd import verify

    pins = verify.Pins(ca_pem=_read_pin(args.ca, "--ca"),
                       log_key=verify.load_log_key(args.log_key) if args.log_key else None,
                       tsa_ca_pem=_read_pin(args.tsa_ca, "--tsa-ca"))
    if args.path.is_file() and args.path.suffix.lower() == ".iso":
        with tempfile.TemporaryDirectory(prefix="vaultd-verify-") as tmp:
            label = iso.extract(args.path, Path(tmp))
            if not args.json:
                print(_("disc image %s (volume %s), read into %s") % (args.path, label, tmp))
            rep = verify.verify_package(Path(tmp), pins, all_algorithms=args.all_algorithms)
    else:
        rep = verify.verify_package(args.path, pins, all_algorithms=args.all_algorithms)
    if args.json:
        print_json(rep.as_dict())
    else:
        for name, ok, detail in rep.checks:
            mark = {True: "ok  ", False: "FAIL", None: "----"}[ok]
            print(f"{mark} {name:<10} {detail}")
        status = rep.status
        if status == verify.PASS:
            print(_("PASS: export %s is intact and signed by the pinned agency and log keys") % rep.export_id)
        elif status == verify.INTACT:
            print(_("INTACT, SIGNER NOT PINNED: every hash and proof holds, but who signed is not checked; "
                    "pass --ca and --log-key (and --tsa-ca) to check it"))
    if rep.status == verify.FAIL:
        raise IntegrityError(_("export package %s failed verification: %d problem(s)")
                             % (args.path, len(rep.failures)),
                             hint=_("each FAIL line above says what does not hold"))
    if rep.status == verify.INTACT:
        sys.stdout.flush()
        return 1
    return 0
