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

import calendar
import hashlib
import json
import math
import tempfile
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from riskengine.core import exports
from riskengine.core.contract import DISTRICT_NAMES, GRADES, TABLES
from riskengine.core.errors import FatalInputError, UsageError
from riskengine.core.files import atomic_write
from riskengine.supervision.policy import Policy

# Urgent mandatory items (follow-ups, complaint leads) are due within two weeks of the period start;
# everything else by the period's last day.
URGENT_DAYS = 14
# Inspectors of the district's inspections in this many days before as_of form its pool.
POOL_DAYS = 365
TOP_REASONS = 3
# Issue 5: every enterprise keeps at least this yearly chance of a random inspection (warned if not).
MIN_ANNUAL_PROBABILITY = 0.01

PLAN_SCHEMA: dict[str, pl.DataType] = {
    "district": pl.String(),
    "district_name": pl.String(),
    "rank": pl.Int64(),
    "enterprise_id": pl.String(),
    "name": pl.String(),
    "sector": pl.String(),
    "grade": pl.String(),
    "score": pl.Int64(),
    "stratum": pl.String(),  # mandatory | random
    "why": pl.String(),
    "top_reasons": pl.String(),
    "inspector": pl.String(),
    "due_on": pl.Date(),
    "status": pl.String(),  # scheduled | over_capacity
    "inclusion_probability": pl.Float64(),
}
STATUS_SCHEDULED = "scheduled"
STATUS_OVER = "over_capacity"

# ``pl.format`` templates: each ``{}`` takes the next argument, so the values repeat for each language.
WHY_FOLLOW_UP = "上期检查不合格复查（{}） / follow-up of a failed inspection on {}"
WHY_COMPLAINT = "上期投诉举报线索（{}件） / open complaint lead ({})"
WHY_CARRIED = "上期（{}）超出检查能力未安排，顺延 / carried over from {}: not scheduled (over capacity)"
WHY_MIN = ("最低检查频次到期（近12个月{}次，应不少于{}次） / "
           "minimum frequency due ({} in 12 months, at least {} required)")
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


# --- time helpers -----------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months, clipped to the month's last day (Jan 31 + 1 month = Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def period_of(as_of: date) -> tuple[date, date]:
    """The planning period ``[as_of, as_of + 1 month)`` as (start, end exclusive)."""
    return as_of, add_months(as_of, 1)


def period_label(as_of: date) -> str:
    """``YYYY-MM`` for a period starting on the 1st, else ``start/end`` (ISO, end inclusive)."""
    start, end = period_of(as_of)
    if as_of.day == 1:
        return as_of.strftime("%Y-%m")
    return f"{start.isoformat()}/{(end - timedelta(days=1)).isoformat()}"


def _known(frame: pl.LazyFrame, event: str, as_of: date) -> pl.LazyFrame:
    """Records known before ``as_of`` (shared/CONTRACT.md section 2: event date and recorded_on < D)."""
    cols = frame.collect_schema().names()
    keep = pl.col(event) < as_of
    if "recorded_on" in cols:
        keep = keep & (pl.col("recorded_on").is_null() | (pl.col("recorded_on") < as_of))
    return frame.filter(keep)


def _table(tables: Mapping[str, pl.LazyFrame], name: str) -> pl.LazyFrame:
    frame = tables.get(name)
    return frame if frame is not None else pl.LazyFrame(schema=TABLES[name].schema)


# --- capacity ---------------------------------------------------------------------------------


def _as_count(value: object) -> int | None:
    """``value`` as a non-negative integer, or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


POLICY_CAPACITY = "policy"
"""``capacity`` value meaning: in each district, what the policy asks for this period (see
``capacity_for_policy``) rather than a number of inspectors' visits available."""


