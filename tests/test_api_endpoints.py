"""What each endpoint answers: grades with frequencies, explanations by language, history, plan pages
and CSV, sector pages, what-if scoring and metrics."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.routers.enterprises import pick_language
from riskengine.supervision.policy import load_policy
from tests.api_helpers import (
    AS_OF,
    AS_OF_OLD,
    E_FOOD_WUCHANG,
    E_WIRE_JIANGAN,
    E_WIRE_WUCHANG,
    PERIOD,
    WUCHANG,
    World,
    make_world,
    serve,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("endpoints"))


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with serve(world) as c:
        yield c


def get(client: TestClient, world: World, path: str, role: str = "credit_office", **kw):  # type: ignore[no-untyped-def]
    return client.get(path, headers={**world.headers(role), **kw.pop("headers", {})}, **kw)


def test_a_grade_comes_with_score_probability_as_of_version_and_its_frequency(
    client: TestClient, world: World
) -> None:
    body = get(client, world, f"/v1/enterprises/{E_WIRE_WUCHANG}").json()
    ratio, minimum = load_policy().frequency("wire_cable", "C")
    assert (body["grade"], body["score"], body["probability"]) == ("C", 700, 0.7)
    assert body["as_of"] == str(AS_OF) and body["model_version"] == "1"
    assert body["frequency"] == {"ratio": ratio, "min_per_year": minimum}
    assert body["override"] is None


@pytest.mark.parametrize(
    ("header", "language", "text"),
    [
        (None, "zh", "近365天抽检不合格2次"),
        ("en-US,en;q=0.9", "en", "2 failed sampling tests in the last 365 days"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh", "近365天抽检不合格2次"),
        ("fr", "zh", "近365天抽检不合格2次"),
    ],
)
def test_the_explanation_speaks_the_requested_language(
    client: TestClient, world: World, header: str | None, language: str, text: str
) -> None:
    headers = {"Accept-Language": header} if header else {}
    response = get(client, world, f"/v1/enterprises/{E_WIRE_WUCHANG}/explanation", headers=headers)
    body = response.json()
    assert body["language"] == language and response.headers["content-language"] == language
    first = body["reasons"][0]
    assert {k: first[k] for k in ("code", "contribution", "text")} == {
        "code": "sampling__fail_365d", "contribution": 0.8, "text": text}
    assert first["text_zh"] == "近365天抽检不合格2次" and first["kind"] == "own_record"


def test_the_explanation_names_the_hard_rule(client: TestClient, world: World) -> None:
    body = get(client, world, f"/v1/enterprises/{E_FOOD_WUCHANG}/explanation").json()
    assert body["grade"] == "D" and body["model_grade"] == "B"
    assert body["rule"] == "R1_DISHONEST_LIST" and body["rule_text"]


def test_accept_language_weights_decide() -> None:
    assert pick_language("zh;q=0.2, en;q=0.7") == "en"
    assert pick_language("en;q=abc, zh") == "zh"


def test_history_lists_every_scored_as_of_oldest_first(client: TestClient, world: World) -> None:
    body = get(client, world, f"/v1/enterprises/{E_WIRE_WUCHANG}/history", role="sector").json()
    assert [(i["as_of"], i["grade"]) for i in body["items"]] == [(str(AS_OF_OLD), "B"), (str(AS_OF), "C")]


def test_the_plan_is_paginated_in_rank_order(client: TestClient, world: World) -> None:
    first = get(client, world, "/v1/inspection-plan", params={"page_size": 3}).json()
    second = get(client, world, "/v1/inspection-plan", params={"page_size": 3, "page": 2}).json()
    assert first["period"] == PERIOD and first["total"] == 4 and first["meta"]["seed"] == 11
    assert len(first["items"]) == 3 and len(second["items"]) == 1
    ranks = [(r["district"], r["rank"]) for r in first["items"] + second["items"]]
    assert ranks == sorted(ranks)


def test_the_plan_as_csv_has_every_row_and_readable_reasons(client: TestClient, world: World) -> None:
    response = get(
        client, world, "/v1/inspection-plan", params={"district": WUCHANG}, headers={"Accept": "text/csv"}
    )
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["enterprise_id"] for r in rows] == [E_WIRE_WUCHANG, E_FOOD_WUCHANG]
    assert rows[0]["reasons"] == "原因"


def test_an_unknown_plan_period_is_404(client: TestClient, world: World) -> None:
    assert get(client, world, "/v1/inspection-plan", params={"period": "1999-01"}).status_code == 404


def test_the_sector_listing_pages_with_a_cursor(client: TestClient, world: World) -> None:
    first = get(client, world, "/v1/sectors/wire_cable/enterprises", params={"limit": 1}).json()
    assert [e["enterprise_id"] for e in first["items"]] == [min(E_WIRE_WUCHANG, E_WIRE_JIANGAN)]
    second = get(
        client,
        world,
        "/v1/sectors/wire_cable/enterprises",
        params={"limit": 1, "cursor": first["next_cursor"]},
    ).json()
    assert [e["enterprise_id"] for e in second["items"]] == [max(E_WIRE_WUCHANG, E_WIRE_JIANGAN)]
    assert second["next_cursor"] is None


def test_the_sector_listing_filters_by_grade(client: TestClient, world: World) -> None:
    body = get(client, world, "/v1/sectors/wire_cable/enterprises", params={"grade": "A"}).json()
    assert [e["enterprise_id"] for e in body["items"]] == [E_WIRE_JIANGAN]


def test_a_cursor_not_from_the_listing_is_422(client: TestClient, world: World) -> None:
    response = get(client, world, "/v1/sectors/wire_cable/enterprises", params={"cursor": "%%%"})
    assert response.status_code == 422


def test_what_if_scoring_grades_feature_rows_and_more_failures_never_lower_the_score(
    client: TestClient, world: World
) -> None:
    model = client.app.state.service.snapshot.model  # type: ignore[attr-defined]
    driver = model.feature_names[0]
    rows = [{"enterprise_id": "low", driver: 0.05}, {"enterprise_id": "high", driver: 0.95}]
    response = client.post("/v1/score", json={"features": rows}, headers=world.headers("credit_office"))
    assert response.status_code == 200, response.text
    items = {i["enterprise_id"]: i for i in response.json()["items"]}
    assert items["high"]["probability"] > items["low"]["probability"]
    assert items["high"]["score"] >= items["low"]["score"]
    assert response.json()["model_version"] == "7"


def test_what_if_scoring_refuses_unknown_features(client: TestClient, world: World) -> None:
    response = client.post(
        "/v1/score", json={"features": [{"no_such__feature": 1}]}, headers=world.headers("credit_office")
    )
    assert response.status_code == 422
    assert "no_such__feature" in response.json()["detail"]


def test_what_if_by_id_without_a_lake_says_how_to_enable_it(client: TestClient, world: World) -> None:
    response = client.post(
        "/v1/score", json={"enterprise_ids": [E_WIRE_WUCHANG]}, headers=world.headers("credit_office")
    )
    assert response.status_code == 503
    assert "--lake" in response.json()["detail"]


def test_what_if_needs_exactly_one_kind_of_input(client: TestClient, world: World) -> None:
    response = client.post("/v1/score", json={}, headers=world.headers("credit_office"))
    assert response.status_code == 422


def test_metrics_count_requests_by_route_and_grades_served(client: TestClient, world: World) -> None:
    get(client, world, f"/v1/enterprises/{E_WIRE_WUCHANG}")
    text = client.get("/metrics").text
    assert (
        'riskengine_http_requests_total{method="GET",route="/v1/enterprises/{enterprise_id}",status="200"}'
        in text
    )
    assert 'riskengine_grades_served_total{endpoint="enterprise"}' in text
    assert "riskengine_http_request_duration_seconds_bucket" in text
    assert 'riskengine_model_info{version="7"} 1.0' in text
    assert "riskengine_grades_loaded 4.0" in text
