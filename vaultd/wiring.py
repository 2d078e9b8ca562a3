"""Builds the daemon from the config and ``vaultd run``'s options. Wiring only."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vaultd import devicemodels
from vaultd import registry as registry_mod
from vaultd.daemon import Daemon, Options
from vaultd.driverapi import StorageModeSwitch, UsbId
from vaultd.hotplug import DockEventSource
from vaultd.i18n import _
from vaultd.scheduler import Scheduler
from vaultd.vault import Vault

log = logging.getLogger(__name__)


def build_daemon(vault: Vault, *, dock_folder: Path | None = None, udev: bool = True, api: bool = True,
                 listen: str | None = None, socket: str | None = None, max_sessions: int | None = None,
                 auto_enroll: bool = False, devices_file: Path | None = None,
                 previews: bool = True, insecure_http: bool = False) -> Daemon:
    cfg = vault.config.dock
    registry = registry_mod.load_registry(devicemodels.locate(vault.layout.root, devices_file))
    for name, why in registry.failed:
        log.error("driver %s failed to load: %s", name, why)
    sources: list[DockEventSource] = []
    mounter = None
    folder = dock_folder or (Path(cfg.folder) if cfg.folder else None)
    if folder is not None:
        from vaultd.dockfolder import FolderSource

        sources.append(FolderSource(folder))
        log.info("simulated dock: watching %s", folder)
    if udev and cfg.udev:
        from vaultd.mount import DeviceMounter

        sources.append(_udev_source(registry))
        mounter = DeviceMounter()
    extras: list[Any] = [Scheduler(vault)]
    if api:
        from vaultd.api.app import ApiThread

        uds = socket or cfg.api_socket or str(vault.layout.root / "api.sock")
        extras.append(ApiThread(vault, listen if listen is not None else cfg.api_listen, uds,
                                certfile=cfg.api_tls_cert or None, keyfile=cfg.api_tls_key or None,
                                insecure_http=insecure_http or cfg.api_insecure_http))
    options = Options(max_sessions=max_sessions or cfg.max_sessions, auto_enroll=auto_enroll or cfg.auto_enroll,
                      wipe=cfg.wipe, set_clock=cfg.set_clock, stop_grace_s=cfg.stop_grace_s)
    daemon = Daemon(vault, registry, sources, options=options, extras=extras, mounter=mounter)
    if previews:
        from vaultd.previewwork import PreviewService

        # background previews give way while a camera is being ingested (the 24-hour deadline comes first)
        daemon.extras.append(PreviewService(vault, busy=daemon.ingesting))
        daemon.on_session_end.append(lambda st, report: _queue_previews(vault, report))
    return daemon


def _queue_previews(vault: Vault, report: Any) -> None:
    """New recordings of a session go to the preview queue (ahead of the backlog)."""
    if report is None:
        return
    from vaultd import preview

    new = [r.recording_id for r in report.results if r.outcome.value == "new" and r.recording_id]
    if new:
        preview.enqueue_new(vault, new)


class _Tolerant:
    """A dock source whose start failing (no netlink in a container, no
    permission) is logged, not fatal: the other sources keep working."""

    def __init__(self, inner: DockEventSource, what: str) -> None:
        self.inner, self.what = inner, what

    def start(self, sink: Any) -> None:
        try:
            self.inner.start(sink)
        except Exception as exc:
            log.warning(_("%s unavailable, continuing without it: %s"), self.what, exc)

    def stop(self) -> None:
        self.inner.stop()


def _udev_source(registry: registry_mod.Registry) -> DockEventSource:
    """udev, also watching the USB ids of locked cameras (drivers that switch to mass storage)."""
    from vaultd.hotplug import UdevSource

    watch: set[UsbId] = set()
    for driver in registry.drivers:
        if isinstance(driver, StorageModeSwitch):
            watch.update(driver.match.usb)
    for model in registry.models:
        drv = registry.get(model.driver)
        if drv is not None and isinstance(drv, StorageModeSwitch):
            watch.update(model.match.usb)
    return _Tolerant(UdevSource(watch_usb=watch), "udev")
