"""Compliance (#6): the report, late reasons, interruptions, trips, spot
checks, yearly statistics, and the scrub's state and alarms. Thin over the
same services as the command line; the JSON is the services' own."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from vaultd import compliance, gaps, scrub, spotcheck, stats
from vaultd.api.deps import VIA, PrincipalDep, Since, Until, VaultDep, aware, when, zone
from vaultd.api.errors import VaultRoute
from vaultd.api.models import Long, Short
from vaultd.i18n import _
from vaultd.people import require
from vaultd.access import Action

router = APIRouter(tags=["compliance"], route_class=VaultRoute)
RecId = Annotated[str, Path(min_length=1, max_length=200, description="recording id")]
CheckId = Annotated[str, Path(min_length=1, max_length=64, description="spot check id")]
Unit = Annotated[str | None, Query(max_length=128, description="one unit (default: all the caller may see)")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReasonIn(_Body):
    reason: Long


class NoteIn(_Body):
    text: Long


class TripIn(_Body):
    officer_number: Short | None = None
    device_serial: Short | None = None
    left_at: datetime
    returned_at: datetime | None = None
    note: Long


class ReturnIn(_Body):
    returned_at: datetime


class DrawIn(_Body):
    percent: float
    unit: Short | None = None
    since: Annotated[str | None, Field(max_length=64)] = None
    until: Annotated[str | None, Field(max_length=64)] = None
    seed: Short | None = None


class FindingIn(_Body):
    recording_id: Short
    item: Short
    result: Short
    note: Long = ""


@router.get("/compliance/report", summary="On-time rate, late, unlabelled and interruptions per unit and officer")
def report(vault: VaultDep, actor: PrincipalDep, unit: Unit = None, since: Since = None,
           until: Until = None) -> dict[str, Any]:
    return compliance.report(vault, actor, since=when(since, vault, "since"),
                             until=when(until, vault, "until", end=True),
                             unit=unit, via=VIA).as_json()


@router.post("/compliance/late/{rec_id}", summary="Enter why a late recording was late")
def late_reason(vault: VaultDep, actor: PrincipalDep, rec_id: RecId, body: ReasonIn) -> dict[str, Any]:
    return compliance.set_late_reason(vault, actor, rec_id, body.reason, via=VIA).as_json()


@router.get("/gaps", summary="Interruptions between clips of one camera in one duty period")
def list_gaps(vault: VaultDep, actor: PrincipalDep, unit: Unit = None, since: Since = None, until: Until = None,
              device: Annotated[str | None, Query(max_length=200)] = None,
              unnoted: bool = False) -> list[dict[str, Any]]:
    return [g.as_json() for g in gaps.list_gaps(vault, actor, device_serial=device, since=when(since, vault, "since"),
                                                 until=when(until, vault, "until", end=True), unit=unit,
                                                 unnoted_only=unnoted, via=VIA)]


@router.post("/gaps/{rec_id}/note", summary="Attach the note explaining the interruption before a recording")
def note_gap(vault: VaultDep, actor: PrincipalDep, rec_id: RecId, body: NoteIn) -> dict[str, Any]:
    return gaps.note_gap(vault, actor, rec_id, body.text, via=VIA).as_json()


@router.get("/trips", summary="Off-site trips (R1 exception)")
def list_trips(vault: VaultDep, actor: PrincipalDep,
               officer: Annotated[str | None, Query(max_length=200)] = None,
               device: Annotated[str | None, Query(max_length=200)] = None) -> list[dict[str, Any]]:
    return [t.as_json() for t in compliance.list_trips(vault, actor, officer_number=officer,
                                                       device_serial=device, via=VIA)]


@router.post("/trips", summary="Record an off-site trip")
def add_trip(vault: VaultDep, actor: PrincipalDep, body: TripIn) -> dict[str, Any]:
    tz = zone(vault)
    left = aware(body.left_at, tz, "left_at")
    assert left is not None
    return compliance.add_trip(vault, actor, officer_number=body.officer_number, device_serial=body.device_serial,
                               left_at=left, returned_at=aware(body.returned_at, tz, "returned_at"),
                               note=body.note, via=VIA).as_json()


@router.post("/trips/{trip_id}/return", summary="Record the return of a trip")
def return_trip(vault: VaultDep, actor: PrincipalDep, trip_id: Annotated[int, Path(ge=1, le=2**62)],
                body: ReturnIn) -> dict[str, Any]:
    back = aware(body.returned_at, zone(vault), "returned_at")
    assert back is not None
    return compliance.return_trip(vault, actor, trip_id, back, via=VIA).as_json()


@router.get("/spotchecks", summary="Spot checks drawn so far")
def list_checks(vault: VaultDep, actor: PrincipalDep) -> list[dict[str, Any]]:
    return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
            for r in spotcheck.list_checks(vault, actor, via=VIA)]


@router.post("/spotchecks", summary="Draw a reproducible random sample (legal office)")
def draw(vault: VaultDep, actor: PrincipalDep, body: DrawIn) -> dict[str, Any]:
    return spotcheck.draw(vault, actor, body.percent, unit=body.unit, since=when(body.since, vault, "since"),
                          until=when(body.until, vault, "until", end=True), seed=body.seed, via=VIA).as_json()


@router.get("/spotchecks/{check_id}", summary="A spot check, its findings and hints")
def show_check(vault: VaultDep, actor: PrincipalDep, check_id: CheckId) -> dict[str, Any]:
    return spotcheck.show(vault, actor, check_id, via=VIA).as_json()


@router.post("/spotchecks/{check_id}/findings", summary="Record a finding on a sampled recording")
def add_finding(vault: VaultDep, actor: PrincipalDep, check_id: CheckId, body: FindingIn) -> dict[str, Any]:
    return spotcheck.finding(vault, actor, check_id, body.recording_id, body.item, body.result, body.note,
                             via=VIA)


YearQ = Annotated[int, Query(ge=2000, le=2200)]


@router.get("/report/stats", summary="Yearly statistics per month, unit and officer (R14)")
def year_stats(vault: VaultDep, actor: PrincipalDep, year: YearQ, unit: Unit = None) -> dict[str, Any]:
    return stats.year_stats(vault, actor, year, unit=unit, via=VIA).as_json()


@router.get("/report/stats.csv", response_class=PlainTextResponse, summary="The same statistics as CSV")
def year_stats_csv(vault: VaultDep, actor: PrincipalDep, year: YearQ, unit: Unit = None) -> str:
    return stats.year_stats(vault, actor, year, unit=unit, via=VIA).as_csv()


@router.get("/scrub", summary="Where the background scrub stands, and its open alarms")
def scrub_state(vault: VaultDep, actor: PrincipalDep) -> dict[str, Any]:
    require(vault, actor, Action.READ_REPORTS, VIA, _("read the scrub's state"))
    state, files, total = scrub.scrub_status(vault)
    return {"round": state.round if state else None, "files": files, "bytes": total,
            "files_done": state.files_done if state else 0, "bytes_done": state.bytes_done if state else 0,
            "round_started_at": state.round_started_at.isoformat() if state else None,
            "round_finished_at": state.round_finished_at.isoformat() if state and state.round_finished_at
            else None, "alarms": [a.as_json() for a in scrub.open_alarms(vault)]}
