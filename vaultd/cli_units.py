"""``vaultd recordings reassign``: move recordings to another unit (R13, #17.3)."""

from __future__ import annotations

import argparse
from typing import Any

from vaultd.clicommon import cmd, filter_help, open_, print_json, remote, time_filter
from vaultd.i18n import _


def add_recording_commands(rs: Any) -> None:
    p = cmd(rs, "reassign", _run_reassign,
            _("move recordings to another unit (admin; one, or an officer's in a time range), with a reason; "
              "each recording moved is an audit entry"))
    p.add_argument("id", nargs="?", help=_("one recording (id or sha256 prefix)"))
    p.add_argument("--officer", help=_("an officer's recordings (警号) instead of one"))
    p.add_argument("--since", help=_("with --officer: ") + filter_help(True))
    p.add_argument("--until", help=_("with --officer: ") + filter_help(False))
    p.add_argument("--unit", required=True, help=_("the unit they belong to from now on"))
    p.add_argument("--reason", required=True, help=_("why (kept in the audit log)"))
    p.add_argument("--json", action="store_true")


def _run_reassign(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        body = {"unit": args.unit, "reason": args.reason, "recording": args.id, "officer": args.officer,
                "since": args.since, "until": args.until}
        moved = client.json("POST", "/recordings/reassign", json={k: v for k, v in body.items() if v})["items"]
    else:
        from vaultd import units
        from vaultd.people import local_owner

        vault = open_(args)
        which = units.Selection(recording=args.id, officer=args.officer,
                                since=time_filter(vault, args.since, "--since"),
                                until=time_filter(vault, args.until, "--until", end=True))
        moved = [m.__dict__ for m in units.reassign(vault, local_owner(), which, args.unit, args.reason, "cli")]
    if args.json:
        print_json(moved)
        return 0
    for m in moved:
        print(f"{m['recording_id']}  {m['unit_before'] or '-'} -> {m['unit_after']}")
    print(_("%d recordings moved to %s") % (len(moved), args.unit))
    return 0
