"""The ``vaultd`` command line: a thin front end over the service functions."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultd import __version__
from vaultd.errors import IncompleteError, IntegrityError, VaultError
from vaultd.clicommon import cmd, open_, parse_time, print_json, seal_opened
from vaultd.home import resolve_home
from vaultd.i18n import _
from vaultd.safetext import escape, guarded_stdout
from vaultd.model import Actor

if TYPE_CHECKING:
    from vaultd.ingest import IngestReport

# Start-up time is part of every command (and of each ingest from a cold page
# cache): this module imports only what parsing needs. Each front-end module
# is imported when its commands are wanted, each handler imports its services.

log = logging.getLogger("vaultd")


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(0o077)  # everything vaultd creates is private to its owner
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_word(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        try:
            with guarded_stdout():  # names and purposes never drive the terminal (issue 16.6)
                return int(args.handler(args))
        finally:
            seal_opened()
    except VaultError as exc:
        print(_("vaultd: error: %s") % escape(exc.message, multiline=True), file=sys.stderr)
        if exc.hint:
            print(_("  hint: %s") % escape(exc.hint, multiline=True), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(_("vaultd: interrupted"), file=sys.stderr)
        return 130
    except Exception:  # the task boundary: log with traceback
        log.exception("unexpected failure")
        print(_("vaultd: internal error; rerun with -v and report the traceback"), file=sys.stderr)
        return 70


#: Who registers each top-level command, in the order ``vaultd --help`` lists
#: them: a function of this module, or a front-end module's ``add_commands``.
REGISTRARS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("init", ("init",)),
    ("simulate", ("simulate",)),
    ("ingest", ("ingest",)),
    ("vaultd.cli_recordings", ("recordings",)),
    ("scrub", ("scrub",)),
    ("vaultd.cli_audit", ("audit", "keys")),
    ("vaultd.cli_access", ("users", "tokens", "access", "devices", "login", "serve")),
    ("vaultd.cli_daemon", ("run", "status", "alerts")),                         # (#5)
    ("vaultd.cli_cases", ("cases", "holds", "retention")),                      # (#6)
    ("vaultd.cli_compliance", ("compliance", "trips", "gaps", "spotcheck", "report")),  # (#6)
    ("vaultd.cli_previews", ("previews",)),                                     # (#7)
    ("vaultd.cli_export", ("export", "verify")),                                # (#8)
)
#: registered together: cli_cases adds ``recordings label | classify`` to cli_recordings' group
_TOGETHER = frozenset({"vaultd.cli_recordings", "vaultd.cli_cases"})
#: the global options that take a value (``command_word`` steps over it)
_VALUE_OPTIONS = frozenset({"--home", "--config", "--url", "--token"})


def command_word(argv: Sequence[str]) -> str | None:
    """The top-level command ``argv`` names, when it is plainly one of ours.

    Only a command after nothing but well-formed global options counts; for
    anything else (no command, ``--help``, an abbreviated or unknown option, a
    misspelt command) this is None and the whole parser is built, so that
    help and errors read exactly as they always did.
    """
    known = {name for _registrar, names in REGISTRARS for name in names}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-v", "--verbose") or ("=" in arg and arg.split("=", 1)[0] in _VALUE_OPTIONS):
            i += 1
        elif arg in _VALUE_OPTIONS:
            i += 2
        else:
            return arg if arg in known else None
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for every command, or (faster) for ``command``'s alone.

    Parsing ``vaultd ingest ...`` then imports no other command's modules;
    the commands and their help read the same either way.
    """
    p = argparse.ArgumentParser(
        prog="vaultd",
        description=_("Evidence vault for body-worn cameras (执法记录仪): ingest, hash, keep, audit."),
        epilog=_("The data home is --home, else $VAULTD_HOME, else /var/lib/vaultd (root) "
                 "or ~/.local/share/vaultd."))
    p.add_argument("--home", help=_("the vault's data home folder"))
    p.add_argument("--config", type=Path, help=_("config file (default: <home>/vaultd.toml, else built-in defaults)"))
    p.add_argument("--url", help=_("talk to a vault over its API (or $VAULTD_URL, or 'vaultd login')"))
    p.add_argument("--token", help=_("API token (or $VAULTD_TOKEN, or the one 'vaultd login' kept)"))
    p.add_argument("-v", "--verbose", action="store_true", help=_("log details to stderr"))
    p.add_argument("--version", action="version", version=f"vaultd {__version__}")
    sub = p.add_subparsers(metavar="COMMAND")
    wanted = {r for r, names in REGISTRARS if command is None or command in names}
    if wanted & _TOGETHER:
        wanted |= _TOGETHER
    for registrar, _names in REGISTRARS:
        if registrar in wanted:
            _registrar(registrar)(sub)
    return p


