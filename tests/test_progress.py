"""Progress bars ask for the stderr of the moment they are made, not one bound at import."""

from __future__ import annotations

import subprocess
import sys

# vaultd.progress imported while stderr is a stream that is later closed (as pytest's capture
# does between tests): the full suite's remote audit verify died with 'I/O operation on closed file'
SCRIPT = """
import io, sys
real, gone = sys.stderr, io.StringIO()
sys.stderr = gone
from vaultd import progress
sys.stderr = real
gone.close()
print(progress.wanted(False))
progress.CountBar("x")
progress.BytesBar("y")
"""


def test_bars_use_the_stderr_of_the_call() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"  # the real stderr here is a pipe, not a terminal