def capacity_for_policy(population: pl.DataFrame, mandatory: pl.DataFrame) -> dict[str, int]:
    """Per district, the inspections the policy asks for this period: every mandatory item, plus a
    random draw just large enough that each other enterprise's chance is at least its stratum's
    ratio / 12 and, compounded over 12 such months, at least ``MIN_ANNUAL_PROBABILITY``.

    ``population`` is graded and policy-assigned (``ratio``), ``mandatory`` from ``mandatory_items``.
    """
    floor_month = 1.0 - (1.0 - MIN_ANNUAL_PROBABILITY) ** (1.0 / 12.0)
    out: dict[str, int] = {}
    for district in sorted(population.get_column("district").unique().to_list()):
        members = population.filter(pl.col("district") == district)
        must = members.join(mandatory, on="enterprise_id", how="semi").height
        base = members.join(mandatory, on="enterprise_id", how="anti").get_column("ratio").to_numpy() / 12.0
        draw = 0
        if base.size:
            draw = min(base.size, math.ceil(base.sum() * max(1.0, floor_month / base.min()) - 1e-9))
        out[district] = must + draw
    return out


def resolve_capacity(capacity: int | Mapping[str, object], districts: list[str],
                     source: str = "capacity") -> tuple[dict[str, int], list[str]]:
    """Inspections available per district (every district of ``districts``) and warnings.

    One number applies to every district; a mapping names districts, each a non-negative integer;
    a district not named gets 0 (with a warning), a named district that has no graded enterprise
    is an error.
    """
    if not isinstance(capacity, Mapping):
        count = _as_count(capacity)
        if count is None:
            raise UsageError(f"{source}: capacity must be a non-negative integer; got {capacity!r}")
        return {d: count for d in districts}, []
    out: dict[str, int] = {}
    for district, value in capacity.items():
        if district not in districts:
            raise UsageError(f"{source}: district {district!r} is not a district of the graded "
                             f"enterprises (known: {', '.join(districts)})")
        count = _as_count(value)
        if count is None:
            raise UsageError(f"{source}: district {district!r}: capacity must be a non-negative "
                             f"integer; got {value!r}")
        out[district] = count
    missing = [d for d in districts if d not in out]
    warnings = [f"{source}: no capacity for district(s) {', '.join(missing)}; planning 0 inspections "
                "there (every mandatory item listed as over capacity)"] if missing else []
    return {d: out.get(d, 0) for d in districts}, warnings


def read_capacity(path: Path) -> dict[str, object]:
    """A capacity file: CSV with columns ``district,capacity`` or TOML ``"420106" = 40`` (optionally
    under ``[capacity]``). Values are validated by ``resolve_capacity``; row-level problems here."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: capacity file not found")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: not valid TOML: {exc}") from None
        raw = raw.get("capacity", raw)
        if not isinstance(raw, dict):
            raise UsageError(f"{path}: expected a table of district = inspections")
        for key, value in raw.items():
            if isinstance(value, dict):
                raise UsageError(f"{path}: entry {key!r} must be a number of inspections, not a table")
        return dict(raw)
    if suffix != ".csv":
        raise UsageError(f"{path}: capacity file must be .csv or .toml")
    import csv

    out: dict[str, object] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        if "district" not in header or "capacity" not in header:
            raise UsageError(f"{path}: header must have columns 'district' and 'capacity'; got {header}")
        for row_number, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            district, value = row["district"], row["capacity"]
            if not district:
                raise UsageError(f"{path}: row {row_number}, column district: empty")
            if district in out:
                raise UsageError(f"{path}: row {row_number}, column district: {district!r} listed twice")
            count = _as_count(value)
            if count is None:
                raise UsageError(f"{path}: row {row_number} (district {district}), column capacity: "
                                 f"must be a non-negative integer; got {value!r}")
            out[district] = count
    return out


def read_inspectors(path: Path) -> pl.DataFrame:
    """A CSV of the inspector pool: columns ``district,inspector_id``."""
    path = Path(path)
    try:
        frame = pl.read_csv(path, schema_overrides={"district": pl.String, "inspector_id": pl.String})
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise UsageError(f"{path}: cannot read the inspector file: {exc}") from None
    missing = {"district", "inspector_id"} - set(frame.columns)
    if missing:
        raise UsageError(f"{path}: inspector file needs columns district, inspector_id; "
                         f"missing {', '.join(sorted(missing))}")
    frame = frame.select("district", "inspector_id")
    nulls = frame.with_row_index("row", offset=2).filter(
        pl.col("district").is_null() | pl.col("inspector_id").is_null())
    if nulls.height:
        raise UsageError(f"{path}: row {nulls['row'][0]}: district and inspector_id must not be empty")
    return frame.unique(maintain_order=True)


# --- grades -----------------------------------------------------------------------------------

_GRADE_COLUMNS = ("enterprise_id", "district", "sector", "grade", "score")


def prepare_grades(grades: pl.DataFrame, tables: Mapping[str, pl.LazyFrame], as_of: date) -> pl.DataFrame:
    """The graded, active enterprises to plan for: one row each, the latest grade not after ``as_of``."""
    enterprises = _table(tables, "enterprises").select("enterprise_id", "name", "district", "sector",
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


# --- mandatory items --------------------------------------------------------------------------


@dataclass(frozen=True)
class CarryOver:
    """The previous period's plan items listed over capacity: carried into this period unless visited."""

    period: str  # the previous plan's period label, e.g. "2025-12"
    period_start: date  # inspections on or after this day (known before as_of) count as the visit
    enterprise_ids: tuple[str, ...]

    @classmethod
    def from_plan(cls, rows: pl.DataFrame, meta: Mapping[str, Any]) -> CarryOver:
        """From a stored plan (rows with ``stratum`` and ``status``, meta with period and start)."""
        over = rows.filter((pl.col("stratum") == "mandatory") & (pl.col("status") == STATUS_OVER))
        return cls(str(meta["period"]), date.fromisoformat(str(meta["period_start"])),
                   tuple(sorted(over.get_column("enterprise_id").unique().to_list())))

    def to_meta(self) -> dict[str, Any]:
        return {"period": self.period, "period_start": self.period_start.isoformat(),
                "enterprise_ids": list(self.enterprise_ids)}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> CarryOver:
        return cls(str(meta["period"]), date.fromisoformat(str(meta["period_start"])),
                   tuple(meta["enterprise_ids"]))