def _registrar(name: str) -> Callable[[Any], None]:
    """One of this module's ``_add_*`` functions, or a front-end module's ``add_commands``."""
    if name in _BUILTINS:
        return _BUILTINS[name]
    add_commands: Callable[[Any], None] = importlib.import_module(name).add_commands
    return add_commands


# -- init ---------------------------------------------------------------------

def _add_init(sub: Any) -> None:
    cmd(sub, "init", _run_init, _("create the data home, the vault's keys and the catalog (safe to repeat)"))


def _run_init(args: argparse.Namespace) -> int:
    from vaultd import admin

    result = admin.initialise(resolve_home(args.home), args.config, Actor.local())
    if result.changed:
        print(_("initialised vault in %s (created: %s)") % (result.home, ", ".join(result.created)))
    else:
        print(_("vault in %s is already initialised; nothing changed") % result.home)
    return 0


# -- simulate -------------------------------------------------------------------

def _add_simulate(sub: Any) -> None:
    sim = sub.add_parser("simulate", help=_("make simulated devices for demos and tests"))
    sim_sub = sim.add_subparsers(metavar="WHAT", required=True)
    cam = cmd(sim_sub, "camera", _run_simulate_camera,
               _("write a folder laid out like a Chinese body camera, with real MP4 clips"))
    cam.add_argument("dir", type=Path, help=_("new or empty folder to fill"))
    cam.add_argument("--serial", default="3201001", help=_("device serial (产品序号)"))
    cam.add_argument("--officer", default="012345", help=_("officer number (警号)"))
    cam.add_argument("--clips", type=int, default=4, help=_("number of video clips"))
    cam.add_argument("--seconds", type=float, default=10.0, help=_("length of each clip"))
    cam.add_argument("--start", help=_("true start time, ISO 8601 (default: two hours ago)"))
    cam.add_argument("--clock-offset", type=float, default=0.0,
                     help=_("seconds the camera clock runs ahead of true time (negative: behind)"))
    cam.add_argument("--damaged", type=int, default=0, help=_("clips to truncate as when a battery dies"))
    cam.add_argument("--odd-names", action="store_true",
                     help=_("add files with hostile names (bidi, control characters, backslash, NFD)"))
    cam.add_argument("--unit", default="示例执法大队",
                     help=_("the unit the camera says it belongs to (its recordings' unit when the "
                            "officer is not a user of the vault)"))


