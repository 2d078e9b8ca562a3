"""``vaultd run | status | alerts`` and ``vaultd devices list|enroll|retire`` (#5)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from vaultd import devices
from vaultd.clicommon import at, cmd, open_, print_json, remote
from vaultd.errors import UsageError
from vaultd.i18n import _
from vaultd.people import local_owner
from vaultd.safetext import escape

log = logging.getLogger("vaultd")


def add_commands(sub: Any) -> None:
    """Register this concern's commands on the top-level subparsers."""
    r = cmd(sub, "run", _run_daemon,
            _("the docking daemon: ingest every enrolled camera docked over USB or in the dock "
              "folder, run the periodic jobs and serve the API, until stopped (SIGTERM)"))
    r.add_argument("--dock-folder", type=Path,
                   help=_("simulated dock: camera trees made by 'vaultd simulate camera' appearing in this "
                          "folder are docked (default: [dock] folder in the config)"))
    r.add_argument("--devices", type=Path,
                   help=_("camera models file (default: <home>/devices.toml if present; "
                          "see config/devices.toml)"))
    r.add_argument("--no-udev", action="store_true", help=_("do not follow udev (USB cameras)"))
    r.add_argument("--no-api", action="store_true", help=_("do not serve the HTTP API"))
    r.add_argument("--no-previews", action="store_true", help=_("do not make previews in the background"))
    r.add_argument("--listen", help=_("API address host:port (default: [dock] api_listen)"))
    r.add_argument("--socket", help=_("API Unix socket (default: [dock] api_socket, else <home>/api.sock)"))
    r.add_argument("--insecure-http", action="store_true",
                   help=_("allow plain HTTP on a non-loopback --listen (tokens and evidence cross the network "
                          "unencrypted; set [dock] api_tls_cert and api_tls_key instead)"))
    r.add_argument("--max-sessions", type=int, help=_("cameras ingested at once (default: [dock] max_sessions)"))
    r.add_argument("--auto-enroll", action="store_true",
                   help=_("ingest and enroll unknown cameras instead of holding them with an alert"))
    s = cmd(sub, "status", _run_status,
            _("the daemon's state: docked cameras and each session's progress (files, bytes, rate, ETA), "
              "queued work, open alerts, last errors"))
    s.add_argument("--json", action="store_true")
    a = sub.add_parser("alerts", help=_("conditions someone must act on (unknown cameras, failed scrubs, ...)"))
    asub = a.add_subparsers(metavar="ACTION", required=True)
    al = cmd(asub, "list", _run_alerts_list, _("list open alerts (--all: cleared ones too)"))
    al.add_argument("--all", action="store_true")
    al.add_argument("--json", action="store_true")
    ac = cmd(asub, "clear", _run_alerts_clear, _("mark an alert as dealt with, saying how"))
    ac.add_argument("id", type=int)
    ac.add_argument("--note", required=True, help=_("what was done about it"))


def add_device_commands(ds: Any) -> None:
    """``vaultd devices list|enroll|retire`` onto the existing ``devices`` parser."""
    ls = cmd(ds, "list", _run_devices_list, _("cameras this station knows: enrolled, unknown and retired"))
    ls.add_argument("--json", action="store_true")
    en = cmd(ds, "enroll", _run_enroll,
             _("enroll a camera: from now on it is ingested when docked (clears its unknown-camera alert)"))
    en.add_argument("serial", help=_("the camera's serial (产品序号)"))
    en.add_argument("--id", type=int, dest="device_id", help=_("which record, when two cameras report the serial"))
    en.add_argument("--model")
    en.add_argument("--note")
    rt = cmd(ds, "retire", _run_retire, _("retire a camera: it is no longer ingested; its recordings stay"))
    rt.add_argument("serial")
    rt.add_argument("--reason", required=True)
    rt.add_argument("--id", type=int, dest="device_id")


# -- run ----------------------------------------------------------------------------------------

