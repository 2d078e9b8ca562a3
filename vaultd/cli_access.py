"""``vaultd users|tokens|access|devices|login|serve``: people, approvals, the server."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from vaultd import approvals, cli_daemon, people, timefmt
from vaultd.access import Level, RequestKind, Role
from vaultd.clicommon import cmd, open_, print_json, remote, shown_zone
from vaultd.client import ApiClient, save_credentials
from vaultd.errors import UsageError
from vaultd.home import resolve_home
from vaultd.i18n import _
from vaultd.people import NewUser, local_owner
from vaultd.safetext import escape
from vaultd.vault import open_vault

KINDS = [k.value for k in RequestKind]


def add_commands(sub: Any) -> None:
    _add_users(sub)
    _add_tokens(sub)
    _add_access(sub)
    _add_devices(sub)
    login = cmd(sub, "login", _run_login, _("log in to a vault's API and keep the token in your config"))
    login.add_argument("--user", required=True)
    login.add_argument("--password-stdin", action="store_true", help=_("read the password from stdin"))
    login.add_argument("--expires-days", type=int, default=30)
    login.add_argument("--print-token", action="store_true",
                       help=_("print the token on stdout instead of keeping it (for --token in scripts)"))
    serve = cmd(sub, "serve", _run_serve, _("serve the HTTP API (OpenAPI at /openapi.json)"))
    serve.add_argument("--listen", default="127.0.0.1:8470", help=_("HOST:PORT (default 127.0.0.1:8470)"))
    serve.add_argument("--uds", help=_("also listen on this Unix socket"))
    serve.add_argument("--tls-cert", help=_("TLS certificate (PEM); with --tls-key"))
    serve.add_argument("--tls-key", help=_("TLS private key (PEM)"))
    serve.add_argument("--insecure-http", action="store_true",
                       help=_("allow plain HTTP on a non-loopback --listen (tokens and evidence cross the "
                              "network unencrypted; give --tls-cert and --tls-key instead)"))


def _password(args: argparse.Namespace, confirm: bool) -> str:
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise UsageError(_("no terminal to ask for a password"), hint=_("pipe it in with --password-stdin"))
    first = getpass.getpass(_("password: "))
    if confirm and getpass.getpass(_("again: ")) != first:
        raise UsageError(_("the passwords differ"))
    return first


def _user_json(u: Any) -> dict[str, Any]:
    if isinstance(u, dict):
        return u
    return {"name": u.name, "display_name": u.display_name, "label": u.label, "roles": list(u.roles),
            "unit": u.unit, "officer_number": u.officer_number, "clearance": u.clearance,
            "disabled": u.disabled_at is not None, "pending_roles": list(u.pending_roles)}


# -- users --------------------------------------------------------------------------------

def _add_users(sub: Any) -> None:
    us = sub.add_parser("users", help=_("manage users (admin)")).add_subparsers(metavar="ACTION", required=True)
    add = cmd(us, "add", _run_users_add, _("add a user; the password is asked for (or --password-stdin)"))
    add.add_argument("name")
    add.add_argument("--role", action="append", required=True, choices=[r.value for r in Role],
                     help=_("a role; repeat for several"))
    add.add_argument("--unit", help=_("the user's unit (department)"))
    add.add_argument("--officer-number", help=_("警号: links ingested recordings to this user"))
    add.add_argument("--display-name", help=_("the person's name as written, e.g. 王小明 (the login name stays ASCII)"))
    add.add_argument("--clearance", default="normal", choices=[lv.value for lv in Level])
    add.add_argument("--password-stdin", action="store_true")
    add.add_argument("--no-password", action="store_true", help=_("token-only user"))
    cmd(us, "list", _run_users_list, _("list users")).add_argument("--json", action="store_true")
    cmd(us, "disable", _run_users_disable, _("disable a user (kept for the record)")).add_argument("name")
    ed = cmd(us, "edit", _run_users_edit,
             _("change a user's roles, unit, 警号, clearance or display name (audited); given over the API, "
               "supervisor, leader, legal and auditor roles wait for a leader's or a second admin's approval"))
    ed.add_argument("name")
    ed.add_argument("--role", action="append", choices=[r.value for r in Role],
                    help=_("the user's roles from now on; repeat for several"))
    ed.add_argument("--unit", help=_("the unit ('' clears it)"))
    ed.add_argument("--officer-number", help=_("警号 ('' clears it)"))
    ed.add_argument("--clearance", choices=[lv.value for lv in Level])
    ed.add_argument("--display-name", help=_("the person's name as written ('' clears it)"))
    cmd(us, "approve", _run_users_approve,
        _("put a user's pending roles in force (a leader, or an admin who did not give them)")).add_argument("name")
    cmd(us, "pending", _run_users_pending, _("users whose roles wait for approval")).add_argument(
        "--json", action="store_true")
    cmd(us, "unlock", _run_users_unlock,
        _("forget a user's failed logins, ending their delay (audited)")).add_argument("name")


def _run_users_add(args: argparse.Namespace) -> int:
    password = None if args.no_password else _password(args, confirm=True)
    client = remote(args)
    if client:
        data = client.json("POST", "/users", json={
            "name": args.name, "role": args.role, "unit": args.unit, "officer_number": args.officer_number,
            "clearance": args.clearance, "password": password, "display_name": args.display_name})
    else:
        new = NewUser(args.name, tuple(Role(r) for r in args.role), args.unit, args.officer_number,
                      Level(args.clearance), args.display_name)
        data = _user_json(people.add_user(open_(args), local_owner(), new, password, "cli"))
    print(_("added user %s (%s)") % (data["name"], ", ".join(data["roles"]) or "-"))
    _print_pending(data)
    return 0


def _run_users_list(args: argparse.Namespace) -> int:
    rows = _user_rows(args, "/users", people.list_users)
    if rows is None:
        return 0
    for u in rows:
        disabled = u["disabled"] if "disabled" in u else u.get("disabled_at") is not None
        print(f"{u['name']:<16} {u.get('display_name') or '-':<12} {','.join(u['roles']):<24} "
              f"{u.get('unit') or '-':<16} {u.get('officer_number') or '-':<10} {u['clearance']:<12}"
              + (" DISABLED" if disabled else ""))
    return 0


def _user_rows(args: argparse.Namespace, path: str,
               local: Callable[[Any, Any, str], Iterable[Any]]) -> list[dict[str, Any]] | None:
    """Users as JSON rows, from the API at ``path`` or the local service; None once printed as --json."""
    client = remote(args)
    rows = client.json("GET", path)["items"] if client else [
        _user_json(u) for u in local(open_(args), local_owner(), "cli")]
    if args.json:
        print_json(rows)
        return None
    return list(rows)


def _run_users_edit(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        body = {k: v for k, v in {"role": args.role, "unit": args.unit, "officer_number": args.officer_number,
                                  "clearance": args.clearance, "display_name": args.display_name}.items()
                if v is not None}
        data = client.json("PATCH", f"/users/{quote(args.name, safe='')}", json=body)
    else:
        edit = people.UserEdit(roles=tuple(Role(r) for r in args.role) if args.role else None, unit=args.unit,
                               officer_number=args.officer_number,
                               clearance=Level(args.clearance) if args.clearance else None,
                               display_name=args.display_name)
        data = _user_json(people.edit_user(open_(args), local_owner(), args.name, edit, "cli"))
    _print_user_roles(_("changed"), data)
    return 0


def _print_user_roles(verb: str, data: dict[str, Any]) -> None:
    print(_("%s %s: roles %s") % (verb, data.get("label") or data["name"], ", ".join(data["roles"]) or "-"))
    _print_pending(data)


def _print_pending(data: dict[str, Any]) -> None:
    if data.get("pending_roles"):
        print(_("  waiting for a leader's or a second admin's approval: %s ('vaultd users approve %s')")
              % (", ".join(data["pending_roles"]), data["name"]))


def _run_users_approve(args: argparse.Namespace) -> int:
    client = remote(args)
    data = (client.json("POST", f"/users/{quote(args.name, safe='')}/approve") if client
            else _user_json(people.approve_roles(open_(args), local_owner(), args.name, "cli")))
    _print_user_roles(_("approved"), data)
    return 0


def _run_users_pending(args: argparse.Namespace) -> int:
    rows = _user_rows(args, "/users/pending", people.pending_users)
    if rows is None:
        return 0
    for u in rows:
        print(_("%s  %s  waiting: %s") % (u["name"], u.get("label") or u["name"], ", ".join(u["pending_roles"])))
    return 0


def _run_users_unlock(args: argparse.Namespace) -> int:
    client = remote(args)
    n = (client.json("POST", f"/users/{quote(args.name, safe='')}/unlock")["failures_cleared"] if client
         else people.unlock_user(open_(args), local_owner(), args.name, "cli"))
    print(_("unlocked %s (%d failed logins forgotten)") % (args.name, n))
    return 0


def _run_users_disable(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        client.json("POST", f"/users/{args.name}/disable")
    else:
        people.disable_user(open_(args), local_owner(), args.name, "cli")
    print(_("disabled %s") % args.name)
    return 0


# -- tokens -------------------------------------------------------------------------------

def _add_tokens(sub: Any) -> None:
    ts = sub.add_parser("tokens", help=_("API tokens")).add_subparsers(metavar="ACTION", required=True)
    c = cmd(ts, "create", _run_tokens_create,
            _("create an API token for yourself, or (admin) for a service user (no password, no evidence "
              "role); people sign in with 'vaultd login'. The token is shown once"))
    c.add_argument("name")
    c.add_argument("--expires-days", type=int, default=90)
    ls = cmd(ts, "list", _run_tokens_list, _("your tokens (an admin: --all), without their secrets"))
    ls.add_argument("--all", action="store_true", help=_("every user's tokens (admin)"))
    ls.add_argument("--json", action="store_true")
    cmd(ts, "revoke", _run_tokens_revoke, _("revoke a token by its id")).add_argument("id")


def _run_tokens_create(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        data = client.json("POST", "/tokens", json={"user": args.name, "expires_days": args.expires_days})
        token, tid, expires = data["token"], data["id"], data["expires_at"]
    else:
        t = people.create_token(open_(args), local_owner(), args.name, args.expires_days, "cli")
        token, tid, expires = t.secret, t.id, t.expires_at.isoformat()
    print(token)
    print(_("token %s for %s, expires %s; shown only now") % (tid, args.name, expires), file=sys.stderr)
    return 0


def _run_tokens_list(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        rows = client.json("GET", "/tokens", params={"all": "true"} if args.all else None)["items"]
    else:
        from vaultd.clicommon import zone
        from vaultd.vault import utcnow

        vault = open_(args)
        rows = [people.token_json(t, zone(vault), utcnow())
                for t in people.list_tokens(vault, local_owner(), "cli", args.all)]
    if args.json:
        print_json(rows)
        return 0
    for t in rows:
        print(f"{t['id']:<14} {t['state']:<8} {t['origin'] or '-':<8} {t['expires_at']:<26} {t['user_label']}")
    return 0


def _run_tokens_revoke(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        client.call("DELETE", f"/tokens/{args.id}")
    else:
        people.revoke_token(open_(args), local_owner(), args.id, "cli")
    print(_("revoked %s") % args.id)
    return 0


# -- access requests -------------------------------------------------------------------------

def _add_access(sub: Any) -> None:
    acc = sub.add_parser("access", help=_("ask for, approve and deny access to originals (R5)"))
    asub = acc.add_subparsers(metavar="ACTION", required=True)
    r = cmd(asub, "request", _run_request, _("ask for access; prints the request id"))
    r.add_argument("--kind", required=True, choices=KINDS)
    r.add_argument("--recording", action="append", default=[], help=_("a recording id; repeat for several"))
    r.add_argument("--case", help=_("a case number: ask for its recordings (with or instead of --recording)"))
    r.add_argument("--purpose", required=True)
    r.add_argument("--notice", help=_("evidence retrieval notice number (调取证据通知书), for external-retrieval"))
    r.add_argument("--expires-days", type=int, default=7)
    r.add_argument("--uses", type=int, default=1)
    cmd(asub, "pending", _run_pending, _("requests waiting for your decision, and your own"))
    cmd(asub, "approve", _run_approve, _("approve a request; prints the grant id")).add_argument("id")
    d = cmd(asub, "deny", _run_deny, _("deny a request"))
    d.add_argument("id")
    d.add_argument("--reason", required=True)
    cmd(asub, "grants", _run_grants, _("your grants"))


def _api(args: argparse.Namespace) -> ApiClient:
    client = remote(args)
    if client is None:
        raise UsageError(_("requests and approvals are made by named users over the API"),
                         hint=_("use --url and --token, or 'vaultd login --url URL --user NAME'"))
    return client


def _run_request(args: argparse.Namespace) -> int:
    data = _api(args).json("POST", "/access/requests", json={
        "kind": args.kind, "recordings": args.recording, "case": args.case, "purpose": args.purpose,
        "notice": args.notice,
        "expires_days": args.expires_days, "uses": args.uses})
    print(data["id"])
    return 0


def pending_line(r: dict[str, Any], tz: ZoneInfo) -> str:
    """One access request as ``access pending`` prints it; every stored text escaped."""
    e = escape
    unit = f" ({e(r['requester_unit'])})" if r.get("requester_unit") else ""
    label = r.get("requester_label")
    who = (f"{e(label)} [{e(r['requester'])}]" if label and not label.startswith(r["requester"])
           else e(label) if label else e(r["requester"]) + unit)
    return (f"{e(r['id'])}  {timefmt.format_iso_local(r.get('created_at'), tz, seconds=False)}  "
            f"{e(r['kind']):<18} {who}  {e(','.join(r['recordings']))}  {e(r['purpose'])}"
            + (f"  {_('case')} {e(r['case_number'])}" if r.get("case_number") else "")
            + (f"  {_('notice')} {e(r['notice_number'])}" if r.get("notice_number") else ""))


def _run_pending(args: argparse.Namespace) -> int:
    items = _api(args).json("GET", "/access/pending")["items"]
    tz = shown_zone()
    if items:
        print(timefmt.zone_note(tz))
    for r in items:
        print(pending_line(r, tz) + _not_yours(r))
    return 0


def _not_yours(r: dict[str, Any]) -> str:
    """Why a listed request is not the caller's to decide (their own; another unit's, which a leader decides)."""
    if r.get("may_decide") is not False:
        return ""
    return "  [" + _("not yours to decide: %s") % escape(r.get("rule")) + "]"


def _run_approve(args: argparse.Namespace) -> int:
    g = _api(args).json("POST", f"/access/requests/{args.id}/approve")
    print(g["id"])
    print(_("grant %s for %s: %s of %s, %d uses (complete copies) of each, until %s")
          % (g["id"], g["grantee"], g["kind"], ",".join(g["recordings"]), g["uses_total"], g["expires_at"]),
          file=sys.stderr)
    return 0


def _run_deny(args: argparse.Namespace) -> int:
    _api(args).json("POST", f"/access/requests/{args.id}/deny", json={"reason": args.reason})
    print(_("denied %s") % args.id)
    return 0


def _run_grants(args: argparse.Namespace) -> int:
    client = remote(args)
    rows = client.json("GET", "/access/grants")["items"] if client else [
        {**g.__dict__, "recordings": g.recording_ids} for g in approvals.my_grants(open_(args), local_owner(), "cli")]
    tz = shown_zone()
    e = escape
    for g in rows:
        until = g["expires_at"]
        until = timefmt.format_local(until, tz) if isinstance(until, datetime) else timefmt.format_local(
            datetime.fromisoformat(until), tz)
        left = g.get("uses_left_by_recording") or {}
        uses = (" ".join(f"{e(r)}:{left.get(r, 0)}/{g['uses_total']}" for r in g["recordings"])
                if len(g["recordings"]) > 1 else f"{g['uses_left']}/{g['uses_total']}")
        print(f"{e(g['id'])}  {e(g['kind']):<18} {e(g['grantee']):<12} {e(','.join(g['recordings']))}  "
              + _("uses left %s  until %s") % (uses, until))
    return 0


# -- devices, login, serve --------------------------------------------------------------------

def _add_devices(sub: Any) -> None:
    ds = sub.add_parser("devices", help=_("cameras and who holds them (R13)")).add_subparsers(
        metavar="ACTION", required=True)
    a = cmd(ds, "assign", _run_assign, _("from now on, this camera is held by this officer"))
    a.add_argument("serial")
    a.add_argument("officer_number")
    cli_daemon.add_device_commands(ds)  # list, enroll, retire (#5)


def _run_assign(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        client.json("POST", f"/devices/{args.serial}/assign", json={"officer_number": args.officer_number})
    else:
        people.assign_device(open_(args), local_owner(), args.serial, args.officer_number, "cli")
    print(_("camera %s is now held by officer %s") % (args.serial, args.officer_number))
    return 0


def _run_login(args: argparse.Namespace) -> int:
    client = remote(args)
    if client is None:
        raise UsageError(_("log in to which vault?"), hint=_("give --url, e.g. --url http://127.0.0.1:8470"))
    password = _password(args, confirm=False)
    data = ApiClient(client.url, None).json("POST", "/login", json={
        "name": args.user, "password": password, "expires_days": args.expires_days})
    if args.print_token:
        print(data["token"])
        print(_("logged in as %s; token %s, shown only now, expires %s")
              % (args.user, data["id"], data["expires_at"]), file=sys.stderr)
        return 0
    path = save_credentials(client.url, data["token"])
    print(_("logged in as %s; token kept in %s until %s") % (args.user, path, data["expires_at"]))
    return 0


def _run_serve(args: argparse.Namespace) -> int:
    from vaultd.api.app import serve

    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError(_("give both --tls-cert and --tls-key, or neither"))
    vault = open_vault(resolve_home(args.home), args.config)
    serve(vault, args.listen, certfile=args.tls_cert, keyfile=args.tls_key, uds=args.uds,
          insecure_http=args.insecure_http, announce=lambda text: print(text, file=sys.stderr, flush=True))
    return 0
