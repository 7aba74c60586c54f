"""The data contract of shared/CONTRACT.md, section 1: tables, columns, rules and id schemes.

Everything that validates, stores or reads source data takes its column names, types and rules from
here, so the contract lives in one place.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import polars as pl

ColumnType = Literal["str", "date", "float", "int", "bool", "enum"]

POLARS_TYPES: dict[str, pl.DataType] = {
    "str": pl.String(),
    "enum": pl.String(),
    "date": pl.Date(),
    "float": pl.Float64(),
    "int": pl.Int64(),
    "bool": pl.Boolean(),
}

# Events dated before this are implausible for any enterprise record (issue 2).
EARLIEST_EVENT = date(1990, 1, 1)

PILOT_SECTORS: tuple[str, ...] = ("wire_cable", "fire_products", "food_related")


def adverse_inspection(columns: Collection[str] | None = None) -> pl.Expr:
    """An *adverse inspection* (section 2): failed, or a critical violation found, even when it was
    corrected on the spot and recorded ``conditional``. ``columns``: the inspections table's columns
    when ``findings_critical`` may be absent (then only the outcome counts)."""
    failed = pl.col("outcome") == "fail"
    if columns is not None and "findings_critical" not in columns:
        return failed
    return failed | (pl.col("findings_critical").fill_null(0) > 0)

# GB/T 2260 codes of Wuhan's 13 districts (the first bureau's city), for lists officers read.
DISTRICT_NAMES: dict[str, str] = {
    "420102": "江岸区", "420103": "江汉区", "420104": "硚口区", "420105": "汉阳区", "420106": "武昌区",
    "420107": "青山区", "420111": "洪山区", "420112": "东西湖区", "420113": "汉南区", "420114": "蔡甸区",
    "420115": "江夏区", "420116": "黄陂区", "420117": "新洲区",
}

# Chinese and English names of the sector keys in use; any other key is shown as it is.
SECTOR_NAMES: dict[str, tuple[str, str]] = {
    "wire_cable": ("电线电缆", "wires and cables"),
    "fire_products": ("消防产品", "fire-protection products"),
    "food_related": ("食品相关产品", "food-related products"),
    "catering": ("餐饮服务", "catering"),
    "food_production": ("食品生产", "food production"),
    "retail": ("零售", "retail"),
    "wholesale": ("批发", "wholesale"),
    "manufacturing": ("制造业", "manufacturing"),
    "services": ("服务业", "services"),
    "construction_materials": ("建筑材料", "construction materials"),
    "accommodation": ("住宿服务", "accommodation"),
}


DISTRICT_NAMES_EN: dict[str, str] = {
    "420102": "Jiang'an", "420103": "Jianghan", "420104": "Qiaokou", "420105": "Hanyang",
    "420106": "Wuchang", "420107": "Qingshan", "420111": "Hongshan", "420112": "Dongxihu",
    "420113": "Hannan", "420114": "Caidian", "420115": "Jiangxia", "420116": "Huangpi", "420117": "Xinzhou",
}


def district_label(code: str, lang: str = "zh") -> str:
    """``武昌区（420106）`` in Chinese, ``Wuchang (420106)`` in English; the bare code if unknown."""
    names = DISTRICT_NAMES if lang == "zh" else DISTRICT_NAMES_EN
    name = names.get(code)
    if name is None:
        return code
    return f"{name}（{code}）" if lang == "zh" else f"{name} ({code})"


def sector_label(key: str, lang: str = "zh") -> str:
    """The sector's name in Chinese or English; the key itself if unknown."""
    names = SECTOR_NAMES.get(key)
    if names is None:
        return key
    return names[0] if lang == "zh" else names[1]
GRADES: tuple[str, ...] = ("A", "B", "C", "D")
UNKNOWN = "unknown"  # the district or sector of an enterprise whose export did not give one


@dataclass(frozen=True)
class Column:
    """One contract column: its type, whether it must be present and non-empty, and its rules."""

    name: str
    type: ColumnType
    required: bool = True
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    default: object | None = None
    references: tuple[str, str] | None = None  # (table, column) that must hold this value


@dataclass(frozen=True)
class Table:
    """One contract table."""

    name: str
    key: str
    columns: tuple[Column, ...]
    event_date: str | None = None  # the column that dates the event, for the time rule
    required: bool = False
    extra_dates: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """The Polars schema of this table in the lake (event tables also carry ``recorded_on``)."""
        return {c.name: POLARS_TYPES[c.type] for c in self.columns}


# The two credit lists of CONTRACT section 1 and why an entry leaves its list.
LISTS: tuple[str, ...] = ("abnormal_operation", "serious_dishonest")
REMOVAL_REASONS: tuple[str, ...] = ("rectified", "credit_repair", "expired", "moved_to_serious",
                                    "error_corrected")
