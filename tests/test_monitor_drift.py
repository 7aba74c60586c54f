"""A drift injected on purpose by the synthetic city (a sector's risk rising from a date) is caught by
the monitor's PSI and per-sector view within two months, and nothing is flagged before it starts."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from models.train import TrainConfig, train_model
from riskengine.core.contract import TABLES
from riskengine.core.errors import UsageError
from riskengine.supervision.policy import load_policy
from riskengine.synth import Drift, generate_city_frames, simulate_city
from riskengine.workflows.monitor import build_report

DRIFT = Drift("catering", date(2025, 3, 1), 2.0)


def test_drift_moves_only_its_sector_and_only_from_its_start():
    _, _, plain, _ = simulate_city(400, 3, "2024-06-01", "2025-05-31")
    _, _, drifted, _ = simulate_city(400, 3, "2024-06-01", "2025-05-31", drift=DRIFT)
    before = 9  # 2025-03 is the tenth month
    assert np.array_equal(plain[:, :before], drifted[:, :before], equal_nan=True)
    assert np.nanmean(drifted[:, before:]) > np.nanmean(plain[:, before:])


def test_drift_option_names_the_expected_form():
    assert Drift.parse("catering:2025-03-01:2") == DRIFT
    with pytest.raises(UsageError, match="SECTOR:YYYY-MM-DD:SHIFT"):
        Drift.parse("catering:2025-03-01")
    with pytest.raises(UsageError, match="sector must be one of"):
        Drift.parse("bakery:2025-03-01:1")


@pytest.fixture(scope="module")
def drifted_report():
    city = generate_city_frames(1500, 7, "2021-06-01", "2025-05-31", drift=DRIFT)
    tables = {name: city.tables.get(name, pl.DataFrame(schema=spec.schema)).lazy()
              .select([pl.col(c).cast(t) for c, t in spec.schema.items()])
              for name, spec in TABLES.items()}
    # Four fit months hold too few visits for the inspection target: the horizon target's model.
    fast = TrainConfig(target="horizon", max_rounds=40, early_stopping_rounds=10, min_data_in_leaf=50,
                       compare_selection=False, baselines=False, snapshots=4, test_snapshots=1)
    model = train_model(tables, date(2025, 1, 1), config=fast).model
    return build_report(tables, date(2025, 6, 1), 5, {}, {}, load_policy(None).monitor, model)


def sector_alerts(report, sector: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for alert in report.alerts:
        if alert["rule"] in ("psi_sector", "sector_shift") and alert["scope"].startswith(f"sector:{sector}:"):
            found.setdefault(alert["rule"], []).append(alert["scope"].rsplit(":", 1)[1])
    return found


def test_the_drifting_sector_is_caught_by_psi_and_its_rate_within_two_months(drifted_report):
    found = sector_alerts(drifted_report, "catering")
    assert min(found["psi_sector"]) <= "2025-05"
    assert min(found["sector_shift"]) <= "2025-05"


def test_nothing_is_flagged_before_the_drift_or_in_other_sectors(drifted_report):
    found = sector_alerts(drifted_report, "catering")
    assert all(m >= "2025-03" for months in found.values() for m in months)
    others = [a for a in drifted_report.alerts if a["rule"] in ("psi_sector", "sector_shift")
              and not a["scope"].startswith("sector:catering:")]
    assert others == []
