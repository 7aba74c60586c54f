"""The family registry (features.families): what build.py loops over, training and the oracle follow it."""

from __future__ import annotations

import polars as pl

from features import FAMILIES, FEATURES
from models.rolling_origin import usable_features
from riskengine.core.contract import TABLES
from tests.feature_oracle import ORACLES


def test_every_registered_family_has_catalog_columns_a_contract_table_and_an_oracle() -> None:
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    for family in FAMILIES:
        assert any(spec.family == family.name for spec in FEATURES.values()), family.name
        assert family.table is None or family.table in TABLES, family.table
        assert family.name in ORACLES, family.name


def test_a_family_whose_table_the_lake_lacks_is_left_out_and_named() -> None:
    names = ["lists__listed_now", "complaints__count_90d"]
    frame = pl.DataFrame({"lists__listed_now": [0, 1, 2], "complaints__count_90d": [0, 1, 2]})
    tables = {"complaints": pl.LazyFrame()}  # no list_entries
    kept, left_out = usable_features(frame, names, tables, FEATURES)
    assert kept == ["complaints__count_90d"]
    assert left_out == {"family:lists": "table list_entries is absent"}
