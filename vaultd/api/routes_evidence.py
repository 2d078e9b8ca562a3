"""Recordings: search, show, the original's bytes, the ingest receipt."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response

from vaultd import evidence, logview, people, views
from vaultd.access import Principal
from vaultd.api import errors, ranges
from vaultd.api.deps import VIA, PrincipalDep, Since, Until, VaultDep, source_of, when, zone
from vaultd.api.download import OriginalResponse
from vaultd.api.ranges import ByteRange
from vaultd.api.errors import VaultRoute
from vaultd.api.models import ConfidentialityIn, ErrorOut, Long, RecordingDetailOut, RecordingOut, RecordingPage
from vaultd.catalog.recordings import RecordingFilter
from vaultd.copies import Use
from vaultd.grantuse import Span
from vaultd.i18n import _
from vaultd.model import MediaType, Recording
from vaultd.vault import Vault

router = APIRouter(tags=["recordings"], route_class=VaultRoute)
RecordingId = Annotated[str, Path(min_length=1, max_length=200,
                                  description="recording id, or a sha256 prefix of 8+ hex digits")]
_BINARY = {"schema": {"type": "string", "format": "binary"}}


@router.get("/recordings", response_model=RecordingPage, summary="Search recordings the caller may see")
def list_recordings(
    vault: VaultDep, actor: PrincipalDep,
    device: Annotated[str | None, Query(max_length=200, description="device serial")] = None,
    officer: Annotated[str | None, Query(max_length=200, description="officer number")] = None,
    unit: Annotated[str | None, Query(max_length=200, description="the recordings' unit")] = None,
    case: Annotated[str | None, Query(max_length=200, description="linked to this case number")] = None,
    since: Since = None,
    until: Until = None,
    media_type: MediaType | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> dict[str, Any]:
    tz = zone(vault)
    flt = RecordingFilter(device_serial=device, officer_id=officer, since=when(since, vault, "since"),
                          until=when(until, vault, "until", end=True), media_type=media_type, limit=limit,
                          offset=offset, unit=unit, case_number=case)
    recs = evidence.list_recordings(vault, actor, flt, VIA)
    names = people.directory(vault).by_officer
    return {"items": [views.recording_json(r, tz, names.get(r.officer_id or "")) for r in recs],
            "limit": limit, "offset": offset}


@router.get("/recordings/{rec_id}", response_model=RecordingDetailOut, summary="One recording and its sightings")
def show_recording(vault: VaultDep, actor: PrincipalDep, rec_id: RecordingId) -> dict[str, Any]:
    tz = zone(vault)
    detail = evidence.show_recording(vault, actor, rec_id, VIA)
    data = views.recording_json(detail.recording, tz,
                                people.directory(vault).by_officer.get(detail.recording.officer_id or ""))
    data["sightings"] = [{
        "session": s["session_id"], "device_serial": s["device_serial"], "source_path": s["source_path"],
        "seen_at": views.iso(s["seen_at"], tz), "outcome": s["outcome"],
        "wiped_at": views.iso(s["wiped_at"], tz)} for s in detail.sightings]
    data["purged"] = detail.purged
    return data


@router.post("/recordings/{rec_id}/confidentiality", response_model=RecordingOut,
             summary="Set a recording's own confidentiality level (R9), with a reason; audited",
             description="Raising it: the supervisor of its unit, legal, a leader; lowering it: legal or a "
                         "leader. Never above the caller's clearance. Its cases may keep the level that "
                         "applies (confidentiality) higher than its own (own_confidentiality).")
def set_confidentiality(vault: VaultDep, actor: PrincipalDep, rec_id: RecordingId,
                        body: ConfidentialityIn) -> dict[str, Any]:
    rec = evidence.set_confidentiality(vault, actor, rec_id, body.level, body.reason, VIA)
    return views.recording_json(rec, zone(vault))


@router.get(
    "/recordings/{rec_id}/original", response_class=OriginalResponse, status_code=200,
    summary="The original's exact bytes (one authorised read; Range supported)",
    description="Each request is one authorised read, an audit entry with the bytes it sent. One use of the "
                "grant is one complete copy of the recording: the first read begins a copy (one use), "
                "later reads of the same recording under the grant (ranges, a resume) belong to it until "
                "every byte has been sent once, or an hour passes without a read. A read of bytes that "
                "another read of the same copy is sending is refused (rule copy-in-progress). "
                "One range per request (bytes=a-b, a-, -n) gives 206; a range past the end gives 416 and "
                "spends nothing; a read that sends nothing, or fails on the vault's side, gives the use back.",
    responses={200: {"content": {"application/octet-stream": _BINARY}},
               206: {"description": "the range asked for", "content": {"application/octet-stream": _BINARY}},
               416: {"model": ErrorOut, "description": "the range lies past the end"}},
)
def get_original(
    request: Request, vault: VaultDep, actor: PrincipalDep, rec_id: RecordingId,
    reason: Annotated[Long, Query(min_length=1, description="why the original is read (kept in the audit log)")],
    grant: Annotated[str | None, Query(max_length=200, description="the grant to use")] = None,
    range_: Annotated[str | None, Header(alias="range", max_length=1000)] = None,
    if_range: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    spec = ranges.parse(range_)  # bad syntax: 400 before any use is spent

    def part_of(rec: Recording) -> ByteRange | None:
        """None: the whole original."""
        honoured = spec if ranges.if_range_allows(if_range, f'"{rec.sha256}"') else None
        return honoured.resolve(rec.size_bytes) if honoured else None

    def span_of(rec: Recording) -> Span | None:
        if spec is not None and ranges.if_range_allows(if_range, f'"{rec.sha256}"'):
            part = part_of(rec)
            return (part.start, part.end) if part else None  # None: a 416, nothing spent
        return (0, rec.size_bytes - 1)

    rec, use = evidence.authorise_original(vault, actor, rec_id, reason, grant, VIA, span_of=span_of)
    reader = _Reader(vault, actor, rec, reason, use, source_of(request))
    try:
        part = part_of(rec)
        if span_of(rec) is None:
            message = _("the range %s lies past the end (%d bytes)") % (range_, rec.size_bytes)
            reader.done(message)
            return errors.error_response(416, "range_not_satisfiable", message, headers={
                "accept-ranges": "bytes", "etag": f'"{rec.sha256}"', "content-range": f"bytes */{rec.size_bytes}"})
        fd = vault.store.open_original(rec.sha256)
    except Exception as exc:
        reader.fault = True
        reader.done(getattr(exc, "message", repr(exc)))
        raise
    reader.where += f" bytes {part.start}-{part.end}" if part else " whole"
    reader.response = OriginalResponse(fd, rec, part, reader.done, chunk_bytes=vault.store.chunk_bytes)
    return reader.response


class _Reader:
    """Writes the one audit entry that says how an authorised read ended, with the bytes
    it sent, and ends the read of its grant's copy."""

    def __init__(self, vault: Vault, actor: Principal, rec: Recording, reason: str, use: Use,
                 source: str) -> None:
        self.vault, self.actor, self.rec, self.reason, self.use = vault, actor, rec, reason, use
        self.where = f"http {source}"
        self.response: OriginalResponse | None = None
        self.fault = False

    def done(self, problem: str | None) -> None:
        sent: Span | None = None
        if self.response is not None:
            part, delivered = self.response.part, self.response.delivered
            sent = (part.start, part.start + delivered - 1) if delivered > 0 else None
            self.fault = self.fault or self.response.fault
        evidence.finish_read(self.vault, self.actor, self.rec, self.use, reason=self.reason, where=self.where,
                             problem=problem, sent=sent, fault=self.fault, via=VIA)


@router.get("/recordings/{rec_id}/receipt", response_class=PlainTextResponse,
            summary="C2SP tlog-proof of the recording's ingest entry")
def receipt(vault: VaultDep, actor: PrincipalDep, rec_id: RecordingId) -> PlainTextResponse:
    return PlainTextResponse(logview.receipt(vault, actor, rec_id, VIA))
