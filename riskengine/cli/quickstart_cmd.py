"""``riskengine quickstart``: the whole pipeline on a generated city, then a summary.

It runs the same commands a user would, in order, so what it shows is what they get:
generate → ingest → train (backtest year) → promote → score (and regrade each quarter of the
backtest year) → simulate-policy → train (now) → promote → score → plan → a credit repair worked end
to end (grade before, the case, grade after) → publish and share → monitor (the grades over the
backtest year) → warnings (raised, routed, acknowledged, pushed to a local webhook receiver).
Everything lands in one working folder; MLflow's store and the serving store live there too, so a
quickstart never touches another project's models.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from riskengine.cli import app
from riskengine.core.config import get_settings
from riskengine.core.errors import UsageError
from riskengine.core.store import Store
from riskengine.lake.layout import scan_table
from riskengine.workflows.cases import case_store
from riskengine.workflows.scoring import read_grades, write_grades
from riskengine.workflows.webhook_receiver import LocalReceiver

# The generated city covers 2019-01-01..2025-12-31. The backtest model is trained on what was known
# before 2025 and judged on 2025 (out of time); the production model uses everything before 2026.
CITY_START = date(2019, 1, 1)
CITY_END = date(2025, 12, 31)
BACKTEST_AS_OF = date(2025, 1, 1)
NOW_AS_OF = date(2026, 1, 1)
# The backtest year's grades are served from these days on (a bureau regrading every quarter).
QUARTERS = (date(2025, 4, 1), date(2025, 7, 1), date(2025, 10, 1))


def default_capacity(enterprises: int, districts: int = 13, annual_share: float = 0.25) -> int:
    """Monthly inspections per district for the policy simulation: ~25% of enterprises a year.

    The default policy's random ratios (1-30%) need about 3% a year; the rest goes to follow-ups of
    failures and 12315 complaint leads, which in the generated city come to roughly 20-35% a year.
    """
    return max(3, round(enterprises / districts * annual_share / 12))


def _step(number: int, total: int, text: str) -> None:
    print(f"\n[{number}/{total}] {text}", file=sys.stderr, flush=True)


def _run(args: list[str]) -> None:
    """Run one riskengine command in this process, exactly as on the command line."""
    app(args=args, standalone_mode=False)


@app.command()


def quickstart(
    enterprises: Annotated[int, typer.Option(help="enterprises in the generated city")] = 20000,
    dir: Annotated[Path, typer.Option("--dir", help="working folder for the city, lake, models and outputs")]
    = Path("riskengine-quickstart"),
    seed: Annotated[int, typer.Option(help="seed of the city and of every random draw")] = 42,
    capacity: Annotated[int | None, typer.Option(
        help="inspections per district a month, for the policy simulation and the plan (default: the "
             "simulation gets about a quarter of an average district's enterprises a year, and the plan "
             "what the policy asks for in each district)")] = None,
) -> None:
    """Generate a city and run the whole pipeline on it: ingest, train, promote, score, simulate, plan."""
    if enterprises < 200:
        raise UsageError(f"--enterprises must be at least 200 for a meaningful model; got {enterprises}.")
    if capacity is not None and capacity < 1:
        raise UsageError(f"--capacity must be a positive integer; got {capacity}.")
    simulated = capacity or default_capacity(enterprises)
    # The plan: a flat number if one was given, else per district what the policy asks for (every
    # mandatory item and the random draw at the policy's ratios), so the demo plan is feasible.
    plan_capacity = str(capacity) if capacity is not None else "policy"
    work = dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    # Models, runs and the serving store belong to this working folder.
    os.environ["RISKENGINE_HOME"] = str(work)

    get_settings.cache_clear()
    city, lake, out = work / "city", work / "lake", work / "outputs"
    out.mkdir(exist_ok=True)
    started = time.perf_counter()
    total = 14

    _step(1, total, f"generating a city of {enterprises:,} enterprises ({CITY_START}..{CITY_END}) → {city}")
    _run(["generate", "--enterprises", str(enterprises), "--seed", str(seed), "--out", str(city),
          "--start", CITY_START.isoformat(), "--end", CITY_END.isoformat()])
    _step(2, total, f"ingesting into the lake → {lake}")
    _run(["ingest", str(city), "--lake", str(lake)])
    _step(3, total, f"training the backtest model on what was known before {BACKTEST_AS_OF}")
    _run(["train", "--lake", str(lake), "--as-of", BACKTEST_AS_OF.isoformat(), "--truth", str(city)])
    _step(4, total, "promoting it to champion (no champion yet)")
    _run(["promote"])
    backtest_grades = out / f"grades_{BACKTEST_AS_OF}.parquet"
    _step(5, total, f"grading every active enterprise as of {BACKTEST_AS_OF}")
    _run(["score", "--lake", str(lake), "--as-of", BACKTEST_AS_OF.isoformat(), "--out", str(backtest_grades)])
    print(f"  regrading each quarter of {BACKTEST_AS_OF.year} with the same champion: "
          + ", ".join(d.isoformat() for d in QUARTERS), file=sys.stderr, flush=True)
    for day in QUARTERS:
        _run(["score", "--lake", str(lake), "--as-of", day.isoformat(),
              "--out", str(out / f"grades_{day}.parquet")])
    _step(6, total, f"simulating supervision policies over {BACKTEST_AS_OF.year} at equal capacity")
    monthly = simulated * 13
    _run(["simulate-policy", "--city", str(city), "--scores", str(backtest_grades), "--capacity",
          str(monthly), "--year", str(BACKTEST_AS_OF.year), "--seed", str(seed),
          "--out", str(out / "simulation.json")])
    _step(7, total, f"training the current model on everything known before {NOW_AS_OF}")
    _run(["train", "--lake", str(lake), "--as-of", NOW_AS_OF.isoformat(), "--truth", str(city)])
    _step(8, total, "promoting the new challenger if it is at least as good on the backtest")
    _run(["promote"])
    grades = out / f"grades_{NOW_AS_OF}.xlsx"
    now_grades = out / f"grades_{NOW_AS_OF}.parquet"
    _step(9, total, f"grading every active enterprise as of {NOW_AS_OF}")
    _run(["score", "--lake", str(lake), "--as-of", NOW_AS_OF.isoformat(), "--out", str(now_grades)])

    write_grades(read_grades(now_grades), grades)  # the officers' Excel copy of the same grades
    plan = out / f"plan_{NOW_AS_OF:%Y-%m}.xlsx"
    per_district = (f"{capacity} per district" if capacity is not None
                    else "per district what the policy asks for (mandatory items + the random draw)")
    _step(10, total, f"planning {NOW_AS_OF:%Y-%m}'s 双随机 inspections, {per_district}")
    _run(["plan", "--lake", str(lake), "--as-of", NOW_AS_OF.isoformat(), "--capacity", plan_capacity,
          "--seed", str(seed), "--grades", str(now_grades), "--out", str(plan)])

    _step(11, total, "a credit repair (信用修复) worked end to end: grade before, the case, grade after")
    repair = _credit_repair(lake, now_grades)

    site, exchange = out / "published", out / "credit-exchange"
    _step(12, total, f"the credit record leaves the engine: what may be published as of {NOW_AS_OF}, and a "
          "push to the credit platform's file exchange")
    _run(["publish", "--lake", str(lake), "--as-of", NOW_AS_OF.isoformat(), "--out", str(site)])
    _run(["share", "--lake", str(lake), "--to", str(exchange)])

    report = out / f"monitor_{BACKTEST_AS_OF.year}.html"
    _step(13, total, f"monitoring the grades served in {BACKTEST_AS_OF.year}: findings by grade, drift")
    _run(["monitor", "--lake", str(lake), "--as-of", NOW_AS_OF.isoformat(), "--months", "12",
          "--out", str(report), "--no-fail-on-alert"])
    warnings_file = out / f"warnings_{NOW_AS_OF}.json"
    _step(14, total, f"early warnings as of {NOW_AS_OF}, pushed to a local webhook receiver")
    demo = _warnings_demo(lake, warnings_file)

    elapsed = time.perf_counter() - started
    settings = get_settings()
    print(f"\nquickstart finished in {elapsed:.0f} s. In {work}:")
    print(f"  city (source data)      {city}")
    print(f"  lake                    {lake}")
    print(f"  MLflow store            {settings.mlruns_dir}   (mlflow ui --backend-store-uri "
          f"sqlite:///{settings.mlruns_dir / 'mlflow.db'})")
    print(f"  serving store           {settings.store_file}")
    print(f"  grades (Excel)          {grades}")
    print(f"  inspection plan (Excel) {plan}")
    print(f"  policy simulation       {out / 'simulation.json'}")
    if repair:
        print(f"  credit repair           {repair}")
    print(f"  published records       {site / 'index.html'}   (+ records.csv, records.json)")
    print(f"  credit platform push    {exchange / 'manifest.json'}   (riskengine share --status)")
    print(f"  monitoring report       {report}   (and {report.with_suffix('.json').name})")
    print(f"  early warnings          {warnings_file}")
    _print_monitor(report.with_suffix(".json"))
    print(demo)
    print("\nNext: serve the grades to inspectors (from this folder):")
    print(f"  cd {work} && riskengine keys create --role inspector --district 420106 --name 武昌检查员")
    print(f"  cd {work} && riskengine serve --lake {lake}")


REPAIR_RECEIVED, REPAIR_ACCEPTED, REPAIR_APPROVED = date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 8)


def _credit_repair(lake: Path, now_grades: Path) -> str | None:
    """Pick an enterprise graded up by its abnormal-operation listing, work its repair application
    through the same commands an officer uses, and show its grade before and after."""
    grades = pl.read_parquet(now_grades)
    listed = (scan_table(lake, "list_entries")
              .filter((pl.col("list") == "abnormal_operation") & pl.col("removed_on").is_null()
                      & (pl.col("listed_on") < NOW_AS_OF)).collect())
    candidates = grades.join(listed.select("enterprise_id", "entry_id"), on="enterprise_id")
    if candidates.height == 0:
        print("  no enterprise on the abnormal-operation list to repair in this city", file=sys.stderr)
        return None
    ruled = candidates.filter(pl.col("rule") == "R7_ABNORMAL_OPERATION_LISTED")
    pick = (ruled if ruled.height else candidates).sort("enterprise_id").row(0, named=True)
    eid, entry = pick["enterprise_id"], pick["entry_id"]
    print(f"  before: {eid} {pick['name']} grade {pick['grade']} (model {pick['model_grade']}, "
          f"rule {pick['rule']}), on the abnormal-operation list ({entry})", file=sys.stderr)
    _run(["cases", "open", "repair", eid, "--lake", str(lake), "--received-on", REPAIR_RECEIVED.isoformat(),
          "--list-entry", entry, "--document", "rectification_proof", "--document", "credit_pledge",
          "--officer", "quickstart 信用科", "--statement", "已更正登记住所并补报年报"])
    case_id = case_store(get_settings()).all(kind="repair", enterprise_id=eid)[-1].case_id
    _run(["cases", "step", case_id, "accept", "--lake", str(lake), "--on", REPAIR_ACCEPTED.isoformat(),
          "--reason", "材料齐全，予以受理 (application complete)", "--officer", "quickstart 信用科"])
    _run(["cases", "step", case_id, "approve", "--lake", str(lake), "--on", REPAIR_APPROVED.isoformat(),
          "--reason", "已整改，符合修复条件 (rectified and eligible)", "--officer", "quickstart 信用科"])
    after = Store(get_settings().store_file).latest_grades().filter(pl.col("enterprise_id") == eid)
    row = after.row(0, named=True)
    print(f"  after:  {eid} grade {row['grade']} as of {row['as_of']} (model {row['model_grade']}, "
          f"rule {row['rule']}); the entry left the list on {REPAIR_APPROVED}", file=sys.stderr)
    return f"{eid}: {pick['grade']} → case {case_id} approved {REPAIR_APPROVED} → {row['grade']}"


def _warnings_demo(lake: Path, out: Path) -> str:
    """Subscribe a local receiver, raise the warnings, acknowledge one as its district's inspector
    would (POST /v1/warnings/{id}/acknowledge), and say what happened."""
    store = Store(get_settings().store_file)
    with LocalReceiver() as receiver:
        sub = store.add_webhook(receiver.url, created_by="quickstart")
        receiver.secret = sub.secret
        _run(["warnings", "--lake", str(lake), "--as-of", NOW_AS_OF.isoformat(), "--out", str(out)])
        store.revoke_webhook(sub.subscription_id)  # the receiver stops with the quickstart
    raised = json.loads(out.read_text(encoding="utf-8"))
    by_rule: dict[str, int] = {}
    for w in raised:
        by_rule[w["rule"]] = by_rule.get(w["rule"], 0) + 1
    lines = [f"\n预警 early warnings as of {NOW_AS_OF}: {len(raised)} raised, routed to "
             f"{len({w['district'] for w in raised})} districts: "
             + ", ".join(f"{rule} {n}" for rule, n in sorted(by_rule.items()))]
    if raised:
        first = raised[0]
        done = store.acknowledge_warning(
            first["warning_id"], f"inspector of {first['district']} (quickstart)",
            "已电话约谈并安排现场检查 / called the enterprise and scheduled a visit")
        lines.append(f"  acknowledged {done['warning_id']} ({done['rule']}, {done['enterprise_id']}): "
                     f"{done['action']}")
        lines.append(f"  in district {first['district']}: {first['text_zh']} / {first['text_en']}")
    lines.append(f"  webhook receiver on 127.0.0.1: {len(receiver.received)} of {len(raised)} warnings "
                 f"arrived with a valid HMAC-SHA256 signature ({receiver.rejected} rejected)")
    return "\n".join(lines)


def _print_monitor(report_json: Path) -> None:
    """The monitoring report's headline: adverse findings per 100 random inspections by grade."""

    report = json.loads(report_json.read_text(encoding="utf-8"))
    print(f"\n每百次随机检查不良结果 adverse outcomes per 100 random (双随机) inspections, "
          f"{report['months'][0]['month']}..{report['months'][-1]['month']} (95% interval):")
    for grade, cell in report["pooled"]["grades"].items():
        if cell["adverse_per_100"] is None:
            print(f"  {grade}: no random inspection")
            continue
        print(f"  {grade}: {cell['adverse_per_100']:5.1f}  ({cell['ci_low']:.1f}–{cell['ci_high']:.1f}), "
              f"n = {cell['random_inspections']}")
    trend = report["pooled"].get("trend") or {}
    rising = "rise A < B < C < D" if report["pooled"]["monotone"] else "do not rise strictly in every step"
    p = trend.get("p")
    shown = "" if p is None else ("; trend test p < 0.0001" if p < 1e-4 else f"; trend test p = {p:.2g}")
    print(f"  rates {rising}{shown}"
          + f"; {len(report['alerts'])} alert(s), {len(report['watch'])} to watch")
