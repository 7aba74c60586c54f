"""``riskengine train`` and ``riskengine promote``: the model's life in the MLflow registry.

Heavy modules (features, models, lightgbm, mlflow) are imported inside the commands.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from models.registry import promote as do_promote
from models.registry import quiet
from models.train import TrainConfig, train_model
from models.train_config import parse_blend_weight
from riskengine.cli import app
from riskengine.cli.options import parse_day
from riskengine.cli.score_cmds import _say_dashboard
from riskengine.core.config import get_settings
from riskengine.core.errors import UsageError
from riskengine.lake.layout import load_tables
from riskengine.supervision.policy import load_policy
from riskengine.synth.truth import load_truth
from riskengine.workflows.cluster import ClusterSpec, training_features_on_cluster
from riskengine.workflows.training import recorded_inclusion
from riskengine.workflows.training import register as register_training

if TYPE_CHECKING:
    import polars as pl

# Columns of the metrics tables, in print order, with their headers.
_RANKING = (
    ("auc", "AUC"),
    ("pr_auc", "PR-AUC"),
    ("ks", "KS"),
    ("brier", "Brier"),
    ("capture_10", "capt@10%"),
    ("spearman_truth", "ρ truth"),
    ("days_earlier", "days earlier"),
    ("hits_per_100", "hits/100"),
)
_RATES = (("rate_A", "A"), ("rate_B", "B"), ("rate_C", "C"), ("rate_D", "D"))
_POPULATION_TITLE = {
    "random": "random (双随机) inspections; label = the random inspection failed",
    "inspected": "enterprises inspected within 6 months; label = their first inspection was adverse",
    "all": "every enterprise; label = any adverse outcome in the horizon",
}


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def print_metrics(metrics: pl.DataFrame) -> None:
    """The model-vs-baselines table per evaluation population, via rich to stdout.

    Left: ranking and calibration; right: the realized adverse rate per grade (should rise A < D).
    """

    console = Console(width=None if sys.stdout.isatty() else 120)
    for population, title in _POPULATION_TITLE.items():
        rows = metrics.filter(pl.col("population") == population)
        if rows.height == 0:
            continue
        first = rows.row(0, named=True)
        table = Table(
            title=f"Out-of-time test, {title} (n={first['n']:.0f}, adverse={first['positives']:.0f})"
        )
        table.add_column("scorer", no_wrap=True)
        shown = [(c, h) for c, h in (*_RANKING, *_RATES) if c in rows.columns and rows[c].is_not_null().any()]
        for column, header in shown:
            table.add_column(f"rate {header}" if column.startswith("rate_") else header, justify="right")
        for row in rows.iter_rows(named=True):
            table.add_row(row["scorer"], *[_fmt(row[c]) for c, _ in shown])
        console.print(table)


def grade_check(metrics: pl.DataFrame) -> str:
    """One line: do the model's realized rates rise A < B < C < D on the backtest populations?"""
    rows = metrics.filter(pl.col("scorer") == "lightgbm")
    parts = []
    for row in rows.iter_rows(named=True):
        if row.get("grades_monotone") is None:
            continue
        rates = " < ".join(_fmt(row.get(f"rate_{g}")) for g in "ABCD")
        verdict = "rise" if row["grades_monotone"] == 1.0 else "do NOT rise"
        parts.append(f"{row['population']}: {rates} ({verdict} A<B<C<D)")
    return "backtest adverse rate per grade — " + "; ".join(parts)


def band_warning(distribution: pl.DataFrame, shares: Mapping[str, float] | None,
                 tolerance: float = 0.15) -> str | None:
    """A line when the grades are far from the policy's shares (a grade empty, or off by more than
    ``tolerance``): the model gave too few distinct scores for the bands to follow the population."""
    if not shares or distribution.is_empty():
        return None
    got = dict(zip(distribution["grade"], distribution["share"], strict=True))
    off = [g for g in shares
           if (shares[g] > 0 and got.get(g, 0.0) == 0) or abs(got.get(g, 0.0) - shares[g]) > tolerance]
    if not off:
        return None
    wanted = ", ".join(f"{g} {shares[g]:.0%}" for g in shares)
    return (f"warning: the grades do not follow the policy's shares ({wanted}): {', '.join(off)} off, "
            f"the model gives too few distinct scores; use more history, more --snapshots or the other "
            f"--target")


