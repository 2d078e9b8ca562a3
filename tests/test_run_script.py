"""./run, the README's two commands: what it does around apt, tested on its own functions
(``source ./run`` defines them and runs nothing) with stand-ins for dpkg-query, apt-get
and sudo on PATH, so no package is installed and the machine's apt is never touched."""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = [ROOT / "run", ROOT / ".ci" / "run"]
#: a pipe into a reader that may stop before the writer is done: under pipefail the
#: writer's SIGPIPE fails the pipeline (exit 141) although the reader found its answer
EARLY_READER = re.compile(r"\|\s*(grep\b[^|]*\s-[A-Za-z]*[qm]|head\b|sed\b[^|]*\dq\b|awk\b[^|]*\bexit\b)")


def _stand_ins(tmp_path: Path, dpkg_status: str) -> tuple[Path, Path]:
    """A bin folder with dpkg-query printing ``dpkg_status`` and then a lot more (as a
    dpkg-query of several packages or architectures can), an apt-get that records each call
    and whether the fake lock was free then, and a sudo that just runs its command."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    calls = tmp_path / "apt-calls"
    (tmp_path / "more").write_bytes(b"x" * (4 << 20))
    (bin_ / "dpkg-query").write_text(f"#!/bin/sh\nprintf '%s\\n' '{dpkg_status}'\nexec cat {tmp_path / 'more'}\n")
    (bin_ / "apt-get").write_text(f"""#!/usr/bin/env python3
import fcntl, os, sys
fd = os.open({str(tmp_path / 'dpkg.lock')!r}, os.O_RDWR | os.O_CREAT)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    lock = "free"
except OSError:
    lock = "held"
with open({str(calls)!r}, "a") as f:
    f.write(lock + " " + " ".join(sys.argv[1:]) + "\\n")
""")
    (bin_ / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    for f in bin_.iterdir():
        f.chmod(0o755)
    return bin_, calls


def _run_function(bin_: Path, tmp_path: Path, call: str) -> subprocess.Popen[str]:
    script = f"source {ROOT / 'run'}\nDPKG_LOCKS=({tmp_path / 'dpkg.lock'})\nAPT_LOCK_WAIT_S=600\n{call}\n"
    return subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}"})


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pipe_into_a_reader_that_stops_early(script: Path) -> None:
    """Under ``set -o pipefail`` (both scripts), ``cmd | grep -q`` or ``cmd | head`` can end in
    exit 141 by chance: a fresh clone once ended ``./run tests`` so, with no test summary."""
    text = script.read_text(encoding="utf-8")
    assert "set -euo pipefail" in text
    risky = [f"{script.name}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), start=1)
             if EARLY_READER.search(line.split("#", 1)[0] if not line.lstrip().startswith("#") else "")]
    assert not risky, "match captured output instead (grep -q PATTERN <<<\"$out\"):\n" + "\n".join(risky)


def test_an_installed_package_is_not_installed_again_whatever_dpkg_query_prints(tmp_path: Path) -> None:
    """dpkg-query says "installed" and goes on writing: a ``dpkg-query | grep -q`` pipeline then
    fails by SIGPIPE under pipefail, and ./run took the package for missing."""
    bin_, calls = _stand_ins(tmp_path, "install ok installed")
    proc = _run_function(bin_, tmp_path, "apt_install ffmpeg && echo all-there")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "all-there" in out and "installing" not in out
    assert not calls.exists()


@pytest.fixture
def held_lock(tmp_path: Path) -> Iterator[threading.Event]:
    """Another apt's lock on the stand-in lock file, held until the event is set."""
    fd = os.open(tmp_path / "dpkg.lock", os.O_RDWR | os.O_CREAT)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    release = threading.Event()

    def hold() -> None:
        release.wait(120)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        os.close(fd)

    holder = threading.Thread(target=hold)
    holder.start()
    yield release
    release.set()
    holder.join()


def test_a_held_apt_lock_is_waited_for_and_said(tmp_path: Path, held_lock: threading.Event) -> None:
    """Another apt/dpkg holds the lock: ./run says so, waits, and runs apt-get once it is free,
    each apt-get also told to wait for the lock (DPkg::Lock::Timeout) should one start between."""
    bin_, calls = _stand_ins(tmp_path, "unknown ok not-installed")
    proc = _run_function(bin_, tmp_path, "apt_install ffmpeg fonts-wqy-microhei")
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "waiting for it to finish" in line:
            assert not calls.exists()  # nothing ran while the lock was held
            held_lock.set()
    proc.wait(timeout=60)
    out = "".join(seen)
    assert proc.returncode == 0, out
    assert re.search(r"another apt/dpkg is installing packages \(.*dpkg\.lock is held by process \d+", out), out
    assert "the other apt/dpkg is done" in out
    runs = calls.read_text().splitlines()
    assert [r.split()[0] for r in runs] == ["free", "free"]  # update, then install: each after the lock was let go
    assert all("-o DPkg::Lock::Timeout=600" in r for r in runs), runs
    assert runs[1].endswith("install -y -qq ffmpeg fonts-wqy-microhei")
