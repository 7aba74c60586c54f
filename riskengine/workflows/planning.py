"""Planning a month: load the lake and the policy, make the plan, write its files and save it to the store."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from riskengine.core import exports
from riskengine.core.errors import UsageError
from riskengine.core.files import atomic_write
from riskengine.core.store import Store
from riskengine.core.timerule import period_start_of
from riskengine.lake.layout import load_tables
from riskengine.supervision.mandatory import CarryOver
from riskengine.supervision.plan import PlanResult, make_plan
from riskengine.supervision.policy import Policy, default_policy_text, load_policy
from riskengine.workflows.reports.excel import write_excel


def previous_carry_over(store_file: Path, as_of: date) -> CarryOver | None:
    """The over-capacity items of the latest plan in the serving store that began before ``as_of``
    (None when there is no store or no such plan)."""
    if not Path(store_file).exists():
        return None

    store = Store(Path(store_file))
    earlier = [(period_start_of(p), p) for p in store.plan_periods() if period_start_of(p) < as_of]
    if not earlier:
        return None
    record = store.plan(max(earlier)[1])
    return CarryOver.from_plan(record.rows, record.meta)


def meta_path(out: Path) -> Path:
    """``<out>.meta.json`` beside the plan."""
    return out.with_name(out.name + ".meta.json")


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
               carry_over: CarryOver | None = None, warning_items: pl.DataFrame | None = None) -> PlanResult:
    """Plan for the lake's enterprises and write the files (and the store, if ``store_file``).

    The entry point for ``riskengine quickstart``: grades from
    ``riskengine.workflows.scoring.score_enterprises``,
    e.g. ``write_plan(grades, lake, as_of, 20, Path("plan.xlsx"), seed=1, store_file=settings.store_file)``.
    Grades not read from a file are saved beside the plan (``<out>.grades.parquet``) for replay.
    """

    policy = policy or load_policy()
    tables = load_tables(Path(lake))
    result = make_plan(grades, tables, as_of, capacity, seed, policy, inspectors=inspectors,
                       capacity_source=capacity_source, carry_over=carry_over, warning_items=warning_items)
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

    if policy.source == "built-in":
        return default_policy_text()
    path = Path(policy.source)
    return path.read_text(encoding="utf-8") if path.is_file() else None
