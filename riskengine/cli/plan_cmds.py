"""``riskengine plan`` (the monthly 双随机 inspection list) and ``riskengine simulate-policy``.

Grades for a plan come from ``--grades FILE`` (a ``riskengine score`` output), else from the serving
store for that as_of, else by scoring now with the champion (``riskengine.workflows.scoring``).
"""

from __future__ import annotations

import json
import secrets
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from riskengine.cli import app
from riskengine.cli.options import parse_day
from riskengine.core.config import get_settings
from riskengine.core.errors import FatalInputError, ModelError, RiskEngineError, UsageError
from riskengine.core.files import atomic_write
from riskengine.core.store import Store
from riskengine.lake.layout import load_tables
from riskengine.supervision.capacity import POLICY_CAPACITY, read_capacity
from riskengine.supervision.inspectors import read_inspectors
from riskengine.supervision.mandatory import CarryOver
from riskengine.supervision.plan import grades_digest, make_plan, plan_digest
from riskengine.supervision.policy import load_policy, parse_policy
from riskengine.supervision.simulate import (
    default_year,
    grades_from_truth,
    read_source_table,
    read_truth,
    simulate_policies,
)
from riskengine.workflows.cases import mark_disputed
from riskengine.workflows.planning import previous_carry_over, write_plan, write_plan_files
from riskengine.workflows.reports.plots import simulation_png
from riskengine.workflows.scoring import read_grades, score_enterprises
from riskengine.workflows.warnings import mark_planned, overdue_plan_items


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _day(text: str, option: str = "--as-of") -> date:
    return parse_day(text, option)


def _capacity(text: str) -> tuple[int | str | dict[str, object], str]:
    """``--capacity``: a whole number for every district, a CSV/TOML file district -> inspections, or
    ``policy`` (in each district, what the policy asks for this month)."""

    stripped = text.strip()
    if stripped.isdigit():
        return int(stripped), "--capacity"
    if stripped.lower() == POLICY_CAPACITY:
        return POLICY_CAPACITY, "--capacity policy"
    path = Path(text)
    if path.suffix.lower() in (".csv", ".toml") or path.exists():
        return read_capacity(path), path.name
    raise UsageError("--capacity must be a non-negative integer, a .csv/.toml file or 'policy'; "
                     f"got {text!r}")


def read_grades_file(path: Path) -> Any:
    """A grades file written by ``riskengine score`` (.parquet, .csv or .xlsx)."""
    if not Path(path).is_file():
        raise UsageError(f"{path}: grades file not found")
    return read_grades(Path(path))


def resolve_grades(lake: Path, as_of: date, grades_file: Path | None, settings: Any) -> tuple[Any, dict]:
    """The grades to plan with and where they came from (file, store, or scored now)."""
    if grades_file is not None:
        grades = read_grades_file(grades_file)
        return grades, {"kind": "file", "path": str(Path(grades_file).resolve()),
                        "digest": grades_digest(grades)}
    store_file = Path(settings.store_file)
    if store_file.exists():
        try:
            grades = Store(store_file).latest_grades(as_of)
            _err(f"grades: from the serving store {store_file} (as_of {as_of})")
            return grades, {"kind": "store", "store": str(store_file), "as_of": as_of.isoformat()}
        except (ImportError, RiskEngineError) as exc:
            _err(f"grades: none in the serving store for {as_of} ({exc}); scoring now with the champion")

    try:
        grades = score_enterprises(lake, as_of, settings=settings)
    except ModelError as exc:
        raise ModelError(f"{exc}; or pass --grades FILE (a `riskengine score` output)") from None
    versions = ",".join(sorted(set(grades["model_version"].to_list())))
    return grades, {"kind": "scored", "model_version": versions}


def _print_summary(result: Any) -> None:
    meta = result.meta
    table = Table(title=f"检查计划 / inspection plan {meta['period']} · seed {meta['seed']} · "
                        f"policy {meta['policy_version']}")
    for column in ("district", "capacity", "mandatory", "scheduled mandatory", "over capacity", "random",
                   "inspectors"):
        table.add_column(column, justify="left" if column == "district" else "right")
    for row in meta["districts"]:
        counts = ("capacity", "mandatory", "mandatory_scheduled", "over_capacity", "random", "inspectors")
        table.add_row(f"{row['district']} {row['district_name']}", *(str(row[c]) for c in counts))
    Console().print(table)


