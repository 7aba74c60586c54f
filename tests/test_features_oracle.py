"""The Polars pipeline equals the plain-Python oracle on generated histories, and never looks ahead."""

from __future__ import annotations

import copy
import math
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import FEATURES, build_features
from tests.feature_histories import AS_OF, histories, to_lazy
from tests.feature_oracle import oracle_features

EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EVENT_DATES = {
    "inspections": "inspected_on",
    "sampling_tests": "sampled_on",
    "penalties": "decided_on",
    "recalls": "announced_on",
    "complaints": "received_on",
    "licenses": "issued_on",
    "credit_repairs": "repaired_on",
    "list_entries": "listed_on",
    "list_removals": "removed_on",
    "commitments": "made_on",
    "record_voids": "voided_on",
}


def same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]
    return a == b


def polars_features(tables: dict, as_of: list[date]) -> dict[tuple[str, date], dict]:
    frame = build_features(to_lazy(tables), as_of).collect()
    return {(r["enterprise_id"], r["as_of"]): r for r in frame.iter_rows(named=True)}


def mismatches(got: dict, want: dict) -> list[str]:
    problems = []
    if set(got) != set(want):
        problems.append(f"rows differ: pipeline {sorted(got)} vs oracle {sorted(want)}")
    for key in set(got) & set(want):
        for name in FEATURES:
            if not same(got[key][name], want[key][name]):
                problems.append(f"{key} {name}: pipeline {got[key][name]!r} vs oracle {want[key][name]!r}")
    return problems


@EXAMPLES
@given(histories())
def test_every_feature_equals_the_plain_python_oracle(tables):
    assert mismatches(polars_features(tables, AS_OF), oracle_features(tables, AS_OF)) == []


def invisible(row: dict, table: str, d: date) -> bool:
    """A record the bureau could not know before D: dated or recorded on or after D."""
    when = row[EVENT_DATES[table]]
    rec = row.get("recorded_on")
    return when >= d or (rec is not None and rec >= d)


def future_of(tables: dict, d: date, data: st.DataObject) -> tuple[dict, dict]:
    """(tables without anything dated on or after D, tables with those records changed)."""
    past = copy.deepcopy(tables)
    changed = copy.deepcopy(tables)
    for table in EVENT_DATES:
        past[table] = [r for r in tables[table] if not invisible(r, table, d)]
        for row in changed[table]:
            if invisible(row, table, d):
                row[EVENT_DATES[table]] = d + timedelta(days=data.draw(st.integers(0, 400)))
                if table == "inspections":
                    row["outcome"] = data.draw(st.sampled_from(["pass", "conditional", "fail"]))
                if table == "penalties":
                    row["severity"] = data.draw(st.sampled_from(["minor", "moderate", "serious"]))
                    row["dishonest_list"] = data.draw(st.booleans())
            elif table == "licenses" and row["status_changed_on"] >= d:
                # The licence is known, but its current status took effect on or after D.
                row["status"] = data.draw(st.sampled_from(["valid", "suspended", "revoked", "expired"]))
            elif table == "commitments" and (row["status_changed_on"] or date.min) >= d:
                row["status"] = data.draw(st.sampled_from(["kept", "breached"]))
            elif table == "list_entries" and row["removed_on"] is not None and row["removed_on"] >= d:
                # Removed on or after D: still listed as of D, whatever the day.
                row["removed_on"] = d + timedelta(days=data.draw(st.integers(0, 400)))
        if data.draw(st.booleans()):  # a brand-new record dated on D
            extra = copy.deepcopy(data.draw(st.sampled_from(tables[table]))) if tables[table] else None
            if extra is not None:
                extra[EVENT_DATES[table]] = d
                changed[table].append(
                    extra
                    | {
                        k: f"{v}-new"
                        for k, v in extra.items()
                        if k.endswith("_id") and k not in ("enterprise_id", "case_id", "inspector_id")
                    }
                )
    # A new enterprise established on D (with no records) is not there as of D either.
    changed["enterprises"].append(tables["enterprises"][0] | {"enterprise_id": "E9", "established_on": d})
    return past, changed


@EXAMPLES
@given(histories(), st.sampled_from(AS_OF), st.data())
def test_records_dated_or_recorded_on_or_after_as_of_change_nothing(tables, d, data):
    past, changed = future_of(tables, d, data)
    base = polars_features(tables, [d])
    assert mismatches(polars_features(past, [d]), base) == []
    assert mismatches(polars_features(changed, [d]), base) == []
