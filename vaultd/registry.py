"""Find camera drivers and pick one per docked device.

Drivers are found through the ``vaultd.drivers`` entry-point group; vaultd
never imports a driver by name. A driver that fails to load is logged and
skipped (``Registry.failed``). The most specific match wins
(``vaultd.driverapi.specificity``); a device nothing matches is never
ingested. Every call into driver code goes through ``Registry.call`` (or
``unlock`` / ``enter_storage_mode``), which wraps the driver's exceptions into
``DriverError`` / ``DeviceGoneError``.

Camera models configured in ``devices.toml`` (``vaultd.devicemodels``) take
part in the choice: ``Registry.load_models(path)`` adds them, and
``Registry.select(dev)`` returns the driver together with the model that
matched (``Selection.device`` carries it to the driver as ``dev.model``).

The daemon's sequence::

    registry = load_registry(devicemodels.locate(home, args.devices))
    sel = registry.select(dev)                       # None: never ingest
    ident = registry.call(sel.driver, "identify", sel.device)
    registry.unlock(sel.driver, sel.device)          # UnlockResult
    registry.call(sel.driver, "read_clock", sel.device)
    registry.call(sel.driver, "power_state", sel.device)
    registry.enter_storage_mode(sel.driver, sel.device)   # True: wait for the block device
    root = registry.call(sel.driver, "open_root", mounted_dev)
"""

from __future__ import annotations

import dataclasses
import errno
import importlib.metadata
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vaultd import devicemodels
from vaultd.driverapi import (
    CameraModel,
    DeviceInfo,
    Driver,
    Match,
    StorageModeSwitch,
    UnlockResult,
    Unlockable,
    specificity,
)
from vaultd.errors import ConfigError, DeviceGoneError, DriverError
from vaultd.i18n import _

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


MAX_PASSWORD_BYTES = 256


@dataclass(frozen=True)
class _Entry:
    driver: Driver
    matches: tuple[Match, ...]


