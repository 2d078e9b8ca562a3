"""The README's command blocks, run exactly as printed.

The convention (README.md, "Development"): a block fenced ```sh is commands a
person runs as printed, in the order of the README, from the top of a checkout
after ``./run demo``; a block fenced ```text is a synopsis (``[OPTIONS]``,
``A | B``) and is never run. Every fenced block is one or the other.

The test copies the checkout to a temporary folder (its own ``demo-home``, its
own ``$HOME`` for ``vaultd login``), runs the first block's ``./run demo``
there as printed (``./run tests`` is the suite running this test, so it is not
run again), then every other ```sh block in order in ONE bash, so variables
set by one block are there for the next, as in a person's terminal. Bash
runs with ``set -e -o pipefail``: the first command that fails stops the run,
and the test names its README line.

The blocks use the API's fixed port (127.0.0.1:8470), so they run in a
network namespace of their own where the system allows one (``unshare``):
two test runs, or a demo on the same machine, cannot collide.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\S*)\s*$")
TOP_COMMANDS = ("./run demo", "./run tests")
#: what a copy of the checkout leaves out: builds, caches, and a vault a local demo made
NOT_COPIED = {".git", ".venv", "demo-home", "demo-home.dock", "__pycache__", ".pytest_cache",
              ".mypy_cache", ".ruff_cache", "build", "dist"}
RUN_LIMIT_S = 900


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # README line of the first command line (1-based)
    lines: tuple[str, ...]


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block of ``text``, in order."""
    blocks: list[Block] = []
    lang: str | None = None
    start, body = 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        m = FENCE.match(line)
        if lang is None:
            if m:
                lang, start, body = m.group(1), number + 1, []
        elif line.strip() == "```":
            blocks.append(Block(lang, start, tuple(body)))
            lang = None
        else:
            body.append(line)
    assert lang is None, f"README.md: the block opened at line {start - 1} is never closed"
    return blocks


def _commands(block: Block) -> list[str]:
    return [ln.split("#", 1)[0].strip() for ln in block.lines if ln.split("#", 1)[0].strip()]


