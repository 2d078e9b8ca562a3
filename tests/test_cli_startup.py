"""``vaultd`` starts fast: a command imports what it needs and no more.

Every ``vaultd ingest`` pays for its interpreter's imports before the first
byte is copied, read from disk when the page cache is cold (#2). These tests
hold the gain without timing anything (timings are in benchmarks/ingest.py):
which modules a command loads, run in a fresh interpreter so that other tests'
imports cannot hide one; that parsing one command's arguments reads exactly as
with the whole parser; and that a vault whose catalog is behind is still
migrated, while an up-to-date one is opened without alembic.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from vaultd import cli
from vaultd.catalog import db

#: never needed to parse arguments or to ingest (web server, HTTP client,
#: migrations, password hashing, holidays, export PDFs and discs, udev, USB)
HEAVY = ("alembic", "mako", "fastapi", "starlette", "pydantic", "uvicorn", "httpx", "argon2",
         "chinese_calendar", "fpdf", "pycdlib", "asn1crypto", "apscheduler", "pyudev", "usb")

#: runs a command in a fresh interpreter, then writes the names of every module loaded
RUN_AND_LIST = """
import json, os, sys
from vaultd import cli
argv = sys.argv[1:]
if os.environ["LIST_AFTER"] == "parse":
    cli.build_parser(cli.command_word(argv)).parse_args(argv)
    rc = 0
else:
    rc = cli.main(argv)
with open(os.environ["LIST_TO"], "w") as out:
    json.dump({"rc": rc, "modules": sorted(sys.modules)}, out)
"""


def loaded(tmp_path: Path, argv: list[str], after: str = "main") -> tuple[int, set[str]]:
    listing = tmp_path / "modules.json"
    env = {**os.environ, "LIST_TO": str(listing), "LIST_AFTER": after}
    subprocess.run([sys.executable, "-c", RUN_AND_LIST, *argv], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    result = json.loads(listing.read_text())
    return result["rc"], set(result["modules"])


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def catalog_revision(home: Path) -> str:
    with sqlite3.connect(home / "catalog.sqlite") as conn:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])


# -- what a command imports ----------------------------------------------------------------

def test_parsing_ingest_imports_no_service(tmp_path: Path) -> None:
    _, modules = loaded(tmp_path, ["--home", str(tmp_path), "ingest", str(tmp_path), "--json"], after="parse")
    assert heavy_in(modules) == []
    for name in ("sqlalchemy", "cryptography", "ffmpeg", "rich", "vaultd.vault", "vaultd.ingest"):
        assert name not in modules, name
    assert sorted(m for m in modules if m.startswith("vaultd.cli_")) == []


@pytest.mark.slow
def test_ingest_loads_only_what_it_uses(tmp_path: Path, home: Path, camera: Path) -> None:
    rc, modules = loaded(tmp_path, ["--home", str(home), "ingest", str(camera), "--json"])
    assert rc == 0
    assert heavy_in(modules) == []
    assert "sqlalchemy.orm" not in modules  # the catalog is SQLAlchemy Core
    assert "cryptography.x509" not in modules  # the export identity (#8) is not used here
    assert sorted(m for m in modules if m.startswith("vaultd.cli_")) == []  # other commands' front ends


def test_help_still_loads_every_command(tmp_path: Path) -> None:
    _, modules = loaded(tmp_path, [], after="parse")
    fronts = {name for name, _ in cli.REGISTRARS if name.startswith("vaultd.")}
    assert fronts <= modules


# -- one command's parser reads as the whole parser does ---------------------------------------

def helps(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """The help text of ``parser`` and of every subcommand below it, by command path."""
    out = {path: parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.update(helps(sub, (*path, name)))
    return out


def top_level(parser: argparse.ArgumentParser) -> list[str]:
    (subs,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(subs.choices)


def test_registrars_name_every_command_in_help_order() -> None:
    assert [n for _, names in cli.REGISTRARS for n in names] == top_level(cli.build_parser())


def test_each_commands_parser_reads_as_the_whole_one() -> None:
    whole = helps(cli.build_parser())
    for command in top_level(cli.build_parser()):
        alone = helps(cli.build_parser(command))
        mine = {path for path in whole if path[:1] == (command,)}
        assert mine and mine <= alone.keys(), command
        for path in mine:
            assert alone[path] == whole[path], path


@pytest.mark.parametrize(("argv", "word"), [
    (["ingest", "/mnt/cam"], "ingest"),
    (["--home", "/h", "-v", "ingest", "/mnt/cam", "--json"], "ingest"),
    (["--home=/h", "--config", "c.toml", "--verbose", "cases", "list"], "cases"),
    (["--home", "ingest", "scrub"], "scrub"),  # a home folder named like a command
    (["--url", "http://x", "--token=t", "recordings", "list"], "recordings"),
    ([], None),
    (["--help"], None),
    (["--help", "ingest"], None),  # the top-level help lists every command
    (["--ho", "/h", "ingest", "x"], None),  # abbreviations: argparse decides
    (["-vh", "ingest"], None),
    (["ingets", "x"], None),  # misspelt: the whole parser says what there is
    (["--version"], None),
])
def test_command_word(argv: list[str], word: str | None) -> None:
    assert cli.command_word(argv) == word


def test_misspelt_command_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["ingets"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'ingets'" in err and "'verify'" in err and "'init'" in err


# -- the catalog: migrated when behind, not even looked at by alembic when current --------------

def test_fresh_init_migrates_to_the_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "h"
    assert cli.main(["--home", str(home), "init"]) == 0
    assert catalog_revision(home) == db.head_revision()


@pytest.mark.slow
def test_a_catalog_behind_is_upgraded_and_a_current_one_opens_without_alembic(
        tmp_path: Path, home: Path, camera: Path) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(db.MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.sqlite_url(home / "catalog.sqlite"))
    command.downgrade(cfg, "-1")
    behind = catalog_revision(home)
    assert behind != db.head_revision()

    rc, modules = loaded(tmp_path, ["--home", str(home), "ingest", str(camera), "--json"])
    assert rc == 0 and "alembic" in modules  # upgraded on open, before the ingest
    assert catalog_revision(home) == db.head_revision()

    rc, modules = loaded(tmp_path, ["--home", str(home), "ingest", str(camera), "--json"])
    assert rc == 0 and "alembic" not in modules
