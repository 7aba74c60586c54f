"""``riskengine score`` and ``riskengine explain``: grade every active enterprise, explain one.

Plots come from riskengine.workflows.reports.plots (matplotlib is imported there, on first use).
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from models.scoring import grade_distribution
from riskengine.cli import app
from riskengine.cli.options import parse_day
from riskengine.core.config import get_settings
from riskengine.core.errors import NotFoundError, UsageError
from riskengine.core.ids import uscc_problem
from riskengine.core.store import Store
from riskengine.workflows.cases import mark_disputed
from riskengine.workflows.cluster import ClusterSpec, explain_lake_on_cluster, score_lake_on_cluster
from riskengine.workflows.explain import check_jsonl, explain_all, explain_with_records
from riskengine.workflows.reports.plots import waterfall_png
from riskengine.workflows.scoring import load_champion, read_grades, score_enterprises, write_grades


def _as_of(text: str) -> date:
    return parse_day(text)


def _err(message: str) -> None:
    print(message, file=sys.stderr)


@app.command()
def score(
    lake: Annotated[Path, typer.Option(help="the lake folder (from `riskengine ingest`)")],
    as_of: Annotated[str, typer.Option("--as-of", help="grade as of this date (YYYY-MM-DD)")],
    out: Annotated[Path, typer.Option(help="grades file: .parquet, .csv (reasons as JSON) or .xlsx")],
    previous: Annotated[Path | None, typer.Option(
        help="previous grades file for stable regrading (default: the latest earlier grades in the store)")
    ] = None,
    store: Annotated[bool, typer.Option(help="also save the grades into the serving store")] = True,
    cluster: Annotated[str | None, typer.Option(
        help="run on Dask: local, local:WORKERS or tcp://HOST:PORT (same grades as without it)")] = None,
    partitions: Annotated[int | None, typer.Option(
        help="with --cluster: parts of the enterprises (default: the lake's buckets, else by size)")] = None,
    memory_limit: Annotated[str | None, typer.Option(
        "--memory-limit", help="with --cluster local: memory per worker, e.g. 8GiB")] = None,
) -> None:
    """Grade every active enterprise with the champion model and write the grades file."""

    day = _as_of(as_of)
    if out.suffix.lower() not in (".parquet", ".csv", ".xlsx"):
        raise UsageError(f"--out must end .parquet, .csv or .xlsx; got {out}")
    settings = get_settings()
    prev = read_grades(previous) if previous is not None else None
    if cluster is not None:
        _score_on_cluster(cluster, lake, day, out, prev, settings, partitions, store, memory_limit)
        return
    if partitions is not None or memory_limit is not None:
        raise UsageError("--partitions and --memory-limit go with --cluster")
    grades = score_enterprises(lake, day, previous=prev, settings=settings)
    if grades.height == 0:
        raise NotFoundError(f"{lake}: no active enterprise established before {day}; nothing to grade")
    # The file officers read says which grades are disputed (an open objection); the store does not.
    write_grades(grades if out.suffix.lower() == ".parquet" else mark_disputed(grades, settings), out)
    _err(f"wrote {grades.height} grades as of {day} to {out}")
    if store:
        Store(settings.store_file).save_grades(grades)
        _err(f"saved the grades into the serving store {settings.store_file}")
    _print_distribution(grade_distribution(grades), grades)


def _score_on_cluster(spec_text, lake, day, out, prev, settings, partitions, store, memory_limit) -> None:  # noqa: ANN001
    spec = ClusterSpec.parse(spec_text)
    report = score_lake_on_cluster(spec, lake, day, out, settings, previous=prev, partitions=partitions,
                                   save=store, memory_limit=memory_limit, on_connect=_say_dashboard)
    _err(f"wrote {report.rows} grades as of {day} to {out} ({report.parts} parts on the cluster)")
    if store:
        _err(f"saved the grades into the serving store {settings.store_file}")
    _print_cluster_memory(report)
    total = sum(report.grade_counts.values()) or 1
    _err("grades: " + ", ".join(f"{g} {report.grade_counts.get(g, 0)} "
                                f"({report.grade_counts.get(g, 0) / total:.1%})" for g in "ABCD"))


def _say_dashboard(link: str | None) -> None:
    _err(f"Dask dashboard: {link}" if link else "Dask cluster connected (no dashboard: install bokeh)")


def _print_cluster_memory(report) -> None:  # noqa: ANN001
    for worker, peak in sorted(report.peak_rss_per_worker.items()):
        _err(f"peak memory of worker {worker}: {peak / 2**30:.2f} GiB")
    if report.note:
        _err(report.note)


def _print_distribution(dist, grades) -> None:  # noqa: ANN001
    version = grades["model_version"][0] if grades.height else "-"
    table = Table(title=f"等级分布 / grades · model {version}")
    table.add_column("grade")
    table.add_column("enterprises", justify="right")
    table.add_column("share", justify="right")
    for grade, count, share in dist.iter_rows():
        table.add_row(grade, str(count), f"{share:.1%}")
    changed = int(grades["rule"].is_not_null().sum()) if grades.height else 0
    table.caption = f"{changed} grade(s) set by a hard rule"
    Console().print(table)


@app.command()
def explain(
    enterprise_id: Annotated[str | None, typer.Argument(help="the enterprise's id (USCC by default)")
                             ] = None,
    lake: Annotated[Path | None, typer.Option(help="the lake folder")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="explain the grade as of this date (YYYY-MM-DD)")] = None,
    model_card: Annotated[bool, typer.Option(
        "--model-card", help="print the champion model's card (markdown) instead")] = False,
    png: Annotated[Path | None, typer.Option(help="write a SHAP waterfall plot (PNG) here")] = None,
    lang: Annotated[str, typer.Option(help="language of headings and plot labels: zh or en")] = "zh",
    top: Annotated[int, typer.Option(help="reasons shown in the waterfall plot")] = 10,
    output: Annotated[str, typer.Option("--format", help="text (tables) or json (CONTRACT §3)")] = "text",
    out: Annotated[Path | None, typer.Option(
        help="without ENTERPRISE_ID: explain every graded enterprise into this .jsonl file")] = None,
    cluster: Annotated[str | None, typer.Option(
        help="with --out: run on Dask: local, local:WORKERS or tcp://HOST:PORT (same lines)")] = None,
    partitions: Annotated[int | None, typer.Option(
        help="with --cluster: parts of the enterprises (default: the lake's buckets, else by size)")] = None,
    memory_limit: Annotated[str | None, typer.Option(
        "--memory-limit", help="with --cluster local: memory per worker, e.g. 8GiB")] = None,
) -> None:
    """Print one enterprise's grade and its reasons: own record first, each with the records behind it,
    then hard rules and the baseline of similar enterprises (Chinese and English).
    Without ENTERPRISE_ID and with --out FILE.jsonl: every graded enterprise's explanation, one a line."""

    if model_card:
        card = load_champion(get_settings()).metadata.get("model_card")
        print(card or "(this model has no card: retrain it)")
        return
    if out is not None or cluster is not None:
        if png is not None:
            raise UsageError("--png draws one enterprise's waterfall: it goes with explain ENTERPRISE_ID")
        _explain_batch(enterprise_id, lake, as_of, out, cluster, partitions, memory_limit)
        return
    if partitions is not None or memory_limit is not None:
        raise UsageError("--partitions and --memory-limit go with --cluster")
    if enterprise_id is None or lake is None or as_of is None:
        raise UsageError("explain needs ENTERPRISE_ID, --lake and --as-of (or --model-card)")
    if lang not in ("zh", "en"):
        raise UsageError(f"--lang must be zh or en; got {lang!r}")
    if output not in ("text", "json"):
        raise UsageError(f"--format must be text or json; got {output!r}")
    if top < 1:
        raise UsageError(f"--top must be a positive integer; got {top}")
    settings = get_settings()
    day = _as_of(as_of)
    try:
        body, result = explain_with_records(lake, enterprise_id, day, settings=settings)
    except NotFoundError:
        # A lake ingested with --id-scheme any holds other ids: the USCC check only explains a miss.
        problem = uscc_problem(enterprise_id) if settings.id_scheme == "uscc" else None
        if problem:
            raise UsageError(
                f"{enterprise_id!r} is not a valid Unified Social Credit Code: {problem}") from None
        raise
    if output == "json":
        print(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        _print_explanation(body, lang)
    if png is not None:
        if png.suffix.lower() != ".png":
            raise UsageError(f"--png must end .png; got {png}")
        used = waterfall_png(result, png, lang=lang, top=top)
        _err(f"wrote the SHAP waterfall plot to {png}" + ("" if used == lang else
             " (no CJK font found: English labels)"))


def _explain_batch(enterprise_id, lake, as_of, out, cluster, partitions, memory_limit) -> None:  # noqa: ANN001
    if enterprise_id is not None:
        raise UsageError("explain --out explains every graded enterprise: leave ENTERPRISE_ID out")
    if out is None:
        raise UsageError("--cluster goes with explain --out FILE.jsonl (every graded enterprise)")
    if lake is None or as_of is None:
        raise UsageError("explain --out needs --lake and --as-of")
    check_jsonl(out)
    if cluster is None and (partitions is not None or memory_limit is not None):
        raise UsageError("--partitions and --memory-limit go with --cluster")
    day = _as_of(as_of)
    settings = get_settings()
    if cluster is None:
        n = explain_all(lake, day, out, settings=settings)
        _err(f"wrote {n} explanations as of {day} to {out}")
        return
    report = explain_lake_on_cluster(ClusterSpec.parse(cluster), lake, day, out, settings,
                                     partitions=partitions, memory_limit=memory_limit,
                                     on_connect=_say_dashboard)
    _err(f"wrote {report.rows} explanations as of {day} to {out} ({report.parts} parts on the cluster)")
    _print_cluster_memory(report)


_KIND_LABEL = {"own_record": ("自身记录", "own record"), "rule": ("规则", "rule"),
               "associated": ("关联企业", "associated"), "baseline": ("同类基准", "baseline")}


def _print_explanation(body: dict, lang: str) -> None:
    zh = lang == "zh"
    console = Console()
    title = (f"{body['enterprise_id']} {body['name'] or ''} — 评价基准日 {body['as_of']}" if zh else
             f"{body['enterprise_id']} {body['name'] or ''} — as of {body['as_of']}")
    summary = Table(title=title, show_header=False)
    summary.add_column("")
    summary.add_column("")
    labels = (("信用风险等级 / grade", body["grade"]), ("模型等级 / model grade", body["model_grade"]),
              ("适用规则 / rule", body["rule"] or "—"), ("风险分值 / score", str(body["score"])),
              ("不良结果概率 / probability", f"{body['probability']:.2%}"),
              ("模型版本 / model version", body["model_version"]))
    for label, value in labels:
        summary.add_row(label, str(value))
    console.print(summary)
    reasons = Table(title="主要原因 / reasons", show_lines=True)
    reasons.add_column("#", justify="right")
    reasons.add_column("类别 / kind")
    reasons.add_column("贡献 / contribution", justify="right")
    reasons.add_column("说明（依据） / explanation (records)", overflow="fold")
    for i, r in enumerate(body["reasons"], start=1):
        contribution = "—" if r["contribution"] is None else f"{r['contribution']:+.3f}"
        text = r["text_zh"] if zh else r["text_en"]
        lines = [text] + ["  · " + (e["text_zh"] if zh else e["text_en"]) for e in r["evidence"]]
        kind = _KIND_LABEL.get(r["kind"], (r["kind"], r["kind"]))[0 if zh else 1]
        reasons.add_row(str(i), kind, contribution, "\n".join(lines))
    if not body["reasons"]:
        reasons.caption = "没有提高风险的因素 / nothing raised the risk"
    console.print(reasons)
    baseline = body.get("baseline")
    if baseline and not any(r["kind"] == "baseline" for r in body["reasons"]):
        text = baseline["text_zh"] if zh else baseline["text_en"]
        console.print(f"{text} ({baseline['contribution']:+.3f})")
