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

from features.inspections import strictness_table
from riskengine.core import timerule
from riskengine.core.contract import adverse_inspection
from riskengine.core.errors import UsageError
from riskengine.core.timerule import add_months, exists, month_start

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
        adverse = adverse_inspection(tables["inspections"].collect_schema().names())
        parts.append(timerule.known_before(tables["inspections"], "inspected_on", known_before).select(
            "enterprise_id", pl.col("inspected_on").alias("day"),
            adverse.alias("adverse"), pl.col("kind").cast(pl.String),
            pl.lit(True).alias("looked"), (pl.col("kind") == "random").alias("random"),
            ((pl.col("kind") == "random") & adverse).alias("random_fail")))
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
        # The licence itself must be known too (issued and recorded before D), not only its status.
        known = timerule.known_before(tables["licenses"], "issued_on", known_before)
        parts.append(timerule.known_before(known, "status_changed_on", known_before)
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
        # The commitment itself must be known too (made and recorded before D), not only its breach.
        known = timerule.known_before(tables["commitments"], "made_on", known_before)
        parts.append(timerule.known_before(known, "status_changed_on", known_before)
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
                  .join(snaps, how="cross").filter(exists())
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


VISIT_KINDS = ("targeted", "complaint", "follow_up", "license", "sampling")
"""Visit kinds other than a random (双随机) inspection: one 0/1 nuisance column each (``visit__<kind>``)."""
VISIT_NUISANCE = (*(f"visit__{k}" for k in VISIT_KINDS), "visit__inspector_strictness")
"""Columns that describe the visit, not the enterprise: the model learns them from visit rows and
scores every enterprise at their neutral value 0 (a random visit by an average inspector)."""


def visit_rows(tables: Mapping[str, pl.LazyFrame], as_of: Sequence[date], *,
               known_before: date, window_months: int = 1) -> pl.LazyFrame:
    """The inspection-level target (issue 11): every inspection and sampling test known before D as
    its own row, labelled by what it found, keyed to the month start before it.

    Columns: ``enterprise_id``, ``as_of`` (the first of the visit's month, one of ``as_of``: features
    as of that day use only records before the visit), ``day``, ``label`` (an adverse inspection —
    failed or a critical finding — or a failed sampling test), the ``VISIT_NUISANCE`` columns, and
    ``observed``/``observed_random``/``random_fail`` so the evaluation populations work unchanged.
    With ``window_months`` W > 1 a visit is a row for each of the W month starts t with the visit in
    [t, t + W months): what a grade as of t says of the visits of the months it is used for.
    """
    snaps = pl.LazyFrame({"as_of": sorted(set(as_of))}, schema={"as_of": pl.Date})
    parts: list[pl.LazyFrame] = []
    if "inspections" in tables:
        insp = tables["inspections"]
        cols = insp.collect_schema().names()
        inspector = pl.col("inspector_id") if "inspector_id" in cols else pl.lit(None, pl.String)
        parts.append(timerule.known_before(insp, "inspected_on", known_before).select(
            "enterprise_id", pl.col("inspected_on").alias("day"), pl.col("kind").cast(pl.String),
            adverse_inspection(cols).alias("label"), inspector.alias("inspector_id")))
    if "sampling_tests" in tables:
        parts.append(timerule.known_before(tables["sampling_tests"], "sampled_on", known_before).select(
            "enterprise_id", pl.col("sampled_on").alias("day"), pl.lit("sampling").alias("kind"),
            (pl.col("result") == "fail").alias("label"), pl.lit(None, pl.String).alias("inspector_id")))
    schema = {"enterprise_id": pl.String, "day": pl.Date, "kind": pl.String, "label": pl.Boolean,
              "inspector_id": pl.String}
    if not parts:
        visits = pl.LazyFrame(schema=schema)
    else:
        visits = pl.concat([p.select([pl.col(c).cast(t) for c, t in schema.items()]) for p in parts])
    month = pl.col("day").dt.truncate("1mo")
    visits = (
        visits.with_columns(pl.concat_list([month.dt.offset_by(f"-{k}mo") for k in range(window_months)])
                            .alias("as_of"))
        .explode("as_of")
        .join(snaps, on="as_of")
    )
    strict = _inspector_strictness(tables, as_of)
    return (
        visits.join(strict, on=["inspector_id", "as_of"], how="left")
        .select(
            "enterprise_id", "as_of", "day", pl.col("label").fill_null(False),
            *[(pl.col("kind") == k).cast(pl.Float64).alias(f"visit__{k}") for k in VISIT_KINDS],
            pl.col("_strictness").fill_null(0.0).alias("visit__inspector_strictness"),
            pl.lit(True).alias("observed"), (pl.col("kind") == "random").alias("observed_random"),
            ((pl.col("kind") == "random") & pl.col("label").fill_null(False)).alias("random_fail"),
        )
        .sort("as_of", "enterprise_id", "day")
    )


def _inspector_strictness(tables: Mapping[str, pl.LazyFrame], as_of: Sequence[date]) -> pl.LazyFrame:
    """(inspector_id, as_of, _strictness) as the inspections feature family computes it."""
    empty = pl.LazyFrame(schema={"inspector_id": pl.String, "as_of": pl.Date, "_strictness": pl.Float64})
    if "inspections" not in tables or "inspector_id" not in tables["inspections"].collect_schema().names():
        return empty
    return strictness_table(tables["inspections"], as_of)


def first_visit_labels(tables: Mapping[str, pl.LazyFrame], as_of: Sequence[date], *, known_before: date,
                       window_days: int = 183) -> pl.LazyFrame:
    """The inspector's evaluation population: per snapshot t, every enterprise inspected in
    [t, t + window) (and before D), labelled by what its *first* inspection there found (the Boston
    task's label). Columns ``enterprise_id``, ``as_of``, ``first_visit_adverse``, ``first_visit_day``."""
    visits = visit_rows(tables, [add_months(month_start(d), k) for d in as_of for k in range(0, 8)],
                        known_before=known_before).filter(pl.col("visit__sampling") == 0)
    snaps = pl.LazyFrame({"as_of": sorted(set(as_of))}, schema={"as_of": pl.Date}).with_columns(
        (pl.col("as_of") + pl.duration(days=window_days)).alias("_end"))
    return (
        visits.select("enterprise_id", "day", "label")
        .join_where(snaps, pl.col("day") >= pl.col("as_of"), pl.col("day") < pl.col("_end"))
        .sort("enterprise_id", "as_of", "day", "label", descending=[False, False, False, True])
        .group_by("enterprise_id", "as_of", maintain_order=True)
        .agg(pl.col("label").first().alias("first_visit_adverse"),
             pl.col("day").first().alias("first_visit_day"))
    )


def design_weights(visits: pl.DataFrame, inclusion: pl.DataFrame | None) -> pl.Series:
    """Each visit row's design weight: 1 / π for a random (双随机) visit of an enterprise that a stored
    plan drew that month with inclusion probability π, scaled so that those rows keep their month's
    count (a Hájek weight: the draw's strata are re-balanced, no month outweighs another); 1 for every
    other row. ``inclusion``: ``enterprise_id``, ``month`` (first of the month), ``inclusion_probability``.
    """
    ones = pl.Series("design_weight", [1.0] * visits.height, dtype=pl.Float64)
    if inclusion is None or inclusion.is_empty() or visits.is_empty():
        return ones
    drawn = inclusion.filter(pl.col("inclusion_probability") > 0).group_by("enterprise_id", "month").agg(
        pl.col("inclusion_probability").max())
    weighted = (
        visits.select("enterprise_id", "observed_random", pl.col("day").dt.truncate("1mo").alias("month"))
        .with_row_index("_i")
        .join(drawn, on=["enterprise_id", "month"], how="left")
        .with_columns(pl.when(pl.col("observed_random")).then(1.0 / pl.col("inclusion_probability"))
                      .alias("_w"))
        .with_columns((pl.col("_w") / pl.col("_w").mean().over("month")).alias("_w"))
        .sort("_i")
    )
    return weighted.select(pl.col("_w").fill_null(1.0).alias("design_weight")).to_series()
