"""The officers' workbooks: the inspection plan and the grades list (Chinese headers, English beside)."""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from riskengine.core import exports
from riskengine.core.contract import DISTRICT_NAMES, PLAN_SCHEMA, STATUS_OVER, STATUS_SCHEDULED
from riskengine.supervision.plan import PlanResult, _top_reasons_expr

# Column headers of the officers' Excel list.
HEADERS_ZH = {
    "enterprise_id": "统一社会信用代码", "as_of": "评价基准日", "name": "企业名称", "district": "行政区划",
    "sector": "行业", "probability": "不良结果概率", "score": "风险分值", "grade": "信用风险等级",
    "model_grade": "模型等级", "rule": "适用规则", "reasons": "主要原因", "model_version": "模型版本",
    "disputed": "异议中",
}


# Excel headers and display values in Chinese (officers read the workbook), English after a slash.
EXCEL_COLUMNS: dict[str, tuple[str, int]] = {
    "district": ("区县 District", 9),
    "rank": ("序号 Rank", 7),
    "enterprise_id": ("统一社会信用代码 USCC", 22),
    "name": ("企业名称 Name", 30),
    "sector": ("行业 Sector", 16),
    "grade": ("信用风险等级 Grade", 10),
    "score": ("风险分 Score", 10),
    "disputed": ("异议中 Disputed", 10),
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
                    elif column == "disputed":
                        ws.write_string(r, c, "异议中 disputed" if value else "")
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

    return datetime(day.year, day.month, day.day)


def write_grades_excel(flat: pl.DataFrame, path: Path) -> None:
    """The grades list for officers: one sheet, Chinese headers, reasons as readable lines (``flat``)."""
    flat = flat.rename(HEADERS_ZH, strict=False)
    exports.write_xlsx(flat, path, worksheet="信用风险等级", autofilter=True, freeze_panes=(1, 0),
                       autofit=True)


def plan_excel_bytes(rows: pl.DataFrame, meta: dict[str, Any]) -> bytes:
    """Plan rows (any subset, e.g. one inspector's filtered view in the pages) as the officers'
    workbook bytes, for an HTTP download. Columns the rows lack are left empty."""
    if "top_reasons" not in rows.columns and "reasons" in rows.columns:
        rows = rows.with_columns(_top_reasons_expr(rows).alias("top_reasons"))
    missing = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in PLAN_SCHEMA.items()
               if name not in rows.columns]
    rows = rows.with_columns(missing) if missing else rows
    with tempfile.TemporaryDirectory(prefix="riskengine-plan-") as folder:
        path = Path(folder) / "plan.xlsx"
        write_excel(PlanResult(rows, dict(meta)), path)
        return path.read_bytes()
