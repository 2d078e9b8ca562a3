"""A tiny sd_notify(3) client: tell systemd the daemon is ready, how it is doing, alive, stopping.

The protocol is one datagram of ``KEY=VALUE`` lines to the AF_UNIX socket
named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract
namespace). Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op.
Written here rather than taken from a library: the protocol is a dozen lines,
systemd-python needs libsystemd's headers and a compiler to install, and a
dependency for a dozen lines is not worth its upkeep.

The daemon should call ``ready()`` once serving, ``status(text)`` on change,
``watchdog()`` every ``watchdog_interval_s() / 2`` seconds, and ``stopping()``
(plus ``extend_timeout(s)`` while in-flight copies finish) on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)

__all__ = ["Notifier", "watchdog_interval_s"]

_MAX_STATUS_CHARS = 1024


def watchdog_interval_s(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """The watchdog timeout systemd expects (``WatchdogSec=``), in seconds; None when not asked.

    Honours ``$WATCHDOG_PID``: a watchdog meant for another process is not ours.
    Ping at half this interval.
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "").strip()
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "").strip()
    if owner and (not owner.isdigit() or int(owner) != (os.getpid() if pid is None else pid)):
        return None
    return int(usec) / 1_000_000


def _address(name: str) -> str | bytes | None:
    if name.startswith("@"):
        return b"\0" + name[1:].encode("utf-8")
    if name.startswith("/"):
        return name
    return None  # vsock and other forms are not used by vaultd's unit


class Notifier:
    """Sends sd_notify messages; silent (and never raising) when not under systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=VALUE`` fields (``notify(READY=1, STATUS="...")``); True when sent."""
        if self._address is None or not fields:
            return False
        lines = []
        for key, value in fields.items():
            text = " ".join(str(value).split())  # one line per field: newlines would start a new key
            lines.append(f"{key}={text}")
        payload = "\n".join(lines).encode("utf-8")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        if status is None:
            return self.notify(READY=1)
        return self.notify(READY=1, STATUS=status[:_MAX_STATUS_CHARS])

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text[:_MAX_STATUS_CHARS])

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def stopping(self, status: str | None = None) -> bool:
        if status is None:
            return self.notify(STOPPING=1)
        return self.notify(STOPPING=1, STATUS=status[:_MAX_STATUS_CHARS])

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before systemd gives up on a start or stop (EXTEND_TIMEOUT_USEC)."""
        return self.notify(EXTEND_TIMEOUT_USEC=max(0, int(seconds * 1_000_000)))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
