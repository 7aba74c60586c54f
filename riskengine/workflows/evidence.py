"""The lake records behind a grade's reasons: one row per record, with its table, id, date and a
one-line description in Chinese and English (e.g. "2025-03-14 抽检不合格（产品：电线，危害：高）").

Evidence obeys the time rule (``features.asof``: only records visible before D) and each reason's
window (3 years for inspections, sampling tests, penalties, recalls and complaints;
penalties also while their influence period runs). ``riskengine.workflows.explain`` attaches it to
the reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from features import asof
from features.penalties import INFLUENCE
from riskengine.lake.layout import load_tables

WINDOW_DAYS = {
    "inspections": 1095,
    "sampling_tests": 1095,
    "penalties": 1095,
    "recalls": 1095,
    "complaints": 1095,  # complaints__count_1095d
}
TABLE_REASON = {
    "inspections": "inspections",
    "sampling_tests": "sampling",
    "penalties": "penalties",
    "recalls": "recalls",
    "complaints": "complaints",
    "licenses": "licenses",
}
EVIDENCE_SCHEMA = {
    "enterprise_id": pl.String,
    "reason": pl.String,
    "table": pl.String,
    "record_id": pl.String,
    "date": pl.Date,
    "text_zh": pl.String,
    "text_en": pl.String,
}

_KIND_ZH = {
    "random": "双随机抽查",
    "targeted": "定向检查",
    "complaint": "投诉举报核查",
    "follow_up": "复查",
    "license": "许可核查",
}
_KIND_EN = {
    "random": "random inspection",
    "targeted": "targeted inspection",
    "complaint": "complaint inspection",
    "follow_up": "follow-up inspection",
    "license": "licence inspection",
}
_HAZARD_ZH = {"low": "低", "medium": "中", "high": "高"}
_SEVERITY_ZH = {"minor": "轻微", "moderate": "较重", "serious": "严重"}
_LICENSE_ZH = {
    "production_license": "工业产品生产许可证",
    "ccc": "强制性产品认证（CCC）",
    "food_contact": "食品相关产品生产许可证",
    "food_business": "食品经营许可证",
    "food_production": "食品生产许可证",
}
_LICENSE_EN = {
    "production_license": "production licence",
    "ccc": "CCC certificate",
    "food_contact": "food-contact products licence",
    "food_business": "food business licence",
    "food_production": "food production licence",
}
_LICENSE_STATUS_ZH = {"revoked": "被吊销", "suspended": "被暂停", "expired": "已过期"}


def _money_zh(v: float) -> str:
    return f"{v / 10_000:.2f}".rstrip("0").rstrip(".") + "万元" if v >= 10_000 else f"{v:.0f}元"


def _paren(parts: list[str], lang: str) -> str:
    parts = [p for p in parts if p]
    if not parts:
        return ""
    return f"（{'，'.join(parts)}）" if lang == "zh" else f" ({', '.join(parts)})"


def _frame(tables: Mapping[str, pl.LazyFrame], name: str, ids: list[str] | None) -> pl.LazyFrame | None:
    frame = tables.get(name)
    if frame is None:
        return None
    if "recorded_on" not in frame.collect_schema().names():
        frame = frame.with_columns(pl.lit(None, dtype=pl.Date).alias("recorded_on"))
    if ids is not None:
        frame = frame.filter(pl.col("enterprise_id").cast(pl.String).is_in(ids))
    return frame


def _col(row: Mapping[str, Any], name: str) -> Any:
    return row.get(name)


def evidence(tables: Mapping[str, pl.LazyFrame], as_of: date, ids: list[str] | None = None) -> pl.DataFrame:
    """The records behind each own-record reason, for ``ids`` (every enterprise when None) as of D.

    One row per record: ``enterprise_id``, ``reason`` (the reason code it backs), ``table``,
    ``record_id``, ``date``, ``text_zh``, ``text_en``, newest first per enterprise and reason.
    """
    rows: list[dict[str, Any]] = []
    for table, build in _BUILDERS.items():
        frame = _frame(tables, table, ids)
        if frame is None:
            continue
        rows.extend(build(frame, tables, as_of, ids))
    out = pl.DataFrame(rows, schema=EVIDENCE_SCHEMA) if rows else pl.DataFrame(schema=EVIDENCE_SCHEMA)
    return out.sort(["enterprise_id", "reason", "date", "record_id"], descending=[False, False, True, False])


def lake_evidence(lake: Path, as_of: date, ids: list[str]) -> pl.DataFrame:
    """``evidence`` read from the lake folder ``lake`` (what the API serves beside stored grades)."""
    return evidence(load_tables(Path(lake)), as_of, ids)


def empty_evidence() -> pl.DataFrame:
    """No records found (the service without a lake)."""
    return pl.DataFrame(schema=EVIDENCE_SCHEMA)


def _window(frame: pl.LazyFrame, date_col: str, as_of: date, days: int | None) -> list[dict[str, Any]]:
    return asof.window(frame, date_col, [as_of], days).collect().to_dicts()


def _record(r: Mapping[str, Any], reason: str, table: str, record_id: Any, day: date,
            text_zh: str, text_en: str) -> dict[str, Any]:
    """One evidence row (EVIDENCE_SCHEMA) for the lake record ``r``."""
    return {"enterprise_id": r["enterprise_id"], "reason": reason, "table": table,
            "record_id": str(record_id), "date": day, "text_zh": text_zh, "text_en": text_en}


def _inspections(
    frame: pl.LazyFrame, tables: Mapping[str, pl.LazyFrame], as_of: date, ids: list[str] | None
) -> list[dict[str, Any]]:
    out = []
    for r in _window(frame, "inspected_on", as_of, WINDOW_DAYS["inspections"]):
        serious, critical = r.get("findings_serious") or 0, r.get("findings_critical") or 0
        if r["outcome"] not in ("fail", "conditional") and not critical:
            continue
        day = r["inspected_on"].isoformat()
        kind_zh = _KIND_ZH.get(r.get("kind") or "", "检查")
        kind_en = _KIND_EN.get(r.get("kind") or "", "inspection")
        outcome_zh = {"fail": "不合格", "conditional": "发现问题，责令整改"}.get(r["outcome"], "合格")
        outcome_en = {"fail": "failed", "conditional": "corrections ordered"}.get(r["outcome"], "passed")
        zh = [f"发现严重问题{serious}项" if serious else "", f"发现重大问题{critical}项" if critical else ""]
        en = [
            f"{serious} serious finding(s)" if serious else "",
            f"{critical} critical finding(s)" if critical else "",
        ]
        out.append(_record(r, "inspections", "inspections", r["inspection_id"], r["inspected_on"],
                           f"{day} {kind_zh}{outcome_zh}{_paren(zh, 'zh')}",
                           f"{day} {kind_en}: {outcome_en}{_paren(en, 'en')}"))
    return out


def _sampling(
    frame: pl.LazyFrame, tables: Mapping[str, pl.LazyFrame], as_of: date, ids: list[str] | None
) -> list[dict[str, Any]]:
    out = []
    for r in _window(
        frame.filter(pl.col("result") == "fail"), "sampled_on", as_of, WINDOW_DAYS["sampling_tests"]
    ):
        day = r["sampled_on"].isoformat()
        product, hazard = r.get("product"), r.get("hazard")
        zh = [
            f"产品：{product}" if product else "",
            f"危害：{_HAZARD_ZH[hazard]}" if hazard in _HAZARD_ZH else "",
        ]
        en = [f"product: {product}" if product else "", f"hazard: {hazard}" if hazard in _HAZARD_ZH else ""]
        out.append(_record(r, "sampling", "sampling_tests", r["test_id"], r["sampled_on"],
                           f"{day} 抽检不合格{_paren(zh, 'zh')}",
                           f"{day} sampling test failed{_paren(en, 'en')}"))
    return out


def _penalties(
    frame: pl.LazyFrame, tables: Mapping[str, pl.LazyFrame], as_of: date, ids: list[str] | None
) -> list[dict[str, Any]]:
    """Penalty decisions of the last 3 years or still in their influence period (SAMR Order 107)."""
    repairs = tables.get("credit_repairs")
    if repairs is not None:
        if "recorded_on" not in repairs.collect_schema().names():
            repairs = repairs.with_columns(pl.lit(None, dtype=pl.Date).alias("recorded_on"))
        seen = repairs.group_by("case_id").agg(asof.visible_from("repaired_on").min().alias("_repair_seen"))
        frame = frame.join(seen, on="case_id", how="left")
    else:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Date).alias("_repair_seen"))
    end = pl.lit(None, dtype=pl.Date)
    min_end = pl.lit(None, dtype=pl.Date)
    for sev, (full, least) in INFLUENCE.items():
        end = pl.when(pl.col("severity") == sev).then(pl.col("decided_on").dt.offset_by(full)).otherwise(end)
        min_end = (
            pl.when(pl.col("severity") == sev)
            .then(pl.col("decided_on").dt.offset_by(least))
            .otherwise(min_end)
        )
    frame = frame.with_columns(end.alias("_end"), min_end.alias("_min_end"))
    out = []
    for r in _window(frame, "decided_on", as_of, 1100):
        repaired = r["_repair_seen"] is not None and r["_repair_seen"] < as_of and r["_min_end"] <= as_of
        active = r["_end"] is not None and r["_end"] > as_of and not repaired
        if not active and r[asof.AGE] > WINDOW_DAYS["penalties"]:
            continue
        day = r["decided_on"].isoformat()
        fine = r.get("fine_cny")
        sev = r.get("severity")
        zh = [_SEVERITY_ZH.get(sev, ""), r.get("category") or "", f"罚款{_money_zh(fine)}" if fine else ""]
        en = [sev or "", r.get("category") or "", f"fine {fine:,.0f} CNY" if fine else ""]
        text_zh = f"{day} 行政处罚决定{_paren(zh, 'zh')}"
        text_en = f"{day} penalty decision{_paren(en, 'en')}"
        if r.get("dishonest_list"):
            text_zh += "，列入严重违法失信名单"
            text_en += ", placed on the serious-violation-and-dishonesty list"
        if repaired:
            text_zh += "，已完成信用修复"
            text_en += ", credit repaired"
        elif r["_end"] is not None:
            text_zh += f"，影响期至{r['_end'].isoformat()}"
            text_en += f", influence period until {r['_end'].isoformat()}"
        out.append(_record(r, "penalties", "penalties", r["case_id"], r["decided_on"],
                           text_zh,
                           text_en))
    return out


def _recalls(
    frame: pl.LazyFrame, tables: Mapping[str, pl.LazyFrame], as_of: date, ids: list[str] | None
) -> list[dict[str, Any]]:
    out = []
    for r in _window(frame, "announced_on", as_of, WINDOW_DAYS["recalls"]):
        day = r["announced_on"].isoformat()
        product, units, hazard = r.get("product"), r.get("units"), r.get("hazard")
        mode_zh = {"ordered": "责令召回", "voluntary": "主动召回"}.get(r.get("mode") or "", "产品召回")
        mode_en = {"ordered": "ordered recall", "voluntary": "voluntary recall"}.get(
            r.get("mode") or "", "recall"
        )
        zh = [
            f"产品：{product}" if product else "",
            f"{units:,}件" if units else "",
            f"危害：{_HAZARD_ZH[hazard]}" if hazard in _HAZARD_ZH else "",
        ]
        en = [
            f"product: {product}" if product else "",
            f"{units:,} units" if units else "",
            f"hazard: {hazard}" if hazard in _HAZARD_ZH else "",
        ]
        out.append(_record(r, "recalls", "recalls", r["recall_id"], r["announced_on"],
                           f"{day} {mode_zh}{_paren(zh, 'zh')}",
                           f"{day} {mode_en}{_paren(en, 'en')}"))
    return out


def _complaints(
    frame: pl.LazyFrame, tables: Mapping[str, pl.LazyFrame], as_of: date, ids: list[str] | None
) -> list[dict[str, Any]]:
    out = []
    for r in _window(frame, "received_on", as_of, WINDOW_DAYS["complaints"]):
        day = r["received_on"].isoformat()
        sub = r.get("substantiated")
        zh = [r.get("category") or "", {True: "已查实", False: "未查实"}.get(sub, "")]
        en = [r.get("category") or "", {True: "substantiated", False: "not substantiated"}.get(sub, "")]
        out.append(_record(r, "complaints", "complaints", r["complaint_id"], r["received_on"],
                           f"{day} 收到12315投诉举报{_paren(zh, 'zh')}",
                           f"{day} complaint to 12315{_paren(en, 'en')}"))
    return out


def _licenses(
    frame: pl.LazyFrame, tables: Mapping[str, pl.LazyFrame], as_of: date, ids: list[str] | None
) -> list[dict[str, Any]]:
    """Licences revoked, suspended or expired as of D (features.licenses' reading of the status)."""
    out = []
    for r in _window(frame, "issued_on", as_of, None):
        changed = r.get("status_changed_on")
        status = r["status"] if changed is not None and changed < as_of else "valid"
        expires = r.get("expires_on")
        if status == "valid" and expires is not None and expires < as_of:
            status, changed = "expired", expires
        if status not in _LICENSE_STATUS_ZH:
            continue
        when = changed if changed is not None else r["issued_on"]
        kind = r.get("kind") or ""
        name_zh, name_en = _LICENSE_ZH.get(kind, "许可证"), _LICENSE_EN.get(kind, "licence")
        out.append(_record(r, "licenses", "licenses", r["license_id"], when,
                           f"{when.isoformat()} {name_zh}{_LICENSE_STATUS_ZH[status]}",
                           f"{when.isoformat()} {name_en} {status}"))
    return out


_LIST_ZH = {"abnormal_operation": "列入经营异常名录", "serious_dishonest": "列入严重违法失信名单"}
_LIST_EN = {
    "abnormal_operation": "placed on the abnormal-operation list",
    "serious_dishonest": "placed on the serious-dishonesty list",
}
_GROUND_ZH = {
    "unreachable_address": "通过登记的住所或者经营场所无法联系",
    "annual_report_missing": "未按规定公示年度报告",
    "serious_violation": "严重违法失信",
}
_GROUND_EN = {
    "unreachable_address": "unreachable at its registered address",
    "annual_report_missing": "annual report not filed",
    "serious_violation": "serious violation",
}
_COMMITMENT_ZH = {"notification": "告知承诺", "repair": "信用修复承诺", "sector": "行业自律承诺"}
_COMMITMENT_EN = {
    "notification": "notification commitment",
    "repair": "credit-repair commitment",
    "sector": "sector pledge",
}


def _lists(
    frame: pl.LazyFrame, tables: Mapping[str, pl.LazyFrame], as_of: date, ids: list[str] | None
) -> list[dict[str, Any]]:
    """List entries in force as of D or made in the last 3 years (features.lists' reading)."""
    removals = tables.get("list_removals")
    if removals is not None:
        if "recorded_on" not in removals.collect_schema().names():
            removals = removals.with_columns(pl.lit(None, dtype=pl.Date).alias("recorded_on"))
        seen = removals.group_by("entry_id").agg(asof.visible_from("removed_on").min().alias("_removal_seen"))
        frame = frame.join(seen, on="entry_id", how="left")
    else:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Date).alias("_removal_seen"))
    out = []
    for r in _window(frame, "listed_on", as_of, None):
        removed = r.get("removed_on")
        if removed is not None and removed >= as_of:
            removed = None  # not yet removed as of D
        seen = r.get("_removal_seen")
        if removed is None and seen is not None and seen < as_of:
            removed = seen
        if removed is not None and r[asof.AGE] > 1095:
            continue
        day = r["listed_on"].isoformat()
        ground = r.get("reason") or ""
        zh = [f"事由：{_GROUND_ZH[ground]}" if ground in _GROUND_ZH else ""]
        en = [f"ground: {_GROUND_EN[ground]}" if ground in _GROUND_EN else ""]
        text_zh = f"{day} {_LIST_ZH.get(r['list'], '列入名录')}{_paren(zh, 'zh')}"
        text_en = f"{day} {_LIST_EN.get(r['list'], 'placed on a credit list')}{_paren(en, 'en')}"
        if removed is not None:
            text_zh += f"，{removed.isoformat()}移出"
            text_en += f", removed {removed.isoformat()}"
        out.append(_record(r, "lists", "list_entries", r["entry_id"], r["listed_on"], text_zh, text_en))
    return out


