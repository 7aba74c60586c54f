"""The synthetic city's credit lists and credit commitments (CONTRACT section 1: ``list_entries``,
``commitments``), drawn after the monthly simulation from its latent risk and its events.

* **Abnormal-operation listings (经营异常名录)**: each July, enterprises that did not file last
  year's annual report by 30 June (``annual_report_missing``), and through the year enterprises no
  longer reachable at their registered address (``unreachable_address``); both far more likely for
  risky enterprises. About three in four are removed within a year after rectification (some later);
  an entry still open three years after listing moves to the serious list (``moved_to_serious``).
* **Serious-dishonesty listings (严重违法失信名单)**: the penalties flagged ``dishonest_list`` (listed
  when decided; off the list after three years or earlier by a credit repair) and the abnormal
  listings moved after three years. Far fewer than abnormal listings.
* **Commitments (信用承诺)**: a notification commitment (告知承诺) on about a third of licences at
  issue, due in three to six months and *breached* when an inspection in that time fails (the
  verification visit finds the promise was not true); a ``repair`` commitment (守信承诺) with every
  credit repair, due a year later and breached by a new moderate or serious penalty; a ``sector``
  pledge by most pilot-sector enterprises, breached by a failed supervisory sampling test.

A generator of its own (seeded from the city's seed) draws all of it, so the other tables of a city
stay byte for byte what they were before lists and commitments existed.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

D64 = "datetime64[D]"
_DAY = np.timedelta64(1, "D")
_STREAM = 13  # the generator of this module: np.random.default_rng([seed, _STREAM])

# Yearly chance of each abnormal listing at an ordinary latent risk p_fail of 7 % (scaled by p / 7 %).
ANNUAL_REPORT_MISSING = 0.025
UNREACHABLE_ADDRESS = 0.010
RECTIFIED_IN_A_YEAR = 0.75  # removed within a year after rectification
RECTIFIED_LATER = 0.45  # of the rest, removed in the second or third year
NOTIFICATION_SHARE = 0.35  # licences granted on a notification commitment
SECTOR_PLEDGE_SHARE = 0.6  # pilot-sector enterprises that signed the sector's pledge
PILOT = ("wire_cable", "fire_products", "food_related")


def _ids(prefix: str, days: np.ndarray) -> pl.Series:
    """Sequential ids like ``LST-2023-00000042`` (rows already sorted by date)."""
    years = days.astype("datetime64[Y]").astype(int) + 1970
    seq = np.arange(1, len(days) + 1)
    return pl.DataFrame({"y": years, "s": seq}).select(
        pl.format(prefix + "-{}-{}", pl.col("y"), pl.col("s").cast(pl.String).str.zfill(8))).to_series()


def _recorded(rng: np.random.Generator, days: np.ndarray, late_share: float, late_max: int) -> np.ndarray:
    k = len(days)
    lag = np.where(rng.random(k) < late_share, rng.integers(7, late_max, k), rng.integers(0, 3, k))
    return days + lag.astype("timedelta64[D]")


def _plus_years(days: np.ndarray, years: int) -> np.ndarray:
    """The same calendar day ``years`` later (29 February → 1 March)."""
    months = days.astype("datetime64[M]")
    return (months + 12 * years).astype(D64) + (days - months.astype(D64))


def _index_of(ids: np.ndarray, column: pl.Series) -> np.ndarray:
    """Row index in ``ids`` of each enterprise id of ``column`` (every id must be there)."""
    lookup = pl.DataFrame({"enterprise_id": ids, "_i": np.arange(len(ids))})
    frame = pl.DataFrame({"enterprise_id": column.cast(pl.String)})
    return frame.join(lookup, on="enterprise_id", how="left", maintain_order="left")["_i"].to_numpy()


def _yearly_risk(truth: np.ndarray, start: date, end: date) -> tuple[list[int], np.ndarray]:
    """Calendar years of the period and each enterprise's mean p_fail in each (NaN: did not exist)."""
    month0 = np.datetime64(start, "M")
    months = month0 + np.arange(truth.shape[1])
    years = sorted({int(y) + 1970 for y in months.astype("datetime64[Y]").astype(int)})
    out = np.full((truth.shape[0], len(years)), np.nan, dtype=np.float32)
    year_of = months.astype("datetime64[Y]").astype(int) + 1970
    for j, y in enumerate(years):
        block = truth[:, year_of == y]
        counts = (~np.isnan(block)).sum(axis=1)
        sums = np.nansum(block, axis=1)
        out[:, j] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return years, out


