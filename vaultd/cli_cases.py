"""``vaultd cases | holds | retention`` and ``vaultd recordings label | classify`` (#6).

Each command runs locally on the station (as its owner) or, with --url/--token
or a saved login, over the API as a named user: approvals (purge batches, hold
releases, class changes) are always made by named users.
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from vaultd import cases, classes, holds, labels, retention
from vaultd import views_cases as vc
from vaultd.access import Level
from vaultd.clicommon import at, cmd, open_, parse_time, print_json, remote, zone, zone_note
from vaultd.errors import UsageError
from vaultd.holds import HoldReason
from vaultd.i18n import _
from vaultd.safetext import escape
from vaultd.labels import TEXT_FIELDS
from vaultd.people import local_owner
from vaultd.vault import Vault, utcnow


def add_commands(sub: Any) -> None:
    """Register this concern's commands on the top-level subparsers."""
    _add_cases(sub)
    _add_recording_commands(sub)
    _add_holds(sub)
    _add_retention(sub)


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help=_("print JSON"))


def _when(args: argparse.Namespace, vault: Vault | None, text: str | None, option: str) -> Any:
    """A local time for the service (aware), or the text as given for the API."""
    if text is None:
        return None
    if vault is None:
        return text
    return parse_time(text, zone(vault), option)


def _emit(args: argparse.Namespace, data: Any, line: str) -> int:
    if getattr(args, "json", False):
        print_json(data)
    else:
        print(line)
    return 0


# -- cases ----------------------------------------------------------------------------------

def _add_cases(sub: Any) -> None:
    cs = sub.add_parser("cases", help=_("cases: one case, one file (R8)")).add_subparsers(
        metavar="ACTION", required=True)
    c = cmd(cs, "create", _run_create, _("open a case"))
    c.add_argument("number", help=_("case number (案件编号)"))
    c.add_argument("--title", required=True)
    c.add_argument("--unit")
    c.add_argument("--handler", dest="handler_name", help=_("承办人"))
    c.add_argument("--party", help=_("行政相对人"))
    c.add_argument("--confidentiality", default="normal", choices=[lv.value for lv in Level])
    c.add_argument("--act-ended", help=_("when the enforcement act ended (R8: file due 30 days later)"))
    c.add_argument("--file-keep-months", type=int, help=_("the case file's archive period (evidence class)"))
    _json_flag(c)
    s = cmd(cs, "show", _run_show, _("show a case, its recordings and the file deadline"))
    s.add_argument("number")
    _json_flag(s)
    ls = cmd(cs, "list", _run_list, _("list cases"))
    ls.add_argument("--status", choices=["open", "closed", "archived"])
    ls.add_argument("--unit")
    _json_flag(ls)
    lk = cmd(cs, "link", _run_link, _("link recordings to an open case as evidence"))
    lk.add_argument("number")
    lk.add_argument("recordings", nargs="+", metavar="RECORDING")
    cl = cmd(cs, "close", _run_close, _("close a case: its recordings must be labelled"))
    cl.add_argument("number")
    cl.add_argument("--act-ended", help=_("when the enforcement act ended (default: as recorded, else now)"))
    _json_flag(cl)
    ar = cmd(cs, "archive", _run_archive, _("archive a closed case"))
    ar.add_argument("number")
    _json_flag(ar)


def _case_line(d: dict[str, Any]) -> str:
    due = at(d.get("file_deadline"), with_zone=True)
    late = _(" OVERDUE") if d.get("file_overdue") else ""
    return (f"{escape(d['number'])}  [{d['status']}]  {escape(d['title'])}  " + _("handler %s, party %s, file due %s%s")
            % (escape(d.get("handler") or "-"), escape(d.get("party") or "-"), due, late))


