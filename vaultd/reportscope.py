"""Which unit's reports an actor may read: every unit (auditor, legal,
leader), or only their own (supervisor). Refusals are audited."""

from __future__ import annotations

from vaultd import access, audit
from vaultd.access import Action, Principal
from vaultd.audit import Event
from vaultd.errors import AccessDeniedError
from vaultd.i18n import _
from vaultd.people import actor_of, require
from vaultd.vault import Vault, utcnow


def report_scope(vault: Vault, actor: Principal, unit: str | None, via: str, what: str) -> str | None:
    """The unit the actor's report covers (None: all units), or AccessDeniedError."""
    if access.decide(actor, Action.READ_REPORTS, now=utcnow()).allowed:
        return unit
    require(vault, actor, Action.READ_UNIT_REPORTS, via, what)
    if actor.unit and unit in (None, actor.unit):
        return actor.unit
    rule = "other-unit" if actor.unit else "no-unit"
    with vault.engine.begin() as conn:
        audit.append(conn, Event("access.denied", actor_of(actor, via), {
            "action": Action.READ_UNIT_REPORTS.value, "what": what, "unit": unit, "rule": rule}))
    raise AccessDeniedError(_("%s may only %s of their own unit (%s), not of %s")
                            % (actor.name, what, actor.unit or "-", unit), rule=rule)