def list_entries(rng: np.random.Generator, ids: np.ndarray, truth: np.ndarray, start: date, end: date,
                 penalties: pl.DataFrame, repairs: pl.DataFrame) -> pl.DataFrame:
    """Abnormal-operation and serious-dishonesty list entries (see the module docstring)."""
    first, last = np.datetime64(start, "D"), np.datetime64(end, "D")
    years, risk = _yearly_risk(truth, start, end)
    ent: list[np.ndarray] = []
    day: list[np.ndarray] = []
    why: list[np.ndarray] = []
    open_until = np.full(len(ids), first - _DAY, dtype=D64)  # no new abnormal listing while one is open
    for j, y in enumerate(years):
        p = risk[:, j]
        exists = ~np.isnan(p)
        scale = np.where(exists, np.nan_to_num(p) / 0.07, 0.0)
        # Annual reports for the year before are due by 30 June; listings follow in July.
        july = np.datetime64(f"{y}-07-01")
        e = np.nonzero(exists & (rng.random(len(ids)) < np.minimum(ANNUAL_REPORT_MISSING * scale, 0.5)))[0]
        d = july + rng.integers(0, 31, len(e)).astype("timedelta64[D]")
        free = open_until[e] < d
        e, d = e[free], d[free]
        ent.append(e)
        day.append(d)
        why.append(np.full(len(e), 0, np.int8))
        open_until[e] = d + 365
        # Unreachable at the registered address: any day of the year.
        e = np.nonzero(exists & (rng.random(len(ids)) < np.minimum(UNREACHABLE_ADDRESS * scale, 0.3)))[0]
        d = np.datetime64(f"{y}-01-01") + rng.integers(0, 365, len(e)).astype("timedelta64[D]")
        free = open_until[e] < d
        e, d = e[free], d[free]
        ent.append(e)
        day.append(d)
        why.append(np.full(len(e), 1, np.int8))
        open_until[e] = d + 365
    e, listed, reason = np.concatenate(ent), np.concatenate(day).astype(D64), np.concatenate(why)
    keep = (listed >= first) & (listed <= last)
    e, listed, reason = e[keep], listed[keep], reason[keep]
    k = len(e)
    # Removal after rectification: three in four within a year, some more in the next two years.
    u = rng.random(k)
    lag = np.where(u < RECTIFIED_IN_A_YEAR, rng.integers(10, 366, k),
                   np.where(u < RECTIFIED_IN_A_YEAR + (1 - RECTIFIED_IN_A_YEAR) * RECTIFIED_LATER,
                            rng.integers(366, 3 * 365 - 5, k), -1))
    three_years = _plus_years(listed, 3)
    removed = np.where(lag >= 0, listed + lag.astype("timedelta64[D]"), three_years)
    removal = np.where(lag >= 0, "rectified", "moved_to_serious")
    moved = (lag < 0) & (three_years <= last)
    abnormal = pl.DataFrame({
        "e": e, "list": "abnormal_operation",
        "reason": np.array(["annual_report_missing", "unreachable_address"])[reason],
        "listed_on": listed, "removed_on": removed, "removal_reason": removal,
    })
    # Serious list: abnormal entries still open after three years ...
    moved_on = three_years[moved]
    from_abnormal = pl.DataFrame({
        "e": e[moved], "list": "serious_dishonest", "reason": "abnormal_operation_3_years",
        "listed_on": moved_on, "removed_on": _plus_years(moved_on, 3), "removal_reason": "expired",
    })
    # ... and penalties that put the enterprise on it (lifted by a credit repair, else after 3 years).
    dis = penalties.filter(pl.col("dishonest_list")).join(
        repairs.group_by("case_id").agg(pl.col("repaired_on").min()), on="case_id", how="left")
    decided = dis["decided_on"].to_numpy().astype(D64)
    repaired = dis["repaired_on"].to_numpy().astype(D64)
    expires = _plus_years(decided, 3)
    by_repair = ~np.isnat(repaired) & (repaired < expires)
    from_penalty = pl.DataFrame({
        "e": _index_of(ids, dis["enterprise_id"]), "list": "serious_dishonest",
        "reason": "serious_violation", "listed_on": decided,
        "removed_on": np.where(by_repair, repaired, expires),
        "removal_reason": np.where(by_repair, "credit_repair", "expired"),
    })
    frame = pl.concat([abnormal, from_abnormal, from_penalty], how="vertical_relaxed")
    frame = frame.with_columns(pl.col("e").cast(pl.Int64))
    # Whatever happens after the end of the period has not happened yet.
    gone = pl.col("removed_on") > pl.lit(end)
    frame = frame.with_columns(
        pl.when(gone).then(None).otherwise(pl.col("removed_on")).alias("removed_on"),
        pl.when(gone).then(None).otherwise(pl.col("removal_reason")).alias("removal_reason"),
    ).sort("listed_on", "e", maintain_order=True)
    days = frame["listed_on"].to_numpy().astype(D64)
    return pl.DataFrame({
        "entry_id": _ids("LST", days),
        "enterprise_id": pl.Series(ids).gather(frame["e"]),
        "list": frame["list"],
        "reason": frame["reason"],
        "listed_on": frame["listed_on"],
        "removed_on": frame["removed_on"],
        "removal_reason": frame["removal_reason"],
        "recorded_on": _recorded(rng, days, 0.1, 30),
    })


def _first_between(events: pl.DataFrame, day_col: str, spans: pl.DataFrame) -> pl.Series:
    """For each span (row index ``_r``, enterprise ``enterprise_id``, [``_from``, ``_to``]), the first
    event day of that enterprise inside it (null if none)."""
    hits = (
        spans.join(events.select(pl.col("enterprise_id").cast(pl.String), pl.col(day_col).alias("_d")),
                   on="enterprise_id")
        .filter((pl.col("_d") >= pl.col("_from")) & (pl.col("_d") <= pl.col("_to")))
        .group_by("_r").agg(pl.col("_d").min())
    )
    return spans.select("_r").join(hits, on="_r", how="left", maintain_order="left")["_d"]


