"""Cameras as accountable devices: the dock decision table, enrollment, retirement, alerts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from vaultd import alerts, devices
from vaultd.access import Level, Principal, Role
from vaultd.catalog.schema import audit_entries, docks
from vaultd.devices import DeviceRow, Seen, Status, Verdict, decide_dock
from vaultd.driverapi import ClockReading
from vaultd.errors import AccessDeniedError, NotFoundError, UsageError
from vaultd.model import CameraIdentity
from vaultd.people import local_owner
from vaultd.vault import Vault
from conftest import token_for

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)


def _types(vault: Vault) -> list[str]:
    with vault.engine.connect() as conn:
        return [r.type for r in conn.execute(select(audit_entries.c.type).order_by(audit_entries.c.idx))]


def _row(id_: int, status: Status, usb_id: str | None = "4255:0001", usb_serial: str | None = "A1") -> DeviceRow:
    return DeviceRow(id_, "3201001", status, "M", usb_id, usb_serial, "sim", T0, T0, None, None, None,
                     None, None, None, None)


SEEN = Seen("3201001", "4255:0001", "A1", "pci-0000:00:14.0-usb-0:2")


@pytest.mark.parametrize("rows, seen, elsewhere, auto, verdict", [
    ([], SEEN, False, False, Verdict.UNKNOWN),
    ([], SEEN, False, True, Verdict.INGEST),
    ([_row(1, Status.UNKNOWN)], SEEN, False, False, Verdict.UNKNOWN),
    ([_row(1, Status.UNKNOWN)], SEEN, False, True, Verdict.INGEST),
    ([_row(1, Status.ENROLLED)], SEEN, False, False, Verdict.INGEST),
    ([_row(1, Status.ENROLLED, None, None)], SEEN, False, False, Verdict.INGEST),  # first dock after enroll by hand
    ([_row(1, Status.ENROLLED)], SEEN, True, False, Verdict.DUPLICATE_SERIAL),  # same serial docked twice
    ([_row(1, Status.ENROLLED, usb_serial="B2")], SEEN, False, True, Verdict.DUPLICATE_SERIAL),  # another device
    ([_row(1, Status.ENROLLED, usb_id="1234:5678")], SEEN, False, False, Verdict.DUPLICATE_SERIAL),
    ([_row(1, Status.ENROLLED), _row(2, Status.ENROLLED)], SEEN, False, False, Verdict.DUPLICATE_SERIAL),
    ([_row(1, Status.RETIRED)], SEEN, False, False, Verdict.RETIRED),
    ([_row(1, Status.RETIRED)], SEEN, False, True, Verdict.RETIRED),  # auto-enroll never revives a retired one
    ([_row(1, Status.RETIRED), _row(2, Status.ENROLLED)], SEEN, False, False, Verdict.INGEST),
    ([], Seen(None, None, None, "p"), False, True, Verdict.NO_SERIAL),
    ([], Seen("", None, None, "p"), False, True, Verdict.NO_SERIAL),
])
def test_dock_decision_table(rows: list[DeviceRow], seen: Seen, elsewhere: bool, auto: bool,
                             verdict: Verdict) -> None:
    decision = decide_dock(rows, seen, docked_elsewhere=elsewhere, auto_enroll=auto)
    assert decision.verdict is verdict
    assert decision.reason


def _dock(vault: Vault, serial: str = "3201001", usb_serial: str | None = "A1", *, auto: bool = False,
          elsewhere: bool = False) -> tuple[devices.DockDecision, int]:
    return devices.record_dock(vault, seen=Seen(serial, "4255:0001", usb_serial, "port-1"),
                               identity=CameraIdentity(serial=serial, model="DSJ-X", officer_id="012345"),
                               driver="sim", source="/media/cam", docked_elsewhere=elsewhere, auto_enroll=auto)


def test_unknown_camera_is_held_with_one_alert_and_audit_entries(vault: Vault) -> None:
    d1, _ = _dock(vault)
    d2, _ = _dock(vault)
    assert d1.verdict is d2.verdict is Verdict.UNKNOWN
    with vault.engine.connect() as conn:
        open_ = alerts.open_alerts(conn, "device.unknown")
        assert [(a.subject, a.count) for a in open_] == [("3201001", 2)]
        assert [r.outcome for r in conn.execute(select(docks.c.outcome))] == ["ignored", "ignored"]
    types = _types(vault)
    assert types.count("device.docked") == 2 and types.count("alert.raised") == 1


def test_enroll_clears_the_alert_and_next_dock_ingests(vault: Vault) -> None:
    _dock(vault)
    row = devices.enroll(vault, local_owner(), "3201001", note="新配发 issued to 第一中队")
    assert row.status is Status.ENROLLED and row.note == "新配发 issued to 第一中队"
    with vault.engine.connect() as conn:
        assert alerts.open_alerts(conn, "device.unknown") == []
    decision, _ = _dock(vault)
    assert decision.verdict is Verdict.INGEST and decision.device_id == row.id
    with pytest.raises(UsageError, match="already enrolled"):
        devices.enroll(vault, local_owner(), "3201001")


def test_same_serial_from_another_usb_device_is_an_alert_never_merged(vault: Vault) -> None:
    devices.enroll(vault, local_owner(), "3201001")
    assert _dock(vault, usb_serial="A1")[0].verdict is Verdict.INGEST  # learns its USB serial
    decision, _ = _dock(vault, usb_serial="B2", auto=True)
    assert decision.verdict is Verdict.DUPLICATE_SERIAL
    with vault.engine.connect() as conn:
        (alert,) = alerts.open_alerts(conn, "device.duplicate-serial")
        assert alert.severity == "critical"
        assert len(devices.rows_for(conn, "3201001")) == 1  # nothing merged, nothing created


def test_retired_camera_is_not_ingested(vault: Vault) -> None:
    devices.enroll(vault, local_owner(), "3201001")
    with pytest.raises(UsageError, match="reason"):
        devices.retire(vault, local_owner(), "3201001", reason="  ")
    devices.retire(vault, local_owner(), "3201001", reason="screen broken")
    assert _dock(vault, auto=True)[0].verdict is Verdict.RETIRED
    with pytest.raises(NotFoundError):
        devices.retire(vault, local_owner(), "3201001", reason="again")


def test_only_admins_manage_devices_and_refusals_are_logged(vault: Vault) -> None:
    officer = Principal("wang", frozenset({Role.OFFICER}), unit="一中队", clearance=Level.NORMAL)
    with pytest.raises(AccessDeniedError):
        devices.enroll(vault, officer, "3201001")
    with pytest.raises(AccessDeniedError):
        devices.list_devices(vault, officer)
    assert _types(vault).count("access.denied") == 2


def test_clock_offset_is_kept_and_a_skewed_clock_alerts(vault: Vault) -> None:
    devices.enroll(vault, local_owner(), "3201001")
    decision, _ = _dock(vault)
    assert decision.device_id is not None
    ok = ClockReading(camera_time=T0 + timedelta(seconds=5), station_time=T0)
    assert devices.record_clock(vault, decision.device_id, ok, max_skew_s=30) is False
    bad = ClockReading(camera_time=T0 - timedelta(minutes=10), station_time=T0)
    assert devices.record_clock(vault, decision.device_id, bad, max_skew_s=30) is True
    (row,) = devices.list_devices(vault, local_owner())
    assert row.clock_offset_s == -600
    with vault.engine.connect() as conn:
        assert [a.kind for a in alerts.open_alerts(conn)] == ["device.clock-skew"]


def test_clearing_an_alert_needs_a_note(vault: Vault) -> None:
    _dock(vault)
    with vault.engine.connect() as conn:
        (alert,) = alerts.open_alerts(conn)
    from vaultd.model import Actor

    with pytest.raises(UsageError, match="note"):
        alerts.clear_alert(vault, alert.id, Actor.local(), " ")
    cleared = alerts.clear_alert(vault, alert.id, Actor.local(), "camera returned to stores")
    assert cleared.cleared_at is not None
    with pytest.raises(UsageError, match="already cleared"):
        alerts.clear_alert(vault, alert.id, Actor.local(), "again")
    with pytest.raises(NotFoundError):
        alerts.clear_alert(vault, 999, Actor.local(), "x")


def test_station_over_the_api_admin_enrolls_auditor_reads_officer_is_refused(vault: Vault) -> None:
    from fastapi.testclient import TestClient

    from vaultd import people
    from vaultd.api.app import create_app

    owner = local_owner()
    for name, role in (("root", Role.ADMIN), ("wu", Role.AUDITOR), ("wang", Role.OFFICER)):
        people.add_user(vault, owner, people.NewUser(name, (role,), unit="一中队" if role is Role.OFFICER else None),
                        None, "cli")
    tok = {n: token_for(vault, n) for n in ("root", "wu", "wang")}

    def h(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tok[who]}"}

    _dock(vault)  # an unknown camera: an alert
    with TestClient(create_app(vault)) as client:
        st = client.get("/api/v1/status", headers=h("wu"))
        assert st.status_code == 200, st.text
        assert st.json()["daemon"] is None and st.json()["alerts"][0]["kind"] == "device.unknown"
        assert client.get("/api/v1/status", headers=h("wang")).status_code == 403
        alert_id = st.json()["alerts"][0]["id"]
        refused = client.post(f"/api/v1/alerts/{alert_id}/clear", json={"note": "seen"}, headers=h("wu"))
        assert refused.status_code == 403  # auditors read the alerts; only admins clear them
        assert client.post("/api/v1/devices/3201001/enroll", json={}, headers=h("wu")).status_code == 403
        r = client.post("/api/v1/devices/3201001/enroll", json={"note": "第一中队"}, headers=h("root"))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "enrolled"
        assert client.get("/api/v1/alerts", headers=h("wu")).json() == []
        assert client.get("/api/v1/devices", headers=h("root")).json()[0]["note"] == "第一中队"
        bad = client.post("/api/v1/devices/3201001/retire", json={"reason": ""}, headers=h("root"))
        assert bad.status_code == 422
        assert client.post("/api/v1/devices/3201001/retire", json={"reason": "lost"},
                           headers=h("root")).json()["status"] == "retired"
