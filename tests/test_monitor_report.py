"""The monitoring report: per month and grade from random inspections after the grades were served,
design weights where a plan recorded them, the contract's JSON, alerts with exit status, the HTML."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import polars as pl
import pytest

from riskengine.core.contract import GRADES_SCHEMA, TABLES
from riskengine.supervision.policy import load_policy
from riskengine.workflows.monitor import build_report, monitored_months

POLICY = load_policy(None).monitor
RATE = {"A": 0.05, "B": 0.15, "C": 0.35, "D": 0.6}


def world(n: int = 800, seed: int = 0) -> tuple[dict[str, pl.LazyFrame], dict[date, pl.DataFrame]]:
    """Enterprises graded on 2025-01-01 and 2025-03-01, and random inspections failing at RATE by grade."""
    rng = np.random.default_rng(seed)
    ids = [f"E{i:04d}" for i in range(n)]
    grades = rng.choice(list("ABCD"), n, p=[0.4, 0.3, 0.2, 0.1])
    ent = pl.DataFrame(
        {
            "enterprise_id": ids,
            "district": rng.choice(["420106", "420102"], n).tolist(),
            "sector": rng.choice(["wire_cable", "retail"], n).tolist(),
            "status": ["active"] * n,
            "established_on": [date(2015, 1, 1)] * n,
        }
    )
    rows = []
    for m in range(1, 7):
        for i in rng.choice(n, 120, replace=False):
            rows.append(
                {
                    "inspection_id": f"I{m}-{i}",
                    "enterprise_id": ids[i],
                    "kind": "random",
                    "inspected_on": date(2025, m, 10),
                    "outcome": "fail" if rng.random() < RATE[grades[i]] else "pass",
                    "findings_critical": 0,
                }
            )
    tables = {name: pl.DataFrame(schema=spec.schema).lazy() for name, spec in TABLES.items()}
    tables["enterprises"] = pl.concat(
        [pl.DataFrame(schema=TABLES["enterprises"].schema), ent], how="diagonal_relaxed"
    ).lazy()
    tables["inspections"] = pl.concat(
        [pl.DataFrame(schema=TABLES["inspections"].schema), pl.DataFrame(rows)], how="diagonal_relaxed"
    ).lazy()

    def run(as_of: date, shuffle: bool) -> pl.DataFrame:
        g = rng.permutation(grades) if shuffle else grades
        return pl.DataFrame(
            {
                "enterprise_id": ids,
                "as_of": [as_of] * n,
                "name": None,
                "district": ent["district"],
                "sector": ent["sector"],
                "probability": [RATE[x] for x in g],
                "score": [500] * n,
                "grade": g.tolist(),
                "model_grade": g.tolist(),
                "rule": None,
                "reasons": None,
                "model_version": "1",
            },
            schema=GRADES_SCHEMA,
        )

    return tables, {
        date(2025, 1, 1): run(date(2025, 1, 1), False),
        date(2025, 3, 1): run(date(2025, 3, 1), False),
    }


def test_monitored_months_are_the_full_months_before_as_of():
    assert monitored_months(date(2026, 1, 1), 2) == [date(2025, 11, 1), date(2025, 12, 1)]
    assert monitored_months(date(2025, 7, 15), 1) == [date(2025, 6, 1)]


def test_rates_rise_by_grade_with_intervals_in_the_contract_shape():
    tables, runs = world()
    report = build_report(tables, date(2025, 7, 1), 6, runs, {}, POLICY).to_json()
    assert [m["month"] for m in report["months"]] == [f"2025-0{i}" for i in range(1, 7)]
    month = report["months"][0]
    assert set(month["grades"]) == set("ABCD")
    for cell in month["grades"].values():
        assert {"random_inspections", "adverse_per_100", "ci_low", "ci_high"} <= set(cell)
        assert cell["ci_low"] <= cell["adverse_per_100"] <= cell["ci_high"]
    assert sum(c["random_inspections"] for c in month["grades"].values()) == 120
    pooled = report["pooled"]["grades"]
    assert pooled["A"]["adverse_per_100"] < pooled["B"]["adverse_per_100"] < pooled["D"]["adverse_per_100"]
    assert report["pooled"]["monotone"] and report["pooled"]["trend"]["p"] < 0.001
    assert not any(a["rule"] in ("grade_order_reversed", "no_rising_trend") for a in report["alerts"])
    assert {s["sector"] for s in report["by_sector"]} == {"wire_cable", "other"}
    assert {d["district"] for d in report["by_district"]} == {"420106", "420102"}
    assert report["migration"]["last"]["from_run"] == "2025-01-01"
    json.dumps(report)  # plain JSON, no NaN


def test_grades_that_rank_nothing_raise_an_alert():
    tables, runs = world()
    shuffled = {
        d: g.with_columns(pl.Series("grade", np.random.default_rng(5).permutation(g["grade"].to_numpy())))
        for d, g in runs.items()
    }
    report = build_report(tables, date(2025, 7, 1), 6, shuffled, {}, POLICY).to_json()
    assert "no_rising_trend" in {a["rule"] for a in report["alerts"]}


def test_months_before_the_first_graded_run_are_noted_not_counted():
    tables, runs = world()
    late = {date(2025, 3, 1): runs[date(2025, 3, 1)]}
    report = build_report(tables, date(2025, 7, 1), 6, late, {}, POLICY).to_json()
    assert report["months"][0]["grades"]["A"]["random_inspections"] == 0
    assert any("2025-01: no grades were served yet" in n for n in report["notes"])


def test_plan_inclusion_probabilities_weight_the_rate():
    tables, runs = world()
    plain = build_report(tables, date(2025, 2, 1), 1, runs, {}, POLICY).to_json()["months"][0]["grades"]
    insp = tables["inspections"].filter(pl.col("inspected_on") < date(2025, 2, 1)).collect()
    a_ids = runs[date(2025, 1, 1)].filter(pl.col("grade") == "A")["enterprise_id"]
    a_insp = insp.filter(pl.col("enterprise_id").is_in(a_ids.implode()))
    # Failed A inspections were drawn with probability 0.5, passed ones with 0.05: weights 2 and 20.
    plan = a_insp.select(
        "enterprise_id",
        pl.when(pl.col("outcome") == "fail").then(0.5).otherwise(0.05).alias("inclusion_probability"),
    )
    weighted = build_report(tables, date(2025, 2, 1), 1, runs, {"2025-01": plan}, POLICY).to_json()
    cell = weighted["months"][0]["grades"]["A"]
    k, n = plain["A"]["adverse"], plain["A"]["random_inspections"]
    assert cell["adverse_per_100"] == pytest.approx(100 * 2 * k / (2 * k + 20 * (n - k)), rel=1e-6)
    assert cell["random_inspections"] == n


def test_figures_are_logged_as_metrics_of_the_champion_versions_run(tmp_path):
    from models.registry import CHAMPION, client
    from riskengine.core.config import Settings
    from riskengine.workflows.monitor import log_to_mlflow

    settings = Settings(home=tmp_path)
    cli = client(settings)
    run = cli.create_run(cli.create_experiment("monitor-test"))
    cli.create_registered_model(settings.mlflow.model_name)
    version = cli.create_model_version(
        settings.mlflow.model_name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    cli.set_registered_model_alias(settings.mlflow.model_name, CHAMPION, version.version)
    tables, runs = world()
    report = build_report(tables, date(2025, 7, 1), 6, runs, {}, POLICY)
    assert log_to_mlflow(report, settings) == run.info.run_id
    history = cli.get_metric_history(run.info.run_id, "monitor.adverse_per_100.D")
    assert [m.step for m in history] == list(range(6))
    pooled = cli.get_run(run.info.run_id).data.metrics["monitor.window.adverse_per_100_D"]
    assert pooled == pytest.approx(report.to_json()["pooled"]["grades"]["D"]["adverse_per_100"])
