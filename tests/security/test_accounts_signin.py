"""#16.7 and #16.9: failed logins slow the one who fails, not the account's
owner; an admin unlocks; unknown names cost the same and count per source; a
flood of bad passwords or tokens is one audit entry per source a minute."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from vaultd import people, signin
from vaultd.access import Principal, Role
from vaultd.catalog import people as people_db
from vaultd.catalog.schema import audit_entries
from vaultd.errors import AccessDeniedError, AuthenticationError, TooManyAttemptsError
from vaultd.vault import Vault

PASSWORD = "correct horse battery"
T0 = datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)
ATTACKER, VICTIM_PC = "10.9.9.9:40000", "10.1.1.1:50000"


@pytest.fixture
def vault_with_wang(vault: Vault) -> Vault:
    people.add_user(vault, people.local_owner(), people.NewUser("wang", (Role.OFFICER,), "一大队", "012345"),
                    PASSWORD, "cli")
    people.add_user(vault, people.local_owner(), people.NewUser("root", (Role.ADMIN,)), None, "cli")
    return vault


def principal(vault: Vault, name: str) -> Principal:
    with vault.engine.connect() as conn:
        row = people_db.user_by_name(conn, name)
    assert row is not None
    return people.principal_of(row)


def entries(vault: Vault, type_: str) -> list[dict[str, Any]]:
    with vault.engine.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.type == type_)
                            .order_by(audit_entries.c.idx)).all()
    return [json.loads(r.entry)["details"] for r in rows]


def fail(vault: Vault, name: str, source: str, at: datetime, times: int = 1) -> None:
    for i in range(times):
        with pytest.raises(AuthenticationError) as err:
            people.login(vault, name, "wrong password", source, now=at + timedelta(milliseconds=i))
        assert not isinstance(err.value, TooManyAttemptsError)


def test_delays_grow_and_are_capped() -> None:
    assert [signin.delay_s(n) for n in range(7)] == [0, 0, 0, 1, 2, 4, 8]
    assert signin.delay_s(100) == signin.POLICY.cap_s
    clean = signin.Recent(0, None, 50, T0)
    assert signin.decide_wait(clean, T0) == 0  # a clean source never waits for the account
    assert signin.decide_wait(signin.Recent(1, T0, 50, T0), T0) == signin.POLICY.cap_s


def test_the_attacker_slows_himself_and_the_owner_still_signs_in(vault_with_wang: Vault) -> None:
    v = vault_with_wang
    fail(v, "wang", ATTACKER, T0, times=3)
    with pytest.raises(TooManyAttemptsError) as err:
        people.login(v, "wang", PASSWORD, ATTACKER, now=T0 + timedelta(milliseconds=500))
    assert err.value.retry_after_s >= 1 and "users unlock" in (err.value.hint or "")
    # the owner, at his own PC, with his password, is not locked out
    assert people.login(v, "wang", PASSWORD, VICTIM_PC, now=T0 + timedelta(seconds=1)).user == "wang"
    # and the attacker's wait ends; it grows with each failure after it
    fail(v, "wang", ATTACKER, T0 + timedelta(seconds=2))
    with pytest.raises(TooManyAttemptsError):
        people.login(v, "wang", PASSWORD, ATTACKER, now=T0 + timedelta(seconds=3))
    assert people.login(v, "wang", PASSWORD, ATTACKER, now=T0 + timedelta(seconds=5)).user == "wang"


def test_many_sources_slow_the_account_for_sources_that_failed(vault_with_wang: Vault) -> None:
    v = vault_with_wang
    for i in range(8):  # a botnet: one guess from each address
        fail(v, "wang", f"10.7.0.{i}:1000", T0 + timedelta(seconds=i))
    with pytest.raises(TooManyAttemptsError):  # a source that failed waits for the account's delay
        people.login(v, "wang", PASSWORD, "10.7.0.0:1001", now=T0 + timedelta(seconds=9))
    assert people.login(v, "wang", PASSWORD, VICTIM_PC, now=T0 + timedelta(seconds=9)).user == "wang"


def test_unknown_names_count_per_source(vault_with_wang: Vault) -> None:
    v = vault_with_wang
    for i, name in enumerate(("admin", "root1", "test")):
        fail(v, name, ATTACKER, T0 + timedelta(seconds=i))
    with pytest.raises(TooManyAttemptsError):
        people.login(v, "wang", PASSWORD, ATTACKER, now=T0 + timedelta(seconds=2.5))


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__()
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


def test_unknown_names_cost_an_argon2_verify_like_known_ones(vault_with_wang: Vault,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = CountingHasher()
    monkeypatch.setattr(people, "_hasher", hasher)
    for name, source in (("wang", "10.0.0.1:1"), ("nobody", "10.0.0.2:1"), ("root", "10.0.0.3:1")):
        with pytest.raises(AuthenticationError):
            people.login(vault_with_wang, name, "wrong password", source, now=T0)
    assert hasher.verified == 3  # known, unknown, and token-only users: one verify each


def test_an_admin_unlocks_an_account(vault_with_wang: Vault) -> None:
    v = vault_with_wang
    for i in range(6):
        fail(v, "wang", f"10.7.0.{i}:1000", T0 + timedelta(seconds=10 * i))
    with pytest.raises(TooManyAttemptsError):
        people.login(v, "wang", PASSWORD, "10.7.0.0:1000", now=T0 + timedelta(seconds=52))
    officer = principal(v, "wang")
    with pytest.raises(AccessDeniedError):
        people.unlock_user(v, officer, "wang", "api")
    admin = principal(v, "root")
    assert people.unlock_user(v, admin, "wang", "api") == 6
    assert entries(v, "user.unlock")[-1] == {"name": "wang", "failures_cleared": 6}
    assert people.login(v, "wang", PASSWORD, "10.7.0.0:1000", now=T0 + timedelta(seconds=53)).user == "wang"


def test_a_flood_of_bad_tokens_is_one_entry_a_minute_with_its_count(vault_with_wang: Vault) -> None:
    v = vault_with_wang
    for i in range(50):
        with pytest.raises(AuthenticationError):
            people.authenticate(v, f"vdt_guess{i}", f"10.6.6.6:{2000 + i}", now=T0 + timedelta(milliseconds=i))
    assert len(entries(v, "auth.failed")) == 1
    with pytest.raises(AuthenticationError):
        people.authenticate(v, "vdt_again", "10.6.6.6:3000", now=T0 + timedelta(seconds=61))
    first, second = entries(v, "auth.failed")
    assert second["before"]["count"] == 49 and second["before"]["source"] == "10.6.6.6"
    # another source has its own entry; a window nobody follows up is summed up by the next flush
    with pytest.raises(AuthenticationError):
        people.authenticate(v, "vdt_x", "10.5.5.5:1", now=T0 + timedelta(seconds=62))
    with pytest.raises(AuthenticationError):
        people.authenticate(v, "vdt_y", "10.5.5.5:2", now=T0 + timedelta(seconds=63))
    with v.engine.begin() as conn:
        assert signin.flush(conn, T0 + timedelta(seconds=200)) == 1
    (summary,) = entries(v, "auth.failed.summary")
    assert summary["source"] == "10.5.5.5" and summary["count"] == 1 and summary["kind"] == "token"


def test_a_flood_of_failed_logins_is_counted_with_the_names_tried(vault_with_wang: Vault) -> None:
    v = vault_with_wang
    fail(v, "wang", ATTACKER, T0, times=3)
    for i in range(30):  # slowed: refused unchecked, but counted
        with pytest.raises(TooManyAttemptsError):
            people.login(v, f"user{i % 3}", "guess", ATTACKER, now=T0 + timedelta(milliseconds=10 + i))
    assert len(entries(v, "auth.failed")) + len(entries(v, "auth.rate_limited")) == 1
    with v.engine.begin() as conn:
        signin.flush(conn, T0 + timedelta(minutes=2))
    (summary,) = entries(v, "auth.failed.summary")
    assert summary["count"] == 32 and summary["names"] == ["wang", "user0", "user1", "user2"]


@pytest.mark.parametrize("source,host", [("1.2.3.4:5", "1.2.3.4"), ("[::1]:80", "::1"),
                                         ("unix-socket", "unix-socket"), ("testclient:50000", "testclient")])
def test_delays_are_kept_per_address_not_per_port(source: str, host: str) -> None:
    assert signin.source_host(source) == host
