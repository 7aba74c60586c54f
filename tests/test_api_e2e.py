"""End to end on the small generated city: lake → grades (real scoring path) and plan (real planner) →
serving store → the HTTP service, as a bureau would run it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.state import Service
from riskengine.core.config import ServiceSettings, Settings
from riskengine.core.keys import new_key
from riskengine.core.store import Store
from tests.api_helpers import tiny_model

AS_OF = date(2025, 7, 1)


@pytest.fixture(scope="module")
def served_city(
    small_lake: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict]]:
    from riskengine.lake.layout import load_tables
    from riskengine.supervision.plan import make_plan
    from riskengine.supervision.policy import load_policy
    from riskengine.workflows.scoring import score_enterprises

    home = tmp_path_factory.mktemp("e2e")
    settings = Settings(home=home, service=ServiceSettings(lake_path=small_lake, audit_flush_seconds=3600))
    model = tiny_model("e2e-1")
    grades = score_enterprises(small_lake, AS_OF, model=model, settings=settings)
    store = Store(settings.store_file)
    store.save_grades(grades)
    plan = make_plan(grades, load_tables(small_lake), AS_OF, capacity=20, seed=3, policy=load_policy())
    store.save_plan(plan.plan, plan.meta)
    tokens = {}
    district = grades["district"].mode().sort()[0]
    for role, districts in (("credit_office", []), ("inspector", [district])):
        record, token = new_key(role, districts)
        store.add_key(record)
        tokens[role] = {"Authorization": f"Bearer {token}"}
    service = Service(settings, store=store, model_loader=lambda s: model)
    with TestClient(create_app(service=service)) as client:
        yield client, {"grades": grades, "tokens": tokens, "district": district, "plan": plan}


def test_every_scored_enterprise_is_served_with_its_stored_grade(
    served_city: tuple[TestClient, dict],
) -> None:
    client, ctx = served_city
    sample = ctx["grades"].sample(5, seed=1)
    for row in sample.iter_rows(named=True):
        body = client.get(
            f"/v1/enterprises/{row['enterprise_id']}", headers=ctx["tokens"]["credit_office"]
        ).json()
        assert (body["grade"], body["score"], body["as_of"]) == (row["grade"], row["score"], str(AS_OF))
        assert body["model_version"] == "e2e-1"


def test_explanations_carry_the_scorers_reasons_in_english(served_city: tuple[TestClient, dict]) -> None:
    client, ctx = served_city
    row = ctx["grades"].filter(pl.col("reasons").list.len() > 0).row(0, named=True)
    body = client.get(
        f"/v1/enterprises/{row['enterprise_id']}/explanation",
        headers={**ctx["tokens"]["credit_office"], "Accept-Language": "en"},
    ).json()
    assert [r["text"] for r in body["reasons"]] == [r["text_en"] for r in row["reasons"]]


def test_an_inspector_gets_the_planners_rows_for_their_district(served_city: tuple[TestClient, dict]) -> None:
    client, ctx = served_city
    body = client.get(
        "/v1/inspection-plan", params={"page_size": 10_000}, headers=ctx["tokens"]["inspector"]
    ).json()
    expected = ctx["plan"].plan.filter(pl.col("district") == ctx["district"])
    assert body["total"] == expected.height > 0
    assert {r["enterprise_id"] for r in body["items"]} == set(expected["enterprise_id"])


def test_what_if_by_id_rescores_from_the_lake_like_the_batch_scorer(
    served_city: tuple[TestClient, dict],
) -> None:
    client, ctx = served_city
    ids = ctx["grades"]["enterprise_id"].head(3).to_list()
    body = client.post(
        "/v1/score", json={"enterprise_ids": ids, "as_of": str(AS_OF)}, headers=ctx["tokens"]["credit_office"]
    ).json()
    got = {i["enterprise_id"]: i["probability"] for i in body["items"]}
    expected = dict(
        ctx["grades"].filter(pl.col("enterprise_id").is_in(ids)).select("enterprise_id", "probability").rows()
    )
    assert got.keys() == expected.keys()
    assert all(abs(got[k] - expected[k]) < 1e-9 for k in got)


def test_the_explanation_names_the_records_behind_each_own_record_reason(
    served_city: tuple[TestClient, dict], small_lake: Path
) -> None:
    from riskengine.lake.layout import load_tables
    from riskengine.workflows.evidence import evidence

    client, ctx = served_city
    found = evidence(load_tables(small_lake), AS_OF)
    backed = ctx["grades"].with_columns(
        pl.col("reasons").list.first().struct.field("code").alias("first")).join(
        found.select("enterprise_id", pl.col("reason").alias("first")).unique(),
        on=["enterprise_id", "first"], how="semi")
    row = backed.row(0, named=True)
    body = client.get(f"/v1/enterprises/{row['enterprise_id']}/explanation",
                      headers=ctx["tokens"]["credit_office"]).json()
    # CONTRACT §3: the same structure as `riskengine explain --format json`.
    assert {"enterprise_id", "as_of", "grade", "score", "probability", "rule", "baseline",
            "reasons"} <= set(body)
    first = body["reasons"][0]
    assert first["kind"] == "own_record" and first["code"] == row["first"]
    expected = found.filter((pl.col("enterprise_id") == row["enterprise_id"])
                            & (pl.col("reason") == row["first"]))
    assert [e["record_id"] for e in first["evidence"]] == expected["record_id"].to_list()
    assert all(e["date"] < str(AS_OF) for e in first["evidence"])
