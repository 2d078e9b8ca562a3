"""Find camera drivers and pick one per docked device.

Drivers are found through the ``vaultd.drivers`` entry-point group; vaultd
never imports a driver by name. A driver that fails to load is logged and
skipped (``Registry.failed``). The most specific match wins
(``vaultd.driverapi.specificity``); a device nothing matches is never
ingested. Every call into driver code goes through ``Registry.call``, which
wraps the driver's exceptions into ``DriverError`` / ``DeviceGoneError``.
"""

from __future__ import annotations

import errno
import importlib.metadata
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from vaultd.driverapi import DeviceInfo, Driver, Match, specificity
from vaultd.errors import ConfigError, DeviceGoneError, DriverError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "vaultd.drivers"

# errno values that mean the device went away under us (DEVICES.md §2, unplug)
GONE_ERRNOS = frozenset({errno.EIO, errno.ENODEV, errno.ENXIO, errno.ENOTCONN})


class EntryPointLike(Protocol):
    """What load_drivers needs of an entry point (importlib.metadata.EntryPoint fits)."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...

    def load(self) -> Any: ...


@dataclass(frozen=True)
class _Entry:
    driver: Driver
    matches: tuple[Match, ...]


def _declared_matches(driver: Driver) -> tuple[Match, ...]:
    """``driver.match`` plus any ``models`` the driver serves; validated."""
    extra = getattr(driver, "models", ())
    matches = (driver.match, *tuple(extra))
    for m in matches:
        if not isinstance(m, Match):
            raise TypeError(f"driver {driver.name!r} declares {type(m).__name__}, not a Match")
    return matches


class Registry:
    """The loaded drivers; chooses one per device and fences calls into them."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self.failed: list[tuple[str, str]] = []  # (entry point or driver name, error)

    @property
    def drivers(self) -> tuple[Driver, ...]:
        """The loaded drivers, by name."""
        return tuple(self._entries[name].driver for name in sorted(self._entries))

    def get(self, name: str) -> Driver | None:
        entry = self._entries.get(name)
        return entry.driver if entry else None

    def add(self, driver: Driver) -> None:
        """Register a driver (from an entry point, a test, or config)."""
        if not isinstance(driver, Driver):
            raise TypeError(f"{driver!r} does not implement vaultd.driverapi.Driver")
        name = driver.name
        if not isinstance(name, str) or not name:
            raise TypeError(f"driver {driver!r} has no name")
        if name in self._entries:
            raise ConfigError(f"two drivers are named {name!r}",
                              hint="driver names must be unique; remove or rename one")
        self._entries[name] = _Entry(driver, _declared_matches(driver))

    def choose(self, dev: DeviceInfo) -> Driver | None:
        """The most specific driver for ``dev`` (ties: by name); None: never ingest it."""
        best: tuple[int, str] | None = None
        for name, entry in self._entries.items():
            scores = [s for m in entry.matches if (s := specificity(m, dev)) is not None]
            if not scores:
                continue
            key = (max(scores), name)
            # higher score wins; among equals the alphabetically first name
            if best is None or key[0] > best[0] or (key[0] == best[0] and name < best[1]):
                best = key
        return self._entries[best[1]].driver if best else None

    def call(self, driver: Driver, method_name: str, *args: Any) -> Any:
        """``driver.<method_name>(*args)``, with the driver's exceptions wrapped.

        OSError with EIO/ENODEV/ENXIO/ENOTCONN (anywhere in the cause chain)
        becomes ``DeviceGoneError``; anything else ``DriverError``. A
        ``DriverError`` the driver raised itself passes through unchanged.
        """
        method = getattr(driver, method_name)  # a wrong name is vaultd's bug, not the driver's
        try:
            return method(*args)
        except DriverError:
            raise
        except Exception as exc:
            what = f"driver {driver.name!r} failed in {method_name}: {type(exc).__name__}: {exc}"
            if _device_gone(exc):
                raise DeviceGoneError(what, hint="the camera was unplugged or stopped answering; "
                                      "dock it again to resume") from exc
            raise DriverError(what, hint="see the log for the driver's traceback") from exc


def _device_gone(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in GONE_ERRNOS:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def load_drivers(entry_points: Iterable[EntryPointLike] | None = None) -> Registry:
    """Load every driver of the ``vaultd.drivers`` group; skip (and log) broken ones."""
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    registry = Registry()
    seen: set[tuple[str, str]] = set()
    for ep in entry_points:
        if (ep.name, ep.value) in seen:  # the same distribution listed twice
            continue
        seen.add((ep.name, ep.value))
        try:
            factory = ep.load()
            registry.add(factory())
        except Exception as exc:
            log.exception("driver %s (%s) failed to load; skipped", ep.name, ep.value)
            registry.failed.append((ep.name, f"{type(exc).__name__}: {exc}"))
    return registry