def commitments(rng: np.random.Generator, end: date, enterprises: pl.DataFrame, licenses: pl.DataFrame,
                inspections: pl.DataFrame, penalties: pl.DataFrame, repairs: pl.DataFrame,
                sampling: pl.DataFrame, start: date) -> pl.DataFrame:
    """Notification, repair and sector commitments with their fate (see the module docstring)."""
    # Notification commitments: a share of licences granted on a promise, due in 3-6 months.
    lic = licenses.filter(pl.Series(rng.random(licenses.height) < NOTIFICATION_SHARE))
    made = lic["issued_on"].to_numpy().astype(D64)
    notification = pl.DataFrame({
        "enterprise_id": lic["enterprise_id"], "made_on": made, "kind": "notification",
        "due_on": made + rng.integers(90, 184, lic.height).astype("timedelta64[D]"),
    })
    failed = inspections.filter(pl.col("outcome") == "fail")
    # Repair commitments (守信承诺): signed with each credit-repair application, kept for a year.
    rep = repairs.join(penalties.select("case_id", "enterprise_id"), on="case_id", how="inner")
    r_lag = rng.integers(3, 21, rep.height).astype("timedelta64[D]")
    r_made = rep["repaired_on"].to_numpy().astype(D64) - r_lag
    repair = pl.DataFrame({
        "enterprise_id": rep["enterprise_id"], "made_on": r_made, "kind": "repair",
        "due_on": _plus_years(r_made, 1),
    })
    new_penalty = penalties.filter(pl.col("severity").is_in(["moderate", "serious"]))
    # Sector pledges (行业自律承诺) in the pilot sectors, signed in a campaign in the period's first year.
    pilot = enterprises.filter(pl.col("sector").is_in(list(PILOT))
                               & (pl.col("established_on") < pl.lit(start)))
    pilot = pilot.filter(pl.Series(rng.random(pilot.height) < SECTOR_PLEDGE_SHARE))
    s_made = np.datetime64(start, "D") + rng.integers(30, 200, pilot.height).astype("timedelta64[D]")
    sector = pl.DataFrame({
        "enterprise_id": pilot["enterprise_id"], "made_on": s_made, "kind": "sector",
        "due_on": pl.Series([None] * pilot.height, dtype=pl.Date),
    })
    failed_tests = sampling.filter(pl.col("result") == "fail")

    parts = []
    far = pl.lit(date(9999, 12, 31))
    for frame, breaches, day_col in ((notification, failed, "inspected_on"),
                                     (repair, new_penalty, "decided_on"),
                                     (sector, failed_tests, "sampled_on")):
        frame = frame.with_columns(pl.col("enterprise_id").cast(pl.String), pl.col("made_on").cast(pl.Date),
                                   pl.col("due_on").cast(pl.Date))
        spans = frame.with_row_index("_r").select(
            "_r", "enterprise_id", pl.col("made_on").alias("_from"),
            pl.coalesce(pl.col("due_on"), far).alias("_to"))
        found = _first_between(breaches, day_col, spans)
        parts.append(frame.with_columns(found.alias("_breach")))
    out = pl.concat(parts, how="vertical_relaxed").filter(pl.col("made_on").is_between(start, end))
    breached = pl.col("_breach").is_not_null() & (pl.col("_breach") <= pl.lit(end))
    kept = ~breached & pl.col("due_on").is_not_null() & (pl.col("due_on") <= pl.lit(end))
    out = out.with_columns(
        pl.when(breached).then(pl.lit("breached")).when(kept).then(pl.lit("kept")).otherwise(pl.lit("open"))
        .alias("status"),
        pl.when(breached).then(pl.col("_breach")).when(kept).then(pl.col("due_on"))
        .alias("status_changed_on"),
    ).sort("made_on", "enterprise_id", maintain_order=True)
    days = out["made_on"].to_numpy().astype(D64)
    return out.select(
        _ids("CMT", days).alias("commitment_id"), "enterprise_id", "made_on", "kind", "due_on", "status",
        "status_changed_on", pl.Series("recorded_on", _recorded(rng, days, 0.05, 20)),
    )


def credit_tables(tables: dict[str, pl.DataFrame], ids: np.ndarray, truth: np.ndarray, start: date,
                  end: date, seed: int) -> dict[str, pl.DataFrame]:
    """``list_entries`` and ``commitments`` for a simulated city."""
    rng = np.random.default_rng([seed, _STREAM])
    entries = list_entries(rng, ids, truth, start, end, tables["penalties"], tables["credit_repairs"])
    pledges = commitments(rng, end, tables["enterprises"], tables["licenses"], tables["inspections"],
                          tables["penalties"], tables["credit_repairs"], tables["sampling_tests"], start)
    return {"list_entries": entries, "commitments": pledges}
