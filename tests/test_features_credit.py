"""Lists and commitments on small hand-built histories: point-in-time features, voids, hard rules."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl

from features import build_features
from models.grading import apply_grading
from models.labels import build_labels
from models.scoring import add_rule_columns
from tests.feature_histories import to_lazy

D = date(2025, 3, 1)
EDGES = (400, 650, 850)


def firm(eid: str) -> dict[str, Any]:
    return {"enterprise_id": eid, "name": None, "district": "420106", "sector": "retail",
            "industry_code": None, "established_on": date(2015, 1, 1), "registered_capital": 100.0,
            "legal_rep_id": None, "status": "active"}


def listing(entry: str, eid: str, lst: str, listed: date, removed: date | None = None,
            recorded: date | None = None) -> dict[str, Any]:
    return {"entry_id": entry, "enterprise_id": eid, "list": lst, "reason": None, "listed_on": listed,
            "removed_on": removed, "removal_reason": "rectified" if removed else None,
            "recorded_on": recorded}


def pledge(cid: str, eid: str, kind: str, made: date, status: str = "open", changed: date | None = None,
           due: date | None = None) -> dict[str, Any]:
    return {"commitment_id": cid, "enterprise_id": eid, "kind": kind, "made_on": made, "due_on": due,
            "status": status, "status_changed_on": changed, "recorded_on": None}


def features(tables: dict[str, list[dict]], *as_of: date) -> dict[tuple[str, date], dict[str, Any]]:
    frame = build_features(to_lazy(tables), list(as_of) or [D]).collect()
    return {(r["enterprise_id"], r["as_of"]): r for r in frame.iter_rows(named=True)}


def grades(tables: dict[str, list[dict]], score: int = 100) -> dict[str, str]:
    """Grade every enterprise as of D with the same model score: only hard rules differ."""
    frame = add_rule_columns(build_features(to_lazy(tables), [D]).collect())
    out = apply_grading(frame["enterprise_id"], np.full(frame.height, score), frame, edges=EDGES,
                        hysteresis=0)
    return dict(zip(frame["enterprise_id"], out["grade"], strict=True))


def test_a_listing_counts_from_the_day_after_it_and_through_its_removal_day() -> None:
    t = {"enterprises": [firm("E1")],
         "list_entries": [listing("L1", "E1", "abnormal_operation", date(2024, 3, 1), removed=D)]}
    f = features(t, date(2024, 3, 1), date(2024, 3, 2), D, date(2025, 3, 2))
    assert [f[("E1", d)]["lists__abnormal_now"] for d in (date(2024, 3, 1), date(2024, 3, 2), D,
                                                            date(2025, 3, 2))] == [0, 1, 1, 0]
    assert f[("E1", D)]["lists__days_listed"] == 365
    assert f[("E1", date(2025, 3, 2))]["lists__days_listed"] is None  # off the list
    assert f[("E1", date(2025, 3, 2))]["lists__listings_1095d"] == 1  # but listed in the last 3 years


def test_a_late_recorded_listing_counts_only_once_recorded() -> None:
    t = {"enterprises": [firm("E1")],
         "list_entries": [listing("L1", "E1", "serious_dishonest", date(2025, 1, 10), recorded=D)]}
    f = features(t, D, date(2025, 3, 2))
    assert f[("E1", D)]["lists__serious_now"] == 0
    assert f[("E1", date(2025, 3, 2))]["lists__serious_now"] == 1


def test_listings_by_list_and_in_three_years() -> None:
    t = {"enterprises": [firm("E1")], "list_entries": [
        listing("L1", "E1", "abnormal_operation", date(2021, 7, 10)),  # open for 3 years and more
        listing("L2", "E1", "abnormal_operation", date(2022, 7, 10), removed=date(2022, 9, 1)),
        listing("L3", "E1", "serious_dishonest", date(2024, 7, 10)),
    ]}
    f = features(t)[("E1", D)]
    assert (f["lists__abnormal_now"], f["lists__serious_now"], f["lists__listed_now"]) == (1, 1, 2)
    assert f["lists__abnormal_days_listed"] == (D - date(2021, 7, 10)).days
    assert (f["lists__listings_1095d"], f["lists__serious_1095d"]) == (2, 1)


def test_commitments_open_breached_and_due() -> None:
    t = {"enterprises": [firm("E1")], "commitments": [
        pledge("K1", "E1", "notification", date(2024, 6, 1), "breached", date(2024, 9, 1),
               due=date(2024, 12, 1)),
        pledge("K2", "E1", "repair", date(2025, 1, 5), due=date(2025, 3, 20)),
        pledge("K3", "E1", "sector", date(2024, 1, 5), "kept", D),  # kept on D: still open as of D
        pledge("K4", "E1", "notification", date(2023, 1, 5), "breached", date(2023, 5, 1)),
    ]}
    f = features(t)[("E1", D)]
    assert (f["commitments__open"], f["commitments__breached"]) == (2, 2)
    assert (f["commitments__breached_365d"], f["commitments__notification_breached_365d"]) == (1, 1)
    assert f["commitments__days_to_due"] == 19


def test_lists_and_commitments_set_grades_by_their_rules() -> None:
    t = {"enterprises": [firm(e) for e in ("E0", "E1", "E2", "E3", "E4", "E5")],
         "list_entries": [
             listing("L1", "E1", "serious_dishonest", date(2024, 5, 1)),
             listing("L2", "E2", "abnormal_operation", date(2024, 5, 1)),
             listing("L3", "E3", "abnormal_operation", date(2023, 5, 1), removed=date(2024, 1, 1)),
         ],
         "commitments": [
             pledge("K1", "E4", "notification", date(2024, 4, 1), "breached", date(2024, 6, 1)),
             pledge("K2", "E5", "notification", date(2023, 1, 1), "breached", date(2023, 6, 1)),  # > 1 year
         ]}
    assert grades(t) == {"E0": "A", "E1": "D", "E2": "C", "E3": "A", "E4": "C", "E5": "A"}


def test_a_void_removes_a_record_from_the_day_after_it() -> None:
    t = {"enterprises": [firm("E1")],
         "list_entries": [listing("L1", "E1", "serious_dishonest", date(2024, 5, 1))],
         "record_voids": [{"void_id": "V1", "enterprise_id": "E1", "record_table": "list_entries",
                           "record_id": "L1", "voided_on": D, "case_id": "OBJ-1", "reason": None,
                           "recorded_on": D}]}
    f = features(t, D, date(2025, 3, 2))
    assert f[("E1", D)]["lists__serious_now"] == 1  # as of the void's own day it still counts
    assert f[("E1", date(2025, 3, 2))]["lists__serious_now"] == 0
    assert f[("E1", date(2025, 3, 2))]["lists__listings_1095d"] == 0
    assert grades(t) == {"E1": "D"}
    t["record_voids"][0] |= {"voided_on": date(2025, 2, 1), "recorded_on": date(2025, 2, 1)}
    assert grades(t) == {"E1": "A"}


def test_serious_listings_and_breaches_are_adverse_outcomes_in_the_label() -> None:
    t = {"enterprises": [firm("E1"), firm("E2"), firm("E3")],
         "list_entries": [listing("L1", "E1", "serious_dishonest", date(2024, 5, 1)),
                          listing("L2", "E3", "abnormal_operation", date(2024, 5, 1))],
         "commitments": [pledge("K1", "E2", "repair", date(2024, 1, 1), "breached", date(2024, 6, 1))]}
    labels = build_labels(to_lazy(t), [date(2024, 1, 1)], known_before=D).collect()
    assert dict(zip(labels["enterprise_id"], labels["label"], strict=True)) == {
        "E1": True, "E2": True, "E3": False}
    assert labels.schema["label"] == pl.Boolean


def test_a_removal_record_ends_a_listing_once_it_is_visible() -> None:
    t = {"enterprises": [firm("E1")],
         "list_entries": [listing("L1", "E1", "abnormal_operation", date(2024, 5, 1))],
         "list_removals": [{"removal_id": "X1", "entry_id": "L1", "removed_on": date(2025, 2, 1),
                            "removal_reason": "credit_repair", "recorded_on": D}]}
    f = features(t, D, date(2025, 3, 2))
    assert f[("E1", D)]["lists__abnormal_now"] == 1  # recorded on D: not known as of D
    assert f[("E1", date(2025, 3, 2))]["lists__abnormal_now"] == 0