def script_for(blocks: list[Block]) -> tuple[str, dict[int, int]]:
    """One bash script of the runnable blocks after the first, and script line -> README line."""
    lines = ["set -e -o pipefail", "shopt -s inherit_errexit",
             "trap 'echo \"@@README-FAILED line $LINENO status $?\" >&2' ERR",
             "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    where: dict[int, int] = {}
    for block in blocks:
        lines.append(f'echo "### README.md line {block.line} ($(date +%T))" >&2')
        for offset, text in enumerate(block.lines):
            lines.append(text)
            where[len(lines)] = block.line + offset
    return "\n".join(lines) + "\n", where


def copy_checkout(dest: Path) -> None:
    """The checkout as a fresh clone has it, with the venv this test runs in as its .venv."""
    shutil.copytree(ROOT, dest, symlinks=True, ignore=lambda _d, names: [n for n in names if n in NOT_COPIED])
    bindir = Path(sys.executable).parent
    if not (bindir / "vaultd").exists():
        pytest.fail(f"{bindir} has no vaultd script: run the tests from vaultd's virtual env (./run tests)")
    # ./run sees a ready venv (bin and its install stamp), so it installs nothing; its
    # python and scripts are this test's, importing vaultd from the copy (PYTHONPATH)
    (dest / ".venv").mkdir()
    (dest / ".venv" / "bin").symlink_to(bindir)
    (dest / ".venv" / ".vaultd-installed").touch()


_LOOPBACK_UP = """\
import fcntl, os, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
fcntl.ioctl(s.fileno(), 0x8914, struct.pack("16sH22s", b"lo", 0x1 | 0x8 | 0x40, b""))  # SIOCSIFFLAGS up
os.execvp(sys.argv[1], sys.argv[1:])
"""


def _own_network() -> list[str]:
    """A command prefix giving the rest a network namespace with its own loopback, where possible."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    prefix = [unshare, "-rn", sys.executable, "-c", _LOOPBACK_UP]
    ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
    return prefix if ok.returncode == 0 else []


def _environment(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VAULTD_") and k not in ("XDG_CONFIG_HOME", "PYTHONPATH")}
    (work / "user-home").mkdir()
    env.update(HOME=str(work / "user-home"), PYTHONPATH=str(work / "vaultd-checkout"), LC_ALL="C.UTF-8")
    return env


def run_readme(readme: str, work: Path, demo: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``readme``'s blocks in a copy of the checkout under ``work`` (after its ``./run demo``
    unless ``demo`` is false); raise AssertionError naming the README line of the first command
    that fails."""
    blocks = readme_blocks(readme)
    odd = [b for b in blocks if b.lang not in ("sh", "text")]
    assert not odd, f"README.md line {odd[0].line - 1}: fence a block ```sh (run as printed) or ```text (synopsis)"
    runnable = [b for b in blocks if b.lang == "sh"]
    assert runnable and tuple(_commands(runnable[0])) == TOP_COMMANDS, \
        f"the README must start with exactly these commands: {TOP_COMMANDS}"
    checkout = work / "vaultd-checkout"
    copy_checkout(checkout)
    (checkout / "README.md").write_text(readme, encoding="utf-8")
    demo_line = next(ln for ln in runnable[0].lines if ln.startswith("./run demo"))
    script, where = script_for(runnable[1:])
    prefix = _own_network()
    env = _environment(work)
    log = work / "readme.log"
    (work / "blocks.sh").write_text(script, encoding="utf-8")
    first = f"set -e\n{demo_line if demo else ':'}\nexec bash {work / 'blocks.sh'}\n"
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([*prefix, "bash", "-c", first], cwd=checkout, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, text=True)
        try:
            code = proc.wait(timeout=RUN_LIMIT_S)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever a block left in the background
            except ProcessLookupError:
                pass
            proc.wait()
    text = log.read_text(encoding="utf-8", errors="replace")
    if code != 0:
        failed = re.findall(r"@@README-FAILED line (\d+) status (\d+)", text)
        if failed:
            at = where.get(int(failed[-1][0]))
            what = f"README.md line {at}: {readme.splitlines()[at - 1].strip()!r}" if at else "a README block"
        else:
            what = f"README.md line {runnable[0].line}: {demo_line!r}"
        raise AssertionError(f"{what} failed (exit {code}); the output's end:\n{text[-6000:]}")
    return subprocess.CompletedProcess(proc.args, code, text, "")


@pytest.mark.slow
def test_every_command_block_runs_as_printed(tmp_path: Path) -> None:
    done = run_readme(README.read_text(encoding="utf-8"), tmp_path)
    assert "intact" in done.stdout  # the demo's audit verify ran


def test_every_block_is_runnable_or_a_synopsis() -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    assert blocks
    for b in blocks:
        assert b.lang in ("sh", "text"), f"README.md line {b.line - 1}: fence it ```sh or ```text"
        if b.lang == "sh":  # a synopsis cannot run as printed
            for n, ln in enumerate(b.lines):
                assert not re.search(r"<[A-Z_]+>|\[--", ln), \
                    f"README.md line {b.line + n}: a placeholder in a ```sh block; make it runnable or ```text"
    assert tuple(_commands(blocks[0])) == TOP_COMMANDS and blocks[0].lang == "sh"


def test_a_failing_command_fails_the_run_and_names_its_line(tmp_path: Path) -> None:
    """The harness itself (without the demo): a command failing in a block, in a pipe, or in
    ``$(...)`` stops the run, names its README line, and nothing later runs."""
    top = "# t\n\n```sh\n./run demo\n./run tests\n```\n\n```text\nvaultd synopsis [--not-run]\n```\n\n"
    for failing in ("false", "false | cat", "X=$(false; echo late)"):
        readme = top + f"```sh\nA=1\necho \"a is $A\"\n```\n\n```sh\necho ok\n{failing}\ntouch ran-on\n```\n"
        work = tmp_path / str(len(list(tmp_path.iterdir())))
        work.mkdir()
        with pytest.raises(AssertionError, match=rf"README.md line 19: {re.escape(repr(failing))} failed"):
            run_readme(readme, work, demo=False)
        assert not (work / "vaultd-checkout" / "ran-on").exists()
        log = (work / "readme.log").read_text(encoding="utf-8")
        assert "a is 1" in log and "ok" in log


def test_blocks_that_pass_pass(tmp_path: Path) -> None:
    readme = "# t\n\n```sh\n./run demo\n./run tests\n```\n\n```sh\nB=$(echo x | head -1)\necho \"b=$B\"\n```\n"
    assert "b=x" in run_readme(readme, tmp_path, demo=False).stdout


# -- the synopses ----------------------------------------------------------------------------------

def _segments(entry: str) -> list[str]:
    """``entry`` split at the ``|`` that separate commands (not those inside ``[...]`` or ``(...)``)."""
    out, depth, cur = [], 0, ""
    for i, ch in enumerate(entry):
        depth += ch in "[(" and 1 or 0
        depth -= ch in "])" and 1 or 0
        if ch == "|" and depth == 0 and entry[i - 1:i] == " " and entry[i + 1:i + 2] == " ":
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*out, cur.strip()]


