"""A throwaway PostgreSQL cluster for the scale-out tests.

Debian's postgresql package, started in a temp folder on a Unix socket only
(as root it runs as the 'postgres' user); the test is skipped with the
install hint when PostgreSQL or psycopg is missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def throwaway_postgres(port: int, database: str, prefix: str) -> Iterator[str]:
    """Start a cluster on ``port`` with ``database`` created; yields its SQLAlchemy
    URL and removes the cluster afterwards. Give each test module its own port so
    modules may run at once."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL tests need: apt-get install postgresql (./run tests installs it)")
    pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg (pip install 'psycopg[binary]')")
    bindir = Path(bins[-1]).parent
    base = Path(tempfile.mkdtemp(prefix=prefix))  # pytest's tmp is private to root
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data = base / "data"
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
                                 "-o", f"-k {base} -p {port} -c listen_addresses=", "start"]),
                   check=True, capture_output=True)
    try:
        subprocess.run(_as_postgres([str(bindir / "psql"), "-h", str(base), "-p", str(port), "-U", "postgres",
                                     "-c", f"CREATE DATABASE {database}"]), check=True, capture_output=True)
        yield f"postgresql+psycopg://postgres@/{database}?host={base}&port={port}"
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
