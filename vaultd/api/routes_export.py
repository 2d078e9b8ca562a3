"""Exports (#8): asking for one to be built, its progress, its files; what left
the vault, to whom, and the CA verifiers pin.

``POST /exports`` checks the export grant and records the export as the
station's ``vaultd export create`` does (the same service), then builds it
as a job of the server (``exportjobs``); ``GET /exports/{id}/job`` reports
its progress, and ``GET /exports/{id}/files/{name}`` sends the package as a
zip or tar, or a disc image, whole or one range (to resume a cut download).
Only the grant's holder sees a job and downloads its files.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from vaultd import export, exportjobs, people, views
from vaultd.access import Principal
from vaultd.api import errors, ranges
from vaultd.api.deps import VIA, VaultDep, _bearer, get_principal, source_of, zone
from vaultd.api.download import OriginalResponse
from vaultd.api.errors import VaultRoute
from vaultd.api.models import ErrorOut, Short, _In
from vaultd.errors import AuthenticationError
from vaultd.exportjobs import Artefact
from vaultd.i18n import _
from vaultd.vault import Vault

router = APIRouter(prefix="/exports", tags=["exports"], route_class=VaultRoute)
ExportId = Annotated[str, Path(min_length=1, max_length=64)]
_BINARY = {"schema": {"type": "string", "format": "binary"}}


def export_principal(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None,
                                                        Depends(_bearer)]) -> Principal:
    """The caller, as everywhere; a call with no token at all is also an audit entry
    here (``auth.failed``, as a bad token is): these routes hand out evidence."""
    if creds is None or not creds.credentials:
        try:
            people.authenticate(request.app.state.vault, "", source=source_of(request))
        except AuthenticationError:
            pass
    return get_principal(request, creds)


Caller = Annotated[Principal, Depends(export_principal)]


class ExportIn(_In):
    grant: Short | None = Field(None, description="the caller's approved export grant (refused and audited "
                                                "when missing)")
    recordings: list[Short] = Field(default_factory=list, max_length=10_000)
    case: Short | None = None
    iso: bool = False
    disc: Literal["cd", "dvd", "bd"] | None = None
    disc_bytes: int | None = Field(None, ge=1, le=1 << 50, description="disc capacity, for other media")
    with_previews: bool = False
    format: Literal["zip", "tar"] = Field("zip", description="how the package folder is packed to download")


class ArtefactOut(BaseModel):
    name: str
    kind: Literal["archive", "disc-image"]
    size_bytes: int
    sha256: str = Field(description="also the file's ETag")


class JobOut(BaseModel):
    id: str = Field(description="the export id, which is the job id")
    state: Literal["building", "complete", "failed"]
    stage: Literal["queued", "package", "disc-image", "archive", "done", "failed"]
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    problem: str | None
    artefacts: list[ArtefactOut]
    keep_until: str | None = Field(description="when the files are removed (the record stays)")


def _job_json(vault: Vault, job: exportjobs.JobStatus) -> dict[str, Any]:
    d = job.as_dict()
    d["keep_until"] = views.iso(job.keep_until, zone(vault))
    return d


@router.post("", status_code=202, response_model=JobOut,
             summary="Build an export under the caller's export grant, as a job (202: queued)",
             description="The grant is checked and one use taken now (refusals: 403 with the rule, audited); "
                         "the build runs on the server. Poll GET /exports/{id}/job.")
def create_export(vault: VaultDep, actor: Caller, body: ExportIn) -> dict[str, Any]:
    job = exportjobs.start_job(vault, actor, exportjobs.JobRequest(
        grant_id=body.grant, recording_refs=tuple(body.recordings), case_number=body.case, iso=body.iso,
        disc=body.disc, disc_bytes=body.disc_bytes, with_previews=body.with_previews, archive=body.format), VIA)
    return _job_json(vault, job)


@router.get("", summary="Exports made, newest first (auditor, legal, leader)")
def list_exports(vault: VaultDep, actor: Caller) -> dict[str, Any]:
    rows = export.list_exports(vault, actor, VIA)
    who = people.directory(vault) if rows else None
    return {"items": [_labelled(r.as_dict(), who) for r in rows]}


def _labelled(d: dict[str, Any], who: people.Directory | None) -> dict[str, Any]:
    """An export's record with its requester and approver as people read them (display name, 警号)."""
    for key in ("requester", "approver"):
        d[key + "_label"] = who.name(d[key]) if who is not None and d.get(key) else None
    return d


