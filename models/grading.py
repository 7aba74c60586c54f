"""Probability → score 0–1000 → grade A/B/C/D, hard rules on top, and stable monthly regrading.

Score scale (CONTRACT section 3: "score 0–1000, monotone in probability, higher is riskier").
A log-odds scale as in points-based scorecards ("points to double the odds"):
    score = BASE_SCORE + POINTS_TO_DOUBLE_ODDS / ln 2 · ln(odds(p) / BASE_ODDS),  odds(p) = p / (1 − p)

with ``BASE_SCORE = 500`` at ``BASE_ODDS = 1:49`` (p = 2 %, about the yearly rate of adverse
outcomes of an ordinary enterprise) and ``POINTS_TO_DOUBLE_ODDS = 80``: every 80 points the odds of
an adverse outcome within the horizon double, so score gaps read the same anywhere on the scale.
The map is strictly increasing in p; it is clipped to [0, 1000], which only touches p < 0.027 %
(score 0) and p > 61 % (score 1000) — deep inside grades A and D — and rounded to whole points.

Default bands (``Settings.grades.band_edges`` = lower edges of B, C, D): 450 / 620 / 750, i.e.
p ≈ 1.3 % / 5.5 % / 15 %. Rationale: SAMR's enterprise credit-risk classification expects most
enterprises to be low (A) or general (B) risk and only a small tail to be high risk (D), where
inspections are most frequent. A is "clearly below the ordinary rate" (under about two thirds of
it), B spans the ordinary rate up to about 2.5×, C is several times the ordinary rate, and D starts
at about 7× it (one in seven enterprises has an adverse outcome within a year). On the synthetic
city (5,000 enterprises, seed 7, as of 2026-01-01) a trained model gives 61 % A, 28 % B, 8 % C and
3 % D after hard rules (README, grades section).

Hard rules (applied after the model, each with an id, computed from feature columns) and stable
regrading with hysteresis are below; ``apply_grading`` puts the three together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from riskengine.core.config import get_settings
from riskengine.core.contract import GRADES
from riskengine.core.errors import ModelError, UsageError

BASE_SCORE = 500.0
BASE_ODDS = 1.0 / 49.0  # p = 2 %
POINTS_TO_DOUBLE_ODDS = 80.0
SCORE_MIN, SCORE_MAX = 0, 1000
DEFAULT_BAND_EDGES: tuple[int, int, int] = (450, 620, 750)

_FACTOR = POINTS_TO_DOUBLE_ODDS / math.log(2.0)
_GRADE_RANK = {g: i for i, g in enumerate(GRADES)}


# --- score and bands ------------------------------------------------------------------------------


def _base_odds(base_rate: float | None) -> float:
    """Odds at score 500: ``BASE_ODDS`` (2 %), or a model's population rate (issue 11: a population
    failing 45 % of inspections needs its own anchor, else every score clips at 1000)."""
    if base_rate is None:
        return BASE_ODDS
    if not 0 < base_rate < 1:
        raise ModelError(f"score_base_rate must lie in (0, 1); got {base_rate}")
    return base_rate / (1.0 - base_rate)


def score_float(p: np.ndarray | Sequence[float] | float, base_rate: float | None = None) -> np.ndarray:
    """The unrounded, unclipped log-odds score of probabilities ``p`` (strictly increasing in p)."""
    prob = np.asarray(p, dtype=np.float64)
    if np.isnan(prob).any():
        raise ModelError("probability is NaN; the model produced no probability for some rows")
    if ((prob < 0) | (prob > 1)).any():
        bad = prob[(prob < 0) | (prob > 1)][0]
        raise ModelError(f"probability must lie in [0, 1]; got {bad}")
    # Clip away from 0 and 1 only to keep the logarithm finite; the result is clipped to the scale.
    prob = np.clip(prob, 1e-12, 1 - 1e-12)
    log_odds = np.log(prob) - np.log1p(-prob)
    return BASE_SCORE + _FACTOR * (log_odds - math.log(_base_odds(base_rate)))


def score_from_probability(p: np.ndarray | Sequence[float] | float,
                           base_rate: float | None = None) -> np.ndarray:
    """Calibrated probability → integer score 0–1000 (higher is riskier), on the log-odds scale above
    (anchored at ``base_rate`` when a model gives its population's rate)."""
    raw = np.clip(score_float(p, base_rate), SCORE_MIN, SCORE_MAX)
    return np.rint(raw).astype(np.int64)


def probability_from_score(score: np.ndarray | Sequence[float] | float, base_rate: float | None = None
                           ) -> np.ndarray:
    """The inverse of the score map (for documenting bands): the probability at a given score."""
    s = np.asarray(score, dtype=np.float64)
    odds = _base_odds(base_rate) * np.exp((s - BASE_SCORE) / _FACTOR)
    return odds / (1.0 + odds)


def check_band_edges(edges: Sequence[float]) -> tuple[float, float, float]:
    """Validate band edges: three strictly increasing lower edges of B, C, D inside (0, 1000]."""
    values = tuple(float(e) for e in edges)
    if len(values) != len(GRADES) - 1:
        raise UsageError(f"band_edges must hold {len(GRADES) - 1} scores (lower edges of B, C, D); "
                         f"got {list(edges)}")
    if not all(SCORE_MIN < e <= SCORE_MAX for e in values) or not all(
            a < b for a, b in zip(values, values[1:], strict=False)):
        raise UsageError(f"band_edges must be strictly increasing scores in (0, 1000]; got {list(edges)}")
    return values  # type: ignore[return-value]


def _default_edges() -> tuple[float, float, float]:
    return tuple(get_settings().grades.band_edges)  # type: ignore[return-value]


def grade_index(score: np.ndarray | Sequence[float], edges: Sequence[float] | None = None) -> np.ndarray:
    """Grade as an index into ``GRADES`` (0 = A … 3 = D): a score at or above an edge is in the band."""
    bounds = np.asarray(check_band_edges(_default_edges() if edges is None else edges))
    return np.searchsorted(bounds, np.asarray(score, dtype=np.float64), side="right").astype(np.int8)


def grade_from_score(score, edges: Sequence[float] | None = None):  # noqa: ANN001, ANN201
    """Score → grade letter by bands (``Settings.grades.band_edges`` by default).

    A scalar score gives a ``str``; an array gives a numpy array of letters.
    """
    idx = grade_index(np.atleast_1d(np.asarray(score, dtype=np.float64)), edges)
    letters = np.asarray(GRADES, dtype=object)[idx]
    if np.ndim(score) == 0:
        return str(letters[0])
    return letters


# --- hard rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HardRule:
    """A rule that sets a minimum grade whatever the model says.

    ``when`` is a Polars expression over feature columns (true → the rule fires); ``columns`` are
    the feature columns it needs. ``text_zh``/``text_en`` are the reason shown to officers.
    """

    id: str
    floor: str
    columns: tuple[str, ...]
    when: pl.Expr
    text_zh: str
    text_en: str


def _positive(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Float64).fill_null(0.0) > 0


# Feature columns the rules read (features.FEATURES catalog). Kept together so a renamed feature
# is a one-line change here. ``models.scoring.add_rule_columns`` derives
# ``recalls__ordered_high_hazard_365d`` when a feature frame lacks it.
F_DISHONEST = "penalties__dishonest_active"
F_LICENSE_REVOKED = "licenses__revoked"
F_LICENSE_SUSPENDED = "licenses__suspended"
F_ORDERED_HIGH_RECALLS = "recalls__ordered_high_hazard_365d"
F_AGE_DAYS = "profile__age_days"
F_NEVER_INSPECTED = "inspections__never_inspected"
F_SERIOUS_LISTED = "lists__serious_now"
F_ABNORMAL_LISTED = "lists__abnormal_now"
F_NOTIFICATION_BREACHED = "commitments__notification_breached_365d"
# "No history": nothing on record in any window that covers a young enterprise's whole life.
F_EVENTS_TOTAL = ("sampling__tests_1095d", "penalties__count_1095d", "recalls__count_1095d",
                  "complaints__count_365d")

HARD_RULES: tuple[HardRule, ...] = (
    # CONTRACT §3 / issue 4: dishonesty list active → D (严重违法失信名单, SAMR Order 107 influence period).
    HardRule("R1_DISHONEST_LIST", "D", (F_DISHONEST,), _positive(F_DISHONEST),
             "列入严重违法失信名单（仍在信用惩戒期内）",
             "on the serious-violation-and-dishonesty list (still within its influence period)"),
    # Licence revoked → D.
    HardRule("R2_LICENSE_REVOKED", "D", (F_LICENSE_REVOKED,), _positive(F_LICENSE_REVOKED),
             "许可证已被吊销", "a licence has been revoked"),
    # Licence suspended → at least C.
    HardRule("R3_LICENSE_SUSPENDED", "C", (F_LICENSE_SUSPENDED,), _positive(F_LICENSE_SUSPENDED),
             "许可证被暂停", "a licence is suspended"),
    # Ordered recall of a high-hazard product in the last year → at least C.
    HardRule("R4_ORDERED_HIGH_HAZARD_RECALL", "C", (F_ORDERED_HIGH_RECALLS,),
             _positive(F_ORDERED_HIGH_RECALLS),
             "近一年被责令召回高危产品", "ordered recall of a high-hazard product in the last year"),
    # An enterprise under one year old with no supervision history cannot be A: no history is not a
    # clean history (issue 3/4).
    HardRule("R5_NEW_NO_HISTORY", "B", (F_AGE_DAYS, F_NEVER_INSPECTED, *F_EVENTS_TOTAL),
             (pl.col(F_AGE_DAYS).cast(pl.Float64) < 365)
             & _positive(F_NEVER_INSPECTED)
             & ~pl.any_horizontal([_positive(c) for c in F_EVENTS_TOTAL]),
             "成立不足一年且无监管记录", "established less than a year ago with no supervision record"),
    # Issue 13: an entry on the serious-violation-and-dishonesty list in force → D (SAMR Order 44,
    # 市场监督管理严重违法失信名单管理办法: the strictest supervision while listed).
    HardRule("R6_SERIOUS_DISHONEST_LISTED", "D", (F_SERIOUS_LISTED,), _positive(F_SERIOUS_LISTED),
             "列入严重违法失信名单", "on the serious-violation-and-dishonesty list"),
    # An entry on the abnormal-operation list in force (经营异常名录) → at least C.
    HardRule("R7_ABNORMAL_OPERATION_LISTED", "C", (F_ABNORMAL_LISTED,), _positive(F_ABNORMAL_LISTED),
             "列入经营异常名录", "on the abnormal-operation list"),
    # A notification commitment (告知承诺) found breached in the last year → at least C: the licence
    # was granted on a promise that did not hold.
    HardRule("R8_NOTIFICATION_COMMITMENT_BREACHED", "C", (F_NOTIFICATION_BREACHED,),
             _positive(F_NOTIFICATION_BREACHED),
             "近一年违背告知承诺", "breached a notification commitment (告知承诺) in the last year"),
)


# Issue 18: the policy may cap how far the baseline of similar enterprises alone moves a grade. An
# enterprise whose grade rests mainly on the baseline (it outweighs every own-record reason), with no
# adverse record on file (models.reasons.ADVERSE_RECORD) and no hard rule firing, gets at most the
# cap (e.g. never D for being young, small or in a risky sector).
BASELINE_CAP_RULE = "BASELINE_CAP"


def baseline_cap_texts(cap: str) -> tuple[str, str]:
    """The reason shown where the policy's baseline cap lowered the grade."""
    return (f"无不良记录且未触发硬性规则，仅凭同类企业基准风险不评为高于{cap}级（政策上限）",
            f"no adverse record and no hard rule: the baseline of similar enterprises alone cannot grade "
            f"it above {cap} (policy cap)")


def rule_flags(features: pl.DataFrame, rules: Sequence[HardRule] = HARD_RULES) -> pl.DataFrame:
    """One boolean column per rule id: whether the rule fires for each row of ``features``."""
    needed = sorted({c for r in rules for c in r.columns})
    missing = [c for c in needed if c not in features.columns]
    if missing:
        raise ModelError(f"hard rules need feature column(s) missing from the feature frame: "
                         f"{', '.join(missing)}")
    if not rules:
        return pl.DataFrame(height=features.height)
    return features.select([r.when.fill_null(False).alias(r.id) for r in rules])


# --- grading --------------------------------------------------------------------------------------


def stable_grade_index(score: np.ndarray, previous_index: np.ndarray, edges: Sequence[float],
                       hysteresis: float) -> np.ndarray:
    """Band grade with hysteresis: keep the previous grade unless the score left its band by the margin.

    ``previous_index`` is the previous grade index (-1 where there is none). An enterprise keeps its
    previous grade g while ``lower_edge(g) − h ≤ score < upper_edge(g) + h``; otherwise it takes the
    plain band grade. So a move across an edge by less than ``h`` points changes nothing.
    """
    if hysteresis < 0:
        raise UsageError(f"grades.hysteresis must be ≥ 0 points; got {hysteresis}")
    bounds = check_band_edges(edges)
    plain = grade_index(score, bounds)
    prev = np.asarray(previous_index, dtype=np.int16)
    lower = np.concatenate([[-np.inf], bounds])
    upper = np.concatenate([bounds, [np.inf]])
    has_prev = prev >= 0
    safe = np.where(has_prev, prev, 0)
    s = np.asarray(score, dtype=np.float64)
    keep = has_prev & (s >= lower[safe] - hysteresis) & (s < upper[safe] + hysteresis)
    return np.where(keep, safe, plain).astype(np.int8)


def apply_grading(
    ids: pl.Series,
    score: np.ndarray,
    features: pl.DataFrame,
    previous: pl.DataFrame | None = None,
    *,
    edges: Sequence[float] | None = None,
    hysteresis: float | None = None,
    rules: Sequence[HardRule] = HARD_RULES,
    baseline_cap: str | None = None,
    cap_eligible: np.ndarray | None = None,
) -> pl.DataFrame:
    """Grades for scored rows: ``model_grade`` (bands + hysteresis), ``grade`` (after hard rules), ``rule``.

    ``previous`` is an earlier grades frame (``enterprise_id``, ``grade``, optionally ``model_grade``);
    hysteresis anchors on the previous *model* grade when present, so a lifted hard rule does not
    linger. Hard rules always apply at once. ``rule`` names the rule that raised the grade (the first
    in ``rules`` order among those with the highest floor), null if the model grade stood. Also
    returns ``fired`` — the ids of every rule that fires, for the reasons.

    ``baseline_cap`` (a grade) lowers to it the grade of rows where ``cap_eligible`` is True (the
    baseline drives the grade and there is no adverse record on file) and no hard rule fires; ``rule``
    is then ``BASELINE_CAP`` (and it joins ``fired``).
    """

    settings = get_settings()
    edges = tuple(settings.grades.band_edges) if edges is None else tuple(edges)
    hysteresis = float(settings.grades.hysteresis if hysteresis is None else hysteresis)
    n = len(ids)
    if len(score) != n or features.height != n:
        raise ModelError(f"grading got {n} ids, {len(score)} scores and {features.height} feature rows")

    prev_index = np.full(n, -1, dtype=np.int16)
    if previous is not None and previous.height:
        anchor = "model_grade" if "model_grade" in previous.columns else "grade"
        if "enterprise_id" not in previous.columns or anchor not in previous.columns:
            raise UsageError("previous grades need columns enterprise_id and grade; got "
                             f"{', '.join(previous.columns)}")
        prev = previous.select(pl.col("enterprise_id").cast(pl.String),
                               pl.col(anchor).cast(pl.String).alias("_prev")).unique("enterprise_id")
        bad = prev.filter(pl.col("_prev").is_not_null() & ~pl.col("_prev").is_in(list(GRADES)))
        if bad.height:
            raise UsageError(f"previous grades: {bad['enterprise_id'][0]} has grade "
                             f"{bad['_prev'][0]!r}; expected one of {', '.join(GRADES)}")
        joined = pl.DataFrame({"enterprise_id": ids.cast(pl.String)}).join(
            prev, on="enterprise_id", how="left", maintain_order="left")
        prev_index = joined["_prev"].replace_strict(_GRADE_RANK, default=-1,
                                                    return_dtype=pl.Int16).to_numpy()

    model_idx = stable_grade_index(np.asarray(score), prev_index, edges, hysteresis)
    flags = rule_flags(features, rules)
    final_idx = model_idx.copy()
    rule_id = np.full(n, None, dtype=object)
    # Highest floor wins; among equal floors the first rule in order names the change.
    for rule in sorted(rules, key=lambda r: -_GRADE_RANK[r.floor]):
        fires = flags[rule.id].to_numpy()
        floor = _GRADE_RANK[rule.floor]
        raises = fires & (floor > final_idx)
        final_idx = np.where(raises, floor, final_idx)
        rule_id = np.where(raises, rule.id, rule_id)
    capped = np.zeros(n, dtype=bool)
    if baseline_cap is not None:
        if baseline_cap not in _GRADE_RANK:
            raise UsageError(f"baseline_cap must be one of {', '.join(GRADES)}; got {baseline_cap!r}")
        any_rule = flags.to_numpy().any(axis=1) if rules else np.zeros(n, dtype=bool)
        eligible = np.asarray(cap_eligible, dtype=bool) if cap_eligible is not None else np.zeros(n, bool)
        capped = eligible & ~any_rule & (final_idx > _GRADE_RANK[baseline_cap])
        final_idx = np.where(capped, _GRADE_RANK[baseline_cap], final_idx)
        rule_id = np.where(capped, BASELINE_CAP_RULE, rule_id)
    letters = np.asarray(GRADES, dtype=object)
    fired = flags.select(
        pl.concat_list([pl.when(pl.col(r.id)).then(pl.lit(r.id)) for r in rules]).list.drop_nulls()
        .alias("fired")
    ) if rules else pl.DataFrame({"fired": [[] for _ in range(n)]}, schema={"fired": pl.List(pl.String)})
    if capped.any():
        fired = fired.with_columns(pl.when(pl.Series(capped)).then(pl.lit([BASELINE_CAP_RULE]))
                                   .otherwise(pl.col("fired")).alias("fired"))
    return pl.DataFrame({
        "model_grade": pl.Series(letters[model_idx].tolist(), dtype=pl.String),
        "grade": pl.Series(letters[final_idx].tolist(), dtype=pl.String),
        "rule": pl.Series(rule_id.tolist(), dtype=pl.String),
    }).with_columns(fired["fired"])
