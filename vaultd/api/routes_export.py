"""Exports (#8): what left the vault, to whom, and the CA verifiers pin.

Packages are made at the station (``vaultd export create``), where the disc
burner is; the API reads the record, for the web console and for auditors.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import PlainTextResponse

from vaultd import export
from vaultd.api.deps import VIA, PrincipalDep, VaultDep, get_principal
from vaultd.api.errors import VaultRoute

router = APIRouter(prefix="/exports", tags=["exports"], route_class=VaultRoute)


@router.get("", summary="Exports made, newest first (auditor, legal, leader)")
def list_exports(vault: VaultDep, actor: PrincipalDep) -> dict[str, Any]:
    return {"items": [r.as_dict() for r in export.list_exports(vault, actor, VIA)]}


@router.get("/ca", response_class=PlainTextResponse, dependencies=[Depends(get_principal)],
            summary="The agency CA certificate (PEM) that verifiers pin with --ca")
def agency_ca(vault: VaultDep) -> PlainTextResponse:
    pem, fingerprint = export.agency_ca(vault)
    return PlainTextResponse(pem.decode("ascii"), headers={"X-SHA256-Fingerprint": fingerprint})


@router.get("/{export_id}", summary="One export: who asked, who approved, its packages' tagmanifest hashes")
def show_export(vault: VaultDep, actor: PrincipalDep,
                export_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    return export.show_export(vault, actor, export_id, VIA).as_dict()
