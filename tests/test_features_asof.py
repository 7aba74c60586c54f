"""The running-value machinery of ``features.asof``, against plain Python on generated groups."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from features import asof

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def running_max(groups: list[int], values: list[int | None]) -> list[int | None]:
    out: list[int | None] = []
    best: int | None = None
    for i, (g, v) in enumerate(zip(groups, values, strict=True)):
        if i == 0 or g != groups[i - 1]:
            best = None
        if v is not None and (best is None or v > best):
            best = v
        out.append(best)
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.none() | INT64), max_size=40))
def test_segmented_running_max_restarts_per_group_and_keeps_64_bit_values(rows):
    rows = sorted(rows, key=lambda r: r[0])
    groups = [g for g, _ in rows]
    values = [v for _, v in rows]
    frame = pl.DataFrame({"g": groups, "v": values}, schema={"g": pl.Int64, "v": pl.Int64})
    start = pl.col("g").ne_missing(pl.col("g").shift(1))
    got = frame.select(asof._segmented_cum_max("v", pl.Int64, start)).to_series().to_list()
    assert got == running_max(groups, values)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 60), st.none() | INT64), max_size=30))
def test_running_gives_every_as_of_the_sum_and_max_of_what_was_visible(events):
    dates = [date(2024, 1, 1) + timedelta(days=d) for d in (5, 20, 21, 50)]
    frame = pl.DataFrame(
        {
            "enterprise_id": [e for e, _, _ in events],
            "on": [date(2024, 1, 1) + timedelta(days=d) for _, d, _ in events],
            "recorded_on": [None] * len(events),
            "v": [v for _, _, v in events],
        },
        schema={"enterprise_id": pl.Int64, "on": pl.Date, "recorded_on": pl.Date, "v": pl.Int64},
    )
    got = asof.running(
        frame.lazy(), "on", dates, "enterprise_id", sums={"n": pl.lit(1)}, maxes={"top": pl.col("v")}
    ).collect()
    expected = {}
    for e in {e for e, _, _ in events}:
        for d in dates:
            seen = [(on, v) for k, on, v in zip(frame["enterprise_id"], frame["on"], frame["v"], strict=True)
                    if k == e and on < d]
            if seen:
                tops = [v for _, v in seen if v is not None]
                expected[(e, d)] = (len(seen), max(tops) if tops else None)
    rows = {(r["enterprise_id"], r["as_of"]): (r["n"], r["top"]) for r in got.iter_rows(named=True)}
    assert rows == expected
    assert got.height == len(expected)
