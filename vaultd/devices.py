"""Cameras as accountable devices (R11, R13): enrollment, docks, clock, power.

``decide_dock`` is the pure decision of what to do with a docked camera;
``record_dock`` and friends do the catalog and audit work. An unknown camera
is not ingested until an admin enrolls it (or ``[dock] auto_enroll`` allows
it), and raises an alert; two devices reporting the same serial raise an
alert and are never merged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Connection, select, update

from vaultd import alerts, audit
from vaultd.access import Action, Principal
from vaultd.audit import Event
from vaultd.catalog import db
from vaultd.catalog.schema import alerts as alerts_t
from vaultd.catalog.schema import devices as devices_t
from vaultd.catalog.schema import docks as docks_t
from vaultd.driverapi import ClockReading, PowerState
from vaultd.errors import NotFoundError, UsageError
from vaultd.i18n import _
from vaultd.safetext import check_name
from vaultd.model import Actor, CameraIdentity
from vaultd.people import actor_of, require
from vaultd.vault import Vault, utcnow

log = logging.getLogger(__name__)

DAEMON = Actor("service", "vaultd", via="daemon")


class Status(str, Enum):
    UNKNOWN = "unknown"
    ENROLLED = "enrolled"
    RETIRED = "retired"


class Verdict(str, Enum):
    INGEST = "ingest"
    UNKNOWN = "unknown"  # not enrolled: held until an admin enrolls it
    RETIRED = "retired"
    DUPLICATE_SERIAL = "duplicate-serial"
    NO_SERIAL = "no-serial"


@dataclass(frozen=True)
class DeviceRow:
    id: int
    serial: str
    status: Status
    model: str | None
    usb_id: str | None
    usb_serial: str | None
    driver: str | None
    first_seen_at: datetime
    enrolled_at: datetime | None
    last_docked_at: datetime | None
    last_port: str | None
    clock_offset_s: float | None
    battery_percent: int | None
    storage_free_bytes: int | None
    storage_total_bytes: int | None
    note: str | None

    def as_json(self) -> dict[str, Any]:
        return {k: (v.value if isinstance(v, Enum) else v.isoformat() if isinstance(v, datetime) else v)
                for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Seen:
    """The camera as this dock saw it."""

    serial: str | None
    usb_id: str | None
    usb_serial: str | None
    port: str | None


@dataclass(frozen=True)
class DockDecision:
    verdict: Verdict
    reason: str
    device_id: int | None = None  # the row this dock belongs to, when there is one


def _same_physical(row: DeviceRow, seen: Seen) -> bool:
    """A known row is this camera unless USB ids or USB serials say otherwise."""
    if row.usb_id and seen.usb_id and row.usb_id != seen.usb_id:
        return False
    if row.usb_serial and seen.usb_serial and row.usb_serial != seen.usb_serial:
        return False
    return True


def decide_dock(rows: list[DeviceRow], seen: Seen, *, docked_elsewhere: bool,
                auto_enroll: bool) -> DockDecision:
    """What to do with a docked camera. Pure.

    ``rows``: the catalog's devices with this serial; ``docked_elsewhere``:
    another camera reporting the same serial is docked right now."""
    if not seen.serial:
        return DockDecision(Verdict.NO_SERIAL, _("the camera did not report a serial"))
    if docked_elsewhere:
        return DockDecision(Verdict.DUPLICATE_SERIAL,
                            _("another camera reporting serial %s is docked at the same time") % seen.serial)
    live = [r for r in rows if r.status is not Status.RETIRED]
    matching = [r for r in live if _same_physical(r, seen)]
    if live and not matching:
        return DockDecision(Verdict.DUPLICATE_SERIAL,
                            _("serial %s is already known for a different USB device (%s %s)")
                            % (seen.serial, live[0].usb_id or "?", live[0].usb_serial or "?"),
                            live[0].id)
    if len(matching) > 1:
        return DockDecision(Verdict.DUPLICATE_SERIAL,
                            _("serial %s is held by %d device records") % (seen.serial, len(matching)),
                            matching[0].id)
    if not matching:
        if rows:
            return DockDecision(Verdict.RETIRED, _("camera %s was retired") % seen.serial, rows[-1].id)
        if auto_enroll:
            return DockDecision(Verdict.INGEST, _("new camera, enrolled automatically (auto_enroll)"))
        return DockDecision(Verdict.UNKNOWN, _("camera %s is not enrolled") % seen.serial)
    row = matching[0]
    if row.status is Status.ENROLLED:
        return DockDecision(Verdict.INGEST, _("enrolled camera"), row.id)
    if auto_enroll:
        return DockDecision(Verdict.INGEST, _("enrolled automatically (auto_enroll)"), row.id)
    return DockDecision(Verdict.UNKNOWN, _("camera %s is not enrolled") % seen.serial, row.id)


# -- catalog -----------------------------------------------------------------------------

def _row(r: Any) -> DeviceRow:
    return DeviceRow(r.id, r.serial, Status(r.status), r.model, r.usb_id, r.usb_serial, r.driver,
                     r.first_seen_at, r.enrolled_at, r.last_docked_at, r.last_port, r.clock_offset_s,
                     r.battery_percent, r.storage_free_bytes, r.storage_total_bytes, r.note)


def rows_for(conn: Connection, serial: str) -> list[DeviceRow]:
    q = select(devices_t).where(devices_t.c.serial == serial).order_by(devices_t.c.id)
    return [_row(r) for r in conn.execute(q)]


def record_dock(vault: Vault, *, seen: Seen, identity: CameraIdentity, driver: str, source: str,
                docked_elsewhere: bool, auto_enroll: bool, now: datetime | None = None,
                actor: Actor = DAEMON) -> tuple[DockDecision, int]:
    """Decide and record a dock; returns the decision and the dock row id.

    Creates the device row on first sight (status ``unknown``, or ``enrolled``
    with auto_enroll), raises alerts for unknown, retired and duplicate
    serials, and writes a ``device.docked`` audit entry."""
    now = now or utcnow()
    with db.begin_unsynced(vault.engine) as conn:  # durable with the first batch's intents
        rows = rows_for(conn, seen.serial) if seen.serial else []
        decision = decide_dock(rows, seen, docked_elsewhere=docked_elsewhere, auto_enroll=auto_enroll)
        device_id = decision.device_id
        if seen.serial and device_id is None and decision.verdict in (Verdict.INGEST, Verdict.UNKNOWN):
            enrolled = decision.verdict is Verdict.INGEST
            device_id = int(conn.execute(devices_t.insert().values(
                serial=seen.serial, model=identity.model, usb_id=seen.usb_id, usb_serial=seen.usb_serial,
                driver=driver, status=(Status.ENROLLED if enrolled else Status.UNKNOWN).value,
                first_seen_at=now, enrolled_at=now if enrolled else None,
                enrolled_by=actor.label + " (auto_enroll)" if enrolled else None)).inserted_primary_key[0])  # type: ignore[index]
        elif device_id is not None and decision.verdict is Verdict.INGEST:
            conn.execute(update(devices_t).where(devices_t.c.id == device_id,
                                                 devices_t.c.status == Status.UNKNOWN.value)
                         .values(status=Status.ENROLLED.value, enrolled_at=now,
                                 enrolled_by=actor.label + " (auto_enroll)"))
        if device_id is not None and decision.verdict is not Verdict.DUPLICATE_SERIAL:
            conn.execute(update(devices_t).where(devices_t.c.id == device_id).values(
                last_docked_at=now, last_port=seen.port, model=identity.model or devices_t.c.model,
                usb_id=seen.usb_id or devices_t.c.usb_id, usb_serial=seen.usb_serial or devices_t.c.usb_serial,
                driver=driver))
        outcome = "docked" if decision.verdict is Verdict.INGEST else "ignored"
        dock_id = int(conn.execute(docks_t.insert().values(
            device_id=device_id, serial=seen.serial, port=seen.port, source=source, docked_at=now,
            outcome=outcome, detail=decision.reason)).inserted_primary_key[0])  # type: ignore[index]
        details = {"dock": dock_id, "serial": seen.serial, "usb_id": seen.usb_id,
                   "usb_serial": seen.usb_serial, "port": seen.port, "source": source, "driver": driver,
                   "model": identity.model, "officer": identity.officer_id,
                   "verdict": decision.verdict.value, "reason": decision.reason}
        audit.append(conn, Event("device.docked", actor, details), now)
        _alert_for(conn, decision, seen, details, actor, now)
    return replace(decision, device_id=device_id), dock_id


def _alert_for(conn: Connection, decision: DockDecision, seen: Seen, details: dict[str, Any],
               actor: Actor, now: datetime) -> None:
    subject = seen.serial or seen.port or "?"
    if decision.verdict is Verdict.UNKNOWN:
        alerts.raise_alert(conn, "device.unknown", subject,
                           _("unknown camera %s docked; not ingested until an admin enrolls it "
                             "('vaultd devices enroll %s')") % (subject, subject),
                           actor=actor, details=details, at=now)
    elif decision.verdict is Verdict.DUPLICATE_SERIAL:
        alerts.raise_alert(conn, "device.duplicate-serial", subject, decision.reason + _("; not ingested"),
                           actor=actor, severity="critical", details=details, at=now)
    elif decision.verdict is Verdict.RETIRED:
        alerts.raise_alert(conn, "device.retired-docked", subject,
                           _("retired camera %s was docked; not ingested") % subject,
                           actor=actor, details=details, at=now)
    elif decision.verdict is Verdict.NO_SERIAL:
        alerts.raise_alert(conn, "device.no-serial", subject,
                           _("a camera without a serial was docked at %s; not ingested") % subject,
                           actor=actor, details=details, at=now)


def finish_dock(vault: Vault, dock_id: int, *, outcome: str, session_id: str | None = None,
                detail: str | None = None, now: datetime | None = None) -> None:
    with vault.engine.begin() as conn:
        values: dict[str, Any] = {"outcome": outcome}
        if session_id is not None:
            values["session_id"] = session_id
        if detail is not None:
            values["detail"] = detail
        conn.execute(update(docks_t).where(docks_t.c.id == dock_id).values(**values))


def record_undock(vault: Vault, dock_id: int, now: datetime | None = None, actor: Actor = DAEMON) -> None:
    now = now or utcnow()
    with vault.engine.begin() as conn:
        row = conn.execute(select(docks_t.c.serial, docks_t.c.port).where(docks_t.c.id == dock_id)).first()
        conn.execute(update(docks_t).where(docks_t.c.id == dock_id).values(undocked_at=now))
        audit.append(conn, Event("device.undocked", actor, {
            "dock": dock_id, "serial": row.serial if row else None, "port": row.port if row else None}), now)


def record_clock(vault: Vault, device_id: int, reading: ClockReading, *, max_skew_s: float,
                 actor: Actor = DAEMON) -> bool:
    """Keep the camera's clock offset (R11); True when it is beyond ``max_skew_s`` (then an alert)."""
    return record_readings(vault, device_id, reading, None, max_skew_s=max_skew_s, actor=actor)


