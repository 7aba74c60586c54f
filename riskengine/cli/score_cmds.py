"""``riskengine score`` and ``riskengine explain``: grade every active enterprise, explain one.

Heavy modules (features, models, lightgbm, matplotlib) are imported inside the commands.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import noto_cjk_sans_otc
import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from models.scoring import grade_distribution
from riskengine.cli import app
from riskengine.core.config import get_settings
from riskengine.core.errors import NotFoundError, UsageError
from riskengine.core.files import atomic_write
from riskengine.core.ids import uscc_problem
from riskengine.core.store import Store
from riskengine.workflows.cases import mark_disputed
from riskengine.workflows.cluster import ClusterSpec, score_lake_on_cluster
from riskengine.workflows.explain import explain_with_records
from riskengine.workflows.scoring import read_grades, score_enterprises, write_grades


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"--as-of must be a date YYYY-MM-DD; got {text!r}") from exc


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
    enterprise_id: Annotated[str, typer.Argument(help="the enterprise's id (USCC by default)")],
    lake: Annotated[Path, typer.Option(help="the lake folder")],
    as_of: Annotated[str, typer.Option("--as-of", help="explain the grade as of this date (YYYY-MM-DD)")],
    png: Annotated[Path | None, typer.Option(help="write a SHAP waterfall plot (PNG) here")] = None,
    lang: Annotated[str, typer.Option(help="language of headings and plot labels: zh or en")] = "zh",
    top: Annotated[int, typer.Option(help="reasons shown in the waterfall plot")] = 10,
    output: Annotated[str, typer.Option("--format", help="text (tables) or json (CONTRACT §3)")] = "text",
) -> None:
    """Print one enterprise's grade and its reasons: own record first, each with the records behind it,
    then hard rules and the baseline of similar enterprises (Chinese and English)."""

    if lang not in ("zh", "en"):
        raise UsageError(f"--lang must be zh or en; got {lang!r}")
    if output not in ("text", "json"):
        raise UsageError(f"--format must be text or json; got {output!r}")
    if top < 1:
        raise UsageError(f"--top must be a positive integer; got {top}")
    settings = get_settings()
    if settings.id_scheme == "uscc":
        problem = uscc_problem(enterprise_id)
        if problem:
            raise UsageError(f"{enterprise_id!r} is not a valid Unified Social Credit Code: {problem}")
    day = _as_of(as_of)
    body, result = explain_with_records(lake, enterprise_id, day, settings=settings)
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


CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC", "AR PL UMing CN",
             "Droid Sans Fallback")


def cjk_font() -> str | None:
    """The first font that can draw Chinese, or None: Noto Sans CJK SC as the ``noto-cjk-sans-otc``
    dependency ships it (registered with matplotlib on first use), else one installed on the system."""
    from matplotlib import font_manager  # noqa: PLC0415 - heavy

    _register_bundled_cjk_font(font_manager)
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _register_bundled_cjk_font(font_manager) -> None:  # noqa: ANN001
    """Add the bundled Noto Sans CJK collection to matplotlib's fonts (once; quietly absent)."""
    path = str(noto_cjk_sans_otc.FONT_PATH)
    if any(f.fname == path for f in font_manager.fontManager.ttflist):
        return
    try:
        font_manager.fontManager.addfont(path)
    except (OSError, RuntimeError, ValueError):
        return  # a damaged font file: fall back to system fonts or English labels


def waterfall_png(result, path: Path, *, lang: str = "zh", top: int = 10) -> str:  # noqa: ANN001
    """Draw the SHAP waterfall of one explanation into ``path``; returns the label language used.

    From the model's base value (the bias) each bar adds one reason's contribution: own-record
    reasons first (largest |value| first, beyond ``top`` summed in one bar), then associated
    enterprises, the baseline of similar enterprises and the rest, ending at the raw margin (log-odds).
    """
    import matplotlib  # noqa: PLC0415 - heavy


    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - heavy

    font = cjk_font() if lang == "zh" else None
    used = "zh" if font else "en"
    # Own-record reasons first (largest |contribution| first), then associated, baseline and the rest.
    order = {"own_record": 0, "associated": 1, "baseline": 2, "other": 3}
    groups = (result.groups.filter(pl.col("contribution") != 0)
              .with_columns(pl.col("kind").replace_strict(order, default=3, return_dtype=pl.Int8)
                            .alias("_k"), pl.col("contribution").abs().alias("_a"))
              .sort(["_k", "_a"], descending=[False, True]))
    own = groups.filter(pl.col("kind") == "own_record")
    shown = pl.concat([own.head(top), groups.filter(pl.col("kind") != "own_record")])
    rest = float(own.slice(top)["contribution"].sum())
    labels = shown["text_zh" if used == "zh" else "text_en"].to_list()
    values = [float(v) for v in shown["contribution"]]
    if abs(rest) > 0:
        labels.insert(min(top, own.height), f"其余自身记录{own.height - top}项" if used == "zh"
                      else f"{own.height - top} other own-record reasons")
        values.insert(min(top, own.height), rest)
    rc: dict = {"font.family": [font, "sans-serif"]} if font else {}
    with plt.rc_context(rc):  # type: ignore[arg-type]
        fig, ax = plt.subplots(figsize=(9, 0.45 * len(values) + 1.8))
        start = result.base_value
        for y, value in enumerate(values):
            ax.barh(len(values) - 1 - y, value, left=start, color="#d62728" if value > 0 else "#1f77b4")
            ax.text(start + value, len(values) - 1 - y, f" {value:+.3f}", va="center",
                    ha="left" if value > 0 else "right", fontsize=8)
            start += value
        ax.set_yticks(range(len(values)), list(reversed(labels)), fontsize=8)
        ax.axvline(result.base_value, color="grey", lw=0.8, ls="--")
        ax.axvline(result.raw, color="black", lw=0.8)
        grade = result.row["grade"]
        ident, points = result.row["enterprise_id"], result.row["score"]
        title = (f"{ident}：等级 {grade}，分值 {points}（对数几率贡献）" if used == "zh"
                 else f"{ident}: grade {grade}, score {points} (log-odds contributions)")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("基准值 → 原始分值（对数几率）" if used == "zh"
                      else "base value → raw score (log-odds)")
        fig.tight_layout()
        try:
            atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
        finally:
            plt.close(fig)
    return used
