"""The access rules added for compliance (#6), as a table over roles."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from vaultd.access import Action, Principal, Role, decide

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
ALLOWED = {
    Action.READ_REPORTS: {Role.AUDITOR, Role.LEGAL, Role.LEADER},
    Action.READ_UNIT_REPORTS: {Role.SUPERVISOR, Role.AUDITOR, Role.LEGAL, Role.LEADER},
    Action.MANAGE_TRIPS: {Role.SUPERVISOR, Role.LEADER, Role.ADMIN},
    Action.EXPLAIN: {Role.OFFICER, Role.SUPERVISOR, Role.LEADER},
    Action.SPOT_CHECK: {Role.AUDITOR, Role.LEGAL},
}


@pytest.mark.parametrize("action", list(ALLOWED))
@pytest.mark.parametrize("role", list(Role))
def test_role_table(action: Action, role: Role) -> None:
    d = decide(Principal("x", frozenset({role}), unit="u"), action, now=NOW)
    assert d.allowed == (role in ALLOWED[action])
    assert d.rule == (role.value if d.allowed else "role")


@pytest.mark.parametrize("action", list(ALLOWED))
def test_disabled_and_local_owner(action: Action) -> None:
    assert decide(Principal("x", frozenset(Role), disabled=True), action, now=NOW).rule == "disabled"
    assert decide(Principal("me", frozenset(), local_owner=True), action, now=NOW).rule == "local-owner"