def period_start_of(label: str) -> date:
    """The first day of a period from its label (``period_label``'s inverse for the start)."""
    if "/" in label:
        return date.fromisoformat(label.split("/", 1)[0])
    return date.fromisoformat(label + "-01")


def previous_carry_over(store_file: Path, as_of: date) -> CarryOver | None:
    """The over-capacity items of the latest plan in the serving store that began before ``as_of``
    (None when there is no store or no such plan)."""
    if not Path(store_file).exists():
        return None
    from riskengine.core.store import Store

    store = Store(Path(store_file))
    earlier = [(period_start_of(p), p) for p in store.plan_periods() if period_start_of(p) < as_of]
    if not earlier:
        return None
    record = store.plan(max(earlier)[1])
    return CarryOver.from_plan(record.rows, record.meta)


def mandatory_items(population: pl.DataFrame, tables: Mapping[str, pl.LazyFrame], as_of: date,
                    policy: Policy, carry_over: CarryOver | None = None) -> pl.DataFrame:
    """enterprise_id, why, urgent for every enterprise with a mandatory item (rules in module doc)."""
    start, end = period_of(as_of)
    previous = add_months(as_of, -1)
    window = add_months(end, -12)
    inspections = _known(_table(tables, "inspections"), "inspected_on", as_of).select(
        "inspection_id", "enterprise_id", "inspected_on", "outcome").collect()
    complaints = _known(_table(tables, "complaints"), "received_on", as_of).filter(
        pl.col("received_on") >= previous).select("enterprise_id", "received_on", "substantiated").collect()
    ids = population.select("enterprise_id")

    last = inspections.sort("inspected_on", "inspection_id").unique("enterprise_id", keep="last")
    failed = pl.col("outcome").is_in(["fail", "conditional"])
    follow = last.filter(failed & (pl.col("inspected_on") >= previous))
    follow = follow.join(ids, on="enterprise_id").select(
        "enterprise_id",
        pl.format(WHY_FOLLOW_UP, pl.col("inspected_on").dt.to_string("%Y-%m-%d"),
                  pl.col("inspected_on").dt.to_string("%Y-%m-%d")).alias("why"),
        pl.lit(True).alias("urgent"), pl.lit(0).alias("order"),
    )

    leads = (
        complaints.filter(pl.col("substantiated").fill_null(True))
        .join(last.select("enterprise_id", pl.col("inspected_on").alias("last_on")), on="enterprise_id",
              how="left")
        .filter(pl.col("last_on").is_null() | (pl.col("last_on") < pl.col("received_on")))
        .group_by("enterprise_id").agg(pl.len().alias("n"))
        .join(ids, on="enterprise_id")
        .select("enterprise_id", pl.format(WHY_COMPLAINT, "n", "n").alias("why"),
                pl.lit(True).alias("urgent"), pl.lit(1).alias("order"))
    )

    counts = inspections.filter(pl.col("inspected_on") >= window).group_by("enterprise_id").agg(
        pl.len().alias("k"))
    due = (
        policy.assign(population.select("enterprise_id", "sector", "grade"))
        .filter(pl.col("min_per_year") > 0)
        .join(counts, on="enterprise_id", how="left")
        .with_columns(pl.col("k").fill_null(0).cast(pl.Int64))
        .filter(pl.col("k") < pl.col("min_per_year"))
        .select("enterprise_id", pl.format(WHY_MIN, "k", "min_per_year", "k", "min_per_year").alias("why"),
                pl.lit(False).alias("urgent"), pl.lit(2).alias("order"))
    )
    parts = [follow, leads, due]
    if carry_over is not None and carry_over.enterprise_ids:
        visited = inspections.filter(pl.col("inspected_on") >= carry_over.period_start)
        carried = (
            pl.DataFrame({"enterprise_id": list(carry_over.enterprise_ids)}, schema={"enterprise_id": str})
            .join(visited.select("enterprise_id"), on="enterprise_id", how="anti")
            .join(ids, on="enterprise_id")
            .select("enterprise_id",
                    pl.format(WHY_CARRIED, pl.lit(carry_over.period), pl.lit(carry_over.period)).alias("why"),
                    pl.lit(True).alias("urgent"), pl.lit(-1).alias("order"))
        )
        parts.insert(0, carried)
    items = pl.concat(parts).with_columns(pl.col("order").cast(pl.Int32))
    return (
        items.sort("enterprise_id", "order")
        .group_by("enterprise_id", maintain_order=True)
        .agg(pl.col("why").str.join("；"), pl.col("urgent").any())
    )


