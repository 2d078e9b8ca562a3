"""``vaultd audit ...``, ``vaultd keys show`` and ``vaultd recordings receipt``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from vaultd import audit, auditcheck, logview, note, timefmt, tlogfmt
from vaultd.people import local_owner
from vaultd.audit import AuditFilter, Event
from vaultd.clicommon import cmd, filter_help, open_, print_json, remote, shown_zone, time_filter, write_out, zone
from vaultd.errors import LogTamperedError, UsageError
from vaultd.i18n import _
from vaultd.model import Actor
from vaultd.safetext import escape


def add_commands(sub: Any) -> None:
    a = sub.add_parser("audit", help=_("the tamper-evident audit log: list, verify, checkpoints, proofs"))
    asub = a.add_subparsers(metavar="ACTION", required=True)
    lst = cmd(asub, "list", _run_list, _("show log entries (reading the log is itself logged)"))
    lst.add_argument("--json", action="store_true", help=_("the entries as JSON (times ISO 8601, UTC)"))
    lst.add_argument("--recording", help=_("only entries about this recording id"))
    lst.add_argument("--actor", help=_("only this actor, e.g. local:alice or alice"))
    lst.add_argument("--type", help=_("only this type, or a prefix like 'ingest.*'"))
    lst.add_argument("--since", metavar="WHEN", help=filter_help(lower=True))
    lst.add_argument("--limit", type=int, default=1000)
    cp = cmd(asub, "checkpoint", _run_checkpoint, _("print the latest signed checkpoint (C2SP tlog-checkpoint)"))
    cp.add_argument("--out", type=Path, help=_("also write it to this file, to check the log against later"))
    ent = cmd(asub, "entry", _run_entry, _("print the exact bytes of entry N"))
    ent.add_argument("n", type=int)
    con = cmd(asub, "consistency", _run_consistency,
              _("print an RFC 6962 consistency proof, base64, one hash per line"))
    con.add_argument("old_size", type=int)
    con.add_argument("new_size", type=int, nargs="?")
    ver = cmd(asub, "verify", _run_verify,
              _("recompute the whole log and check every checkpoint, link and recording; exit 0 when intact "
                "(with --url: fetch the log over the API and check it here, against --log-key)"))
    ver.add_argument("--since", type=Path, metavar="FILE",
                     help=_("a checkpoint saved earlier with 'audit checkpoint --out'"))
    ver.add_argument("--log-key", metavar="KEY",
                     help=_("the log's verifier key to pin (the string, or a file holding it); required "
                            "with --url: the log is fetched over the API and checked here against this key"))
    ver.add_argument("--save", type=Path, metavar="FILE",
                     help=_("when intact, write the latest verified checkpoint to FILE, for --since next time"))
    ver.add_argument("--json", action="store_true")
    k = sub.add_parser("keys", help=_("the vault's public keys"))
    ksub = k.add_subparsers(metavar="ACTION", required=True)
    show = cmd(ksub, "show", _run_keys_show, _("print public keys"))
    show.add_argument("--log", action="store_true", required=True,
                      help=_("the log's verifier key in signed-note format (<name>+<keyid>+<key>)"))


def add_receipt(rsub: Any) -> None:
    rc = cmd(rsub, "receipt", _run_receipt,
             _("print a C2SP tlog-proof@v1 for the recording's ingest entry"))
    rc.add_argument("id", help=_("recording id, or a sha256 prefix"))


def _entries(args: argparse.Namespace) -> tuple[list[dict[str, Any]], ZoneInfo]:
    client = remote(args)
    if client:
        params = {k: v for k, v in {"recording": args.recording, "actor": args.actor, "type": args.type,
                                    "since": args.since, "limit": args.limit}.items() if v}
        items: list[dict[str, Any]] = client.json("GET", "/audit/entries", params=params)["items"]
        return items, shown_zone()
    vault = open_(args)
    flt = AuditFilter(recording_id=args.recording, actor=args.actor, type=args.type,
                      since=time_filter(vault, args.since, "--since"),
                      limit=args.limit)
    entries = [{"index": e.index, **e.doc} for e in logview.list_entries(vault, local_owner(), flt, "cli")]
    return entries, zone(vault)


def _flat(value: Any, key: str = "") -> list[tuple[str, str]]:
    """A detail value as ``key=value`` pairs: nested dicts as ``a.b``, lists joined by commas."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _flat(v, f"{key}.{k}" if key else str(k))]
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            return [(key, ",".join("-" if v is None else str(v) for v in value))]
        return [pair for i, v in enumerate(value) for pair in _flat(v, f"{key}[{i}]")]
    shown = "-" if value is None else ("yes" if value is True else "no" if value is False else str(value))
    return [(key, shown)]