def _commitments(
    frame: pl.LazyFrame, tables: Mapping[str, pl.LazyFrame], as_of: date, ids: list[str] | None
) -> list[dict[str, Any]]:
    """Commitments breached, or past their due day without being confirmed kept, as of D."""
    out = []
    for r in _window(frame, "made_on", as_of, None):
        changed, due = r.get("status_changed_on"), r.get("due_on")
        status = r["status"] if changed is not None and changed < as_of else "open"
        kind = r.get("kind") or ""
        name_zh, name_en = _COMMITMENT_ZH.get(kind, "信用承诺"), _COMMITMENT_EN.get(kind, "credit commitment")
        made = r["made_on"].isoformat()
        if status == "breached":
            when = changed
            text_zh = f"{when.isoformat()} 违背{name_zh}（{made}作出）"
            text_en = f"{when.isoformat()} {name_en} breached (made {made})"
        elif status == "open" and due is not None and due < as_of:
            when = due
            text_zh = f"{due.isoformat()} {name_zh}已过履约期限，仍未确认履约（{made}作出）"
            text_en = f"{due.isoformat()} {name_en} past its due day, not confirmed kept (made {made})"
        else:
            continue
        out.append(_record(r, "commitments", "commitments", r["commitment_id"], when, text_zh, text_en))
    return out


_BUILDERS = {
    "inspections": _inspections,
    "sampling_tests": _sampling,
    "penalties": _penalties,
    "recalls": _recalls,
    "complaints": _complaints,
    "licenses": _licenses,
    "list_entries": _lists,
    "commitments": _commitments,
}