# --- the random draw --------------------------------------------------------------------------


def scale_probabilities(base: np.ndarray, total: float) -> np.ndarray:
    """Multiply ``base`` (all > 0) by one factor, capping at 1, so the sum is ``total`` (or all 1)."""
    if total <= 0 or base.size == 0:
        return np.zeros_like(base, dtype=float)
    if total >= base.size:
        return np.ones_like(base, dtype=float)
    capped = np.zeros(base.size, dtype=bool)
    while True:
        factor = (total - capped.sum()) / base[~capped].sum()
        newly = ~capped & (base * factor >= 1.0)
        if not newly.any():
            break
        capped |= newly
    return np.where(capped, 1.0, base * factor)


def systematic_round(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integers ``n_k`` with ``E[n_k] = expected_k``, each floor or ceil, whose sum is the rounded total.

    Systematic sampling with one uniform random start over the cumulative expectations.
    """
    if expected.size == 0:
        return np.zeros(0, dtype=np.int64)
    u = rng.random()
    cum = np.concatenate([[0.0], np.cumsum(expected)])
    points = np.floor(cum + u + 1e-9)
    return np.diff(points).astype(np.int64)


def inclusion_probabilities(frame: pl.DataFrame, capacity: float) -> pl.DataFrame:
    """``frame`` (with annual ``ratio``) sorted by enterprise_id, plus this period's
    ``inclusion_probability``: ratio / 12 scaled (capped at 1) to an expected total of ``capacity``."""
    frame = frame.sort("enterprise_id")
    base = (frame.get_column("ratio").to_numpy() / 12.0).astype(float)
    return frame.with_columns(pl.Series("inclusion_probability", scale_probabilities(base, float(capacity))))


def stratified_draw(frame: pl.DataFrame, capacity: int, rng: np.random.Generator,
                    strata: tuple[str, ...] = ("grade", "sector")) -> pl.DataFrame:
    """Draw ``capacity`` enterprises (expected) from ``frame`` at the policy ratios.

    ``frame`` needs ``enterprise_id``, the ``strata`` columns and ``ratio`` (annual). Returns the drawn
    rows with ``inclusion_probability`` (the same for every member of a stratum).
    """
    if frame.height == 0 or capacity <= 0:
        return frame.head(0).with_columns(pl.lit(0.0).alias("inclusion_probability"))
    frame = inclusion_probabilities(frame, capacity)
    sizes = frame.group_by(*strata, "inclusion_probability").agg(pl.len().alias("n")).sort(*strata)
    order = rng.permutation(sizes.height)
    sizes = sizes[order.tolist()]
    expected = (sizes["n"].to_numpy() * sizes["inclusion_probability"].to_numpy())
    counts = np.minimum(systematic_round(expected, rng), sizes["n"].to_numpy())
    drawn: list[pl.DataFrame] = []
    for key, count in zip(sizes.select(*strata).iter_rows(), counts, strict=True):
        if count <= 0:
            continue
        members = frame.filter(pl.all_horizontal(pl.col(c) == v for c, v in zip(strata, key, strict=True)))
        pick = np.sort(rng.choice(members.height, size=int(count), replace=False))
        drawn.append(members[pick.tolist()])
    if not drawn:
        return frame.head(0)
    return pl.concat(drawn)


# --- inspectors -------------------------------------------------------------------------------


def inspector_pools(tables: Mapping[str, pl.LazyFrame], population: pl.DataFrame, as_of: date,
                    inspectors: pl.DataFrame | None = None) -> dict[str, list[str]]:
    """The inspectors available per district: a given list, else those of the last year's inspections."""
    if inspectors is not None:
        frame = inspectors.select(pl.col("district").cast(pl.String), pl.col("inspector_id").cast(pl.String))
    else:
        districts = population.select("enterprise_id", "district")
        frame = (
            _known(_table(tables, "inspections"), "inspected_on", as_of)
            .filter(pl.col("inspected_on") >= as_of - timedelta(days=POOL_DAYS))
            .filter(pl.col("inspector_id").is_not_null())
            .select("enterprise_id", "inspector_id").collect()
            .join(districts, on="enterprise_id")
            .select("district", "inspector_id")
        )
    frame = frame.unique().sort("district", "inspector_id")
    groups = frame.group_by("district", maintain_order=True)
    return {d: g.get_column("inspector_id").to_list() for (d,), g in groups}


def last_inspectors(tables: Mapping[str, pl.LazyFrame], as_of: date) -> dict[str, str]:
    """The inspector of each enterprise's latest inspection (with a known inspector) before as_of."""
    frame = (
        _known(_table(tables, "inspections"), "inspected_on", as_of)
        .filter(pl.col("inspector_id").is_not_null())
        .select("enterprise_id", "inspected_on", "inspection_id", "inspector_id").collect()
        .sort("inspected_on", "inspection_id").unique("enterprise_id", keep="last")
    )
    return dict(zip(frame["enterprise_id"].to_list(), frame["inspector_id"].to_list(), strict=True))


def assign_inspectors(enterprise_ids: list[str], pool: list[str], last: Mapping[str, str],
                      rng: np.random.Generator) -> list[str | None]:
    """One inspector per visit: at random among the least-loaded of the pool, never the last one.

    Visits are handled in a random order so that no enterprise is systematically first. ``None``
    when the pool holds no eligible inspector.
    """
    load = dict.fromkeys(pool, 0)
    out: list[str | None] = [None] * len(enterprise_ids)
    for index in rng.permutation(len(enterprise_ids)):
        eligible = [p for p in pool if p != last.get(enterprise_ids[index])]
        if not eligible:
            continue
        least = min(load[p] for p in eligible)
        choice = [p for p in eligible if load[p] == least]
        pick = choice[int(rng.integers(len(choice)))]
        load[pick] += 1
        out[index] = pick
    return out


# --- the plan ---------------------------------------------------------------------------------


def _district_rng(seed: int, district: str) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent streams (draw, inspectors) for one district, fixed by seed and district."""
    sequence = np.random.SeedSequence([int(seed), zlib.crc32(district.encode("utf-8"))])
    draw, assign = sequence.spawn(2)
    return np.random.default_rng(draw), np.random.default_rng(assign)


def make_plan(grades: pl.DataFrame, tables: Mapping[str, pl.LazyFrame], as_of: date,
              capacity: int | str | Mapping[str, object], seed: int, policy: Policy, *,
              inspectors: pl.DataFrame | None = None, capacity_source: str = "capacity",
              carry_over: CarryOver | None = None) -> PlanResult:
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
    mandatory = mandatory_items(population, tables, as_of, policy, carry_over)
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


# --- writing ----------------------------------------------------------------------------------


def meta_path(out: Path) -> Path:
    """``<out>.meta.json`` beside the plan."""
    return out.with_name(out.name + ".meta.json")


# Excel headers and display values in Chinese (officers read the workbook), English after a slash.
EXCEL_COLUMNS: dict[str, tuple[str, int]] = {
    "district": ("区县 District", 9),
    "rank": ("序号 Rank", 7),
    "enterprise_id": ("统一社会信用代码 USCC", 22),
    "name": ("企业名称 Name", 30),
    "sector": ("行业 Sector", 16),
    "grade": ("信用风险等级 Grade", 10),
    "score": ("风险分 Score", 10),
    "stratum": ("类别 Stratum", 14),
    "why": ("列入原因 Why", 48),
    "top_reasons": ("主要风险因素 Top reasons", 60),
    "inspector": ("检查人员 Inspector", 14),
    "due_on": ("完成期限 Due", 12),
    "status": ("状态 Status", 22),
    "inclusion_probability": ("抽中概率 Inclusion probability", 12),
}
STRATUM_LABELS = {"mandatory": "必查 mandatory", "random": "随机 random"}
STATUS_LABELS = {STATUS_SCHEDULED: "已排期 scheduled",
                 STATUS_OVER: "未排期—超出检查能力 not scheduled — over capacity"}
SUMMARY_COLUMNS: dict[str, str] = {
    "district": "区县代码 District", "district_name": "区县 Name", "capacity": "检查能力 Capacity",
    "enterprises": "企业数 Enterprises", "mandatory": "必查项 Mandatory",
    "mandatory_scheduled": "必查已排期 Mandatory scheduled", "over_capacity": "超出能力未排期 Shortfall",
    "random": "随机抽取 Random",
    "random_policy_expected": "政策应抽（月） Random at policy ratios",
    "min_annual_probability": "最低年抽中概率 Lowest yearly chance", "scheduled": "合计排期 Scheduled",
    "inspectors": "检查人员数 Inspectors", "unassigned": "未派人员 Unassigned",
}


SUMMARY_SHEET = "汇总 summary"


def _sheet_names(districts: list[str]) -> dict[str, str]:
    """Sheet per district: ``code 中文名`` within Excel's 31 characters, unique, no []:*?/\\."""
    names: dict[str, str] = {}
    used = [SUMMARY_SHEET]
    for district in districts:
        label = f"{district} {DISTRICT_NAMES.get(district, '')}".strip()
        names[district] = exports.sheet_name(label, used)
        used.append(names[district])
    return names


def write_excel(result: PlanResult, path: Path) -> None:
    """The plan as a workbook: a summary sheet, then one sheet per district (frozen header, filters)."""
    workbook = exports.workbook(path)
    try:
        header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                                      "valign": "top"})
        wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        datefmt = workbook.add_format({"num_format": "yyyy-mm-dd", "valign": "top"})
        warn = workbook.add_format({"font_color": "#C00000", "text_wrap": True})
        over = workbook.add_format({"font_color": "#C00000", "valign": "top"})
        meta = result.meta
        ws = workbook.add_worksheet(SUMMARY_SHEET)
        cols = list(SUMMARY_COLUMNS)
        ws.write_row(0, 0, [SUMMARY_COLUMNS[c] for c in cols], header)
        rows = meta.get("districts", [])
        for r, row in enumerate(rows, start=1):
            ws.write_row(r, 0, [row.get(c) for c in cols])
        total_row = len(rows) + 1
        ws.write(total_row, 0, "合计 total", header)
        for c, name in enumerate(cols[2:], start=2):
            if name == "min_annual_probability":  # a minimum, not a count
                value = min((row.get(name) or 0.0 for row in rows), default=0.0)
            else:
                value = sum(row.get(name) or 0 for row in rows)
            ws.write(total_row, c, value, header)
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(len(rows), 1), len(cols) - 1)
        ws.set_column(0, 1, 12)
        ws.set_column(2, len(cols) - 1, 14)
        r = total_row + 2
        ws.write_row(r, 0, ["等级 Grade", "企业数 Enterprises", "必查 Mandatory", "随机 Random"], header)
        for g in meta.get("grades_summary", []):
            r += 1
            ws.write_row(r, 0, [g["grade"], g["enterprises"], g["mandatory"], g["random"]])
        r += 2
        facts = [("基准日 as_of", meta.get("as_of")), ("计划期 period", meta.get("period")),
                 ("期间 period dates", f"{meta.get('period_start')} – {meta.get('period_end')}"),
                 ("随机种子 seed", meta.get("seed")),
                 ("监管政策版本 policy version", meta.get("policy_version")),
                 ("等级数据 grades", meta.get("grades_digest")),
                 ("检查人员来源 inspectors", meta.get("inspectors_source"))]
        for label, value in facts:
            ws.write(r, 0, label, header)
            ws.write(r, 2, "" if value is None else str(value))
            r += 1
        for text in meta.get("warnings", []):
            r += 1
            ws.write(r, 0, f"注意 warning: {text}", warn)

        plan = result.plan
        names = _sheet_names(sorted(plan.get_column("district").unique().to_list()) if plan.height else [])
        columns = list(EXCEL_COLUMNS)
        for district, sheet in names.items():
            part = plan.filter(pl.col("district") == district).sort("rank")
            ws = workbook.add_worksheet(sheet)
            ws.write_row(0, 0, [EXCEL_COLUMNS[c][0] for c in columns], header)
            for c, column in enumerate(columns):
                wide = column in ("why", "top_reasons")
                ws.set_column(c, c, EXCEL_COLUMNS[column][1], wrap if wide else None)
            for r, row in enumerate(part.select(columns).iter_rows(named=True), start=1):
                for c, column in enumerate(columns):
                    value = row[column]
                    if value is None:
                        continue
                    if column == "due_on":
                        ws.write_datetime(r, c, datetime_of(value), datefmt)
                    elif column == "stratum":
                        ws.write_string(r, c, STRATUM_LABELS.get(value, value))
                    elif column == "status":
                        ws.write_string(r, c, STATUS_LABELS.get(value, value),
                                        over if value == STATUS_OVER else None)
                    elif isinstance(value, str):
                        ws.write_string(r, c, value)  # ids stay text, never numbers
                    else:
                        ws.write(r, c, value)
            ws.freeze_panes(1, 0)
            ws.autofilter(0, 0, max(part.height, 1), len(columns) - 1)
    finally:
        workbook.close()


