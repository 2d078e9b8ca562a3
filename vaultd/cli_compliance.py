"""``vaultd compliance|trips|gaps|spotcheck|report`` and the background-scrub
options of ``vaultd scrub`` (#6): thin over the compliance services.

Read commands work locally (``--home``) or over the API (``--url``); both
print the same JSON documents the services produce.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from vaultd import compliance, gaps, scrub, spotcheck, stats, timefmt
from vaultd.clicommon import cmd, filter_help, open_, parse_time, print_json, remote, shown_zone, time_filter, zone
from vaultd.errors import IntegrityError, UsageError
from vaultd.i18n import _
from vaultd.model import Actor
from vaultd.people import local_owner
from vaultd.safetext import escape
from vaultd.vault import Vault, utcnow


def add_commands(sub: Any) -> None:
    """Register this concern's commands on the top-level subparsers."""
    _add_compliance(sub)
    _add_trips(sub)
    _add_gaps(sub)
    _add_spotcheck(sub)
    _add_report(sub)


def _period(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="since", metavar="WHEN", help=filter_help(lower=True))
    p.add_argument("--to", dest="until", metavar="WHEN", help=filter_help(lower=False))


def _times(vault: Vault, args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    return (time_filter(vault, args.since, "--from"), time_filter(vault, args.until, "--to", end=True))


def _params(args: argparse.Namespace, **more: Any) -> dict[str, Any]:
    """Query parameters for the API: the time filters as typed (the API reads them with the same parser)."""
    out = {"unit": getattr(args, "unit", None), "since": getattr(args, "since", None),
           "until": getattr(args, "until", None), **more}
    return {k: v for k, v in out.items() if v is not None}


def _naive(text: str, option: str) -> datetime:
    """A point in time as written (a date: its midnight), without a zone when none was given (for the API)."""
    t = parse_time(text, ZoneInfo("UTC"), option)  # validates, with a clear error
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return t.replace(tzinfo=None)




def _at(text: str | None) -> str:
    """An ISO time from a service's JSON, shown in the station's zone."""
    return timefmt.format_iso_local(text, shown_zone())


def _open(args: argparse.Namespace) -> Vault:
    vault = open_(args)
    return vault


def _rate(r: float | None) -> str:
    return "-" if r is None else f"{100 * r:.1f}%"


# -- compliance ------------------------------------------------------------------

def _add_compliance(sub: Any) -> None:
    c = sub.add_parser("compliance", help=_("upload deadlines, labelling, interruptions (R1, R2, R12)"))
    cs = c.add_subparsers(metavar="ACTION", required=True)
    rep = cmd(cs, "report", _run_report, _("on-time rate, late, unlabelled and interruptions per unit and officer"))
    rep.add_argument("--unit")
    _period(rep)
    rep.add_argument("--json", action="store_true")
    late = cmd(cs, "late-reason", _run_late_reason, _("enter why a late recording was late"))
    late.add_argument("id")
    late.add_argument("--reason", required=True)
    cmd(cs, "check-alerts", _run_check_alerts,
        _("raise the compliance alerts now (the daemon does this on its schedule)"))


def _run_report(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        doc = client.json("GET", "/compliance/report", params=_params(args))
    else:
        vault = _open(args)
        since, until = _times(vault, args)
        doc = compliance.report(vault, local_owner(), since=since, until=until, unit=args.unit).as_json()
    if args.json:
        print_json(doc)
        return 0
    _print_report(doc)
    return 0


def _unit(doc: dict[str, Any], unit: str | None) -> str:
    """A unit as the report's reader knows it: its configured name, then its id."""
    name = (doc.get("unit_names") or {}).get(unit)
    return f"{name} ({unit})" if name and unit else unit or "-"


def _print_agency(doc: dict[str, Any]) -> None:
    if doc.get("agency"):
        print(doc["agency"])


def _print_report(doc: dict[str, Any]) -> None:
    t = doc["total"]
    _print_agency(doc)
    print(timefmt.zone_note(shown_zone()))
    print(_("compliance %s .. %s, unit %s") % (_at(doc["since"]), _at(doc["until"]),
                                               _unit(doc, doc["unit"]) if doc["unit"] else _("all")))
    print(_("  recordings %d: on time %d, late %d, unknown time %d; on-time rate %s")
          % (t["recordings"], t["on_time"], t["late"], t["unknown"], _rate(t["on_time_rate"])))
    print(_("  unlabelled %d (%d past deadline); interruptions %d (%d without a note)")
          % (t["unlabelled"], t["overdue_unlabelled"], t["interruptions"], t["unnoted_interruptions"]))
    for title, key in ((_("per unit"), "by_unit"), (_("per officer"), "by_officer")):
        print(f"{title}:")
        for g in doc[key]:
            shown = _unit(doc, g["key"]) if key == "by_unit" else g["key"] or "-"
            print(f"  {shown:<16} {g['recordings']:>5} {_('on time')} {_rate(g['on_time_rate']):>6}"
                  f"  {_('late')} {g['late']:>3}  {_('unlabelled')} {g['unlabelled']:>3}"
                  f"  {_('interruptions')} {g['interruptions']:>3}")
    if doc["late"]:
        print(_("late:"))
        for x in doc["late"]:
            print(f"  {x['id']}  {x['officer_id'] or '-'}  {x['device_serial'] or '-'}  "
                  + _("deadline %s, ingested %s (%.1f h late)%s") % (
                      _at(x["deadline"]), _at(x["ingested_at"]), (x["late_by_s"] or 0) / 3600,
                      f"; {_('reason')}: {escape(x['reason'])}" if x["reason"] else _("; no reason entered")))
    if doc["unlabelled"]:
        print(_("unlabelled:"))
        for u in doc["unlabelled"]:
            print(f"  {u['id']}  {u['officer_id'] or '-'}  " + _("due %s%s")
                  % (_at(u["deadline"]), _(" OVERDUE") if u["overdue"] else ""))
    _print_gaps(doc["interruptions"], title=_("interruptions:"))


def _run_late_reason(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        doc = client.json("POST", f"/compliance/late/{args.id}", json={"reason": args.reason})
    else:
        doc = compliance.set_late_reason(_open(args), local_owner(), args.id, args.reason).as_json()
    print(_("recording %s: late reason recorded") % doc["id"])
    return 0


def _run_check_alerts(args: argparse.Namespace) -> int:
    run = compliance.check_alerts(_open(args), Actor.local(), utcnow())
    print(_("cameras not docked: %d; officers with overdue labels: %d; interruptions without a note: %d; "
            "cleared: %d") % (len(run.not_docked), len(run.unlabelled), len(run.unnoted), run.cleared))
    return 0


# -- trips ---------------------------------------------------------------------------

def _add_trips(sub: Any) -> None:
    t = sub.add_parser("trips", help=_("off-site trips: the upload deadline becomes the return + 24 h (R1)"))
    ts = t.add_subparsers(metavar="ACTION", required=True)
    add = cmd(ts, "add", _run_trips_add, _("record an officer's or a device's trip away from the unit"))
    add.add_argument("--officer", help=_("officer number (警号)"))
    add.add_argument("--device", help=_("camera serial"))
    add.add_argument("--left", required=True, help=_("when they left (station zone if none given)"))
    add.add_argument("--returned", help=_("when they came back (leave out while still away)"))
    add.add_argument("--note", required=True, help=_("where and why"))
    ret = cmd(ts, "return", _run_trips_return, _("record the return of a trip"))
    ret.add_argument("id", type=int)
    ret.add_argument("--at", required=True)
    ls = cmd(ts, "list", _run_trips_list, _("list trips"))
    ls.add_argument("--officer")
    ls.add_argument("--device")
    ls.add_argument("--json", action="store_true")


def _print_trip(t: dict[str, Any]) -> None:
    who = (_("officer %s") % t["officer_number"]) if t["officer_number"] else (_("device %s") % t["device_serial"])
    back = _at(t["returned_at"]) if t["returned_at"] else _("(away)")
    print(f"  {t['id']:>4}  {escape(who):<20} {_at(t['left_at'])} .. {back}  {escape(t['note'])}")


def _run_trips_add(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        row = client.json("POST", "/trips", json={
            "officer_number": args.officer, "device_serial": args.device, "left_at": _naive(args.left, "--left")
            .isoformat(), "returned_at": _naive(args.returned, "--returned").isoformat() if args.returned else None,
            "note": args.note})
    else:
        vault = _open(args)
        tz = zone(vault)
        row = compliance.add_trip(
            vault, local_owner(), officer_number=args.officer, device_serial=args.device,
            left_at=parse_time(args.left, tz, "--left"),
            returned_at=parse_time(args.returned, tz, "--returned") if args.returned else None,
            note=args.note).as_json()
    print(_("trip %d recorded") % row["id"])
    _print_trip(row)
    return 0


def _run_trips_return(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        row = client.json("POST", f"/trips/{args.id}/return",
                          json={"returned_at": _naive(args.at, "--at").isoformat()})
    else:
        vault = _open(args)
        row = compliance.return_trip(vault, local_owner(), args.id, parse_time(args.at, zone(vault), "--at")).as_json()
    _print_trip(row)
    return 0


def _run_trips_list(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        rows = client.json("GET", "/trips", params={k: v for k, v in (("officer", args.officer),
                                                                      ("device", args.device)) if v})
    else:
        rows = [t.as_json() for t in compliance.list_trips(_open(args), local_owner(), officer_number=args.officer,
                                                           device_serial=args.device)]
    if args.json:
        print_json(rows)
    else:
        print(timefmt.zone_note(shown_zone()))
        for t in rows:
            _print_trip(t)
    return 0


# -- gaps --------------------------------------------------------------------------

def _add_gaps(sub: Any) -> None:
    g = sub.add_parser("gaps", help=_("interruptions between clips of one camera in one duty period (R12)"))
    gs = g.add_subparsers(metavar="ACTION", required=True)
    ls = cmd(gs, "list", _run_gaps_list, _("list interruptions; the id is the recording after the gap"))
    ls.add_argument("--device", help=_("camera serial"))
    ls.add_argument("--unit")
    _period(ls)
    ls.add_argument("--unnoted", action="store_true", help=_("only those without a note"))
    ls.add_argument("--json", action="store_true")
    note = cmd(gs, "note", _run_gaps_note, _("attach a note saying why recording stopped"))
    note.add_argument("id", help=_("the recording after the gap"))
    note.add_argument("--text", required=True)


def _print_gaps(rows: list[dict[str, Any]], title: str | None = None) -> None:
    if title and rows:
        print(title)
    elif title is None:  # a table of its own: say the zone of its times
        print(timefmt.zone_note(shown_zone()))
    for g in rows:
        print(f"  {g['id']}  {escape(g['device_serial']):<10} {escape(g['officer_id'] or '-'):<8} "
              f"{_at(g['gap_start'])} .. {_at(g['gap_end'])} ({g['gap_s'] / 60:.1f} min)  "
              f"{escape(g['note']) if g['note'] else _('NO NOTE')}")


def _run_gaps_list(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        rows = client.json("GET", "/gaps", params=_params(args, device=args.device,
                                                          unnoted="true" if args.unnoted else None))
    else:
        vault = _open(args)
        since, until = _times(vault, args)
        rows = [g.as_json() for g in gaps.list_gaps(vault, local_owner(), device_serial=args.device, since=since,
                                                     until=until, unit=args.unit, unnoted_only=args.unnoted)]
    if args.json:
        print_json(rows)
    else:
        _print_gaps(rows)
    return 0


def _run_gaps_note(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        doc = client.json("POST", f"/gaps/{args.id}/note", json={"text": args.text})
    else:
        doc = gaps.note_gap(_open(args), local_owner(), args.id, args.text).as_json()
    _print_gaps([doc])
    return 0


# -- spot checks ----------------------------------------------------------------------

def _add_spotcheck(sub: Any) -> None:
    s = sub.add_parser("spotcheck", help=_("random spot checks for the legal office (R10)"))
    ss = s.add_subparsers(metavar="ACTION", required=True)
    d = cmd(ss, "draw", _run_draw, _("draw a reproducible random sample (the seed is kept and logged)"))
    d.add_argument("--percent", type=float, required=True)
    d.add_argument("--unit")
    _period(d)
    d.add_argument("--seed", help=_("draw again with a known seed (default: a new random one)"))
    d.add_argument("--json", action="store_true")
    sh = cmd(ss, "show", _run_show, _("a spot check: its sample, findings, and what the catalog says"))
    sh.add_argument("id")
    sh.add_argument("--json", action="store_true")
    cmd(ss, "list", _run_list, _("list spot checks")).add_argument("--json", action="store_true")
    f = cmd(ss, "finding", _run_finding, _("record a finding on a sampled recording"))
    f.add_argument("check")
    f.add_argument("recording")
    f.add_argument("--item", required=True, choices=list(spotcheck.CHECKLIST))
    f.add_argument("--result", required=True, choices=list(spotcheck.RESULTS))
    f.add_argument("--note", default="")


def _print_check(doc: dict[str, Any]) -> None:
    print(timefmt.zone_note(shown_zone()))
    print(_("spot check %s: %s%% of %d recordings -> %d, seed %s (drawn %s by %s)")
          % (doc["id"], doc["percent"], doc["population"], len(doc["sample"]), doc["seed"], _at(doc["drawn_at"]),
             doc["drawn_by"]))
    latest = {(f["recording_id"], f["item"]): f for f in doc["findings"]}
    for rid in doc["sample"]:
        h = doc["hints"].get(rid, {})
        marks = " ".join(f"{item}={latest[(rid, item)]['result']}" if (rid, item) in latest else f"{item}=?"
                         for item in spotcheck.CHECKLIST)
        on_time = h.get("on-time", {}).get("status", "-")
        labelled = "yes" if h.get("labelled", {}).get("labelled_at") else "no"
        print(f"  {rid}  [{on_time}, {_('labelled')} {labelled}, {_('gaps')} {len(h.get('uninterrupted', []))}]"
              f"  {marks}")


def _run_draw(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        p = _params(args)
        doc = client.json("POST", "/spotchecks", json={
            "percent": args.percent, "unit": args.unit, "since": p.get("since"), "until": p.get("until"),
            "seed": args.seed})
    else:
        vault = _open(args)
        since, until = _times(vault, args)
        doc = spotcheck.draw(vault, local_owner(), args.percent, unit=args.unit, since=since, until=until,
                             seed=args.seed).as_json()
    if args.json:
        print_json(doc)
    else:
        _print_check(doc)
    return 0


def _run_show(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        doc = client.json("GET", f"/spotchecks/{args.id}")
    else:
        doc = spotcheck.show(_open(args), local_owner(), args.id).as_json()
    if args.json:
        print_json(doc)
    else:
        _print_check(doc)
    return 0


def _run_list(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        docs = client.json("GET", "/spotchecks")
    else:
        docs = [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
                for r in spotcheck.list_checks(_open(args), local_owner())]
    if args.json:
        print_json(docs)
    else:
        print(timefmt.zone_note(shown_zone()))
        for r in docs:
            print(f"  {r['id']}  {_at(r['drawn_at'])}  {r['percent']}%  {r['sample_size']}/{r['population']}"
                  f"  {r['unit'] or '-'}  seed {r['seed']}")
    return 0


def _run_finding(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        doc = client.json("POST", f"/spotchecks/{args.check}/findings", json={
            "recording_id": args.recording, "item": args.item, "result": args.result, "note": args.note})
    else:
        doc = spotcheck.finding(_open(args), local_owner(), args.check, args.recording, args.item, args.result,
                                args.note)
    print(_("finding %d: %s %s = %s") % (doc["id"], doc["recording_id"], doc["item"], doc["result"]))
    return 0


# -- statistics ------------------------------------------------------------------------

def _add_report(sub: Any) -> None:
    r = sub.add_parser("report", help=_("reports: yearly statistics (R14)"))
    rs = r.add_subparsers(metavar="WHAT", required=True)
    st = cmd(rs, "stats", _run_stats, _("yearly statistics per month, unit and officer (R14)"))
    st.add_argument("--year", type=int, required=True)
    st.add_argument("--unit")
    fmt = st.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")


def _run_stats(args: argparse.Namespace) -> int:
    client = remote(args)
    if client and not args.csv:
        doc = client.json("GET", "/report/stats", params=_params(args, year=args.year))
    elif client:
        sys.stdout.write(client.call("GET", "/report/stats.csv",
                                     params=_params(args, year=args.year)).text)
        return 0
    else:
        result = stats.year_stats(_open(args), local_owner(), args.year, unit=args.unit)
        if args.csv:
            sys.stdout.write(result.as_csv())
            return 0
        doc = result.as_json()
    if args.json:
        print_json(doc)
        return 0
    _print_agency(doc)
    print(_("statistics %d, unit %s") % (doc["year"], _unit(doc, doc["unit"]) if doc["unit"] else _("all")))
    print(f"  {'':<10} {'':<14} {_('recordings'):>10} {_('hours'):>8} {_('MiB'):>9} {_('on time'):>8}"
          f" {_('labelled'):>8} {_('exports'):>7} {_('purges'):>6} {_('packages'):>8}")
    rows = [doc["total"], *doc["months"], *doc["units"], *doc["officers"]]
    for r in rows:
        packages = "" if r.get("packages") is None else r["packages"]
        key = _unit(doc, r["key"]) if r["scope"] == "unit" else r["key"]
        print(f"  {r['scope']:<10} {escape(key):<14} {r['recordings']:>10} {r['hours']:>8.1f} "
              f"{r['bytes'] / (1 << 20):>9.1f} {_rate(r['on_time_rate']):>8} {_rate(r['labelling_rate']):>8}"
              f" {r['exports']:>7} {r['purges']:>6} {packages:>8}")
    print(_("exports: recordings exported (one per recording in each package); purges: originals purged; "
            "packages: export packages made. The total is the sum of the months, of the units and of the officers."))
    return 0


# -- vaultd scrub: the background mode and the alarms ---------------------------------

def add_scrub_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--step", action="store_true",
                   help=_("run one background step now (rate- and time-limited, resumes where the last stopped)"))
    p.add_argument("--budget-s", type=float, help=_("with --step: start no new file after this long"))
    p.add_argument("--max-mb-per-s", type=float, help=_("with --step: read at most this many MiB/s"))
    p.add_argument("--status", action="store_true", help=_("where the background scrub stands, and open alarms"))


def run_scrub_mode(vault: Vault, args: argparse.Namespace) -> int:
    if args.step:
        if args.budget_s is not None and args.budget_s < 0 or args.max_mb_per_s is not None and args.max_mb_per_s <= 0:
            raise UsageError(_("--budget-s must not be negative and --max-mb-per-s must be more than 0"))
        step = scrub.scrub_step(vault, Actor.local(), utcnow(), args.budget_s,
                                None if args.max_mb_per_s is None else args.max_mb_per_s * (1 << 20))
        doc: dict[str, Any] = {"round": step.round, "checked": step.checked, "bytes_checked": step.bytes_checked,
                               "failed": [f.__dict__ for f in step.failed], "round_done": step.round_done,
                               "idle": step.idle, "behind": step.behind}
        if not args.json:
            print(_("scrub step: round %d, %d originals checked (%d bytes)%s")
                  % (step.round, step.checked, step.bytes_checked,
                     _("; round done") if step.round_done else _("; idle until the next round")
                     if step.idle else ""))
            for f in step.failed:
                print(_("  FAIL %s %s: %s") % (f.recording_id, f.sha256, f.problem))
    state, files, total = scrub.scrub_status(vault)
    if args.status:
        doc = {"round": state.round if state else None, "files": files, "bytes": total,
               "files_done": state.files_done if state else 0, "bytes_done": state.bytes_done if state else 0,
               "round_started_at": state.round_started_at.isoformat() if state else None,
               "round_finished_at": state.round_finished_at.isoformat() if state and state.round_finished_at
               else None, "period_days": vault.config.compliance.scrub_period_days}
        if not args.json:
            if state is None:
                print(_("background scrub: not started yet (%d originals, %d bytes)") % (files, total))
            else:
                print(_("background scrub: round %d started %s, %d of %d bytes checked%s")
                      % (state.round, state.round_started_at.isoformat(), state.bytes_done, total,
                         _(", done") if state.round_finished_at else ""))
    if args.json:
        doc["alarms"] = [a.as_json() for a in scrub.open_alarms(vault)]
        print_json(doc)
    fail_on_open_alarms(vault, quiet=args.json)
    return 0


def fail_on_open_alarms(vault: Vault, *, quiet: bool = False) -> None:
    """Exit non-zero (IntegrityError) while any scrub alarm is open."""
    open_ = scrub.open_alarms(vault)
    if not open_:
        return
    if not quiet:
        for a in open_:
            print(_("  ALARM %s %s since %s: %s") % (a.kind, a.subject, a.raised_at.isoformat(), a.message))
    raise IntegrityError(_("%d scrub alarms are open") % len(open_),
                         hint=_("restore each original from backup, then clear its alarm with a note "
                                "('vaultd alerts clear ID --note ...')"))
