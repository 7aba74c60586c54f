"""The monthly 双随机 inspection plan: mandatory items first, then a stratified random draw.

Rules (issue 5), per district, for the period = the month starting at ``as_of``
(``[as_of, as_of + 1 month)``; with ``as_of`` on the 1st this is one calendar month):

1. *Mandatory* items, ranked by risk (score, highest first):
   - follow-up of a failure: the enterprise's latest inspection before ``as_of`` was ``fail`` or
     ``conditional`` and lies in the previous period ``[as_of - 1 month, as_of)`` (nobody has been
     back since);
   - open complaint lead: a complaint received in the previous period that was not found
     unsubstantiated (``substantiated`` true or unknown) and with no inspection of the enterprise
     on or after the day it was received;
   - minimum frequency due: fewer inspections in the 12 months ending at the period's end,
     ``[period_end - 12 months, as_of)``, than the stratum's ``min_per_year`` — that is, unless it
     is inspected this period the enterprise would break its minimum over a rolling 12 months.
   - carried over: a mandatory item of the previous period's plan that was listed
     ``over_capacity`` and whose enterprise has not been inspected since that period began (so a
     shortfall never quietly drops a follow-up or lead: it comes back every month until visited).
   When capacity is short, the lowest-ranked items stay in the plan with status ``over_capacity``
   (never dropped silently) and the shortfall is reported in ``meta``.
2. The *双随机 draw* over the remaining capacity: every other graded enterprise of the district is
   in a stratum grade x sector; its monthly inclusion probability is the policy's annual ratio / 12,
   scaled by one factor (capped at 1) so the expected draw equals the remaining capacity. Stratum
   sizes are rounded by systematic sampling with a random start (so each stratum's expected size is
   exact and the total is the capacity), then a simple random sample is drawn within each stratum:
   every enterprise of a stratum has the same, positive chance (``inclusion_probability``), so
   random outcomes can be reweighted without bias for retraining.
3. An inspector for every scheduled visit, drawn at random from the district's pool (the inspectors
   of the district's inspections in the last 365 days, or a given list), never the enterprise's last
   inspector, always one of the least-loaded eligible inspectors (load balanced).

Every random choice comes from ``numpy.random.SeedSequence([seed, crc32(district)])``, so the same
seed, policy, grades and lake give the same plan.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from riskengine.core import exports
from riskengine.core.contract import DISTRICT_NAMES, GRADES, PLAN_SCHEMA, STATUS_OVER, STATUS_SCHEDULED
from riskengine.core.errors import FatalInputError, UsageError
from riskengine.core.timerule import period_label, period_of
from riskengine.lake.layout import table_of
from riskengine.supervision.capacity import (
    MIN_ANNUAL_PROBABILITY,
    POLICY_CAPACITY,
    capacity_for_policy,
    resolve_capacity,
)
from riskengine.supervision.draw import inclusion_probabilities, stratified_draw
from riskengine.supervision.inspectors import POOL_DAYS, assign_inspectors, inspector_pools, last_inspectors
from riskengine.supervision.mandatory import CarryOver, mandatory_items
from riskengine.supervision.policy import Policy

# Urgent mandatory items (follow-ups, complaint leads) are due within two weeks of the period start;
# everything else by the period's last day.
URGENT_DAYS = 14


TOP_REASONS = 3


WHY_RANDOM = "双随机抽取（{}级·{}） / random draw (双随机), stratum {} × {}"


@dataclass
class PlanResult:
    """The plan (one row per listed enterprise, ``PLAN_SCHEMA``) and its meta (replay information)."""

    plan: pl.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def scheduled(self) -> pl.DataFrame:
        return self.plan.filter(pl.col("status") == STATUS_SCHEDULED)

    @property
    def warnings(self) -> list[str]:
        return list(self.meta.get("warnings", []))

    def summary(self) -> pl.DataFrame:
        """Per district: capacity, mandatory (scheduled / over capacity), random, inspectors."""
        return pl.DataFrame(self.meta["districts"]).sort("district")


_GRADE_COLUMNS = ("enterprise_id", "district", "sector", "grade", "score")


def prepare_grades(grades: pl.DataFrame, tables: Mapping[str, pl.LazyFrame], as_of: date) -> pl.DataFrame:
    """The graded, active enterprises to plan for: one row each, the latest grade not after ``as_of``."""
    enterprises = table_of(tables, "enterprises").select("enterprise_id", "name", "district", "sector",
                                                       "status").collect()
    frame = grades
    if "as_of" in frame.columns:
        frame = frame.filter(pl.col("as_of") <= as_of)
        if frame.height == 0 and grades.height:
            raise UsageError(f"grades: every grade is dated after the plan's as_of {as_of}")
        frame = frame.sort("as_of").unique("enterprise_id", keep="last")
    for column in ("name", "district", "sector"):
        if column not in frame.columns:
            frame = frame.join(enterprises.select("enterprise_id", column), on="enterprise_id", how="left")
    missing = [c for c in _GRADE_COLUMNS if c not in frame.columns]
    if missing:
        raise FatalInputError(f"grades: missing column(s) {', '.join(missing)}")
    if "reasons" not in frame.columns:
        frame = frame.with_columns(pl.lit(None).alias("reasons"))
    bad = frame.filter(~pl.col("grade").is_in(list(GRADES)) | pl.col("district").is_null()
                       | pl.col("sector").is_null() | pl.col("score").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise FatalInputError(f"grades: enterprise {row['enterprise_id']}: grade must be one of "
                              f"{', '.join(GRADES)} with district, sector and score; got grade "
                              f"{row['grade']!r}, district {row['district']!r}, score {row['score']!r}")
    if frame["enterprise_id"].is_duplicated().any():
        raise FatalInputError("grades: an enterprise_id appears twice for one as_of")
    inactive = enterprises.filter(pl.col("status") != "active").get_column("enterprise_id")
    frame = frame.filter(~pl.col("enterprise_id").is_in(inactive.implode()))
    return frame.select(
        pl.col("enterprise_id").cast(pl.String), pl.col("name").cast(pl.String),
        pl.col("district").cast(pl.String), pl.col("sector").cast(pl.String), pl.col("grade").cast(pl.String),
        pl.col("score").cast(pl.Int64), _top_reasons_expr(frame),
        (pl.col("disputed").fill_null(False) if "disputed" in frame.columns else pl.lit(False))
        .cast(pl.Boolean).alias("disputed"),
    ).sort("enterprise_id")


def _top_reasons_expr(frame: pl.DataFrame) -> pl.Expr:
    """The grades' first reasons as one text, ``中文（English）；…``."""
    dtype = frame.schema["reasons"]
    if not isinstance(dtype, pl.List) or not isinstance(dtype.inner, pl.Struct):
        return pl.lit("", dtype=pl.String).alias("top_reasons")
    reason = pl.element().struct
    text = reason.field("text_zh") + pl.lit("（") + reason.field("text_en") + pl.lit("）")
    return (pl.col("reasons").list.head(TOP_REASONS).list.eval(text).list.join("；")
            .fill_null("").alias("top_reasons"))


