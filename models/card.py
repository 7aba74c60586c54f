"""The model card of a registered version (issue 11): what it was trained on, what it estimates, how
it did against the baselines, its grade table, and what it must not be used for. Markdown text."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from models.train_config import TrainResult

_COLUMNS = ("auc", "capture_10", "days_earlier", "hits_per_100", "rate_A", "rate_B", "rate_C", "rate_D")


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _blend_lines(model_info: dict, plans: dict) -> list[str]:
    """How the blend (models.blend) was weighted and what each part was fitted on."""
    if model_info.get("target") != "blend":
        return []
    months = [f"{t} model fit months {p['train'][0]} .. {p['calib'][-1]}"
              for t, p in plans.items() if t in ("horizon", "inspection")]
    tried = ", ".join(f"{w}: {_fmt(a)}" for w, a in sorted((model_info.get("weight_auc") or {}).items()))
    return [f"Weight of the horizon model {model_info.get('weight_horizon')} (inspection model "
            f"{round(1 - float(model_info.get('weight_horizon', 0.5)), 2)}), "
            f"{model_info.get('weight_rule')}; AUC of each weight on {model_info.get('weight_rows')} "
            f"first visits of the calibration months ({model_info.get('weight_population')}): {tried}. "
            f"The {'; the '.join(months)}."]


def model_card(result: TrainResult) -> str:
    """The card as markdown (logged to MLflow as ``model_card.md`` and kept in the model's metadata)."""
    m = result.model
    meta = m.metadata
    info = result.info
    lines = [
        f"# Model card: riskengine credit-risk model, as of {result.plan.known_before}",
        "",
        "## Target",
        f"`{meta.get('target', result.config.target)}`: {meta.get('target_description', '')}.",
        *_blend_lines(info.get("model") or {}, info.get("plans") or {}),
        "",
        "## Data and population",
        f"- Fit months: {', '.join(str(d) for d in result.plan.fit[:1])} .. {result.plan.fit[-1]}; "
        f"test months {result.plan.test[0]} .. {result.plan.test[-1]}; rows per slice {info.get('rows')}.",
        f"- Adverse rate per slice: {info.get('adverse_rate')}.",
        f"- Features ({len(m.feature_names)}): chosen by rolling-origin validation: {info.get('chosen')}.",
        f"- Bagging: each target's model is the mean of {result.config.bags} booster(s) fitted with seeds "
        f"{result.config.seed} .. {result.config.seed + result.config.bags - 1}.",
        f"- Left out (absent, empty or constant): {len(info.get('left_out', {}))} features.",
        f"- Baselines skipped: {info.get('skipped') or 'none'}.",
        "",
        "## Metrics on the out-of-time test, against the baselines",
        "",
        "| population | scorer | " + " | ".join(_COLUMNS) + " |",
        "|---|---|" + "---|" * len(_COLUMNS),
    ]
    for row in result.metrics.sort("population", "scorer").iter_rows(named=True):
        lines.append(f"| {row['population']} | {row['scorer']} | "
                     + " | ".join(_fmt(row.get(c)) for c in _COLUMNS) + " |")
    legend = {
        "lightgbm": "this model",
        "lightgbm_inspection": "the inspection target's model, trained beside it",
        "lightgbm_horizon": "the horizon target's model, trained beside it",
        "lightgbm_mean_logodds": "both targets' calibrated log-odds averaged",
        "lightgbm_ipw": "this target weighted by inverse inspection propensity",
        "lightgbm_no_ipw": "this target without propensity weights",
        "points_scorecard": "additive points for bad events (1 year; serious ones 3 years)",
        "share_of_past": "share of past inspections that were adverse",
        "logistic_scorecard": "a binned logistic scorecard (optbinning)",
        "oracle": "the synthetic city's latent risk itself (an upper bound)",
    }
    present = [s for s in legend if s in set(result.metrics["scorer"])]
    lines += ["", "Scorers: " + "; ".join(f"`{s}`: {legend[s]}" for s in present) + "."]
    bands = info.get("bands", {})
    lines += [
        "",
        "## Grades",
        f"Score 500 = the population's mean probability ({_fmt(bands.get('score_base_rate'))}); band edges "
        f"(lower edges of B, C, D) {bands.get('band_edges') or 'from Settings'}; target shares "
        f"{bands.get('shares') or 'none'}.",
        "",
        "| grade | n | share |",
        "|---|---|---|",
        *[f"| {r['grade']} | {r['n']} | {_fmt(float(r['share']))} |"
          for r in result.grade_distribution.iter_rows(named=True)],
        "",
        "## Must not be used for",
        "- Grades are internal supervision aids for planning inspections: not a basis for punishment, "
        "fines, publication or any decision about an enterprise without a person reviewing its records.",
        "- Not a credit rating for lenders or the public; not comparable across bureaus whose bands were "
        "set on other populations.",
        "- Not valid for populations, sectors or periods unlike the training data above without retraining.",
    ]
    return "\n".join(lines) + "\n"


def metrics_frame(result: TrainResult) -> pl.DataFrame:
    """The card's metrics table as a frame (for callers that render it otherwise)."""
    shown = [c for c in _COLUMNS if c in result.metrics.columns]
    return result.metrics.select("population", "scorer", *shown)
