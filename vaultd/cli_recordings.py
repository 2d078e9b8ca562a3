"""``vaultd recordings ...``: locally on the station, or over the API."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from vaultd import cli_audit, cli_previews, cli_units, evidence, people, timefmt, views
from vaultd.access import Level
from vaultd.catalog.recordings import RecordingFilter
from vaultd.clicommon import cmd, filter_help, open_, print_json, remote, shown_zone, time_filter, zone
from vaultd.i18n import _
from vaultd.people import local_owner
from vaultd.safetext import escape


def add_commands(sub: Any) -> None:
    rec = sub.add_parser("recordings", help=_("find and read recordings in the vault"))
    rs = rec.add_subparsers(metavar="ACTION", required=True)
    lst = cmd(rs, "list", _run_list, _("list recordings you may see, oldest first"))
    lst.add_argument("--json", action="store_true")
    lst.add_argument("--device", help=_("only this device serial"))
    lst.add_argument("--officer", help=_("only this officer number"))
    lst.add_argument("--unit", help=_("only recordings of this unit"))
    lst.add_argument("--case", help=_("only recordings linked to this case number"))
    lst.add_argument("--since", metavar="WHEN", help=_("recorded %s") % filter_help(lower=True))
    lst.add_argument("--until", metavar="WHEN", help=_("recorded %s") % filter_help(lower=False))
    lst.add_argument("--limit", type=int, default=None, help=_("at most this many"))
    show = cmd(rs, "show", _run_show, _("show one recording's metadata and where it was seen"))
    show.add_argument("id", help=_("recording id, or a sha256 prefix of 8+ hex digits"))
    show.add_argument("--json", action="store_true")
    get = cmd(rs, "get", _run_get, _("write the original's exact bytes to a new file"))
    get.add_argument("id", help=_("recording id, or a sha256 prefix"))
    get.add_argument("--out", type=Path, required=True, help=_("new file to write (never overwritten)"))
    get.add_argument("--reason", required=True, help=_("why the original is read (kept in the audit log)"))
    get.add_argument("--grant", help=_("the approved grant that allows it (not needed on the station)"))
    lvl = cmd(rs, "confidentiality", _run_confidentiality,
              _("set a recording's own confidentiality level (R9; its cases may keep it higher)"))
    lvl.add_argument("id", help=_("recording id, or a sha256 prefix"))
    lvl.add_argument("level", choices=[lv.value for lv in Level])
    lvl.add_argument("--reason", required=True, help=_("why (kept in the audit log)"))
    cli_audit.add_receipt(rs)
    cli_previews.add_recording_commands(rs)  # recordings preview (#7)
    cli_units.add_recording_commands(rs)  # recordings reassign (#17.3)


def _list_remote(args: argparse.Namespace) -> list[dict[str, Any]]:
    client = remote(args)
    assert client is not None
    params = {k: v for k, v in {"device": args.device, "officer": args.officer, "since": args.since,
                                "until": args.until, "unit": args.unit, "case": args.case}.items() if v}
    items: list[dict[str, Any]] = []
    while True:
        page = client.json("GET", "/recordings", params={**params, "limit": 1000, "offset": len(items)})
        items += page["items"]
        if len(page["items"]) < 1000 or (args.limit and len(items) >= args.limit):
            return items[: args.limit] if args.limit else items


def _run_list(args: argparse.Namespace) -> int:
    if remote(args):
        items, tz = _list_remote(args), shown_zone()
    else:
        vault = open_(args)
        tz = zone(vault)
        flt = RecordingFilter(
            device_serial=args.device, officer_id=args.officer, limit=args.limit, unit=args.unit,
            case_number=args.case,
            since=time_filter(vault, args.since, "--since"),
            until=time_filter(vault, args.until, "--until", end=True))
        names = people.directory(vault).by_officer
        items = [views.recording_json(r, tz, names.get(r.officer_id or ""))
                 for r in evidence.list_recordings(vault, local_owner(), flt)]
    if args.json:
        print_json(items)
    else:
        print(timefmt.zone_note(tz))
        for d in items:
            print(views.line_of(d, tz))
        print(_("%d recordings") % len(items))
    return 0


def _run_show(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        data = client.json("GET", f"/recordings/{args.id}")
    else:
        vault = open_(args)
        detail = evidence.show_recording(vault, local_owner(), args.id)
        data = views.detail_json(detail.recording, detail.sightings, zone(vault), detail.purged,
                                 officer_name=people.directory(vault).by_officer.get(detail.recording.officer_id or ""))
    if args.json:
        print_json(data)
        return 0
    tz = shown_zone() if client else zone(vault)
    width = max(len(k) for k in data)
    for key, value in data.items():
        if key in ("sightings", "extra"):
            continue
        if isinstance(value, str) and key.endswith(("_start", "_end", "_at", "_deadline")):
            value = timefmt.format_iso_local(value, tz) + f" ({timefmt.zone_label(tz)})"
        elif isinstance(value, list):
            value = ", ".join(escape(v) for v in value) or "-"
        print(f"{key:<{width}}  {escape('-' if value is None else value)}")
    for s in data.get("sightings", []):
        print(_("seen      %s on %s at %s (%s)") % (
            timefmt.format_local(datetime.fromisoformat(s["seen_at"]), tz, seconds=True) if s.get("seen_at") else "-",
            escape(s["device_serial"]), escape(s["source_path"]), escape(s["outcome"])))
    return 0


def _run_confidentiality(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        data = client.json("POST", f"/recordings/{args.id}/confidentiality",
                           json={"level": args.level, "reason": args.reason})
    else:
        vault = open_(args)
        rec = evidence.set_confidentiality(vault, local_owner(), args.id, Level(args.level), args.reason)
        data = views.recording_json(rec, zone(vault))
    print(_("%s: own level %s, applies %s") % (data["id"], data["own_confidentiality"], data["confidentiality"])
          + (_(" (its cases: %s)") % data["case_confidentiality"] if data.get("case_confidentiality") else ""))
    return 0


def _run_get(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        params = {"reason": args.reason, **({"grant": args.grant} if args.grant else {})}
        size = client.download(f"/recordings/{args.id}/original", args.out, params)
        print(_("wrote %s (%d bytes)") % (args.out, size))
        return 0
    vault = open_(args)
    got = evidence.get_original(vault, local_owner(), args.id, args.out, args.reason, args.grant)
    print(_("wrote %s (%d bytes, sha256 %s)") % (got.out, got.size_bytes, got.recording.sha256))
    return 0