def _run_simulate_camera(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from vaultd.simulate import simulate_camera

    tz = ZoneInfo("Asia/Shanghai")
    start = parse_time(args.start, tz, "--start") if args.start else None
    cam = simulate_camera(args.dir, serial=args.serial, officer_id=args.officer, clips=args.clips,
                          seconds=args.seconds, start=start, clock_offset_s=args.clock_offset,
                          damaged=args.damaged, odd_names=args.odd_names, unit=args.unit)
    damaged = sum(1 for f in cam.files if f.damaged)
    print(_("simulated camera %s (officer %s) in %s: %d files, %d damaged")
          % (cam.serial, cam.officer_id, cam.root, len(cam.files), damaged))
    return 0


# -- ingest ---------------------------------------------------------------------

def _add_ingest(sub: Any) -> None:
    p = cmd(sub, "ingest", _run_ingest,
             _("copy every file from a mounted or simulated camera into the vault; exit 0 only "
               "when every recording is safely in the vault"))
    p.add_argument("path", type=Path, help=_("the camera's mount point or simulated camera folder"))
    p.add_argument("--wipe", action="store_true",
                   help=_("delete files from the camera once their copies are durable and verified"))
    p.add_argument("--json", action="store_true", help=_("print the report as JSON"))


def _run_ingest(args: argparse.Namespace) -> int:
    from vaultd import ingest, progress

    vault = open_(args)
    bar = progress.BytesBar(_("ingest"), sys.stderr) if progress.wanted(args.json, sys.stderr) else None
    report = ingest.ingest_path(vault, args.path, actor=Actor.local(), wipe=args.wipe, progress=bar)
    if args.json:
        print_json(_report_json(report))
    else:
        _print_report(report)
    if not report.complete:
        raise IncompleteError(report.error or _("not every recording on the camera is in the vault"),
                              hint=_("see the report above; rerun ingest once the cause is fixed"))
    return 0


def _report_json(report: IngestReport) -> dict[str, Any]:
    return {
        "session_id": report.session_id,
        "source": report.source,
        "device_serial": report.device_serial,
        "started_at": report.started_at.isoformat(),
        "finished_at": report.finished_at.isoformat() if report.finished_at else None,
        "complete": report.complete,
        "error": report.error,
        "wipe": report.wipe_note,
        "recovered_objects": report.recovered,
        "counts": report.counts(),
        "files": [{k: (v.value if hasattr(v, "value") else v) for k, v in r.__dict__.items()}
                  for r in report.results],
    }


def _print_report(report: IngestReport) -> None:
    counts = report.counts()
    print(_("ingest of %s: %d new, %d already in the vault, %d skipped, %d deferred, %d failed")
          % (report.source, counts["new"], counts["duplicate"], counts["skipped"],
             counts["deferred"], counts["failed"]))
    for r in report.results:
        if r.outcome.value in ("new", "duplicate"):
            marks = " ".join(m for m in (
                "DAMAGED" if r.damaged else "",
                ("odd name: " + ",".join(r.name_oddities)) if r.name_oddities else "",
                "wiped" if r.wiped else "") if m)
            print(f"  {r.outcome.value:<9} {r.recording_id or '-':<13} {escape(r.path)}"
                  + (f"  [{marks}]" if marks else ""))
        else:
            print(f"  {r.outcome.value:<9} {'':<13} {escape(r.path)}: {escape(r.reason)}")
    if report.wipe_note:
        print("  " + report.wipe_note)
    if report.error:
        print(_("  stopped: %s") % escape(report.error))


# -- scrub -------------------------------------------------------------------------

def _add_scrub(sub: Any) -> None:
    from vaultd import cli_compliance

    p = cmd(sub, "scrub", _run_scrub,
             _("re-hash every stored original; exit non-zero naming each one missing or different, "
               "and while a scrub alarm is open"))
    p.add_argument("--json", action="store_true")
    cli_compliance.add_scrub_options(p)


def _run_scrub(args: argparse.Namespace) -> int:
    from vaultd import cli_compliance, progress, scrub

    vault = open_(args)
    if args.step or args.status:
        return cli_compliance.run_scrub_mode(vault, args)
    show = progress.wanted(args.json, sys.stderr)

    def tick(done: int, total: int) -> None:
        if show:
            print(f"\r{_('scrub')} {done}/{total}", end="", file=sys.stderr, flush=True)

    report = scrub.scrub_all(vault, Actor.local(), tick)
    if show:
        print(file=sys.stderr)
    if args.json:
        print_json({"ok": report.ok, "checked": report.checked, "bytes_checked": report.bytes_checked,
                     "findings": [f.__dict__ for f in report.findings],
                     "unknown_objects": report.unknown_objects,
                     "alarms": [a.as_json() for a in scrub.open_alarms(vault)]})
    else:
        print(_("scrub: %d originals checked (%d bytes)") % (report.checked, report.bytes_checked))
        for f in report.findings:
            print(_("  FAIL %s %s: %s") % (f.recording_id, f.sha256, f.problem))
        for sha in report.unknown_objects:
            print(_("  UNKNOWN object in the store, not in the catalog: %s") % sha)
    if not report.ok:
        raise IntegrityError(_("%d originals failed the scrub") % (len(report.findings) + len(report.unknown_objects)),
                             hint=_("restore each named original from backup; never edit the store by hand"))
    cli_compliance.fail_on_open_alarms(vault, quiet=args.json)
    return 0


_BUILTINS: dict[str, Callable[[Any], None]] = {
    "init": _add_init, "simulate": _add_simulate, "ingest": _add_ingest, "scrub": _add_scrub}


def console() -> int:
    """The ``vaultd`` command as its own process: ``vaultd ... | head`` ends quietly (SIGPIPE's
    default action). Only here: ``main`` called in-process (tests, other programs) leaves the
    caller's SIGPIPE alone, or any later write to a closed pipe or socket would kill the caller
    (the test suite once ended with exit 141 and no summary, #17.6)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    return main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console())
