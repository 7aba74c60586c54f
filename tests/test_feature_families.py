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
    tables = {"complaints": pl.LazyFrame({"enterprise_id": ["E1"]})}  # no list_entries
    kept, left_out = usable_features(frame, names, tables, FEATURES)
    assert kept == ["complaints__count_90d"]
    assert left_out == {"family:lists": "table list_entries is absent"}


def test_a_family_whose_table_the_lake_holds_empty_is_named_once_not_column_by_column(tmp_path) -> None:
    """A lake keeps an empty frame for every table its source lacked (Boston: only enterprises and
    inspections); each such family is one line of train's output, not one per column."""
    from riskengine.lake.ingest import ingest
    from riskengine.lake.layout import load_tables

    source = tmp_path / "source"
    source.mkdir()
    pl.DataFrame({"enterprise_id": ["E1", "E2"], "status": ["active", "active"]}).write_csv(
        source / "enterprises.csv")
    pl.DataFrame({"inspection_id": ["I1"], "enterprise_id": ["E1"], "inspected_on": ["2024-03-01"],
                  "kind": ["random"], "outcome": ["fail"]}).write_csv(source / "inspections.csv")
    ingest(source, tmp_path / "lake", "any")
    tables = load_tables(tmp_path / "lake")
    names = [n for n, spec in FEATURES.items() if spec.family in ("complaints", "inspections")]
    frame = pl.DataFrame({n: [0, 1] for n in names})
    kept, left_out = usable_features(frame, names, tables, FEATURES)
    assert left_out == {"family:complaints": "table complaints is empty"}
    assert kept == [n for n in names if n.startswith("inspections__")]
