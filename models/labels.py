"""Training labels: an adverse outcome in [t, t + horizon) for monthly snapshots t (CONTRACT section 2).

An *adverse outcome* is a failed inspection, a failed sampling test, a ``moderate`` or ``serious``
penalty, a recall, a licence revoked (status ``revoked`` with ``status_changed_on`` in the window), a
serious-dishonest listing (``listed_on`` in the window) or a breached commitment (status ``breached``
with ``status_changed_on`` in the window).

The time rule binds labels too: a label is computed "as known at D", so every window must end by D
(t + horizon <= D) and an event counts only if both its date and its ``recorded_on`` (where present)
are before D. A penalty decided inside the window but entered on or after D was not known at D.

Besides the label, each row says whether the enterprise was *observed* in the window, because
outcomes exist only where someone looked (issue 4, selection bias): ``observed_random`` (a 双随机
random inspection happened), ``random_fail`` (one of them failed — the unbiased evaluation label),
``observed`` (any inspection or sampling test) and ``observed_kinds`` (which kinds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import polars as pl

from riskengine.core import timerule
from riskengine.core.errors import UsageError
from riskengine.core.timerule import add_months, month_start

LABEL_COLUMNS = ("label", "observed", "observed_random", "random_fail", "observed_kinds", "adverse_events")


def latest_snapshot(known_before: date, horizon_days: int) -> date:
    """The latest first-of-month t whose label window [t, t + horizon) ends by ``known_before``."""
    t = month_start(known_before - timedelta(days=horizon_days))
    return t


def monthly_snapshots(last: date, n: int) -> list[date]:
    """``n`` consecutive month starts ending at ``last`` (oldest first)."""
    if n < 1:
        raise UsageError(f"the number of snapshots must be a positive integer; got {n}.")
    return [add_months(month_start(last), -k) for k in range(n - 1, -1, -1)]


def outcome_events(tables: Mapping[str, pl.LazyFrame], known_before: date) -> pl.LazyFrame:
    """Every outcome-relevant event known before D, one row each.

    Columns: ``enterprise_id``, ``day``, ``adverse`` (counts for the label), ``kind`` (inspection kind,
    ``sampling``, ``penalty``, ``recall`` or ``licence``), ``looked`` (an inspection or test, i.e. an
    observation), ``random`` and ``random_fail``.
    """
    parts: list[pl.LazyFrame] = []
    if "inspections" in tables:
        parts.append(timerule.known_before(tables["inspections"], "inspected_on", known_before).select(
            "enterprise_id", pl.col("inspected_on").alias("day"),
            (pl.col("outcome") == "fail").alias("adverse"), pl.col("kind").cast(pl.String),
            pl.lit(True).alias("looked"), (pl.col("kind") == "random").alias("random"),
            ((pl.col("kind") == "random") & (pl.col("outcome") == "fail")).alias("random_fail")))
    if "sampling_tests" in tables:
        parts.append(timerule.known_before(tables["sampling_tests"], "sampled_on", known_before).select(
            "enterprise_id", pl.col("sampled_on").alias("day"), (pl.col("result") == "fail").alias("adverse"),
            pl.lit("sampling").alias("kind"), pl.lit(True).alias("looked"), pl.lit(False).alias("random"),
            pl.lit(False).alias("random_fail")))
    if "penalties" in tables:
        parts.append(timerule.known_before(tables["penalties"], "decided_on", known_before)
                     .filter(pl.col("severity").is_in(["moderate", "serious"])).select(
            "enterprise_id", pl.col("decided_on").alias("day"), pl.lit(True).alias("adverse"),
            pl.lit("penalty").alias("kind"), pl.lit(False).alias("looked"), pl.lit(False).alias("random"),
            pl.lit(False).alias("random_fail")))
    if "recalls" in tables:
        parts.append(timerule.known_before(tables["recalls"], "announced_on", known_before).select(
            "enterprise_id", pl.col("announced_on").alias("day"), pl.lit(True).alias("adverse"),
            pl.lit("recall").alias("kind"), pl.lit(False).alias("looked"), pl.lit(False).alias("random"),
            pl.lit(False).alias("random_fail")))
    if "licenses" in tables:
        # A revocation is dated by status_changed_on (the day the current status took effect).
        parts.append(timerule.known_before(tables["licenses"], "status_changed_on", known_before)
                     .filter(pl.col("status") == "revoked").select(
            "enterprise_id", pl.col("status_changed_on").alias("day"), pl.lit(True).alias("adverse"),
            pl.lit("licence").alias("kind"), pl.lit(False).alias("looked"), pl.lit(False).alias("random"),
            pl.lit(False).alias("random_fail")))
    if "list_entries" in tables:
        # CONTRACT section 2: a serious-dishonest listing is an adverse outcome (dated by its listing).
        parts.append(timerule.known_before(tables["list_entries"], "listed_on", known_before)
                     .filter(pl.col("list") == "serious_dishonest").select(
            "enterprise_id", pl.col("listed_on").alias("day"), pl.lit(True).alias("adverse"),
            pl.lit("listing").alias("kind"), pl.lit(False).alias("looked"), pl.lit(False).alias("random"),
            pl.lit(False).alias("random_fail")))
    if "commitments" in tables:
        # ... and so is a breached commitment, dated by the day the breach took effect.
        parts.append(timerule.known_before(tables["commitments"], "status_changed_on", known_before)
                     .filter(pl.col("status") == "breached").select(
            "enterprise_id", pl.col("status_changed_on").alias("day"), pl.lit(True).alias("adverse"),
            pl.lit("commitment").alias("kind"), pl.lit(False).alias("looked"), pl.lit(False).alias("random"),
            pl.lit(False).alias("random_fail")))
    schema = {"enterprise_id": pl.String, "day": pl.Date, "adverse": pl.Boolean, "kind": pl.String,
              "looked": pl.Boolean, "random": pl.Boolean, "random_fail": pl.Boolean}
    if not parts:
        return pl.LazyFrame(schema=schema)
    return pl.concat([p.select([pl.col(c).cast(t) for c, t in schema.items()]) for p in parts])


def build_labels(
    tables: Mapping[str, pl.LazyFrame],
    as_of: Sequence[date],
    *,
    known_before: date,
    horizon_days: int = 365,
) -> pl.LazyFrame:
    """Labels for every enterprise established before each snapshot t (the features' population).

    One row per (``enterprise_id``, ``as_of``) with ``label`` (adverse outcome in [t, t + horizon)),
    ``observed``, ``observed_random``, ``random_fail``, ``observed_kinds`` (sorted list) and
    ``adverse_events`` (count). Raises ``UsageError`` if a window would end after ``known_before``.
    """
    if horizon_days < 1:
        raise UsageError(f"horizon_days must be a positive integer; got {horizon_days}.")
    horizon = timedelta(days=horizon_days)
    late = [t for t in as_of if t + horizon > known_before]
    if late:
        raise UsageError(f"label window of snapshot {late[0]} ends {late[0] + horizon}, after the decision "
                         f"date {known_before}: labels may only use what was known before it")
    snaps = pl.LazyFrame({"as_of": sorted(set(as_of))}, schema={"as_of": pl.Date})
    population = (tables["enterprises"].select("enterprise_id", "established_on")
                  .join(snaps, how="cross").filter(pl.col("established_on") < pl.col("as_of"))
                  .select("enterprise_id", "as_of"))
    events = outcome_events(tables, known_before)
    windows_of = snaps.with_columns((pl.col("as_of") + pl.duration(days=horizon_days)).alias("window_end"))
    windows = (
        # A range join: each event meets exactly the snapshots whose window [t, t + horizon) holds it.
        events.join_where(windows_of, pl.col("day") >= pl.col("as_of"), pl.col("day") < pl.col("window_end"))
        .group_by("enterprise_id", "as_of")
        .agg(
            pl.col("adverse").any().alias("label"),
            pl.col("looked").any().alias("observed"),
            pl.col("random").any().alias("observed_random"),
            pl.col("random_fail").any().alias("random_fail"),
            pl.col("kind").filter(pl.col("looked")).unique().sort().alias("observed_kinds"),
            pl.col("adverse").sum().cast(pl.Int64).alias("adverse_events"),
        )
    )
    out = population.join(windows, on=["enterprise_id", "as_of"], how="left")
    return out.with_columns(
        *[pl.col(c).fill_null(False) for c in ("label", "observed", "observed_random", "random_fail")],
        pl.col("observed_kinds").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        pl.col("adverse_events").fill_null(0),
    ).sort("as_of", "enterprise_id")