@app.command()
def plan(
    out: Annotated[Path | None, typer.Option(help="the plan: .xlsx (one sheet per district) or .csv")] = None,
    lake: Annotated[Path | None, typer.Option(help="the lake folder (from `riskengine ingest`)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="first day of the period (YYYY-MM-DD); "
                                              "the period is the month from this day")] = None,
    capacity: Annotated[str | None, typer.Option(
        help="inspections this period: one number per district, a .csv (district,capacity) / .toml file, "
             "or 'policy' (per district: every mandatory item plus the draw the policy's ratios ask for)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the draw (default: a fresh random seed, "
                                             "recorded in the meta file)")] = None,
    policy: Annotated[Path | None, typer.Option(help="policy TOML (default: Settings.policy_path or the "
                                                "built-in policy)")] = None,
    grades: Annotated[Path | None, typer.Option(help="grades file from `riskengine score` (default: the "
                                                "serving store, else score now with the champion)")] = None,
    inspectors: Annotated[Path | None, typer.Option(
        help="CSV district,inspector_id (default: inspectors of the district's inspections in the last year)")
    ] = None,
    replay: Annotated[Path | None, typer.Option(help="a plan's .meta.json: redo that draw and check the "
                                                "list is identical")] = None,
    store: Annotated[bool, typer.Option(help="also save the plan into the serving store")] = True,
    carry_over: Annotated[bool, typer.Option(
        help="carry the previous plan's over-capacity items (from the serving store) into this one "
             "unless the enterprise has been inspected since")] = True,
    warnings: Annotated[bool, typer.Option(
        help="early warnings left unacknowledged past the policy's limit become mandatory items")] = True,
) -> None:
    """This period's inspection list per district: mandatory items, then the seeded 双随机 draw."""

    settings = get_settings()
    if replay is not None:
        _replay(replay, out)
        return
    missing = [name for name, value in (("--out", out), ("--lake", lake), ("--as-of", as_of),
                                        ("--capacity", capacity)) if value is None]
    if missing:
        raise UsageError(f"plan needs {', '.join(missing)} (or --replay META)")
    assert out is not None and lake is not None and as_of is not None and capacity is not None
    if out.suffix.lower() not in (".xlsx", ".csv"):
        raise UsageError(f"--out must end .xlsx or .csv; got {out}")
    day = _day(as_of)
    cap, cap_source = _capacity(capacity)
    chosen_policy = load_policy(policy)
    pool = read_inspectors(inspectors) if inspectors is not None else None
    if seed is None:
        # An unpredictable draw (双随机), still replayable: the seed goes into the meta file.
        seed = secrets.randbelow(2**31)
        _err(f"seed: {seed} (random; recorded in {out.name}.meta.json)")
    grade_frame, source = resolve_grades(lake, day, grades, settings)
    grade_frame = mark_disputed(grade_frame, settings)  # the plan marks grades under objection
    carried = previous_carry_over(Path(settings.store_file), day) if carry_over else None
    if carried is not None:
        _err(f"carry-over: {len(carried.enterprise_ids)} over-capacity item(s) of plan {carried.period} "
             "(dropped if inspected since)")
    overdue = None
    if warnings:
        overdue = overdue_plan_items(settings, day, chosen_policy)
        if overdue.height:
            _err(f"early warnings: {overdue.height} enterprise(s) with a warning unacknowledged for more "
                 f"than {chosen_policy.warnings.ack_limit_days} days become mandatory items")
    result = write_plan(grade_frame, lake, day, cap, out, seed=seed, policy=chosen_policy, inspectors=pool,
                        grades_source=source, store_file=settings.store_file if store else None,
                        capacity_source=cap_source, carry_over=carried, warning_items=overdue)
    if overdue is not None and overdue.height:
        mark_planned(settings, overdue, result.meta["period"])
    for warning in result.warnings:
        _err(f"warning: {warning}")
    _err(f"wrote {result.scheduled.height} scheduled inspections ({result.plan.height} listed) to {out}")
    _print_summary(result)