def datetime_of(day: date) -> Any:
    """A date as a naive datetime (what xlsxwriter writes as an Excel date)."""
    from datetime import datetime

    return datetime(day.year, day.month, day.day)


def write_plan_files(result: PlanResult, out: Path) -> list[Path]:
    """Write the plan as ``.xlsx`` (officers) or ``.csv`` (machines; UTF-8 with BOM so Excel reads the
    Chinese), plus ``<out>.meta.json``. Returns the files written."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".xlsx":
        atomic_write(out, lambda tmp: write_excel(result, tmp))
    elif suffix == ".csv":
        atomic_write(out, lambda tmp: exports.write_csv(result.plan, tmp))
    else:
        raise UsageError(f"{out}: the plan must be written as .xlsx or .csv")
    meta_file = meta_path(out)
    text = json.dumps(result.meta, ensure_ascii=False, indent=2, default=str)
    atomic_write(meta_file, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    return [out, meta_file]


def save_to_store(result: PlanResult, store_file: Path) -> str | None:
    """Save the plan into the serving store; returns a warning instead of failing the plan."""
    try:
        from riskengine.core.store import Store
    except ImportError:
        return "serving store not available (riskengine.core.store missing); plan written to files only"
    # The service shows the meta to its users: keep the replay details (paths, policy text) out.
    meta = {k: v for k, v in result.meta.items() if k not in ("policy_toml", "inspectors", "lake")}
    meta["grades_source"] = {"kind": result.meta.get("grades_source", {}).get("kind")}
    try:
        Store(Path(store_file)).save_plan(result.plan, meta)
    except Exception as exc:  # the files are written; the store is a convenience copy
        return f"{store_file}: could not save the plan into the serving store: {exc}"
    return None


def write_plan(grades: pl.DataFrame, lake: Path, as_of: date, capacity: int | str | Mapping[str, object],
               out: Path, *, seed: int = 0, policy: Policy | None = None,
               inspectors: pl.DataFrame | None = None, grades_source: Mapping[str, Any] | None = None,
               store_file: Path | None = None, capacity_source: str = "capacity",
               carry_over: CarryOver | None = None) -> PlanResult:
    """Plan for the lake's enterprises and write the files (and the store, if ``store_file``).

    The entry point for ``riskengine quickstart``: grades from
    ``riskengine.workflows.scoring.score_enterprises``,
    e.g. ``write_plan(grades, lake, as_of, 20, Path("plan.xlsx"), seed=1, store_file=settings.store_file)``.
    Grades not read from a file are saved beside the plan (``<out>.grades.parquet``) for replay.
    """
    from riskengine.lake.layout import load_tables
    from riskengine.supervision.policy import load_policy

    policy = policy or load_policy()
    tables = load_tables(Path(lake))
    result = make_plan(grades, tables, as_of, capacity, seed, policy, inspectors=inspectors,
                       capacity_source=capacity_source, carry_over=carry_over)
    source = dict(grades_source or {"kind": "in-memory"})
    if source.get("kind") != "file":
        snapshot = out.with_name(out.name + ".grades.parquet")
        atomic_write(snapshot, lambda tmp: grades.write_parquet(tmp))
        source["snapshot"] = str(snapshot.resolve())
    result.meta["grades_source"] = source
    result.meta["lake"] = str(Path(lake).resolve())
    result.meta["policy_toml"] = _policy_text(policy)
    if inspectors is not None:
        result.meta["inspectors"] = inspectors.sort("district", "inspector_id").to_dicts()
    write_plan_files(result, out)
    if store_file is not None:
        warning = save_to_store(result, store_file)
        if warning:
            result.meta["warnings"].append(warning)
    return result


def _policy_text(policy: Policy) -> str | None:
    """The policy file's text, kept in the meta so a replay uses exactly the same policy."""
    from riskengine.supervision.policy import default_policy_text

    if policy.source == "built-in":
        return default_policy_text()
    path = Path(policy.source)
    return path.read_text(encoding="utf-8") if path.is_file() else None


def plan_csv_bytes(plan: pl.DataFrame) -> bytes:
    """The plan as CSV bytes (UTF-8 with BOM), e.g. for an HTTP response."""
    return exports.csv_bytes(plan)


def plan_excel_bytes(rows: pl.DataFrame, meta: Mapping[str, Any]) -> bytes:
    """Plan rows (any subset, e.g. one inspector's filtered view) as the officers' workbook bytes,
    e.g. for an HTTP download. Columns the rows lack are left empty."""
    missing = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in PLAN_SCHEMA.items()
               if name not in rows.columns]
    if "top_reasons" not in rows.columns and "reasons" in rows.columns:
        missing = [m for m in missing if m.meta.output_name() != "top_reasons"]
        rows = rows.with_columns(_top_reasons_expr(rows).alias("top_reasons"))
    rows = rows.with_columns(missing) if missing else rows
    with tempfile.TemporaryDirectory(prefix="riskengine-plan-") as folder:
        path = Path(folder) / "plan.xlsx"
        write_excel(PlanResult(rows, dict(meta)), path)
        return path.read_bytes()