def record_readings(vault: Vault, device_id: int, reading: ClockReading | None, power: PowerState | None, *,
                    max_skew_s: float, actor: Actor = DAEMON) -> bool:
    """What the dock read off the camera, in one transaction: its clock offset (R11;
    an alert beyond ``max_skew_s``, then True) and its battery and storage state."""
    skewed = False
    with db.begin_unsynced(vault.engine) as conn:  # durable with the first batch's intents
        if power is not None:
            conn.execute(update(devices_t).where(devices_t.c.id == device_id).values(
                battery_percent=power.battery_percent, storage_free_bytes=power.storage_free_bytes,
                storage_total_bytes=power.storage_total_bytes))
        if reading is None:
            return False
        offset = reading.offset_s
        skewed = abs(offset) > max_skew_s
        conn.execute(update(devices_t).where(devices_t.c.id == device_id).values(
            clock_offset_s=offset, clock_read_at=reading.station_time))
        serial = conn.execute(select(devices_t.c.serial).where(devices_t.c.id == device_id)).scalar_one()
        details = {"device": device_id, "serial": serial, "camera_time": reading.camera_time.isoformat(),
                   "station_time": reading.station_time.isoformat(), "offset_s": offset,
                   "beyond_threshold": skewed, "threshold_s": max_skew_s}
        audit.append(conn, Event("device.clock.read", actor, details), reading.station_time)
        if skewed:
            alerts.raise_alert(conn, "device.clock-skew", serial,
                               _("camera %s clock is off by %.0f s (threshold %.0f s); its recordings' "
                                 "times are corrected and flagged") % (serial, offset, max_skew_s),
                               actor=actor, details=details, at=reading.station_time)
    return skewed