def _replay(meta_file: Path, out: Path | None) -> None:
    """Redo a plan from its meta file and compare the list with the recorded digest."""


    try:
        meta = json.loads(Path(meta_file).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{meta_file}: not a plan meta file: {exc}") from None
    source = meta.get("grades_source", {})
    grades_path = source.get("snapshot") or source.get("path")
    if not grades_path:
        raise FatalInputError(f"{meta_file}: no grades file recorded; cannot replay")
    grade_frame = read_grades_file(Path(grades_path))
    if grades_digest(grade_frame) != meta["grades_digest"]:
        raise FatalInputError(f"{grades_path}: the grades changed since the plan was made "
                              f"(digest {grades_digest(grade_frame)} ≠ {meta['grades_digest']})")
    text = meta.get("policy_toml")
    chosen = parse_policy(text, "policy (from meta)") if text else load_policy(Path(meta["policy_source"]))
    if chosen.digest != meta["policy_digest"]:
        raise FatalInputError(f"{meta_file}: the policy differs from the one recorded "
                              f"({meta['policy_version']})")
    pool = pl.DataFrame(meta["inspectors"]) if meta.get("inspectors") else None
    carried = CarryOver.from_meta(meta["carried_over"]) if meta.get("carried_over") else None
    warned = pl.DataFrame(meta["warning_items"]) if meta.get("warning_items") else None
    result = make_plan(grade_frame, load_tables(Path(meta["lake"])), date.fromisoformat(meta["as_of"]),
                       meta["capacity"], int(meta["seed"]), chosen, inspectors=pool, carry_over=carried,
                       warning_items=warned)
    same = plan_digest(result.plan) == meta["plan_digest"]
    if out is not None:
        result.meta.update({k: meta[k] for k in ("grades_source", "lake", "policy_toml") if k in meta})
        write_plan_files(result, out)
        _err(f"wrote the replayed plan to {out}")
    if not same:
        raise RiskEngineError(f"replay of {meta_file} gives a different list (the lake changed?)")
    _err(f"replay of {meta_file}: identical list ({result.scheduled.height} scheduled inspections)")


# --- simulate-policy --------------------------------------------------------------------------


@app.command("simulate-policy")
def simulate_policy(
    city: Annotated[Path, typer.Option(help="a synthetic city from `riskengine generate` (with _truth/)")],
    capacity: Annotated[int, typer.Option(help="inspections a month, city-wide, the same for every policy")],
    scores: Annotated[Path | None, typer.Option(
        help="grades file from `riskengine score` (as_of at the start of the year); without it, stand-in "
             "grades derived from the ground truth with --noise (a demonstration, not a model)")] = None,
    year: Annotated[int | None, typer.Option(help="test year (default: the truth's last full year)")] = None,
    seed: Annotated[int, typer.Option(help="seed of every random choice of the simulation")] = 0,
    policy: Annotated[Path | None, typer.Option(help="policy TOML (default: the configured policy)")] = None,
    noise: Annotated[float, typer.Option(help="sd of the noise on truth-derived grades (logit scale)")] = 0.5,
    repeats: Annotated[int, typer.Option(help="simulate the year this many times and average")] = 10,
    out: Annotated[Path | None, typer.Option(help="write the results as JSON here (and a PNG chart "
                                             "beside it, same name .png)")] = None,
) -> None:
    """Compare uniform random, grade-differentiated and top-k supervision at equal capacity."""


    truth = read_truth(city)
    enterprises = read_source_table(city, "enterprises")
    if enterprises is None:
        raise FatalInputError(f"{city}: no enterprises.csv or enterprises.parquet")
    chosen_year = year or default_year(truth)
    active = enterprises.filter(pl.col("status") == "active")
    if scores is not None:
        grades = read_grades_file(scores)
        if "sector" not in grades.columns:
            grades = grades.join(enterprises.select("enterprise_id", "sector"), on="enterprise_id")
        source = str(scores)
    else:
        grades = grades_from_truth(truth, active, date(chosen_year, 1, 1), noise=noise, seed=seed)
        source = f"ground truth + noise {noise} (stand-in, not a model)"
        _err(f"grades: derived from the ground truth with noise sd {noise} — a stand-in, not a model")
    grades = grades.join(active.select("enterprise_id"), on="enterprise_id")
    history = read_source_table(city, "inspections")
    result = simulate_policies(grades, truth, chosen_year, capacity, load_policy(policy), seed=seed,
                               history=history, repeats=repeats)
    result.meta["grades"] = source
    result.meta["city"] = str(Path(city).resolve())
    _print_simulation(result)
    if out is not None:
        text = json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str)
        atomic_write(out, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
        png = out.with_suffix(".png")
        atomic_write(png, lambda tmp: simulation_png(result, tmp))
        _err(f"wrote {out} and {png}")
    else:
        print(json.dumps(result.to_dict(), ensure_ascii=False, default=str))


def _print_simulation(result: Any) -> None:
    meta = result.meta
    table = Table(title=f"supervision policies at equal capacity: {meta['capacity_per_month']} inspections a "
                        f"month, {meta['year']}, {meta['enterprises']} enterprises, mean of "
                        f"{meta['repeats']} simulated years")
    columns = [("policy", "policy"), ("inspections", "inspections"),
               ("findings /100 (expected)", "expected_findings_per_100"),
               ("findings /100 (realised)", "realised_findings_per_100"),
               ("adverse found", "adverse_found_share"), ("from random draws", "random_share"),
               ("min annual P(inspected)", "min_annual_probability"), ("lift vs uniform", "lift_vs_uniform")]
    for label, _ in columns:
        table.add_column(label, justify="left" if label == "policy" else "right")
    for row in result.policies.iter_rows(named=True):
        cells = []
        for _, key in columns:
            value = row[key]
            if key in ("adverse_found_share", "random_share", "min_annual_probability"):
                cells.append(f"{value:.1%}")
            elif isinstance(value, float):
                cells.append(f"{value:.2f}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    verdict = "met" if meta["target_met"] else "NOT met"
    targets = meta["targets"]
    table.caption = (f"target (graded ≥ {targets['lift']:.0f}× uniform per inspection, every enterprise "
                     f"≥ {targets['min_annual_probability']:.0%} a year): {verdict}")
    Console().print(table)
    coverage = Table(title="inspection coverage per grade (share of the grade inspected at least once)")
    coverage.add_column("policy")
    for grade in ("A", "B", "C", "D"):
        coverage.add_column(grade, justify="right")
    for (policy,), part in result.coverage.group_by("policy", maintain_order=True):
        shares = dict(zip(part["grade"].to_list(), part["inspected_share"].to_list(), strict=True))
        coverage.add_row(str(policy), *(f"{shares.get(g, 0.0):.1%}" for g in ("A", "B", "C", "D")))
    Console().print(coverage)