def entry_line(d: dict[str, Any], tz: ZoneInfo) -> str:
    """One audit entry as a person reads it: station time, who, what, on which recording, its details.

    Every stored text is escaped (a login name with ESC or a line break cannot start a line of its own)."""
    ev = d.get("evidence") or {}
    actor = d.get("actor") or {}
    who = escape(f"{actor.get('kind', '?')}:{actor.get('name', '?')}/{actor.get('via', '?')}")
    details = "  ".join(f"{escape(k)}={escape(v)}" for k, v in _flat(d.get("details") or {}))
    return (f"{d['index']:>7}  {timefmt.format_iso_local(d.get('time'), tz)}  {who:<20} "
            f"{escape(d.get('type', '')):<22} {escape(ev.get('id', '')):<13} {details}").rstrip()


def _run_list(args: argparse.Namespace) -> int:
    entries, tz = _entries(args)
    if args.json:
        print_json(entries)
        return 0
    print(timefmt.zone_note(tz))
    for d in entries:
        print(entry_line(d, tz))
    print(_("%d entries") % len(entries))
    return 0


def _run_checkpoint(args: argparse.Namespace) -> int:
    client = remote(args)
    signed = client.call("GET", "/audit/checkpoint").content if client else logview.checkpoint(open_(args))
    if args.out:
        write_out(args.out, signed)
    sys.stdout.write(signed.decode("utf-8"))
    return 0


def _run_entry(args: argparse.Namespace) -> int:
    client = remote(args)
    data = (client.call("GET", f"/audit/entries/{args.n}").content if client
            else logview.entry(open_(args), local_owner(), args.n, "cli"))
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0


def _run_consistency(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        params = {"old": args.old_size, **({"new": args.new_size} if args.new_size else {})}
        sys.stdout.write(client.call("GET", "/audit/consistency", params=params).text)
        return 0
    proof = logview.consistency(open_(args), args.old_size, args.new_size)
    sys.stdout.write(tlogfmt.format_consistency_proof(proof))
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    from vaultd import auditremote, progress

    held = _read_held(args.since) if args.since else None
    client = remote(args)
    if client:
        key = auditremote.pinned_key(args.log_key)
        bar = progress.CountBar(_("audit entries")) if progress.wanted(args.json) else None
        report = auditremote.verify(client, key, held, bar)
        where = client.url
    else:
        vault = open_(args)
        report = auditcheck.verify(vault, held, auditremote.pinned_key(args.log_key) if args.log_key else None)
        with vault.engine.begin() as conn:
            audit.append(conn, Event("audit.verify", Actor.local(), {
                "ok": report.ok, "entries": report.entries, "problems": report.problems[:20]}))
        where = str(vault.layout.root)
    if args.save and report.ok and report.latest is not None:
        write_out(args.save, report.latest)
    _print_report(args, report, where)
    if not report.ok:
        raise LogTamperedError(report.problems[0], hint=_("the log or the catalog was altered outside vaultd"))
    return 0


def _read_held(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(_("cannot read %s: %s") % (path, exc.strerror)) from None


def _print_report(args: argparse.Namespace, report: auditcheck.VerifyReport, where: str) -> None:
    if args.json:
        print_json({"ok": report.ok, "vault": where, "entries": report.entries, "checkpoints": report.checkpoints,
                    "recordings": report.recordings, "problems": report.problems})
        return
    print(_("audit log of %s: %d entries, %d checkpoints, %d recordings checked")
          % (where, report.entries, report.checkpoints, report.recordings))
    for p in report.problems:
        print(_("  FAIL %s") % p)
    if report.ok:
        if args.save and report.latest is not None:
            print(_("latest checkpoint saved to %s (verify against it next time with --since)") % args.save)
        print(_("intact"))


def _run_keys_show(args: argparse.Namespace) -> int:
    vault = open_(args)
    print(note.verifier_key_string(audit.verifier(vault)))
    return 0


def _run_receipt(args: argparse.Namespace) -> int:
    client = remote(args)
    receipt = (client.call("GET", f"/recordings/{args.id}/receipt").content if client
               else logview.receipt(open_(args), local_owner(), args.id, "cli"))
    sys.stdout.write(receipt.decode("utf-8"))
    return 0


__all__ = ["add_commands", "add_receipt"]