def record_clock_set(vault: Vault, device_id: int, now: datetime, ok: bool, actor: Actor = DAEMON) -> None:
    with vault.engine.begin() as conn:
        serial = conn.execute(select(devices_t.c.serial).where(devices_t.c.id == device_id)).scalar_one()
        audit.append(conn, Event("device.clock.set", actor, {"device": device_id, "serial": serial,
                                                             "to": now.isoformat(), "done": ok}), now)


# -- admin commands ------------------------------------------------------------------------

def require_station_reader(vault: Vault, principal: Principal, via: str = "cli") -> None:
    """Station state (docked cameras, alerts) is for admins and auditors."""
    from vaultd import access

    if access.decide(principal, Action.READ_AUDIT, now=utcnow()).allowed:
        return
    require(vault, principal, Action.MANAGE_DEVICES, via, _("see the station's state and alerts"))


def station_alerts(vault: Vault, principal: Principal, *, include_cleared: bool = False,
                   via: str = "cli") -> list[alerts.Alert]:
    """The station's alerts, newest first, for admins and auditors."""
    require_station_reader(vault, principal, via)
    return alerts.list_alerts(vault, include_cleared=include_cleared)


def clear_station_alert(vault: Vault, principal: Principal, alert_id: int, note: str,
                        via: str = "cli") -> alerts.Alert:
    """An admin marks an alert as dealt with, saying how (an audit entry)."""
    require(vault, principal, Action.MANAGE_DEVICES, via, _("clear alerts"))
    return alerts.clear_alert(vault, alert_id, actor_of(principal, via), note)


