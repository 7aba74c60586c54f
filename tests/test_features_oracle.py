"""The Polars pipeline equals the plain-Python oracle on generated histories, and never looks ahead."""

from __future__ import annotations

import math
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import FEATURES, build_features
from tests.feature_histories import AS_OF, future_of, histories, to_lazy
from tests.feature_oracle import oracle_features

EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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


@EXAMPLES
@given(histories(), st.sampled_from(AS_OF), st.data())
def test_records_dated_or_recorded_on_or_after_as_of_change_nothing(tables, d, data):
    past, changed = future_of(tables, d, data)
    base = polars_features(tables, [d])
    assert mismatches(polars_features(past, [d]), base) == []
    assert mismatches(polars_features(changed, [d]), base) == []
