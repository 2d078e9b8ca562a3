"""The audit log: entries (reading them is logged), checkpoints, proofs.

Checkpoints and consistency proofs are public by design (a size and hashes),
but, like everything here except login and health, they need a token.
``/range``, ``/nodes``, ``/recordings``, ``/head`` and ``/checkpoints`` serve
an auditor who verifies the whole log elsewhere (``vaultd --url ... audit
verify``, docs/audit.md); the first three need the read-audit right and are
logged as ``audit.read``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import PlainTextResponse, Response

from vaultd import logcheck, logview, tlogfmt
from vaultd.api.deps import VIA, PrincipalDep, Since, VaultDep, get_principal, when
from vaultd.api.errors import VaultRoute
from vaultd.api.models import AuditHeadOut, AuditPage, CheckpointPage, RecordingHashPage
from vaultd.audit import AuditFilter
from vaultd.errors import UsageError
from vaultd.i18n import _

router = APIRouter(prefix="/audit", tags=["audit"], route_class=VaultRoute)
MAX_SIZE = tlogfmt.MAX_TREE_SIZE
MAX_RANGE = 10_000  # entries per /audit/range answer: a few MiB
MAX_NODES = 1 << 16  # subtree hashes per /audit/nodes answer: 2.6 MiB
_JSON = {"application/json": {"schema": {"type": "object"}}}
_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


@router.get("/entries", response_model=AuditPage, summary="Log entries, oldest first (logged as audit.read)")
def list_entries(
    vault: VaultDep, actor: PrincipalDep,
    recording: Annotated[str | None, Query(max_length=200, description="entries about this recording id")] = None,
    actor_name: Annotated[str | None, Query(alias="actor", max_length=200,
                                            description="e.g. user:wang, or just wang")] = None,
    type_: Annotated[str | None, Query(alias="type", max_length=200,
                                       description="exact type, or a prefix like 'access.*'")] = None,
    since: Since = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> dict[str, Any]:
    flt = AuditFilter(recording_id=recording, actor=actor_name, type=type_,
                      since=when(since, vault, "since"), limit=limit)
    entries = logview.list_entries(vault, actor, flt, VIA)
    return {"items": [{"index": e.index, **e.doc} for e in entries]}


@router.get("/entries/{n}", response_class=Response, responses={200: {"content": _JSON}},
            summary="The exact stored bytes of entry N (RFC 8785 JSON)")
def entry(vault: VaultDep, actor: PrincipalDep, n: Annotated[int, Path(ge=0, le=MAX_SIZE)]) -> Response:
    return Response(logview.entry(vault, actor, n, VIA), media_type="application/json")


@router.get("/range", response_class=Response,
            responses={200: {"content": _BINARY}},
            summary="Entries START <= N < END as stored, for verifying the log elsewhere (logged as audit.read)")
def entry_range(vault: VaultDep, actor: PrincipalDep, start: Annotated[int, Query(ge=0, le=MAX_SIZE)],
                end: Annotated[int, Query(ge=1, le=MAX_SIZE)]) -> Response:
    """Records, each a big-endian header (index u64; byte lengths u32 of the
    entry, its type and its evidence id, 0xFFFFFFFF for none) and those bytes.
    Entries that are not stored are left out."""
    if not start < end <= start + MAX_RANGE:
        raise UsageError(_("start must be below end, and end at most start + %d") % MAX_RANGE,
                         hint=_("ask for the log in pages"))
    rows = logview.entry_range(vault, actor, start, end, VIA)
    return Response(logcheck.pack_entries(rows), media_type="application/octet-stream")


@router.get("/nodes", response_class=Response, responses={200: {"content": _BINARY}},
            summary="Stored subtree hashes of LEVEL, START <= index < END (logged as audit.read)")
def nodes(vault: VaultDep, actor: PrincipalDep, level: Annotated[int, Query(ge=0, le=63)],
          start: Annotated[int, Query(ge=0, le=MAX_SIZE)], end: Annotated[int, Query(ge=1, le=MAX_SIZE)]) -> Response:
    """Records, each the index (u64, big-endian), the hash's length (u8) and
    the hash. Hashes that are not stored are left out."""
    if not start < end <= start + MAX_NODES:
        raise UsageError(_("start must be below end, and end at most start + %d") % MAX_NODES,
                         hint=_("ask for the hashes in pages"))
    return Response(logcheck.pack_nodes(logview.nodes(vault, actor, level, start, end, VIA)),
                    media_type="application/octet-stream")


@router.get("/recordings", response_model=RecordingHashPage,
            summary="Every recording's id and sha256 by id, with the log size (logged as audit.read)")
def recording_hashes(vault: VaultDep, actor: PrincipalDep,
                     after: Annotated[str, Query(max_length=200, description="ids after this one")] = "",
                     limit: Annotated[int, Query(ge=1, le=MAX_RANGE)] = 1000) -> dict[str, Any]:
    n, rows = logview.recording_hashes(vault, actor, after, limit, VIA)
    return {"size": n, "items": [{"id": i, "sha256": sha} for i, sha in rows]}


@router.get("/head", response_model=AuditHeadOut, dependencies=[Depends(get_principal)],
            summary="The log size and the checkpoint kept outside the database (seals one first)")
def head(vault: VaultDep) -> dict[str, Any]:
    n, outside = logview.log_state(vault)
    return {"size": n, "outside_checkpoint": None if outside is None else outside.decode("utf-8", "replace")}


@router.get("/checkpoints", response_model=CheckpointPage, dependencies=[Depends(get_principal)],
            summary="Stored checkpoints by size, AFTER < size <= UPTO")
def checkpoints(vault: VaultDep, after: Annotated[int, Query(ge=0, le=MAX_SIZE)] = 0,
                upto: Annotated[int | None, Query(ge=1, le=MAX_SIZE)] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 1000) -> dict[str, Any]:
    rows = logview.checkpoints(vault, after, upto, limit)
    return {"items": [{"size": n, "note": signed.decode("utf-8", "replace")} for n, signed in rows]}


@router.get("/checkpoint", response_class=PlainTextResponse, dependencies=[Depends(get_principal)],
            summary="The latest signed checkpoint (C2SP tlog-checkpoint)")
def checkpoint(vault: VaultDep) -> PlainTextResponse:
    return PlainTextResponse(logview.checkpoint(vault))


@router.get("/consistency", response_class=PlainTextResponse, dependencies=[Depends(get_principal)],
            summary="RFC 6962 consistency proof: base64 hashes, one per line")
def consistency(vault: VaultDep, old: Annotated[int, Query(ge=1, le=MAX_SIZE)],
                new: Annotated[int | None, Query(ge=1, le=MAX_SIZE)] = None) -> PlainTextResponse:
    return PlainTextResponse(tlogfmt.format_consistency_proof(logview.consistency(vault, old, new)))