def _run_create(args: argparse.Namespace) -> int:
    client = remote(args)
    body = {"number": args.number, "title": args.title, "unit": args.unit, "handler": args.handler_name,
            "party": args.party, "confidentiality": args.confidentiality, "file_keep_months": args.file_keep_months}
    if client:
        data = client.json("POST", "/cases", json={**body, "act_ended_at": args.act_ended})
    else:
        vault = open_(args)
        new = cases.NewCase(args.number, args.title, args.unit, args.handler_name, args.party,
                            Level(args.confidentiality), _when(args, vault, args.act_ended, "--act-ended"),
                            args.file_keep_months)
        data = cases.case_json(cases.create(vault, local_owner(), new))
    return _emit(args, data, _("opened case %s") % data["number"])


def _run_show(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        data = client.json("GET", "/case", params={"number": args.number})
    else:
        data = cases.show(open_(args), local_owner(), args.number).as_json()
    if args.json:
        print_json(data)
        return 0
    print(_case_line(data))
    for key in ("unit", "confidentiality", "act_ended_at", "opened_at", "opened_by", "closed_at", "archived_at"):
        value = data.get(key)
        print(f"  {key:<16} " + (at(value, with_zone=True) if key.endswith("_at") and value else escape(value or "-")))
    print(_("  recordings       %s") % (" ".join(data["recordings"]) or "-"))
    if data["hidden_recordings"]:
        print(_("  (%d more you may not see)") % data["hidden_recordings"])
    if data["not_ready_to_close"]:
        print(_("  not labelled     %s") % " ".join(data["not_ready_to_close"]))
    if data["holds"]:
        print(_("  holds            %s") % " ".join(data["holds"]))
    return 0


def _run_list(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        params = {k: v for k, v in {"status": args.status, "unit": args.unit}.items() if v}
        items = client.json("GET", "/cases", params=params)["items"]
    else:
        items = [cases.case_json(c) for c in cases.list_(open_(args), local_owner(), args.status, args.unit)]
    if args.json:
        print_json(items)
        return 0
    for d in items:
        print(_case_line(d))
    print(_("%d cases") % len(items))
    return 0


def _run_link(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        linked = client.json("POST", "/case/link", json={"case": args.number, "recordings": args.recordings})["linked"]
    else:
        linked = cases.link(open_(args), local_owner(), args.number, args.recordings)
    print(_("linked %d recordings to case %s") % (len(linked), args.number))
    return 0


def _run_close(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        data = client.json("POST", "/case/close", json={"case": args.number, "act_ended_at": args.act_ended})
    else:
        vault = open_(args)
        data = cases.case_json(cases.close(vault, local_owner(), args.number,
                                           _when(args, vault, args.act_ended, "--act-ended")))
    return _emit(args, data, _("closed case %s; case file due %s") % (data["number"], data["file_deadline"]))


def _run_archive(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        data = client.json("POST", "/case/archive", json={"case": args.number})
    else:
        data = cases.case_json(cases.archive(open_(args), local_owner(), args.number))
    return _emit(args, data, _("archived case %s") % data["number"])


# -- recordings label | classify ----------------------------------------------------------------

def _recordings_subparsers(sub: Any) -> Any:
    """The ``vaultd recordings`` ACTION subparsers (registered by cli_recordings)."""
    parser = sub.choices.get("recordings")
    if parser is None:
        raise RuntimeError("cli_recordings must register 'recordings' before cli_cases")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError("'recordings' has no subcommands")


def _add_recording_commands(sub: Any) -> None:
    rs = _recordings_subparsers(sub)
    lab = cmd(rs, "label", _run_label, _("show or change a recording's label (R2, R3); audited, bytes untouched"))
    lab.add_argument("id", help=_("recording id, or a sha256 prefix"))
    lab.add_argument("--case-number", help=_("案件编号"))
    lab.add_argument("--party", help=_("行政相对人"))
    lab.add_argument("--handler", dest="handler_name", help=_("承办人"))
    lab.add_argument("--making-method", help=_("制作方法 (default: from the device)"))
    lab.add_argument("--maker", help=_("制作人 (default: the officer)"))
    lab.add_argument("--making-time", help=_("制作时间 (default: when recording started)"))
    lab.add_argument("--proves", help=_("证明对象: what it proves"))
    lab.add_argument("--description", help=_("文字说明: written description (required for audio)"))
    _json_flag(lab)
    cls = cmd(rs, "classify", _run_classify, _("set a recording's retention class (shorter: needs approval)"))
    cls.add_argument("id")
    cls.add_argument("--class", dest="class_", required=True, metavar="CLASS")
    cls.add_argument("--reason", default="", help=_("why (required for a shorter class)"))
    _json_flag(cls)


def _label_line(d: dict[str, Any]) -> str:
    times = ("making_time", "labelled_at", "label_due")
    rows = [f"{k:<14} " + ("-" if d.get(k) is None else at(d[k], with_zone=True) if k in times else escape(d[k]))
            for k in ("recording", *TEXT_FIELDS, "making_time", "labelled", "labelled_at", "label_due", "label_late",
                      "updated_by")]
    return "\n".join(rows)


def _run_label(args: argparse.Namespace) -> int:
    given = {k: getattr(args, "handler_name" if k == "handler" else k) for k in TEXT_FIELDS}
    changes: dict[str, object] = {k: v for k, v in given.items() if v is not None}
    client = remote(args)
    if client:
        if args.making_time is not None:
            changes["making_time"] = args.making_time
        path = f"/recordings/{quote(args.id, safe='')}/label"
        data = client.json("POST", path, json=changes) if changes else client.json("GET", path)
    else:
        vault = open_(args)
        if args.making_time is not None:
            changes["making_time"] = parse_time(args.making_time, zone(vault), "--making-time")
        if changes:
            labels.set_label(vault, local_owner(), args.id, changes)
        rec, label = labels.get_label(vault, local_owner(), args.id)
        data = vc.label_json(rec, label, zone(vault), vault.config.retention.label_working_days)
    return _emit(args, data, _label_line(data))


def _run_classify(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        data = client.json("POST", f"/recordings/{quote(args.id, safe='')}/class",
                           json={"class": args.class_, "reason": args.reason})
    else:
        data = vc.classified_json(classes.classify(open_(args), local_owner(), args.id, args.class_, args.reason))
    if data["applied"]:
        line = _("%s: class %s (was %s)") % (data["recording"], data["new"], data["old"] or _("unclassified"))
    else:
        line = _("%s: %s keeps it for less time; change %s waits for a supervisor's approval "
                 "('vaultd retention class-change approve %s')") % (data["recording"], data["new"], data["change"],
                                                                    data["change"])
    return _emit(args, data, line)


# -- holds ----------------------------------------------------------------------------------

def _add_holds(sub: Any) -> None:
    hs = sub.add_parser("holds", help=_("holds: long-term keeping that blocks every purge (R6)")).add_subparsers(
        metavar="ACTION", required=True)
    a = cmd(hs, "add", _run_hold_add, _("put a hold on a recording or a case"))
    target = a.add_mutually_exclusive_group(required=True)
    target.add_argument("--recording")
    target.add_argument("--case")
    a.add_argument("--reason", required=True, choices=[r.value for r in HoldReason])
    a.add_argument("--note", help=_("what happened (required for 'other')"))
    _json_flag(a)
    ls = cmd(hs, "list", _run_hold_list, _("list active holds"))
    ls.add_argument("--all", action="store_true", help=_("released ones too"))
    _json_flag(ls)
    r = cmd(hs, "release", _run_hold_release, _("release a hold (a second person, not the one who set it)"))
    r.add_argument("id")
    r.add_argument("--note")
    _json_flag(r)


def _hold_line(d: dict[str, Any]) -> str:
    what = _("recording %s") % d["recording"] if d["recording"] else _("case %s") % d["case"]
    state = _("active") if d["active"] else _("released by %s at %s") % (escape(d["released_by"]),
                                                                           at(d["released_at"], with_zone=True))
    return (f"{d['id']}  {escape(what)}  {escape(d['reason'])}  "
            + _("set by %s at %s; %s") % (escape(d["set_by"]), at(d["set_at"], with_zone=True), state)
            + (f"  ({escape(d['note'])})" if d.get("note") else ""))


def _run_hold_add(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        data = client.json("POST", "/holds", json={"recording": args.recording, "case": args.case,
                                                   "reason": args.reason, "note": args.note})
    else:
        vault = open_(args)
        data = vc.hold_json(holds.add(vault, local_owner(), reason=HoldReason(args.reason), recording=args.recording,
                                      case=args.case, note=args.note), zone(vault))
    return _emit(args, data, data["id"])


def _run_hold_list(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        items = client.json("GET", "/holds", params={"released": "true" if args.all else "false"})["items"]
    else:
        vault = open_(args)
        items = [vc.hold_json(h, zone(vault)) for h in holds.list_(vault, local_owner(), include_released=args.all)]
    if args.json:
        print_json(items)
        return 0
    for d in items:
        print(_hold_line(d))
    return 0


def _run_hold_release(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        data = client.json("POST", f"/holds/{quote(args.id, safe='')}/release", json={"note": args.note})
    else:
        vault = open_(args)
        data = vc.hold_json(holds.release(vault, local_owner(), args.id, args.note), zone(vault))
    return _emit(args, data, _("released hold %s") % data["id"])


# -- retention ------------------------------------------------------------------------------

def _add_retention(sub: Any) -> None:
    rt = sub.add_parser("retention", help=_("retention plan, purge batches and purges (R6)")).add_subparsers(
        metavar="ACTION", required=True)
    p = cmd(rt, "plan", _run_plan, _("what would have expired by a date, and why (nothing is changed)"))
    p.add_argument("--at", help=_("the date or time to plan for (default: now)"))
    p.add_argument("--all", action="store_true", help=_("every recording, with why it is kept"))
    _json_flag(p)
    batch = rt.add_parser("batch", help=_("purge batches")).add_subparsers(metavar="ACTION", required=True)
    cmd(batch, "create", _run_batch_create, _("gather what has expired now into a batch; prints its id"))
    _json_flag(cmd(batch, "list", _run_batch_list, _("open batches")))
    sh = cmd(batch, "show", _run_batch_show, _("one batch"))
    sh.add_argument("id")
    _json_flag(sh)
    ap = cmd(batch, "approve", _run_batch_approve, _("approve a batch (each person once; named users)"))
    ap.add_argument("id")
    pg = cmd(rt, "purge", _run_purge, _("purge an approved batch: removes originals, keeps tombstones"))
    pg.add_argument("--batch", required=True)
    _json_flag(pg)
    cc = rt.add_parser("class-change", help=_("shorter-class requests")).add_subparsers(metavar="ACTION",
                                                                                        required=True)
    _json_flag(cmd(cc, "list", _run_changes, _("pending class changes")))
    for verdict in ("approve", "deny"):
        x = cmd(cc, verdict, _run_change_decide, _("%s a class change (a supervisor, not the requester)") % verdict)
        x.add_argument("id")
        x.set_defaults(verdict=verdict)


def _run_plan(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        params = {"all": "true" if args.all else "false", **({"at": args.at} if args.at else {})}
        data = client.json("GET", "/retention/plan", params=params)
    else:
        vault = open_(args)
        when = _when(args, vault, args.at, "--at") or utcnow()
        items = [d for d in retention.plan_vault(vault, local_owner(), when) if args.all or d.purgeable]
        data = {"at": when.isoformat(), "items": [vc.decision_json(d, zone(vault)) for d in items]}
    if args.json:
        print_json(data)
        return 0
    print(zone_note())
    for d in data["items"]:
        print(f"{d['recording']}  {d['verdict']:<13} {d['class']:<10} {at(d['expires_at']):<19} {escape(d['why'])}")
    expired = sum(1 for d in data["items"] if d["verdict"] == "expired")
    print(_("%d expired by %s") % (expired, at(data["at"], with_zone=True)))
    return 0


def _run_batch_create(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        data = client.json("POST", "/retention/batches")["batch"]
    else:
        vault = open_(args)
        b = retention.create_batch(vault, local_owner())
        data = vc.batch_json(b, zone(vault), vault.config.retention.purge_approvals) if b else None
    if data is None:
        print(_("nothing has expired: no batch"))
        return 0
    print(data["id"])
    return 0


def _batch_line(d: dict[str, Any]) -> str:
    return _("%s  %s  %d recordings, approved by %s (%d needed)") % (
        d["id"], d["status"], len(d["items"]), ", ".join(d["approvers"]) or "-", d["approvals_needed"])


def _run_batch_list(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        items = client.json("GET", "/retention/batches")["items"]
    else:
        vault = open_(args)
        need = vault.config.retention.purge_approvals
        items = [vc.batch_json(b, zone(vault), need) for b in retention.open_batches(vault, local_owner())]
    if args.json:
        print_json(items)
        return 0
    for d in items:
        print(_batch_line(d))
    return 0


def _run_batch_show(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        data = client.json("GET", f"/retention/batches/{quote(args.id, safe='')}")
    else:
        vault = open_(args)
        data = vc.batch_json(retention.get_batch(vault, local_owner(), args.id), zone(vault),
                             vault.config.retention.purge_approvals)
    if args.json:
        print_json(data)
        return 0
    print(_batch_line(data))
    for i in data["items"]:
        print(f"  {i['recording']}  {i['class']:<10} {at(i['expires_at'], with_zone=True)}  {escape(i['why'])}")
    return 0


def _run_batch_approve(args: argparse.Namespace) -> int:
    client = remote(args)
    if client is None:
        raise UsageError(_("a purge batch is approved by named users over the API"),
                         hint=_("use --url and --token, or 'vaultd login --url URL --user NAME'"))
    data = client.json("POST", f"/retention/batches/{quote(args.id, safe='')}/approve")
    print(_batch_line(data))
    return 0


def _run_purge(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        data = client.json("POST", f"/retention/batches/{quote(args.batch, safe='')}/purge")
    else:
        data = vc.purge_json(retention.purge(open_(args), local_owner(), args.batch))
    if args.json:
        print_json(data)
        return 0
    for rid in data["purged"]:
        print(_("purged %s (tombstone kept)") % rid)
    for s in data["skipped"]:
        print(_("kept   %s: %s") % (s["recording"], escape(s["why"])))
    print(_("%d purged, %d kept") % (len(data["purged"]), len(data["skipped"])))
    return 0


def _run_changes(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        items = client.json("GET", "/retention/class-changes")["items"]
    else:
        vault = open_(args)
        items = [vc.change_json(c, zone(vault)) for c in classes.pending(vault, local_owner())]
    if args.json:
        print_json(items)
        return 0
    for c in items:
        print(f"{c['id']}  {c['recording']}  {c['from']} -> {c['to']}  {escape(c['requested_by'])}  "
              f"{escape(c['reason'])}")
    return 0


def _run_change_decide(args: argparse.Namespace) -> int:
    client = remote(args)
    if client is None:
        raise UsageError(_("a class change is decided by a named supervisor over the API"),
                         hint=_("use --url and --token, or 'vaultd login --url URL --user NAME'"))
    data = client.json("POST", f"/retention/class-changes/{quote(args.id, safe='')}/{args.verdict}")
    print(_("class change %s: %s") % (data["id"], data["status"]))
    return 0