def _run_daemon(args: argparse.Namespace) -> int:
    from vaultd.wiring import build_daemon

    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)
    vault = open_(args)
    dmn = build_daemon(vault, dock_folder=args.dock_folder, udev=not args.no_udev,
                              api=not args.no_api, listen=args.listen, socket=args.socket,
                              max_sessions=args.max_sessions, auto_enroll=args.auto_enroll,
                              devices_file=args.devices, previews=not args.no_previews,
                              insecure_http=args.insecure_http)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()
        dmn.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(_("vaultd daemon running on %s; stop with Ctrl-C or SIGTERM; see 'vaultd status'")
          % vault.layout.root, file=sys.stderr)
    return dmn.run(stop)


# -- status -------------------------------------------------------------------------------------

def _run_status(args: argparse.Namespace) -> int:
    from vaultd.daemon import read_status

    client = remote(args)
    if client:
        data = client.json("GET", "/status")
        doc, open_alerts = data["daemon"], data["alerts"]
    else:
        vault = open_(args)
        open_alerts = [a.as_json() for a in devices.station_alerts(vault, local_owner())]
        doc = read_status(vault.layout.root)
    if args.json:
        print_json({"daemon": doc, "alerts": open_alerts})
        return 0
    _print_status(doc)
    print(_("open alerts: %d") % len(open_alerts))
    for a in open_alerts:
        print(f"  #{a['id']} [{a['severity']}] {a['kind']} {escape(a['subject'])}: {escape(a['message'])}"
              + (f" (x{a['count']})" if a["count"] > 1 else ""))
    return 0


def _print_status(doc: dict[str, Any] | None) -> None:
    if doc is None:
        print(_("daemon: never ran with this home (start it with 'vaultd run')"))
        return
    state = doc["state"] if doc.get("running") else _("not running") + f" (last: {doc['state']})"
    print(_("daemon: %s, pid %s, since %s, status at %s")
          % (state, doc.get("pid"), at(doc.get("started_at"), with_zone=True), at(doc.get("updated_at"))))
    sessions = doc.get("sessions") or []
    print(_("docked cameras: %d") % len(sessions) + ("" if sessions else _(" (none)")))
    for st in sessions:
        for line in _session_lines(st):
            print("  " + line)
    if doc.get("queued_events"):
        print(_("queued dock events: %d") % doc["queued_events"])
    for name, extra in (doc.get("extras") or {}).items():
        if isinstance(extra, dict) and extra:
            print(f"{name}:")
            for k, v in extra.items():
                if v is not None:
                    print(f"  {k}: {_extra_text(v)}")
    recent = doc.get("recent") or []
    if recent:
        print(_("recent sessions:"))
        for st in recent[-5:]:
            for line in _session_lines(st):
                print("  " + line)
    for err in doc.get("errors") or []:
        print(_("  error at %s on %s: %s") % (at(err["at"]), escape(err["key"]), escape(err["error"])))


