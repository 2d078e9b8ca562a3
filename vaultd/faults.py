"""Named crash points, for proving that ingest survives a kill at any instant.

Production code calls ``point("name")`` at each instant worth testing. It
costs one dictionary lookup unless a test armed it:

* ``VAULTD_KILL_AT=N`` (environment): the process SIGKILLs itself at the Nth
  point reached, counting every point; ``VAULTD_KILL_TRACE=FILE`` appends each
  point's name to FILE, so a test can see how many points a run passes.
* ``hooks[name] = fn``: in-process tests run ``fn()`` when the point is hit.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

hooks: dict[str, Callable[[], None]] = {}
_kill_at = int(os.environ.get("VAULTD_KILL_AT", "0") or 0)
_trace = os.environ.get("VAULTD_KILL_TRACE")
_count = 0
_lock = threading.Lock()


def armed() -> bool:
    """Whether a test armed any point (work that would pass points in another
    process then stays in this one, so that every point counts)."""
    return bool(_kill_at or _trace or hooks)


def point(name: str) -> None:
    global _count
    if _kill_at or _trace:
        with _lock:
            _count += 1
            if _trace:
                with open(_trace, "a", encoding="utf-8") as fh:
                    fh.write(f"{_count} {name}\n")
            if _count == _kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
    hook = hooks.get(name)
    if hook is not None:
        hook()