@app.command()
def train(
    lake: Annotated[Path, typer.Option(help="the lake folder (from `riskengine ingest`)")],
    as_of: Annotated[str, typer.Option("--as-of", help="decision date D: train on what was known before it")],
    truth: Annotated[
        Path | None,
        typer.Option(
            help="a synthetic city's ground truth (SOURCE/_truth/risk.parquet or SOURCE) for extra metrics"
        ),
    ] = None,
    snapshots: Annotated[
        int | None,
        typer.Option(
            help="monthly fit snapshots (train + validation + calibration); default: Settings.model"
        ),
    ] = None,
    test_snapshots: Annotated[int, typer.Option(help="latest monthly snapshots held out as the test")] = 3,
    selection: Annotated[
        str, typer.Option(help="selection-bias handling of the model: none or ipw")
    ] = "none",
    threads: Annotated[int, typer.Option(help="LightGBM threads")] = 2,
    max_rounds: Annotated[
        int | None, typer.Option(help="most boosting rounds; early stopping picks fewer (default 400)")
    ] = None,
    compare_selection: Annotated[
        bool, typer.Option(help="also train the other selection variant (IPW or none) and report it")
    ] = True,
    register: Annotated[bool, typer.Option(help="log to MLflow and register as challenger")] = True,
    target: Annotated[
        str,
        typer.Option(help="blend: both below in one model, their log-odds weighted (--blend-weight), "
                          "calibrated on visits (default); inspection: what an inspection would find (one "
                          "row per inspection); horizon: any adverse outcome within the horizon per "
                          "enterprise"),
    ] = "blend",
    policy: Annotated[
        Path | None, typer.Option(help="policy file whose [grades] shares set the bands (default: built-in)")
    ] = None,
    select: Annotated[bool, typer.Option(
        help="choose feature set and tree size by rolling-origin validation (else: all features, 7 leaves)")
    ] = True,
    compare_targets: Annotated[bool, typer.Option(help="also train the other target and report it")] = True,
    inspection_snapshots: Annotated[int | None, typer.Option(
        help="the inspection target's monthly fit snapshots (default: 24, fewer if the lake's visits "
             "start later, at least --snapshots); a month holds few visits, so this target gains from "
             "more")] = None,
    blend_weight: Annotated[str, typer.Option(
        help="the blend's weight of the horizon model, 0 to 1 (the inspection model's is the rest); "
             "'looked': the share of enterprise-months with a visit within the horizon, 0.2-0.8; "
             "'choose': picked by AUC on held-out visits")] = "looked",
    visit_window_months: Annotated[int, typer.Option(
        help="the inspection target's rows: each visit in [t, t + W months) of each month start t")] = 1,
    cluster: Annotated[str | None, typer.Option(
        help="build the snapshots' features on Dask: local, local:WORKERS or tcp://HOST:PORT")] = None,
    partitions: Annotated[int | None, typer.Option(
        help="with --cluster: parts of the enterprises (default: the lake's buckets, else by size)")] = None,
) -> None:
    """Train on what was known before D, evaluate out of time, register the model as `challenger`."""

    quiet()
    day = parse_day(as_of)
    settings = get_settings()
    config = TrainConfig(
        horizon_days=settings.model.horizon_days,
        snapshots=snapshots or settings.model.snapshot_months,
        test_snapshots=test_snapshots,
        seed=settings.model.seed,
        num_threads=threads,
        max_rounds=max_rounds or TrainConfig.max_rounds,
        selection=selection,
        compare_selection=compare_selection,
        target=target,
        select=select,
        compare_targets=compare_targets,
        inspection_snapshots=inspection_snapshots,
        visit_window_months=visit_window_months,
        blend_weight=parse_blend_weight(blend_weight),
    ).validate()
    truth_frame = load_truth(truth) if truth is not None else None
    tables = load_tables(lake)
    _err(f"training on {config.snapshots} monthly snapshots known before {day} …")
    shares = load_policy(policy).grade_shares
    features = None
    if cluster is not None:
        features = training_features_on_cluster(ClusterSpec.parse(cluster), lake, day, config,
                                                partitions=partitions, on_connect=_say_dashboard)
    elif partitions is not None:
        raise UsageError("--partitions goes with --cluster")
    inclusion = recorded_inclusion(settings, day)
    if inclusion is not None:
        _err(f"weighting random inspections by the inclusion probabilities of "
             f"{inclusion['month'].n_unique()} stored plans' draws ({inclusion.height:,} enterprises drawn)")
    result = train_model(tables, day, truth=truth_frame, config=config, grade_shares=shares,
                         features=features, inclusion=inclusion)
    plan = result.plan
    for name, why in result.info["left_out"].items():
        family = name.removeprefix("family:")
        _err(f"left out the {family} features: {why}" if family != name else f"left out {name}: {why}")
    for name, why in result.info["skipped"].items():
        _err(f"skipped {name}: {why}")
    chosen = ", ".join(f"{t}: {c}" for t, c in result.info["chosen"].items())
    _err(f"rolling-origin validation chose {chosen}")
    model_info = result.info["model"]
    if model_info.get("target") == "blend":
        tried = ", ".join(f"{w} {a:.3f}" for w, a in sorted(model_info["weight_auc"].items()))
        _err(f"blend: horizon model weight {model_info['weight_horizon']} ({model_info['weight_rule']}); "
             f"AUC by weight on {model_info['weight_rows']} held-out first visits: {tried}")
    _err(
        f"train {plan.train[0]}..{plan.train[-1]}, validation {plan.valid[0]}..{plan.valid[-1]}, "
        f"calibration {plan.calib[0]}..{plan.calib[-1]}, test {plan.test[0]}..{plan.test[-1]} "
        f"({result.info['rows']['test']} rows); {len(result.model.feature_names)} features, "
        f"{result.info['model']['best_iteration']} trees"
    )
    print_metrics(result.metrics)
    dist = ", ".join(
        f"{r['grade']} {r['share']:.1%}" for r in result.grade_distribution.iter_rows(named=True)
    )
    _err(f"grade distribution on {result.info['grades_month']}: {dist}")
    if (warning := band_warning(result.grade_distribution, shares)) is not None:
        _err(warning)
    _err(grade_check(result.metrics))
    if register:
        run = register_training(result, settings)
        _err(f"registered {run.model_name} version {run.version} (alias challenger), MLflow run {run.run_id}")


@app.command()
def promote(
    force: Annotated[
        bool, typer.Option(help="promote without the backtest comparison (needs --reason)")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="why a forced promotion is justified (logged)")] = None,
) -> None:
    """Move alias `champion` to the challenger if it is at least as good on the out-of-time backtest.

    Both are scored on the challenger's test slice; the challenger needs AUC and capture at 10% at
    least as high as the champion's. Without a challenger: exit 1. A refusal exits 0 with the reason.
    """

    quiet()
    result = do_promote(force=force, reason=reason)
    for who, values in result.backtest.items():
        _err(
            f"backtest {who}: AUC {values['auc']:.4f}, capture at 10% {values['capture_10']:.4f} "
            f"({values['rows']:.0f} rows)"
        )
    # A refusal is a decision, not a failure: exit 0 (pipelines such as quickstart go on with the
    # champion they have) and say how to override.
    if not result.promoted and result.champion_before != result.challenger:
        _err(result.message + "; use --force --reason TEXT to override")
        return
    _err(result.message)
