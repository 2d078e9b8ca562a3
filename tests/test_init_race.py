"""The first start of a vault, raced by real processes (issue 16 point 15).

``vaultd init`` is safe to repeat, so it may run while ``serve``, the daemon or
``export create`` use the vault, or twice at once (a provisioning script and an
admin). Before, each key file was created with O_EXCL and then written, in
several steps: a second ``init`` failed with "File exists" (exit 6), and a
process reading the export signing identity between the key and its
certificate failed with a configuration error (exit 3) that a rerun did not
repeat. Now the keys are created exactly once under a lock, each published
whole, and readers of the signing set wait for a creator that holds the lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import wait_for
from vaultd.vault import init_vault

pytestmark = pytest.mark.slow

RACERS = 4

_GATED_INIT = """
import os, sys, time
from vaultd.cli import main
ready, go, home = sys.argv[1:4]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.002)
sys.exit(main(["--home", home, "init"]))
"""

_HOLD_AND_CREATE = """
import datetime, fcntl, os, sys, time
from pathlib import Path
from vaultd import keys, pki
keys_dir, ready, go = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
fd = os.open(keys_dir / "keys.lock", os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)  # an init in the middle of making the signing set
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.002)
pki.ensure_pki(keys_dir, keys.vault_id(keys_dir), datetime.datetime.now(datetime.timezone.utc))
os.close(fd)
"""


def _python(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=os.environ.copy())


def _consistent(keys: Path) -> x509.Certificate:
    """The signing key belongs to the signing certificate, which the CA issued."""
    ca = x509.load_pem_x509_certificate((keys / "agency-ca.pem").read_bytes())
    cert = x509.load_pem_x509_certificate((keys / "export-signing.pem").read_bytes())
    key = serialization.load_pem_private_key((keys / "export-signing-key.pem").read_bytes(), None)
    ca_key = serialization.load_pem_private_key((keys / "agency-ca-key.pem").read_bytes(), None)
    assert cert.public_key() == key.public_key() and ca.public_key() == ca_key.public_key()
    cert.verify_directly_issued_by(ca)
    assert len((keys / "vault-id").read_text().split()) == 1
    return ca


@pytest.mark.parametrize("round_", range(2))
def test_inits_racing_on_a_fresh_home_create_everything_once(tmp_path: Path, round_: int) -> None:
    home = tmp_path / "home"
    gate = tmp_path / "go"
    procs = [_python("-c", _GATED_INIT, str(tmp_path / f"ready{i}"), str(gate), str(home)) for i in range(RACERS)]
    wait_for(lambda: all((tmp_path / f"ready{i}").exists() for i in range(RACERS)), what="the racers to start")
    gate.touch()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * RACERS, outs
    makers = [o for o in outs if "agency-ca.pem" in o]
    assert len(makers) == 1, outs  # exactly one process made the keys; the others found them
    assert sum("nothing changed" in o for o in outs) == RACERS - 1, outs
    _consistent(home / "keys")
    leftovers = [p.name for p in (home / "keys").iterdir() if p.name.endswith(".tmp")]
    assert not leftovers
    # the vault works: one init entry in its log, which verifies
    audit = subprocess.run([sys.executable, "-m", "vaultd.cli", "--home", str(home), "audit", "list", "--json"],
                           capture_output=True, text=True, timeout=120)
    assert audit.returncode == 0 and audit.stdout.count('"vault.init"') == 1, audit.stdout + audit.stderr


def test_a_reader_waits_for_the_signing_set_being_made(tmp_path: Path) -> None:
    """``export ca`` (as ``export create``) reads the signing key, its certificate and the CA while
    another process is making them: it waits and reads the finished set, never half of it."""
    home = tmp_path / "home"
    init_vault(home)
    keys = home / "keys"
    (keys / "export-signing.pem").unlink()  # the moment between the key and its certificate
    ready, gate = tmp_path / "ready", tmp_path / "go"
    maker = _python("-c", _HOLD_AND_CREATE, str(keys), str(ready), str(gate))
    wait_for(ready.exists, what="the maker to hold the lock")
    reader = _python("-m", "vaultd.cli", "--home", str(home), "export", "ca")

    def blocked_or_done() -> bool:
        waiting = f"-> FLOCK  ADVISORY  READ {reader.pid} "
        return reader.poll() is not None or waiting in Path("/proc/locks").read_text()

    wait_for(blocked_or_done, what="the reader to wait on the keys lock")
    gate.touch()
    out = reader.communicate(timeout=120)[0]
    maker_out = maker.communicate(timeout=120)[0]
    assert reader.returncode == 0, out  # was exit 3: "cannot read the certificate ... export-signing.pem"
    assert maker.returncode == 0, maker_out  # was exit 1: an interrupted set could not be finished
    ca = _consistent(keys)
    assert ca.public_bytes(serialization.Encoding.PEM).decode() in out
