"""The scope rule in one place (api/deps.py ``AuthPrincipal``): each role's rights, which enterprises
and which district-routed items it sees, and that the Polars filter says exactly what ``sees`` says —
checked role by role over every kind of enterprise, without a server."""

from __future__ import annotations

import asyncio
from datetime import datetime
from itertools import product

import polars as pl
import pytest

from api.deps import AuthPrincipal, check_enterprise_id, requires
from api.problems import Problem
from riskengine.core.store import KeyRecord

WUCHANG, JIANGAN = "420106", "420102"
PRINCIPALS = {
    "inspector": AuthPrincipal("k1", "张三", "inspector", frozenset({WUCHANG, "420111"}), None),
    "credit_office": AuthPrincipal("k2", None, "credit_office", frozenset(), None),
    "sector": AuthPrincipal("k3", "行业", "sector", frozenset(), "wire_cable"),
    "sector_without_sector": AuthPrincipal("k4", None, "sector", frozenset(), None),
    "admin": AuthPrincipal("k5", None, "admin", frozenset(), None),
    "finance": AuthPrincipal("k6", "某银行", "finance", frozenset(), None),
}
# (district, sector) of enterprises of every kind, missing values included
ENTERPRISES = list(product([WUCHANG, JIANGAN, "420111", None], ["wire_cable", "retail", None]))
EXPECTED_SEEN = {
    "inspector": {(d, s) for d, s in ENTERPRISES if d in (WUCHANG, "420111")},
    "credit_office": set(ENTERPRISES),
    "sector": {(d, s) for d, s in ENTERPRISES if s == "wire_cable"},
    "sector_without_sector": set(),
    "admin": set(),
    "finance": set(),
}


@pytest.mark.parametrize("who", list(PRINCIPALS))
def test_each_role_sees_exactly_its_scope(who: str) -> None:
    principal = PRINCIPALS[who]
    assert {e for e in ENTERPRISES if principal.sees(*e)} == EXPECTED_SEEN[who]


@pytest.mark.parametrize("who", list(PRINCIPALS))
def test_the_polars_filter_keeps_exactly_what_sees_allows(who: str) -> None:
    frame = pl.DataFrame(ENTERPRISES, schema={"district": pl.String, "sector": pl.String}, orient="row")
    kept = frame.filter(PRINCIPALS[who].scope_expr())
    assert set(kept.rows()) == EXPECTED_SEEN[who]
    assert kept.height == len(EXPECTED_SEEN[who])  # no row twice, none with a null test passing


def test_district_routed_items_go_to_the_credit_office_all_and_an_inspector_their_districts() -> None:
    assert PRINCIPALS["credit_office"].district_scope() is None
    assert PRINCIPALS["inspector"].district_scope() == ["420106", "420111"]
    for who in ("sector", "admin", "finance"):
        assert PRINCIPALS[who].district_scope() == []


@pytest.mark.parametrize(("who", "rights"), [
    ("inspector", {"grades", "explanations", "plans", "case_existence", "warnings"}),
    ("credit_office", {"grades", "explanations", "plans", "overrides", "whatif", "cases", "case_existence",
                       "credit_record", "authorizations", "warnings", "monitoring"}),
    ("sector", {"grades", "case_existence"}),
    ("admin", {"admin"}),
    ("finance", {"credit_record"}),
])
def test_each_role_has_exactly_its_rights(who: str, rights: set[str]) -> None:
    every = {"grades", "explanations", "plans", "overrides", "whatif", "cases", "case_existence",
             "credit_record", "authorizations", "warnings", "monitoring", "admin"}
    assert {r for r in every if PRINCIPALS[who].has(r)} == rights


def test_an_unknown_role_has_no_right_and_sees_nothing() -> None:
    stranger = AuthPrincipal("k9", None, "auditor", frozenset({WUCHANG}), "retail")
    assert not stranger.has("grades") and not stranger.sees(WUCHANG, "retail")
    assert stranger.district_scope() == []
    frame = pl.DataFrame({"district": [WUCHANG], "sector": ["retail"]})
    assert frame.filter(stranger.scope_expr()).height == 0


def test_requires_lets_a_role_with_the_right_through_and_refuses_others_with_403() -> None:
    check = requires("plans")
    assert check.__name__ == "requires_plans"
    inspector = PRINCIPALS["inspector"]
    assert asyncio.run(check(inspector)) is inspector
    with pytest.raises(Problem) as refused:
        asyncio.run(check(PRINCIPALS["sector"]))
    assert refused.value.status == 403 and "'sector' has no access to plans" in refused.value.detail


def test_the_actor_names_key_and_holder() -> None:
    assert PRINCIPALS["inspector"].actor == "k1 (张三)"
    assert PRINCIPALS["credit_office"].actor == "k2"


def test_a_principal_is_made_from_its_key_record() -> None:
    record = KeyRecord(key_id="abcd1234", key_hash="h", role="inspector", districts=(WUCHANG,), sector=None,
                       created_at=datetime(2026, 1, 1), revoked_at=None, name="李四")
    principal = AuthPrincipal.from_record(record)
    assert principal == AuthPrincipal("abcd1234", "李四", "inspector", frozenset({WUCHANG}), None)


class _Settings:
    def __init__(self, scheme: str) -> None:
        self.id_scheme = scheme


class _Service:
    def __init__(self, scheme: str) -> None:
        self.settings = _Settings(scheme)


def test_enterprise_ids_are_checked_under_the_configured_scheme() -> None:
    assert check_enterprise_id(_Service("uscc"), "91420106MA4K0000X9") is None  # type: ignore[arg-type]
    assert check_enterprise_id(_Service("uscc"), "91420106MA4K0000X0") == (  # type: ignore[arg-type]
        "USCC check character is '0'; expected '9'")
    assert "18 characters" in (check_enterprise_id(_Service("uscc"), "E1") or "")  # type: ignore[arg-type]
    assert check_enterprise_id(_Service("free"), "E1") is None  # type: ignore[arg-type]
    assert check_enterprise_id(_Service("free"), "  ") == "enterprise id must not be empty"  # type: ignore[arg-type]
