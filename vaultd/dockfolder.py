"""The simulated dock: a folder watched with watchdog.

A camera tree made by ``vaultd simulate camera`` appearing in the folder is a
dock, its disappearing an undock. A tree counts as docked once its identity
file (``vaultd-camera.json``, written last by the simulator) is at its root,
so a tree still being written is not picked up half-made. Implements the
same ``DockEventSource`` protocol as the udev source.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from vaultd.camerafs import SIM_IDENTITY_FILE, root_names
from vaultd.driverapi import DeviceInfo
from vaultd.hotplug import DockEvent

log = logging.getLogger(__name__)

def folder_key(path: Path) -> str:
    return f"folder:{path}"


def device_info(path: Path) -> DeviceInfo:
    """What the dock sees of a camera folder: its root names, as data."""
    return DeviceInfo(port=f"dock-folder/{path.name}", mount_root=path, root_names=root_names(path))


def dock_event(action: str, path: Path) -> DockEvent:
    dev = device_info(path) if action == "add" else DeviceInfo(port=f"dock-folder/{path.name}", mount_root=path)
    return DockEvent(action=action, key=folder_key(path), device=dev, devnode=None, sys_path=str(path))


class FolderSource:
    """Dock events from camera trees appearing in and leaving ``folder``.

    Only the dock folder itself is watched, plus (briefly) a new subfolder
    whose identity file has not appeared yet; camera trees are never watched
    as a whole, so a big tree costs no inotify watches."""

    def __init__(self, folder: Path, identity_file: str = SIM_IDENTITY_FILE) -> None:
        self.folder = Path(folder).absolute()
        self.identity_file = identity_file
        self._present: set[str] = set()
        self._waiting: dict[str, Any] = {}  # camera folder -> its watch, until the identity file appears
        self._lock = threading.Lock()
        self._observer: Any = None
        self._handler = _Handler(self)
        self._sink: Callable[[DockEvent], None] | None = None

    def start(self, sink: Callable[[DockEvent], None]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sink = sink
        observer = Observer()
        observer.schedule(self._handler, str(self.folder), recursive=False)
        observer.start()  # watch first, then list: nothing docked in between is missed
        self._observer = observer
        for entry in sorted(os.scandir(self.folder), key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                self._maybe_add(Path(entry.path))

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)

    # -- called from the watchdog thread ---------------------------------------------------

    def _camera_dir(self, path: str) -> tuple[Path, int] | None:
        """(the camera folder, depth below it) for a path inside the dock folder."""
        try:
            rel = Path(path).relative_to(self.folder)
        except ValueError:
            return None
        if not rel.parts or rel.parts[0].startswith("."):
            return None
        return self.folder / rel.parts[0], len(rel.parts) - 1

    def _maybe_add(self, cam: Path) -> None:
        if cam.name.startswith(".") or cam.is_symlink() or not cam.is_dir():
            return
        if not (cam / self.identity_file).is_file():
            self._wait_for_identity(cam)
            return
        self._stop_waiting(cam)
        with self._lock:
            if str(cam) in self._present:
                return
            self._present.add(str(cam))
        self._emit("add", cam)

    def _wait_for_identity(self, cam: Path) -> None:
        with self._lock:
            if str(cam) in self._waiting or self._observer is None:
                return
            try:
                self._waiting[str(cam)] = self._observer.schedule(self._handler, str(cam), recursive=False)
            except OSError:  # gone again
                return
        if (cam / self.identity_file).is_file():  # appeared before the watch did
            self._maybe_add(cam)

    def _stop_waiting(self, cam: Path) -> None:
        with self._lock:
            watch = self._waiting.pop(str(cam), None)
            if watch is not None and self._observer is not None:
                try:
                    self._observer.unschedule(watch)
                except (KeyError, OSError):
                    pass

    def _maybe_remove(self, cam: Path) -> None:
        self._stop_waiting(cam)
        with self._lock:
            if str(cam) not in self._present:
                return
            self._present.discard(str(cam))
        self._emit("remove", cam)

    def _emit(self, action: str, cam: Path) -> None:
        log.info("dock folder: %s %s", action, cam)
        try:
            event = dock_event(action, cam)
        except OSError as exc:  # gone again before we looked
            log.warning("dock folder: %s vanished while being looked at: %s", cam, exc)
            if action == "add":
                with self._lock:
                    self._present.discard(str(cam))
            return
        if self._sink is not None:
            self._sink(event)

    def on_event(self, kind: str, src: str, dest: str | None) -> None:
        for path, gone in ((src, kind in ("deleted", "moved")), (dest, False)):
            if not path:
                continue
            where = self._camera_dir(path)
            if where is None:
                continue
            cam, depth = where
            if gone and depth == 0:
                self._maybe_remove(cam)
            elif gone and depth == 1 and Path(path).name == self.identity_file:
                self._maybe_remove(cam)
            elif not gone and depth <= 1 and kind in ("created", "moved", "modified", "closed"):
                self._maybe_add(cam)


class _Handler(FileSystemEventHandler):
    def __init__(self, source: FolderSource) -> None:
        self.source = source

    def on_any_event(self, event: FileSystemEvent) -> None:
        dest = getattr(event, "dest_path", None) or None
        try:
            self.source.on_event(event.event_type, _text(event.src_path), _text(dest) if dest else None)
        except Exception:  # the watchdog thread must survive anything one event does
            log.exception("dock folder: event %r failed", event)


def _text(path: str | bytes) -> str:
    return path if isinstance(path, str) else os.fsdecode(path)