@dataclass(frozen=True)
class Selection:
    """The chosen driver for one device, and the configured model that matched (if any)."""

    driver: Driver
    model: CameraModel | None
    score: int
    device: DeviceInfo  # the device as the driver must see it: ``model`` filled in


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
        self._models: list[CameraModel] = []
        self.failed: list[tuple[str, str]] = []  # (entry point or driver name, error)
        self.skipped_models: list[tuple[str, str]] = []  # (model name, why)

    @property
    def models(self) -> tuple[CameraModel, ...]:
        """The configured camera models, in file order."""
        return tuple(self._models)

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

    def add_model(self, model: CameraModel) -> None:
        """Add a configured camera model; its driver must be loaded.

        A model for a driver that failed to load is logged and skipped
        (``skipped_models``); one for a driver nobody knows is a ConfigError.
        """
        if any(m.name == model.name for m in self._models):
            raise ConfigError(_("%s: key 'name': another model is already called %r")
                              % (model.source or "devices", model.name))
        if model.driver not in self._entries:
            if any(name == model.driver for name, _why in self.failed):
                log.warning("model %r skipped: its driver %r failed to load", model.name, model.driver)
                self.skipped_models.append((model.name, f"driver {model.driver!r} failed to load"))
                return
            raise ConfigError(
                _("%s: key 'driver': no driver is named %r") % (model.source or "devices", model.driver),
                hint=_("known drivers: %s") % ", ".join(sorted(self._entries)))
        self._models.append(model)

    def load_models(self, path: Path | None) -> tuple[CameraModel, ...]:
        """Read ``devices.toml`` at ``path`` (None: nothing) and add its models."""
        if path is None:
            return ()
        models = devicemodels.load(path)
        before, skipped = list(self._models), list(self.skipped_models)
        try:
            for model in models:
                self.add_model(model)
        except ConfigError:
            self._models, self.skipped_models = before, skipped  # all of the file or none of it
            raise
        return models

    def select(self, dev: DeviceInfo) -> Selection | None:
        """The most specific driver (and configured model) for ``dev``; None: never ingest it.

        Ties at the same specificity: a configured model beats a driver's own
        match (the agency said so), then driver name, then model name.
        """
        best: tuple[int, int, str, str] | None = None  # (score, configured?, driver, model)
        chosen: tuple[str, CameraModel | None] | None = None
        for name, entry in self._entries.items():
            for m in entry.matches:
                score = specificity(m, dev)
                if score is not None and _better((score, 0, name, ""), best):
                    best, chosen = (score, 0, name, ""), (name, None)
        for model in self._models:
            score = specificity(model.match, dev)
            if score is not None and _better((score, 1, model.driver, model.name), best):
                best, chosen = (score, 1, model.driver, model.name), (model.driver, model)
        if best is None or chosen is None:
            return None
        driver = self._entries[chosen[0]].driver
        return Selection(driver=driver, model=chosen[1], score=best[0],
                         device=dataclasses.replace(dev, model=chosen[1]))

    def choose(self, dev: DeviceInfo) -> Driver | None:
        """The most specific driver for ``dev`` (see ``select``); None: never ingest it."""
        sel = self.select(dev)
        return sel.driver if sel else None

    def unlock(self, driver: Driver, dev: DeviceInfo) -> UnlockResult:
        """Log in to the camera with its model's configured password (fenced).

        A driver without the capability needs no login (NOT_NEEDED). The
        password comes from ``dev.model`` (``password_env`` / ``password_file``).
        """
        if not isinstance(driver, Unlockable):
            return UnlockResult.NOT_NEEDED
        result = self.call(driver, "unlock", dev, password_for(dev.model))
        if not isinstance(result, UnlockResult):
            raise DriverError(_("driver %r returned %r from unlock, not an UnlockResult")
                              % (driver.name, result))
        return result

    def enter_storage_mode(self, driver: Driver, dev: DeviceInfo) -> bool:
        """Tell a protocol camera to become mass storage (fenced); False: nothing to do."""
        if not isinstance(driver, StorageModeSwitch):
            return False
        return bool(self.call(driver, "enter_storage_mode", dev, password_for(dev.model)))

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
            what = _("driver %r failed in %s: %s: %s") % (driver.name, method_name, type(exc).__name__, exc)
            if _device_gone(exc):
                raise DeviceGoneError(what, hint=_("the camera was unplugged or stopped answering; "
                                                   "dock it again to resume")) from exc
            raise DriverError(what, hint=_("see the log for the driver's traceback")) from exc


def _better(key: tuple[int, int, str, str], best: tuple[int, int, str, str] | None) -> bool:
    """Higher score, then configured over built-in, then the alphabetically first names."""
    if best is None:
        return True
    if key[:2] != best[:2]:
        return key[:2] > best[:2]
    return key[2:] < best[2:]


def password_for(model: CameraModel | None) -> str | None:
    """The password a model's settings point to; None when none is configured or set.

    ``password_file`` must be a regular file that only its owner may read
    (mode 0600 or stricter), at most 256 bytes; one trailing newline is
    dropped. A missing environment variable is "no password".
    """
    if model is None:
        return None
    if model.password_env is not None:
        return os.environ.get(model.password_env) or None
    if model.password_file is None:
        return None
    where = f"{model.source or model.name}: key 'password_file'"
    try:
        fd = os.open(model.password_file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(_("%s: cannot open %s: %s") % (where, model.password_file, exc.strerror)) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077:
            raise ConfigError(_("%s: %s must be a regular file readable by its owner only (chmod 600)")
                              % (where, model.password_file))
        data = os.read(fd, MAX_PASSWORD_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_PASSWORD_BYTES:
        raise ConfigError(_("%s: %s is longer than %d bytes") % (where, model.password_file, MAX_PASSWORD_BYTES))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(_("%s: %s is not UTF-8 text") % (where, model.password_file)) from exc
    text = text[:-1] if text.endswith("\n") else text
    return text.removesuffix("\r") or None


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


def load_registry(devices_file: Path | None = None,
                  entry_points: Iterable[EntryPointLike] | None = None) -> Registry:
    """Every installed driver, plus the camera models of ``devices_file`` (None: none).

    The daemon passes ``devicemodels.locate(home, args.devices)``.
    """
    registry = load_drivers(entry_points)
    registry.load_models(devices_file)
    return registry
