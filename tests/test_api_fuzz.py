"""Fuzz the HTTP API from its own OpenAPI schema: whatever a client sends,
with an admin's token, a legal officer's or none, the answer is never a 5xx
and matches what the schema promises.

In-process (ASGI), bounded and derandomized so that a run is repeatable.
Schemathesis drives Hypothesis directly (``as_strategy``): its pytest
fixture loader does not run under the pytest used here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaultd import people
from vaultd.access import Level, Role
from vaultd.api import create_app
from vaultd.ingest import ingest_path
from vaultd.model import Actor
from vaultd.vault import Vault
from conftest import token_for

schemathesis = pytest.importorskip("schemathesis")  # a test dependency; skip where it is missing
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

pytestmark = pytest.mark.slow

# Whether valid-looking input is accepted depends on the vault's state (a user
# that exists, a log shorter than OLD); every other check runs.
STATEFUL = [positive_data_acceptance, negative_data_rejection]
# The schema does not depend on the vault, so the operations are known at collection.
OPERATIONS = [f"{method.upper()} {path}"
              for path, ops in create_app(None).openapi()["paths"].items()  # type: ignore[arg-type]
              for method in ops]


@pytest.fixture
def fuzzed(vault: Vault, camera: Path) -> tuple[Any, dict[str, str]]:
    owner = people.local_owner()
    for name, roles, kw in (
        ("wang", (Role.OFFICER,), {"unit": "一大队", "officer_number": "012345"}),
        ("zhou", (Role.LEGAL,), {"clearance": Level.CONFIDENTIAL}),
        ("boss", (Role.ADMIN,), {}),
    ):
        people.add_user(vault, owner, people.NewUser(name, roles, **kw), None, "cli")
    ingest_path(vault, camera, actor=Actor.local())
    tokens = {who: token_for(vault, name)
              for who, name in (("admin", "boss"), ("legal", "zhou"))}
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(vault)), tokens


@pytest.mark.parametrize("operation", OPERATIONS)
def test_no_server_errors_and_answers_match_the_schema(fuzzed: tuple[Any, dict[str, str]],
                                                        operation: str) -> None:
    schema, tokens = fuzzed
    method, path = operation.split(" ", 1)
    op = schema[path][method]
    cases = st.one_of(op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases, who=st.sampled_from(["admin", "legal", None]))
    @settings(max_examples=20, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: Any, who: str | None) -> None:
        if who is None:
            case.call_and_validate(checks=[not_a_server_error])
        else:
            case.call_and_validate(headers={"Authorization": f"Bearer {tokens[who]}"},
                                   excluded_checks=STATEFUL)

    check()