def list_devices(vault: Vault, principal: Principal, via: str = "cli") -> list[DeviceRow]:
    require(vault, principal, Action.MANAGE_DEVICES, via, _("list devices"))
    with vault.engine.connect() as conn:
        return [_row(r) for r in conn.execute(select(devices_t).order_by(devices_t.c.serial, devices_t.c.id))]


def _pick(conn: Connection, serial: str, device_id: int | None) -> list[DeviceRow]:
    rows = rows_for(conn, serial)
    if device_id is not None:
        rows = [r for r in rows if r.id == device_id]
    return rows


def enroll(vault: Vault, principal: Principal, serial: str, *, device_id: int | None = None,
           model: str | None = None, note: str | None = None, via: str = "cli") -> DeviceRow:
    """Enroll a camera: from now on it is ingested when docked. Clears its unknown-camera alert."""
    require(vault, principal, Action.MANAGE_DEVICES, via, _("enroll devices"))
    serial = serial.strip()
    if not serial:
        raise UsageError(_("a device serial is needed"), hint=_("e.g. vaultd devices enroll 3201001"))
    check_name(serial, _("device serial"))
    now = utcnow()
    actor = actor_of(principal, via)
    with vault.engine.begin() as conn:
        rows = [r for r in _pick(conn, serial, device_id) if r.status is not Status.RETIRED]
        if len(rows) > 1:
            raise UsageError(_("serial %s has %d device records (two cameras report it)") % (serial, len(rows)),
                             hint=_("choose one with --id (see 'vaultd devices list')"))
        if rows and rows[0].status is Status.ENROLLED:
            raise UsageError(_("camera %s is already enrolled (device %d)") % (serial, rows[0].id))
        if rows:
            dev_id = rows[0].id
            conn.execute(update(devices_t).where(devices_t.c.id == dev_id).values(
                status=Status.ENROLLED.value, enrolled_at=now, enrolled_by=actor.label,
                model=model or devices_t.c.model, note=note or devices_t.c.note))
        else:
            dev_id = int(conn.execute(devices_t.insert().values(
                serial=serial, model=model, status=Status.ENROLLED.value, first_seen_at=now,
                enrolled_at=now, enrolled_by=actor.label, note=note)).inserted_primary_key[0])  # type: ignore[index]
        audit.append(conn, Event("device.enroll", actor, {"device": dev_id, "serial": serial,
                                                          "model": model, "note": note}), now)
        for alert in alerts.open_alerts(conn, "device.unknown"):
            if alert.subject == serial:
                conn.execute(update(alerts_t).where(alerts_t.c.id == alert.id).values(
                    cleared_at=now, cleared_by=actor.label, clear_note=_("camera enrolled")))
                audit.append(conn, Event("alert.cleared", actor, {"alert_id": alert.id, "kind": alert.kind,
                                                                  "subject": serial, "note": "camera enrolled"}), now)
        return _row(conn.execute(select(devices_t).where(devices_t.c.id == dev_id)).one())


def retire(vault: Vault, principal: Principal, serial: str, *, reason: str, device_id: int | None = None,
           via: str = "cli") -> DeviceRow:
    """Retire a camera: it is no longer ingested; its recordings stay."""
    require(vault, principal, Action.MANAGE_DEVICES, via, _("retire devices"))
    if not reason.strip():
        raise UsageError(_("retiring a camera needs a reason"), hint=_("pass --reason TEXT"))
    now = utcnow()
    actor = actor_of(principal, via)
    with vault.engine.begin() as conn:
        rows = [r for r in _pick(conn, serial, device_id) if r.status is not Status.RETIRED]
        if not rows:
            raise NotFoundError(_("no active device with serial %s") % serial,
                                hint=_("see 'vaultd devices list'"))
        if len(rows) > 1:
            raise UsageError(_("serial %s has %d device records") % (serial, len(rows)),
                             hint=_("choose one with --id (see 'vaultd devices list')"))
        conn.execute(update(devices_t).where(devices_t.c.id == rows[0].id).values(
            status=Status.RETIRED.value, retired_at=now, retired_by=actor.label, note=reason))
        audit.append(conn, Event("device.retire", actor, {"device": rows[0].id, "serial": serial,
                                                          "reason": reason}), now)
        return _row(conn.execute(select(devices_t).where(devices_t.c.id == rows[0].id)).one())
