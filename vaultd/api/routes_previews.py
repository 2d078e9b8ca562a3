"""Previews over HTTP: state and provenance, the files for the web player (Range), the queue.

Watching a preview is checked (officers: their own; supervisors: their unit;
legal: all within clearance; or a grant) and every request is an audit
entry, like any access; both happen in ``vaultd.preview``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Body, Header, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from vaultd import preview
from vaultd.api import errors, ranges
from vaultd.api.deps import VIA, PrincipalDep, VaultDep, source_of, zone
from vaultd.api.errors import VaultRoute

router = APIRouter(tags=["previews"], route_class=VaultRoute)
RecordingId = Annotated[str, Path(min_length=1, max_length=200,
                                  description="recording id, or a sha256 prefix of 8+ hex digits")]
FileName = Annotated[str, Path(pattern=r"^[a-z0-9_.-]{1,40}$",
                               description="main, video.mp4, first.mp4, poster.jpg, sprite.jpg, audio.m4a, "
                                           "waveform.png, photo.jpg or provenance")]
_CHUNK_BYTES = 1 << 20


@router.get("/recordings/{rec_id}/preview", summary="A recording's preview: state, files and provenance",
            description="When there is no preview yet, asking queues it at once, ahead of every other job "
                        "(set request=false to only look); a video's first seconds come first.")
def preview_state(vault: VaultDep, actor: PrincipalDep, rec_id: RecordingId,
                  request: Annotated[bool, Query(description="queue it when missing")] = True) -> dict[str, Any]:
    rec, row, job = preview.describe(vault, actor, rec_id, request=request, via=VIA)
    return preview.preview_json(rec, row, job, zone(vault))


@router.get("/recordings/{rec_id}/preview/{name}", response_class=Response,
            summary="One preview file for the web player (Range supported; every request audited)",
            responses={200: {"content": {"video/mp4": {}, "image/jpeg": {}}},
                       206: {"description": "the range asked for"},
                       416: {"description": "the range lies past the end"}})
def preview_file(request: Request, vault: VaultDep, actor: PrincipalDep, rec_id: RecordingId, name: FileName,
                 range_: Annotated[str | None, Header(alias="range", max_length=1000)] = None,
                 if_range: Annotated[str | None, Header(max_length=1000)] = None) -> Response:
    spec = ranges.parse(range_)  # bad syntax: 400 before anything is logged as seen
    asked = "whole"
    if spec is not None:
        asked = f"bytes {'' if spec.first is None else spec.first}-{'' if spec.last is None else spec.last}"
    where = f"http {source_of(request)} {asked}"
    found = preview.open_file(vault, actor, rec_id, name, where=where, via=VIA)
    etag = f'"{found.sha256}"'
    headers = {"accept-ranges": "bytes", "etag": etag, "cache-control": "private, no-store",
               "x-preview": "derived copy, not evidence", "x-original-sha256": found.recording.sha256}
    if spec is not None and not ranges.if_range_allows(if_range, etag):
        spec = None
    part = spec.resolve(found.size_bytes) if spec else None
    if spec is not None and part is None:
        return errors.error_response(416, "range_not_satisfiable",
                                     f"the range {range_} lies past the end ({found.size_bytes} bytes)",
                                     headers={**headers, "content-range": f"bytes */{found.size_bytes}"})
    fh = open(found.path, "rb")  # open now: a rebuild may replace the folder meanwhile
    start, length = (part.start, part.length) if part else (0, found.size_bytes)
    headers["content-length"] = str(length)
    if part is not None:
        headers["content-range"] = part.content_range(found.size_bytes)
    return StreamingResponse(_read(fh, start, length), status_code=206 if part else 200, headers=headers,
                             media_type=found.content_type)


def _read(fh: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    with fh:
        fh.seek(start)
        while length > 0:
            data = fh.read(min(_CHUNK_BYTES, length))
            if not data:
                return
            length -= len(data)
            yield data


@router.get("/previews", summary="The preview queue: counts, failures with their errors, encoder (admin)")
def queue_status(vault: VaultDep, actor: PrincipalDep) -> dict[str, object]:
    return preview.status_json(preview.status(vault, actor, VIA), zone(vault))


@router.post("/previews/rebuild", summary="Make one preview, or all of them, again (admin)")
def rebuild(vault: VaultDep, actor: PrincipalDep,
            recording: Annotated[str | None, Body(embed=True, max_length=200,
                                                  description="recording id; null for all")] = None
            ) -> dict[str, int]:
    return {"queued": preview.rebuild(vault, actor, recording, VIA)}
