"""``vaultd run``: the docking daemon. Wiring only.

Dock events (udev, the simulated dock folder) arrive on one queue; each
docked camera gets one session in its own thread and its own error boundary,
at most ``[dock] max_sessions`` at once. A session identifies the camera
through its driver, decides with ``devices.decide_dock`` whether to ingest,
reads the clock and power state, ingests through the same pipeline as
``vaultd ingest``, and sets the camera's clock afterwards. The scheduler
runs the periodic jobs and the API is served beside it. State for
``vaultd status`` is written to ``<home>/daemon-status.json`` every second.

On SIGTERM no new session starts; running ones get ``stop_grace_s`` to finish
and are then abandoned, which the ingest's crash safety makes safe: a
partial copy is discarded at the next start and nothing is wiped.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from vaultd import camerafs, devices, ingest, sdnotify
from vaultd.devices import Seen, Verdict
from vaultd.driverapi import DeviceInfo, Driver
from vaultd.errors import DeviceGoneError, VaultError
from vaultd.hotplug import DockEvent, DockEventSource
from vaultd.i18n import _
from vaultd.model import Actor, CameraIdentity
from vaultd.registry import Registry
from vaultd.vault import Vault, utcnow

log = logging.getLogger(__name__)

DAEMON = Actor("service", "vaultd", via="daemon")
STATUS_FILE = "daemon-status.json"
IDLE_STATUS_S = 15.0  # an unchanged status is rewritten this often (its time shows the daemon is alive)
NOT_INGESTED_SHOWN = 20  # files named in the status as not ingested (the counts have them all)


class Mounter(Protocol):
    """Mounts a docked block device read-only; the daemon unmounts on undock."""

    def mount(self, event: DockEvent) -> Path: ...
    def remount(self, key: str, *, readonly: bool) -> Any: ...  # -> mount.Mounted (``.target``)
    def unmount(self, event: DockEvent) -> None: ...


@dataclass
class SessionState:
    """One docked camera as ``vaultd status`` shows it (mutated by its session thread)."""

    key: str
    source: str
    state: str = "queued"  # queued | identifying | held | ingesting | complete | incomplete | failed | ignored
    docked_at: str = field(default_factory=lambda: utcnow().isoformat())
    dock_id: int | None = None  # its row in the catalog's docks
    serial: str | None = None
    model: str | None = None
    officer: str | None = None
    driver: str | None = None
    verdict: str | None = None
    detail: str | None = None
    session_id: str | None = None
    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    current: str = ""
    started_mono: float | None = None
    first_byte_s: float | None = None  # dock event to first byte copied
    finished_at: str | None = None
    undocked: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    #: what on the camera did not go into the vault, and why: [{path, outcome, reason}], the first few
    not_ingested: list[dict[str, str]] = field(default_factory=list)
    event_mono: float = field(default_factory=time.monotonic)

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("started_mono", "event_mono")}
        elapsed = (time.monotonic() - self.started_mono) if self.started_mono else 0.0
        rate = self.bytes_done / elapsed if elapsed > 0 else 0.0
        out["rate_bytes_per_s"] = round(rate)
        left = self.bytes_total - self.bytes_done
        out["eta_s"] = round(left / rate, 1) if rate > 0 and self.state == "ingesting" else None
        return out


class _Progress:
    """``ingest.Progress`` that feeds a SessionState."""

    def __init__(self, st: SessionState) -> None:
        self.st = st

    def begin(self, total_files: int, total_bytes: int) -> None:
        self.st.files_total, self.st.bytes_total = total_files, total_bytes
        self.st.started_mono = time.monotonic()

    def file(self, display_path: str) -> None:
        if self.st.current:
            self.st.files_done += 1
        self.st.current = display_path

    def advance(self, nbytes: int) -> None:
        if self.st.first_byte_s is None and nbytes:
            self.st.first_byte_s = round(time.monotonic() - self.st.event_mono, 3)
        self.st.bytes_done += nbytes

    def end(self) -> None:
        self.st.current = ""


@dataclass(frozen=True)
class _Ready:
    """A camera identified and cleared for ingest."""

    driver: Driver
    dev: DeviceInfo
    identity: CameraIdentity
    device_id: int | None
    dock_id: int
    switched: bool = False  # a protocol camera already read (clock, power) before its mode switch
    key: str = ""
    mounted: bool = False  # vaultd mounted it (read-only): the wipe step remounts it read-write


@dataclass(frozen=True)
class Options:
    max_sessions: int = 4
    auto_enroll: bool = False
    wipe: bool = False
    set_clock: bool = True
    stop_grace_s: float = 60.0
    status_interval_s: float = 1.0
    held_poll_s: float = 2.0  # how often a held (unknown) camera checks whether it was enrolled


class Daemon:
    """The dock: sources -> one event queue -> sessions; plus status and the watchdog ping."""

    def __init__(self, vault: Vault, registry: Registry, sources: Sequence[DockEventSource], *,
                 options: Options, mounter: Mounter | None = None,
                 extras: Sequence[Any] = ()) -> None:
        self.vault = vault
        self.registry = registry
        self.sources = list(sources)
        self.options = options
        self.mounter = mounter
        self.extras = list(extras)  # started and stopped with the daemon: scheduler, API, workers
        self.events: queue.Queue[DockEvent] = queue.Queue()
        self.sessions: dict[str, SessionState] = {}
        self.finished: deque[SessionState] = deque(maxlen=20)
        self.errors: deque[dict[str, str]] = deque(maxlen=20)
        self.redock: dict[str, DockEvent] = {}
        self.locked: dict[str, CameraIdentity] = {}  # identities read before a mode switch, by key
        self.threads: dict[str, threading.Thread] = {}
        self.slots = threading.BoundedSemaphore(max(1, options.max_sessions))
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.state = "starting"
        self.started_at = utcnow()
        self.status_path = vault.layout.root / STATUS_FILE
        self.notifier = sdnotify.Notifier()
        self._last_status: dict[str, Any] | None = None
        self._last_status_at = 0.0
        self.on_session_end: list[Callable[[SessionState, ingest.IngestReport | None], None]] = []

    # -- the main loop -------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> int:
        stop = stop or self.stopping
        recovered = ingest.recover(self.vault)
        if recovered:
            log.warning("recovered %d uncatalogued objects left by a killed session", recovered)
        for extra in self.extras:
            extra.start()
        for source in self.sources:
            source.start(self.events.put)
        self.state = "running"
        self.notifier.ready(self._status_line())
        log.info("vaultd daemon running (home %s)", self.vault.layout.root)
        watchdog_s = sdnotify.watchdog_interval_s()
        last_status = last_ping = 0.0
        last_line = ""
        try:
            while not stop.is_set() and not self.stopping.is_set():
                try:  # an idle daemon wakes once a second (an event still wakes it at once)
                    self.dispatch(self.events.get(timeout=0.2 if self.sessions else 1.0))
                except queue.Empty:
                    pass
                now = time.monotonic()
                every = self.options.status_interval_s if self.sessions else max(self.options.status_interval_s, 5.0)
                if now - last_status >= every:
                    last_status = now
                    self.write_status(force=False)
                    line = self._status_line()
                    if line != last_line:
                        self.notifier.status(line)
                        last_line = line
                if watchdog_s and now - last_ping >= watchdog_s / 2:
                    last_ping = now
                    self.notifier.watchdog()
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        self.state = "stopping"
        self.stopping.set()
        self.notifier.stopping(self._status_line())
        if self.threads:  # in-flight copies may take the grace time: tell systemd
            self.notifier.extend_timeout(self.options.stop_grace_s + 15)
        for source in self.sources:
            _quietly(source.stop)
        deadline = time.monotonic() + self.options.stop_grace_s
        for key, thread in list(self.threads.items()):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("abandoning the session on %s at shutdown; it resumes on the next dock", key)
        for extra in reversed(self.extras):
            _quietly(extra.stop)
        self.state = "stopped"
        self.write_status()

    def dispatch(self, event: DockEvent) -> None:
        """Route one dock event. A camera's session stays listed (with its final
        state) while it is docked, and moves to the recent list on undock."""
        if event.action == "remove":
            self._undock(event)
            return
        if event.action != "add":
            return
        with self.lock:
            if self.stopping.is_set():
                return
            if event.key in self.threads:  # re-enumerated while its last session winds down: run again after it
                self.redock[event.key] = event
                return
            if event.key in self.sessions:
                self.finished.append(self.sessions.pop(event.key))
            st = SessionState(key=event.key, source=str(event.device.mount_root or event.devnode or event.key))
            self.sessions[event.key] = st
            thread = threading.Thread(target=self._session, args=(event, st), daemon=True,
                                      name=f"vaultd-session-{event.key[-24:]}")
            self.threads[event.key] = thread
        thread.start()

    def _undock(self, event: DockEvent) -> None:
        """The camera left: its dock row says when (an audit entry), and its mount goes."""
        with self.lock:
            self.redock.pop(event.key, None)
            st = self.sessions.get(event.key)
            if st is not None:
                st.undocked = True
                if event.key not in self.threads:
                    self.finished.append(self.sessions.pop(event.key))
        if st is not None and st.dock_id is not None:
            dock_id = st.dock_id
            _quietly(lambda: devices.record_undock(self.vault, dock_id))
        if self.mounter is not None and event.devnode:
            _quietly(lambda: self.mounter.unmount(event) if self.mounter else None)

    # -- one docked camera (its own error boundary) ---------------------------------------

    def _session(self, event: DockEvent, st: SessionState) -> None:
        report: ingest.IngestReport | None = None
        try:
            ready = self._identify(event, st)
            if ready is None:
                return
            st.state = "queued"
            with self.slots:  # at most max_sessions cameras copy at once
                if self.stopping.is_set() or st.undocked:
                    st.state = "abandoned" if self.stopping.is_set() else "undocked"
                    return
                if event.kind == "usb":
                    self._unlock_to_storage(event, st, ready)
                else:
                    report = self._ingest_camera(ready, st)
        except DeviceGoneError as exc:
            st.state, st.detail = "incomplete", exc.message
            log.warning("camera on %s went away: %s", event.key, exc.message)
        except VaultError as exc:
            st.state, st.detail = "failed", exc.message
            self._error(event.key, exc.message)
        except Exception as exc:  # the task boundary: one bad camera never stops the others
            log.exception("session on %s failed", event.key)
            st.state, st.detail = "failed", f"{type(exc).__name__}: {exc}"
            self._error(event.key, st.detail)
        finally:
            st.finished_at = utcnow().isoformat()
            for hook in self.on_session_end:
                _quietly(lambda: hook(st, report))
            self._end(event, st)

    def _end(self, event: DockEvent, st: SessionState) -> None:
        log.info("session on %s ended: %s%s", event.key, st.state, f" ({st.detail})" if st.detail else "")
        with self.lock:
            self.threads.pop(event.key, None)
            if st.undocked or st.state in ("ignored", "abandoned") or self.sessions.get(event.key) is not st:
                if self.sessions.get(event.key) is st:
                    self.sessions.pop(event.key)
                self.finished.append(st)
            again = self.redock.pop(event.key, None)
        if again is not None and not self.stopping.is_set():
            self.dispatch(again)

    def _error(self, key: str, message: str) -> None:
        self.errors.append({"at": utcnow().isoformat(), "key": key, "error": message})

    def _identify(self, event: DockEvent, st: SessionState) -> _Ready | None:
        """Who the camera is and whether to ingest it; an unknown camera is held
        (with an alert) until it is enrolled or undocked."""
        st.state = "identifying"
        dev = event.device
        mounted = False
        if dev.mount_root is None and self.mounter is not None and event.devnode:
            dev = _with_root(dev, self.mounter.mount(event))
            mounted = True
        sel = self.registry.select(dev)
        if sel is None:
            st.state, st.detail = "ignored", "not a camera any driver knows"
            log.info("ignoring %s: no driver matches it", event.key)
            return None
        driver, dev = sel.driver, sel.device
        st.driver = driver.name + (f" ({sel.model.name})" if sel.model else "")
        with self.lock:
            known = self.locked.pop(event.key) if event.key in self.locked else None
        identity: CameraIdentity = known or self.registry.call(driver, "identify", dev)
        st.serial, st.model, st.officer = identity.serial, identity.model, identity.officer_id
        seen = Seen(identity.serial, str(dev.usb) if dev.usb else None, dev.usb_serial, dev.port)
        decision, dock_id = devices.record_dock(
            self.vault, seen=seen, identity=identity, driver=driver.name, source=st.source,
            docked_elsewhere=self._docked_elsewhere(event.key, identity.serial),
            auto_enroll=self.options.auto_enroll)
        st.dock_id = dock_id
        st.verdict, st.detail = decision.verdict.value, decision.reason
        if decision.verdict is Verdict.UNKNOWN:
            st.state = "held"
            log.warning("camera %s on %s held: %s", identity.serial, event.key, decision.reason)
            if not self._wait_enrolled(st, identity.serial):
                return None
            st.verdict, st.detail = Verdict.INGEST.value, "enrolled while docked"
        elif decision.verdict is not Verdict.INGEST:
            st.state = "held"
            log.warning("camera %s on %s not ingested: %s", identity.serial, event.key, decision.reason)
            return None
        return _Ready(driver, dev, identity, decision.device_id, dock_id, switched=known is not None,
                      key=event.key, mounted=mounted)

    def _unlock_to_storage(self, event: DockEvent, st: SessionState, ready: _Ready) -> None:
        """A locked protocol camera: clock and power are read (and the clock set)
        over its vendor interface, which is gone once it is told to become mass
        storage; its block device then arrives as a new dock event on the same key."""
        identity = self._clock_and_power(ready.driver, ready.dev, ready.device_id, ready.identity)
        if self.options.set_clock and ready.device_id is not None:
            now = utcnow()
            ok = bool(self.registry.call(ready.driver, "set_clock", ready.dev, now))
            devices.record_clock_set(self.vault, ready.device_id, now, ok)
        result = self.registry.unlock(ready.driver, ready.dev)
        log.info("camera %s unlock: %s", identity.serial, result.value)
        if not self.registry.enter_storage_mode(ready.driver, ready.dev):
            st.state, st.detail = "failed", "the camera did not switch to mass-storage mode"
            return
        with self.lock:
            self.locked[event.key] = identity  # the storage session ingests under this identity
        st.state, st.detail = "switched", "switched to mass-storage mode; waiting for its filesystem"
        devices.finish_dock(self.vault, ready.dock_id, outcome="switched")

    def _wait_enrolled(self, st: SessionState, serial: str | None) -> bool:
        """Poll until an admin enrolls the held camera; False when it leaves first."""
        while not self.stopping.is_set() and not st.undocked:
            if self.stopping.wait(self.options.held_poll_s):
                break
            with self.vault.engine.connect() as conn:
                if any(r.status is devices.Status.ENROLLED for r in devices.rows_for(conn, serial or "")):
                    return True
        return False

    def _ingest_camera(self, ready: _Ready, st: SessionState) -> ingest.IngestReport:
        driver, dev, device_id = ready.driver, ready.dev, ready.device_id
        identity = ready.identity
        if not ready.switched:  # else read over the vendor interface, which is gone now
            identity = self._clock_and_power(driver, dev, device_id, identity)
        report = self._run_ingest(driver, dev, identity, st, ready.dock_id, ready.key, ready.mounted)
        if report.complete and self.options.set_clock and device_id is not None and not ready.switched:
            now = utcnow()
            ok = bool(self.registry.call(driver, "set_clock", dev, now))
            devices.record_clock_set(self.vault, device_id, now, ok)
        return report

    def _run_ingest(self, driver: Driver, dev: DeviceInfo, identity: CameraIdentity, st: SessionState,
                    dock_id: int, key: str, mounted: bool) -> ingest.IngestReport:
        root = Path(self.registry.call(driver, "open_root", dev))
        wipe = self.options.wipe and bool(self.registry.call(driver, "wipe_allowed", dev))
        st.state = "ingesting"  # the dock row says so once the session ends (one transaction fewer)
        fds = [camerafs.open_root(root)]

        def writable_root() -> int:  # read-only until here; read-write only for the wipe step
            assert self.mounter is not None
            again = self.mounter.remount(key, readonly=False)
            fds.append(camerafs.open_root(again.target))
            return fds[-1]

        try:
            report = ingest.ingest_tree(self.vault, fds[0], str(root), identity, actor=DAEMON, wipe=wipe,
                                        progress=_Progress(st), clock=utcnow,
                                        reopen_for_wipe=writable_root if wipe and mounted else None)
        finally:
            for fd in fds:
                os.close(fd)
            if len(fds) > 1 and self.mounter is not None:
                _quietly(lambda: self.mounter.remount(key, readonly=True) if self.mounter else None)
        st.session_id, st.counts = report.session_id, report.counts()
        st.not_ingested = [{"path": r.path, "outcome": r.outcome.value, "reason": r.reason or ""}
                           for r in report.results if r.outcome.value not in ("new", "duplicate")][:NOT_INGESTED_SHOWN]
        st.files_done = sum(st.counts.values())
        st.state = "complete" if report.complete else "incomplete"
        st.detail = report.error or st.detail
        devices.finish_dock(self.vault, dock_id, outcome=st.state, session_id=report.session_id,
                            detail=report.error)
        return report

    def _clock_and_power(self, driver: Driver, dev: DeviceInfo, device_id: int | None,
                         identity: CameraIdentity) -> CameraIdentity:
        if device_id is None:
            return identity
        reading = self._ask(driver, "read_clock", dev, identity)
        power = self._ask(driver, "power_state", dev, identity)
        if reading is not None or power is not None:
            devices.record_readings(self.vault, device_id, reading, power,
                                    max_skew_s=self.vault.config.time.max_clock_skew_s)
        if reading is not None and identity.clock_offset_s is None:
            identity = replace(identity, clock_offset_s=reading.offset_s)
        return identity

    def _ask(self, driver: Driver, method: str, dev: DeviceInfo, identity: CameraIdentity) -> Any:
        """A nice-to-know from the driver: None when it fails (logged); a camera gone is not that."""
        try:
            return self.registry.call(driver, method, dev)
        except DeviceGoneError:
            raise
        except VaultError as exc:
            log.warning("camera %s: %s failed: %s", identity.serial, method, exc.message)
            return None

    def ingesting(self) -> bool:
        """Whether any camera is being copied right now."""
        with self.lock:
            return any(st.state == "ingesting" for st in self.sessions.values())

    def _docked_elsewhere(self, key: str, serial: str | None) -> bool:
        with self.lock:
            return bool(serial) and any(st.serial == serial and k != key and not st.undocked
                                        for k, st in self.sessions.items())

    # -- status ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            live = [st.as_json() for st in self.sessions.values()]
            done = [st.as_json() for st in self.finished]
        return {
            "pid": os.getpid(), "state": self.state, "started_at": self.started_at.isoformat(),
            "updated_at": utcnow().isoformat(), "home": str(self.vault.layout.root),
            "sessions": live, "recent": done, "queued_events": self.events.qsize(),
            "errors": list(self.errors),
            "extras": {getattr(e, "name", type(e).__name__): _extra_status(e) for e in self.extras},
        }

    def write_status(self, force: bool = True) -> None:
        """Write the status file; with ``force=False`` only when something changed or
        every ``IDLE_STATUS_S`` (an idle daemon should cost next to nothing)."""
        snap = self.snapshot()
        same = {k: v for k, v in snap.items() if k != "updated_at"}
        now = time.monotonic()
        if not force and same == self._last_status and now - self._last_status_at < IDLE_STATUS_S:
            return
        self._last_status, self._last_status_at = same, now
        data = (json.dumps(snap, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
        tmp = self.status_path.with_name(self.status_path.name + ".tmp")
        try:  # not fsynced: it is redone every second and means nothing after a crash
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.status_path)
        except OSError as exc:
            log.warning("could not write %s: %s", self.status_path, exc)

    def _status_line(self) -> str:
        with self.lock:
            parts = [f"{st.serial or st.key}: {st.state}"
                     + (f" {st.files_done}/{st.files_total} files" if st.state == "ingesting" else "")
                     for st in self.sessions.values()]
        return "; ".join(parts) if parts else "idle, no camera docked"


def _extra_status(extra: Any) -> Any:
    status = getattr(extra, "status", None)
    if callable(status):
        try:
            return status()
        except Exception as exc:  # status is best effort
            return {"error": str(exc)}
    return None


def _with_root(dev: DeviceInfo, root: Path) -> DeviceInfo:
    try:
        names = camerafs.root_names(root)
    except OSError as exc:  # mounted, then gone (unplugged, or the mount vanished)
        raise DeviceGoneError(_("the camera's filesystem at %s cannot be read: %s") % (root, exc.strerror),
                              hint=_("dock it again")) from exc
    return replace(dev, mount_root=root, root_names=names)


def _quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:
        log.exception("ignored failure in %r", fn)


def read_status(home: Path) -> dict[str, Any] | None:
    """The daemon's last status, or None when it never ran here. ``running`` says
    whether the process that wrote it is alive."""
    path = home / STATUS_FILE
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    pid = doc.get("pid")
    alive = False
    if isinstance(pid, int) and doc.get("state") not in ("stopped",):
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
    doc["running"] = alive
    return doc