COMMITMENT_KINDS: tuple[str, ...] = ("notification", "repair", "sector")
COMMITMENT_STATUSES: tuple[str, ...] = ("open", "kept", "breached")
# Event tables whose records an upheld objection can void (their key column is the record id).
VOIDABLE_TABLES: tuple[str, ...] = ("inspections", "sampling_tests", "penalties", "recalls", "complaints",
                                    "licenses", "list_entries", "commitments")


def _ent() -> Column:
    return Column("enterprise_id", "str", references=("enterprises", "enterprise_id"))


def _recorded_on() -> Column:
    # Optional on every event table: the day the record entered the bureau's systems.
    return Column("recorded_on", "date", required=False)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "enterprises",
            key="enterprise_id",
            required=True,
            columns=(
                Column("enterprise_id", "str"),
                Column("name", "str", required=False),
                # Optional (CONTRACT section 1): a bureau's export may lack them. An empty district
                # becomes the division code inside a USCC (characters 3-8), else "unknown"
                # (riskengine.validate); an empty sector becomes "unknown".
                Column("district", "str", required=False, default=UNKNOWN),
                Column("sector", "str", required=False, default=UNKNOWN),
                Column("industry_code", "str", required=False),
                # Optional: an enterprise without a founding date counts as existing on every as_of.
                Column("established_on", "date", required=False),
                Column("registered_capital", "float", required=False, minimum=0),
                Column("legal_rep_id", "str", required=False),
                Column("status", "enum", enum=("active", "suspended", "revoked", "deregistered")),
            ),
        ),
        Table(
            "inspections",
            key="inspection_id",
            event_date="inspected_on",
            columns=(
                Column("inspection_id", "str"),
                _ent(),
                Column("inspected_on", "date"),
                Column("kind", "enum", enum=("random", "targeted", "complaint", "follow_up", "license")),
                Column("inspector_id", "str", required=False),
                Column("outcome", "enum", enum=("pass", "conditional", "fail")),
                Column("findings_minor", "int", required=False, minimum=0, default=0),
                Column("findings_serious", "int", required=False, minimum=0, default=0),
                Column("findings_critical", "int", required=False, minimum=0, default=0),
                _recorded_on(),
            ),
        ),
        Table(
            "sampling_tests",
            key="test_id",
            event_date="sampled_on",
            columns=(
                Column("test_id", "str"),
                _ent(),
                Column("sampled_on", "date"),
                Column("product", "str", required=False),
                Column("result", "enum", enum=("pass", "fail")),
                Column("hazard", "enum", required=False, enum=("low", "medium", "high")),
                _recorded_on(),
            ),
        ),
        Table(
            "penalties",
            key="case_id",
            event_date="decided_on",
            columns=(
                Column("case_id", "str"),
                _ent(),
                Column("decided_on", "date"),
                Column("severity", "enum", enum=("minor", "moderate", "serious")),
                Column("fine_cny", "float", required=False, minimum=0),
                Column("category", "str", required=False),
                Column("dishonest_list", "bool", required=False, default=False),
                _recorded_on(),
            ),
        ),
        Table(
            "recalls",
            key="recall_id",
            event_date="announced_on",
            columns=(
                Column("recall_id", "str"),
                _ent(),
                Column("announced_on", "date"),
                Column("product", "str", required=False),
                Column("units", "int", required=False, minimum=0),
                Column("mode", "enum", enum=("voluntary", "ordered")),
                Column("hazard", "enum", enum=("low", "medium", "high")),
                _recorded_on(),
            ),
        ),
        Table(
            "complaints",
            key="complaint_id",
            event_date="received_on",
            columns=(
                Column("complaint_id", "str"),
                _ent(),
                Column("received_on", "date"),
                Column("category", "str", required=False),
                Column("substantiated", "bool", required=False),
                _recorded_on(),
            ),
        ),
        Table(
            "licenses",
            key="license_id",
            event_date="issued_on",
            extra_dates=("expires_on", "status_changed_on"),
            columns=(
                Column("license_id", "str"),
                _ent(),
                Column("kind", "str"),
                Column("issued_on", "date"),
                Column("expires_on", "date", required=False),
                Column("status", "enum", enum=("valid", "suspended", "revoked", "expired")),
                Column("status_changed_on", "date"),
                _recorded_on(),
            ),
        ),
        Table(
            "credit_repairs",
            key="repair_id",
            event_date="repaired_on",
            columns=(
                Column("repair_id", "str"),
                Column("case_id", "str", references=("penalties", "case_id")),
                Column("repaired_on", "date"),
                _recorded_on(),
            ),
        ),
        # 经营异常名录 and 严重违法失信名单 entries, each dated on and (when it ends) off the list.
        Table(
            "list_entries",
            key="entry_id",
            event_date="listed_on",
            extra_dates=("removed_on",),
            columns=(
                Column("entry_id", "str"),
                _ent(),
                Column("list", "enum", enum=LISTS),
                Column("reason", "str", required=False),
                Column("listed_on", "date"),
                Column("removed_on", "date", required=False),
                Column("removal_reason", "enum", required=False, enum=REMOVAL_REASONS),
                _recorded_on(),
            ),
        ),
        # A list entry taken off its list after it was recorded (an approved credit repair, a correction):
        # the lake never rewrites a row, so the removal is a record of its own.
        Table(
            "list_removals",
            key="removal_id",
            event_date="removed_on",
            columns=(
                Column("removal_id", "str"),
                Column("entry_id", "str", references=("list_entries", "entry_id")),
                Column("removed_on", "date"),
                Column("removal_reason", "enum", enum=REMOVAL_REASONS),
                _recorded_on(),
            ),
        ),
        # Credit commitments (信用承诺): notification (告知承诺), repair (守信承诺), sector pledges.
        Table(
            "commitments",
            key="commitment_id",
            event_date="made_on",
            extra_dates=("due_on", "status_changed_on"),
            columns=(
                Column("commitment_id", "str"),
                _ent(),
                Column("made_on", "date"),
                Column("kind", "enum", enum=COMMITMENT_KINDS),
                Column("due_on", "date", required=False),
                Column("status", "enum", enum=COMMITMENT_STATUSES),
                Column("status_changed_on", "date", required=False),
                _recorded_on(),
            ),
        ),
        # A record declared void (an upheld objection, CONTRACT section 5): the record stays in the
        # lake; features as of D ignore it once the void is visible before D.
        Table(
            "record_voids",
            key="void_id",
            event_date="voided_on",
            columns=(
                Column("void_id", "str"),
                _ent(),
                Column("record_table", "enum", enum=VOIDABLE_TABLES),
                Column("record_id", "str"),
                Column("voided_on", "date"),
                Column("case_id", "str", required=False),
                Column("reason", "str", required=False),
                _recorded_on(),
            ),
        ),
    )
}

