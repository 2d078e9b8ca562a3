"""The audit log: entries (reading them is logged), checkpoints, proofs.

Checkpoints and consistency proofs are public by design (a size and hashes),
but, like everything here except login and health, they need a token.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import PlainTextResponse, Response

from vaultd import logview, tlogfmt
from vaultd.api.deps import VIA, PrincipalDep, Since, VaultDep, get_principal, when
from vaultd.api.errors import VaultRoute
from vaultd.api.models import AuditPage
from vaultd.audit import AuditFilter

router = APIRouter(prefix="/audit", tags=["audit"], route_class=VaultRoute)
MAX_SIZE = tlogfmt.MAX_TREE_SIZE
_JSON = {"application/json": {"schema": {"type": "object"}}}


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


@router.get("/checkpoint", response_class=PlainTextResponse, dependencies=[Depends(get_principal)],
            summary="The latest signed checkpoint (C2SP tlog-checkpoint)")
def checkpoint(vault: VaultDep) -> PlainTextResponse:
    return PlainTextResponse(logview.checkpoint(vault))


@router.get("/consistency", response_class=PlainTextResponse, dependencies=[Depends(get_principal)],
            summary="RFC 6962 consistency proof: base64 hashes, one per line")
def consistency(vault: VaultDep, old: Annotated[int, Query(ge=1, le=MAX_SIZE)],
                new: Annotated[int | None, Query(ge=1, le=MAX_SIZE)] = None) -> PlainTextResponse:
    return PlainTextResponse(tlogfmt.format_consistency_proof(logview.consistency(vault, old, new)))