def grades_digest(grades: pl.DataFrame) -> str:
    """A content hash of the grades a plan used (enterprise, district, sector, grade, score)."""
    wanted = ("enterprise_id", "as_of", "district", "sector", "grade", "score")
    cols = [c for c in wanted if c in grades.columns]
    data = grades.select(cols).sort("enterprise_id", *(["as_of"] if "as_of" in cols else []))
    return "sha256:" + hashlib.sha256(data.write_csv().encode("utf-8")).hexdigest()


def plan_digest(plan: pl.DataFrame) -> str:
    """A content hash of a plan's rows, to check a replay gives the same list."""
    return "sha256:" + hashlib.sha256(plan.write_csv().encode("utf-8")).hexdigest()


def _district_rng(seed: int, district: str) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent streams (draw, inspectors) for one district, fixed by seed and district."""
    sequence = np.random.SeedSequence([int(seed), zlib.crc32(district.encode("utf-8"))])
    draw, assign = sequence.spawn(2)
    return np.random.default_rng(draw), np.random.default_rng(assign)


def make_plan(grades: pl.DataFrame, tables: Mapping[str, pl.LazyFrame], as_of: date,
              capacity: int | str | Mapping[str, object], seed: int, policy: Policy, *,
              inspectors: pl.DataFrame | None = None, capacity_source: str = "capacity",
              carry_over: CarryOver | None = None, warning_items: pl.DataFrame | None = None) -> PlanResult:
    """The period's inspection list per district (rules in the module docstring).

    ``grades`` is a grades frame (at least enterprise_id, district, sector, grade, score);
    ``tables`` the lake (``riskengine.lake.layout.load_tables``); ``capacity`` one number per district, a
    mapping district -> inspections, or ``POLICY_CAPACITY`` (what the policy asks for in each
    district); ``inspectors`` an optional pool (district, inspector_id).
    """
    population = prepare_grades(grades, tables, as_of)
    if population.height == 0:
        raise UsageError(f"no graded active enterprise to plan for as of {as_of}")
    districts = sorted(population.get_column("district").unique().to_list())
    start, end = period_of(as_of)
    last_day = end - timedelta(days=1)
    urgent_day = min(as_of + timedelta(days=URGENT_DAYS), last_day)
    population = policy.assign(population)
    mandatory = mandatory_items(population, tables, as_of, policy, carry_over, warning_items)
    if capacity == POLICY_CAPACITY:
        caps, warnings = capacity_for_policy(population, mandatory), []
    else:
        caps, warnings = resolve_capacity(capacity, districts, capacity_source)
    pools = inspector_pools(tables, population, as_of, inspectors)
    last = last_inspectors(tables, as_of)

    frames: list[pl.DataFrame] = []
    summary: list[dict[str, Any]] = []
    for district in districts:
        cap = caps[district]
        rng_draw, rng_assign = _district_rng(seed, district)
        members = population.filter(pl.col("district") == district)
        must = (members.join(mandatory, on="enterprise_id")
                .sort(["score", "enterprise_id"], descending=[True, False])
                .with_columns(pl.lit("mandatory").alias("stratum"),
                              pl.lit(1.0).alias("inclusion_probability")))
        n_sched = min(cap, must.height)
        must = must.with_columns(
            pl.when(pl.int_range(pl.len()) < n_sched).then(pl.lit(STATUS_SCHEDULED))
            .otherwise(pl.lit(STATUS_OVER)).alias("status"),
            pl.when(pl.col("urgent")).then(pl.lit(urgent_day)).otherwise(pl.lit(last_day)).alias("due_on"),
        ).drop("urgent")
        rest = members.join(must.select("enterprise_id"), on="enterprise_id", how="anti")
        remaining = cap - n_sched
        drawn = stratified_draw(rest, remaining, rng_draw)
        drawn = drawn.sort(["score", "enterprise_id"], descending=[True, False]).with_columns(
            pl.lit("random").alias("stratum"), pl.lit(STATUS_SCHEDULED).alias("status"),
            pl.lit(last_day).alias("due_on"),
            pl.format(WHY_RANDOM, "grade", "sector", "grade", "sector").alias("why"),
        )
        listed = pl.concat([must.filter(pl.col("status") == STATUS_SCHEDULED), drawn,
                            must.filter(pl.col("status") == STATUS_OVER)], how="diagonal_relaxed")
        pool = pools.get(district, [])
        scheduled_ids = listed.filter(pl.col("status") == STATUS_SCHEDULED)["enterprise_id"].to_list()
        chosen = assign_inspectors(scheduled_ids, pool, last, rng_assign)
        chosen += [None] * (listed.height - len(chosen))
        listed = listed.with_columns(
            pl.Series("inspector", chosen, dtype=pl.String),
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("rank"),
            pl.lit(district).alias("district"),
            pl.lit(DISTRICT_NAMES.get(district, "")).alias("district_name"),
        )
        frames.append(listed.select([pl.col(c).cast(t) for c, t in PLAN_SCHEMA.items()]))
        unassigned = sum(1 for c in chosen[: len(scheduled_ids)] if c is None)
        over = must.height - n_sched
        policy_expected = float(rest["ratio"].sum()) / 12.0 if rest.height else 0.0
        # The lowest chance of being drawn this period, as a yearly rate if every month were alike.
        lowest = (float(inclusion_probabilities(rest, remaining)["inclusion_probability"].min())
                  if rest.height and remaining > 0 else 0.0)
        annual_floor = 1.0 - (1.0 - lowest) ** 12
        if rest.height and cap > 0 and annual_floor < MIN_ANNUAL_PROBABILITY:  # cap 0 is warned above
            warnings.append(f"district {district}: the random draw gives some enterprises only "
                            f"{annual_floor:.2%} a year at this capacity (policy floor "
                            f"{MIN_ANNUAL_PROBABILITY:.0%}); {policy_expected:.1f} random inspections a "
                            f"month would meet the policy ratios, {remaining} are available")
        if over:
            warnings.append(f"district {district}: capacity {cap} is short of the {must.height} mandatory "
                            f"items; {over} listed as not scheduled — over capacity (ranked by score)")
        if unassigned:
            warnings.append(f"district {district}: {unassigned} visit(s) without an inspector "
                            f"(pool of {len(pool)} has no eligible inspector other than the last one)")
        summary.append({
            "district": district, "district_name": DISTRICT_NAMES.get(district, ""), "capacity": cap,
            "enterprises": members.height, "mandatory": must.height, "mandatory_scheduled": n_sched,
            "over_capacity": over, "random": drawn.height,
            "random_policy_expected": round(policy_expected, 2),
            "min_annual_probability": round(annual_floor, 4),
            "scheduled": n_sched + drawn.height, "inspectors": len(pool), "unassigned": unassigned,
        })
    plan = pl.concat(frames) if frames else pl.DataFrame(schema=PLAN_SCHEMA)
    grade_counts = (
        population.group_by("grade").agg(pl.len().alias("enterprises"))
        .join(plan.filter(pl.col("status") == STATUS_SCHEDULED).group_by("grade").agg(
            (pl.col("stratum") == "mandatory").sum().alias("mandatory"),
            (pl.col("stratum") == "random").sum().alias("random")), on="grade", how="left")
        .fill_null(0).sort("grade")
    )
    meta: dict[str, Any] = {
        "seed": int(seed),
        "as_of": as_of.isoformat(),
        "period": period_label(as_of),
        "period_start": start.isoformat(),
        "period_end": last_day.isoformat(),
        "policy_version": policy.version,
        "policy_digest": policy.digest,
        "policy_source": policy.source,
        "capacity": caps,
        "grades_digest": grades_digest(grades),
        "grades_rows": grades.height,
        "inspectors_source": ("given" if inspectors is not None
                              else f"lake inspections, last {POOL_DAYS} days"),
        "shortfalls": {s["district"]: s["over_capacity"] for s in summary if s["over_capacity"]},
        "carried_over": carry_over.to_meta() if carry_over is not None else None,
        "warning_items": (warning_items.select("enterprise_id", "why").to_dicts()
                          if warning_items is not None and warning_items.height else []),
        "districts": summary,
        "grades_summary": grade_counts.to_dicts(),
        "plan_digest": plan_digest(plan),
        "warnings": warnings,
    }
    return PlanResult(plan=plan, meta=meta)


def meta_in_scope(meta: Mapping[str, Any], districts: Collection[str],
                  enterprise_ids: Collection[str]) -> dict[str, Any]:
    """A plan's meta as seen by someone who may see only ``districts``: per-district figures,
    capacities, shortfalls and warnings of those districts; carried-over ids only among
    ``enterprise_ids`` (the caller's visible enterprises); no population-wide counts."""
    own = set(districts)
    ids = set(enterprise_ids)
    out = {k: v for k, v in meta.items() if k not in _POPULATION_META}
    for key in ("capacity", "shortfalls"):
        if isinstance(meta.get(key), Mapping):
            out[key] = {d: v for d, v in meta[key].items() if d in own}
    out["districts"] = [row for row in meta.get("districts") or [] if row.get("district") in own]
    carried = meta.get("carried_over")
    if isinstance(carried, Mapping):
        out["carried_over"] = {**carried, "enterprise_ids": [
            e for e in carried.get("enterprise_ids") or [] if e in ids]}
    out["warnings"] = [w for w in meta.get("warnings") or []
                       if not str(w).startswith("district ") or str(w).split(":")[0][9:] in own]
    return out


# Meta entries that count the whole population (every district): not shown to a scoped caller.
_POPULATION_META = frozenset({"grades_summary", "grades_rows"})


def plan_csv_bytes(plan: pl.DataFrame) -> bytes:
    """The plan as CSV bytes (UTF-8 with BOM), e.g. for an HTTP response."""
    return exports.csv_bytes(plan)