# Order in which tables are ingested: referenced tables before the tables that reference them.
TABLE_ORDER: tuple[str, ...] = (
    "enterprises",
    "inspections",
    "sampling_tests",
    "penalties",
    "recalls",
    "complaints",
    "licenses",
    "credit_repairs",
    "list_entries",
    "list_removals",
    "commitments",
    "record_voids",
)

# --- Grades (shared/CONTRACT.md section 3) --------------------------------------------------------

# One reason: a code, its signed contribution (null for a hard rule) and the fact in Chinese and English.
REASON_STRUCT = pl.Struct(
    {"code": pl.String(), "contribution": pl.Float64(), "text_zh": pl.String(), "text_en": pl.String()}
)
REASONS_DTYPE = pl.List(REASON_STRUCT)

# The grades frame: what `riskengine score` writes and the serving store holds, in this column order.
GRADES_SCHEMA: dict[str, pl.DataType] = {
    "enterprise_id": pl.String(),
    "as_of": pl.Date(),
    "name": pl.String(),
    "district": pl.String(),
    "sector": pl.String(),
    "probability": pl.Float64(),
    "score": pl.Int64(),
    "grade": pl.String(),
    "model_grade": pl.String(),
    "rule": pl.String(),
    "reasons": REASONS_DTYPE,
    "model_version": pl.String(),
}

# The monthly inspection plan's rows (``riskengine plan``, the store's plans, ``GET /v1/plans``).
PLAN_SCHEMA: dict[str, pl.DataType] = {
    "district": pl.String(),
    "district_name": pl.String(),
    "rank": pl.Int64(),
    "enterprise_id": pl.String(),
    "name": pl.String(),
    "sector": pl.String(),
    "grade": pl.String(),
    "score": pl.Int64(),
    "disputed": pl.Boolean(),  # an objection (异议) against its record or grade is open (CONTRACT §5)
    "stratum": pl.String(),  # mandatory | random
    "why": pl.String(),
    "top_reasons": pl.String(),
    "inspector": pl.String(),
    "due_on": pl.Date(),
    "status": pl.String(),  # scheduled | over_capacity
    "inclusion_probability": pl.Float64(),
}
STATUS_SCHEDULED = "scheduled"
STATUS_OVER = "over_capacity"

# Identifiers: the USCC rule lives in riskengine.core.ids (names kept here for the contract's readers).
ID_SCHEMES = ("uscc", "any")
