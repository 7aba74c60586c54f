"""A small hand-built lake for case tests, and a regrader that grades by the hard rules alone."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features import compute_features
from models.grading import apply_grading
from models.scoring import add_rule_columns
from riskengine.core.config import Settings
from riskengine.core.contract import GRADES_SCHEMA
from riskengine.lake.ingest import ingest
from riskengine.lake.layout import load_tables
from tests.ingest_helpers import uscc, write_csv

E1, E2, E3 = uscc(11), uscc(12), uscc(13)
EDGES = (400, 650, 850)


def firm(eid: str, district: str = "420106") -> dict[str, Any]:
    return {"enterprise_id": eid, "name": f"武汉{eid[-3:]}公司", "district": district, "sector": "retail",
            "established_on": "2015-01-01", "registered_capital": "100", "status": "active"}


def build_lake(root: Path) -> Path:
    """E1: a moderate penalty with a fine (2025-01-10); E2: on the abnormal-operation list since
    2025-03-01; E3: on the serious-dishonesty list since 2024-06-01 (district 420102)."""
    src = root / "src"
    write_csv(src, "enterprises", [firm(E1), firm(E2), firm(E3, "420102")])
    write_csv(src, "penalties", [{"case_id": "PEN-1", "enterprise_id": E1, "decided_on": "2025-01-10",
                                  "severity": "moderate", "fine_cny": "5000", "dishonest_list": "false"}])
    write_csv(src, "list_entries", [
        {"entry_id": "LST-2", "enterprise_id": E2, "list": "abnormal_operation",
         "reason": "unreachable_address", "listed_on": "2025-03-01", "removed_on": "", "removal_reason": ""},
        {"entry_id": "LST-3", "enterprise_id": E3, "list": "serious_dishonest", "reason": "serious_violation",
         "listed_on": "2024-06-01", "removed_on": "", "removal_reason": ""},
    ])
    lake = root / "lake"
    ingest(src, lake, ingest_day=date(2025, 12, 31))
    return lake


def rules_regrader(lake: Path, enterprise_id: str, as_of: date) -> pl.DataFrame:
    """The enterprise's grade as of ``as_of`` with a fixed low score: only the hard rules move it."""
    f = add_rule_columns(compute_features(load_tables(lake), [as_of]))
    f = f.filter(pl.col("enterprise_id") == enterprise_id)
    g = apply_grading(f["enterprise_id"], np.full(f.height, 100), f, edges=EDGES, hysteresis=0)
    return pl.DataFrame({
        "enterprise_id": f["enterprise_id"], "as_of": f["as_of"], "name": None,
        "district": f["profile__district"],
        "sector": f["profile__sector"], "probability": 0.01, "score": 100, "grade": g["grade"],
        "model_grade": g["model_grade"], "rule": g["rule"], "reasons": [[]] * f.height,
        "model_version": "rules-only",
    }).cast(GRADES_SCHEMA)  # type: ignore[arg-type]


def settings_for(root: Path) -> Settings:
    return Settings(home=root, store_path=root / "store.duckdb")
