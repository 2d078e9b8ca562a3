"""The station: daemon status, alerts and the cameras it knows (#5)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from vaultd import devices
from vaultd.api.deps import VIA, PrincipalDep, VaultDep
from vaultd.api.errors import VaultRoute
from vaultd.daemon import read_status

router = APIRouter(tags=["station"], route_class=VaultRoute)
Segment = Annotated[str, Path(min_length=1, max_length=64)]


class StatusOut(BaseModel):
    daemon: dict[str, Any] | None = Field(description="the daemon's last status; null when it never ran")
    alerts: list[dict[str, Any]]


class ClearIn(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


class EnrollIn(BaseModel):
    model: str | None = Field(default=None, max_length=128)
    note: str | None = Field(default=None, max_length=2000)
    device_id: int | None = Field(default=None, ge=1)


class RetireIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    device_id: int | None = Field(default=None, ge=1)


@router.get("/status", response_model=StatusOut,
            summary="Daemon state, docked cameras and their progress, open alerts (admin, auditor)")
def status(vault: VaultDep, actor: PrincipalDep) -> dict[str, Any]:
    open_alerts = [a.as_json() for a in devices.station_alerts(vault, actor, via=VIA)]
    return {"daemon": read_status(vault.layout.root), "alerts": open_alerts}


@router.get("/alerts", response_model=list[dict[str, Any]], summary="Alerts, newest first (admin, auditor)")
def list_alerts(vault: VaultDep, actor: PrincipalDep,
                all: Annotated[bool, Query(description="cleared ones too")] = False) -> list[dict[str, Any]]:
    return [a.as_json() for a in devices.station_alerts(vault, actor, include_cleared=all, via=VIA)]


@router.post("/alerts/{alert_id}/clear", response_model=dict[str, Any],
             summary="Mark an alert as dealt with, saying how (admin)")
def clear_alert(vault: VaultDep, actor: PrincipalDep, alert_id: Annotated[int, Path(ge=1, le=2**62)],
                body: ClearIn) -> dict[str, Any]:
    return devices.clear_station_alert(vault, actor, alert_id, body.note, via=VIA).as_json()


@router.get("/devices", response_model=list[dict[str, Any]], summary="Cameras this station knows (admin)")
def list_devices(vault: VaultDep, actor: PrincipalDep) -> list[dict[str, Any]]:
    return [r.as_json() for r in devices.list_devices(vault, actor, VIA)]


@router.post("/devices/{serial}/enroll", response_model=dict[str, Any],
             summary="Enroll a camera: ingested when docked from now on (admin)")
def enroll(vault: VaultDep, actor: PrincipalDep, serial: Segment, body: EnrollIn) -> dict[str, Any]:
    return devices.enroll(vault, actor, serial, device_id=body.device_id, model=body.model, note=body.note,
                          via=VIA).as_json()


@router.post("/devices/{serial}/retire", response_model=dict[str, Any],
             summary="Retire a camera: no longer ingested; its recordings stay (admin)")
def retire(vault: VaultDep, actor: PrincipalDep, serial: Segment, body: RetireIn) -> dict[str, Any]:
    return devices.retire(vault, actor, serial, reason=body.reason, device_id=body.device_id, via=VIA).as_json()