@router.get("/ca", response_class=PlainTextResponse, dependencies=[Depends(get_principal)],
            summary="The agency CA certificate (PEM) that verifiers pin with --ca")
def agency_ca(vault: VaultDep) -> PlainTextResponse:
    pem, fingerprint = export.agency_ca(vault)
    return PlainTextResponse(pem.decode("ascii"), headers={"X-SHA256-Fingerprint": fingerprint})


@router.get("/{export_id}", summary="One export: who asked, who approved, its packages' tagmanifest hashes")
def show_export(vault: VaultDep, actor: Caller, export_id: ExportId) -> dict[str, Any]:
    return _labelled(export.show_export(vault, actor, export_id, VIA).as_dict(), people.directory(vault))


@router.get("/{export_id}/job", response_model=JobOut,
            summary="The build's state and progress, and its files once complete (the grantee only)")
def job_status(vault: VaultDep, actor: Caller, export_id: ExportId) -> dict[str, Any]:
    return _job_json(vault, exportjobs.job_status(vault, actor, export_id, VIA))


@router.get(
    "/{export_id}/files/{name}", response_class=OriginalResponse, status_code=200,
    summary="An export's zip/tar or disc image (the grantee only; Range and If-Range supported)",
    description="Each request is an audit entry with its byte range. The ETag is the file's SHA-256; "
                "resume a cut download with Range: bytes=N- and If-Range: the ETag.",
    responses={200: {"content": {"application/octet-stream": _BINARY}},
               206: {"description": "the range asked for", "content": {"application/octet-stream": _BINARY}},
               416: {"model": ErrorOut, "description": "the range lies past the end"}},
)
def download(
    request: Request, vault: VaultDep, actor: Caller, export_id: ExportId,
    name: Annotated[str, Path(min_length=1, max_length=200)],
    range_: Annotated[str | None, Header(alias="range", max_length=1000)] = None,
    if_range: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    spec = ranges.parse(range_)  # bad syntax: 400 before anything is opened
    art = exportjobs.authorise_download(vault, actor, export_id, name, VIA)
    sent = _Sent(vault, actor, art, source_of(request))
    if not ranges.if_range_allows(if_range, f'"{art.sha256}"'):
        spec = None
    part = spec.resolve(art.size_bytes) if spec else None
    if spec is not None and part is None:
        message = _("the range %s lies past the end (%d bytes)") % (range_, art.size_bytes)
        sent.done(message)
        return errors.error_response(416, "range_not_satisfiable", message, headers={
            "accept-ranges": "bytes", "etag": f'"{art.sha256}"', "content-range": f"bytes */{art.size_bytes}"})
    try:
        fd = exportjobs.open_artefact(art)
    except Exception as exc:
        sent.done(getattr(exc, "message", repr(exc)))
        raise
    sent.where += f" bytes {part.start}-{part.end}" if part else f" bytes 0-{art.size_bytes - 1} (whole)"
    return OriginalResponse(fd, art, part, sent.done, chunk_bytes=vault.store.chunk_bytes,
                            what=_("export file %s") % art.id, hint=exportjobs.damaged_hint(art.export_id))


class _Sent:
    """Writes the one audit entry that says how a download (or one range) ended."""

    def __init__(self, vault: Vault, actor: Principal, art: Artefact, source: str) -> None:
        self.vault, self.actor, self.art = vault, actor, art
        self.where = f"http {source}"

    def done(self, problem: str | None) -> None:
        exportjobs.log_download(self.vault, self.actor, self.art, where=self.where, problem=problem, via=VIA)