def _entries(block: Block) -> list[tuple[int, str]]:
    """A synopsis block's commands with their README lines: a line starting with whitespace
    continues the one before; a comment (`` # ``) ends a line."""
    entries: list[tuple[int, str]] = []
    for n, line in enumerate(block.lines, start=block.line):
        text = re.split(r"\s#\s", line, maxsplit=1)[0].rstrip()
        if line[:1].isspace() and entries:
            entries[-1] = (entries[-1][0], entries[-1][1] + " " + text.strip())
        elif text:
            entries.append((n, text))
    return entries


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _resolve(root: argparse.ArgumentParser, words: list[str]) -> tuple[list[str], argparse.ArgumentParser]:
    """The longest run of ``words`` that names (sub)commands, and the parser it ends at."""
    path, parser = [], root
    for w in words:
        sub = _subcommands(parser)
        if w not in sub:
            break
        path.append(w)
        parser = sub[w]
    return path, parser


def _after_global_options(root: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """``words`` without the options before the command (``--url URL --token T audit verify``)."""
    while words and words[0] in root._option_string_actions:
        takes_value = root._option_string_actions[words[0]].nargs != 0
        words = words[2 if takes_value else 1:]
    return words


def synopsis_problems(readme: str) -> list[str]:
    """Each synopsis command that vaultd does not have, and each option its command does not take."""
    from vaultd.cli import build_parser

    root = build_parser()
    problems = []
    for block in (b for b in readme_blocks(readme) if b.lang == "text"):
        for at, entry in _entries(block):
            if not entry.startswith("vaultd "):
                continue
            before: list[str] = []
            for seg in _segments(entry):
                words = seg.split()
                if words[0] == "vaultd":
                    words = ["vaultd", *_after_global_options(root, words[1:])]
                    path, parser = _resolve(root, words[1:])
                    if not path and words[1:] and not words[1].startswith("-"):
                        problems.append(f"README.md line {at}: no command 'vaultd {words[1]}'")
                        continue
                else:  # an alternative to the command before: "... | approve ID", "... | batch approve ID"
                    for keep in range(len(before), -1, -1):
                        path, parser = _resolve(root, before[:keep] + words)
                        if len(path) > keep:
                            break
                    else:
                        problems.append(f"README.md line {at}: '{seg}' is no command after "
                                        f"'vaultd {' '.join(before)}'")
                        continue
                before = path
                known = set(parser._option_string_actions) | set(root._option_string_actions)
                for word in words:
                    opt = word.strip("[]().,")
                    if re.fullmatch(r"--[a-z][a-z0-9-]*", opt) and opt not in known:
                        problems.append(f"README.md line {at}: 'vaultd {' '.join(path)}' has no {opt}")
    return problems


def test_every_synopsis_names_commands_and_options_vaultd_has() -> None:
    assert synopsis_problems(README.read_text(encoding="utf-8")) == []


def test_a_stale_synopsis_is_found() -> None:
    stale = ("```text\nvaultd users add NAME --rank R | list | frobnicate\nvaultd nosuch thing\n"
             "vaultd --url URL --token T audit verify --log-key K\nvaultd --url URL audit verify --frob\n```\n")
    assert synopsis_problems(stale) == [
        "README.md line 2: 'vaultd users add' has no --rank",
        "README.md line 2: 'frobnicate' is no command after 'vaultd users list'",
        "README.md line 3: no command 'vaultd nosuch'",
        "README.md line 5: 'vaultd audit verify' has no --frob"]