def _extra_text(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_extra_text(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, str) and _is_aware_iso(value):
        return at(value)  # a scheduler's next run, say: station time like every other line (#17.4)
    text = str(value)
    return text if len(text) <= 100 else text[:97] + "..."


def _is_aware_iso(text: str) -> bool:
    try:
        return len(text) >= 19 and "T" in text and datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _outcome_words() -> dict[str, str]:
    """An ingest outcome as people read it, with its count (``%d``)."""
    return {"new": _("%d new"), "duplicate": _("%d already in the vault"), "skipped": _("%d skipped"),
            "deferred": _("%d deferred"), "failed": _("%d failed")}


def _session_lines(st: dict[str, Any]) -> list[str]:
    """One camera's session: a line, then one line per file that did not go into the vault,
    saying why (a skipped identity file, a symlink, a file that kept changing)."""
    lines = [_session_line(st)]
    outcome = {"skipped": _("skipped"), "deferred": _("deferred"), "failed": _("failed")}
    for f in st.get("not_ingested") or []:
        lines.append("  " + _("%s %s: %s") % (outcome.get(f["outcome"], f["outcome"]), escape(f["path"]),
                                              escape(f["reason"]) or _("no reason given")))
    shown = len(st.get("not_ingested") or [])
    left = sum(v for k, v in (st.get("counts") or {}).items() if k not in ("new", "duplicate")) - shown
    if shown and left > 0:
        lines.append("  " + _("... and %d more: vaultd audit list --type 'ingest.*'") % left)
    return lines


def _session_line(st: dict[str, Any]) -> str:
    who = st.get("serial") or st.get("key")
    bits = [f"{who}", f"[{st.get('state')}]"]
    if st.get("officer"):
        bits.append(_("officer %s") % st["officer"])
    if st.get("state") == "ingesting":
        bits.append(f"{st.get('files_done', 0)}/{st.get('files_total', 0)} files, "
                    f"{_mb(st.get('bytes_done', 0))}/{_mb(st.get('bytes_total', 0))}, "
                    f"{_mb(st.get('rate_bytes_per_s', 0))}/s"
                    + (f", ETA {st['eta_s']:.0f} s" if st.get("eta_s") is not None else ""))
    elif st.get("counts"):
        words = _outcome_words()
        bits[-1] += ":"
        bits.append(", ".join(words.get(k, k + " %d") % v for k, v in st["counts"].items() if v))
    if st.get("detail"):
        bits.append(f"({st['detail']})")
    return " ".join(bits)


# -- alerts -------------------------------------------------------------------------------------

def _run_alerts_list(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        rows = client.json("GET", "/alerts", params={"all": str(args.all).lower()})
    else:
        rows = [a.as_json() for a in devices.station_alerts(open_(args), local_owner(), include_cleared=args.all)]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(_("no open alerts"))
    for a in rows:
        state = _("cleared %s by %s: %s") % (at(a["cleared_at"], with_zone=True), escape(a["cleared_by"]),
                                             escape(a["clear_note"])) \
            if a["cleared_at"] else _("open since %s") % at(a["raised_at"], with_zone=True)
        print(f"#{a['id']} [{a['severity']}] {a['kind']} {escape(a['subject'])}: {escape(a['message'])} "
              f"({state}; seen {a['count']}x)")
    return 0


def _run_alerts_clear(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        client.json("POST", f"/alerts/{args.id}/clear", json={"note": args.note})
    else:
        devices.clear_station_alert(open_(args), local_owner(), args.id, args.note)
    print(_("alert #%d cleared") % args.id)
    return 0


# -- devices ------------------------------------------------------------------------------------

def _run_devices_list(args: argparse.Namespace) -> int:
    client = remote(args)
    rows = client.json("GET", "/devices") if client else \
        [r.as_json() for r in devices.list_devices(open_(args), local_owner())]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(_("no cameras known yet; docked cameras appear here, unknown ones until enrolled"))
    for r in rows:
        clock = f"clock {r['clock_offset_s']:+.0f} s" if r["clock_offset_s"] is not None else ""
        battery = f"battery {r['battery_percent']}%" if r["battery_percent"] is not None else ""
        last = at(r["last_docked_at"], with_zone=True) if r["last_docked_at"] else _("never docked")
        print(f"#{r['id']} {escape(r['serial']):<12} {r['status']:<9} {r['model'] or '-':<14} "
              + _("last docked %s") % last + "  " + "  ".join(x for x in (clock, battery) if x))
    return 0


def _run_enroll(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        row = client.json("POST", f"/devices/{args.serial}/enroll",
                          json={"model": args.model, "note": args.note, "device_id": args.device_id})
    else:
        row = devices.enroll(open_(args), local_owner(), args.serial, device_id=args.device_id,
                             model=args.model, note=args.note).as_json()
    print(_("camera %s enrolled (device #%d); if it is docked now the daemon ingests it at once, "
            "else the next time it is docked") % (row["serial"], row["id"]))
    return 0


def _run_retire(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        raise UsageError(_("--reason must say why the camera is retired"))
    client = remote(args)
    if client:
        row = client.json("POST", f"/devices/{args.serial}/retire",
                          json={"reason": args.reason, "device_id": args.device_id})
    else:
        row = devices.retire(open_(args), local_owner(), args.serial, reason=args.reason,
                             device_id=args.device_id).as_json()
    print(_("camera %s retired (device #%d)") % (row["serial"], row["id"]))
    return 0
