"""The credit record as it leaves the engine: one row per record, from the lake's tables.

Three outward paths read it (issue 17, CONTRACT §9): the push to the credit platform
(``share_records``: every record with its publication state, as of nothing — the platform gets what
the lake holds), the bureau's publication (``published_records``: what is in its publication period
as of D) and a finance partner's summary of one enterprise (``enterprise_record``, as of D).
None of them carries a grade, score or reason; grades join only where the policy enables it.

Penalty influence periods follow SAMR Order 107 (CONTRACT §2) through ``features.penalties``: the
same periods the features count with. Every "as of D" uses the one time rule,
``riskengine.core.timerule.known_before``: a record is known as of D once its event date and its
``recorded_on`` are before D.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from features.asof import AS_OF, in_effect, visible_from
from features.penalties import INFLUENCE
from riskengine.core.timerule import known_before
from riskengine.lake.layout import load_tables, scan_table
from riskengine.supervision.policy import PublicationRules

RECORD_TYPES = ("penalty", "list_entry", "commitment", "credit_repair", "grade")
OPERATIONS = ("upsert", "withdraw")

# The columns of a shared record (CONTRACT §9) plus the day it last changed (for --since).
RECORD_SCHEMA: dict[str, pl.DataType] = {
    "uscc": pl.String(),
    "record_type": pl.String(),
    "record_id": pl.String(),
    "operation": pl.String(),
    "fields": pl.String(),
    "hash": pl.String(),
    "changed_on": pl.Date(),
}

LIST_LABELS = {
    "abnormal_operation": ("经营异常名录", "abnormal operation list"),
    "serious_dishonest": ("严重违法失信名单", "serious violation and dishonesty list"),
}
# The grounds of a listing as the public reads them (codes not listed here are shown as they are).
LIST_GROUNDS = {
    "unreachable_address": "通过登记的住所或经营场所无法联系 unreachable at the registered address",
    "annual_report_missing": "未按规定报送年度报告 annual report not filed",
    "serious_violation": "严重违法失信行为 serious violation of law and trust",
}
SEVERITY_LABELS = {
    "minor": ("轻微", "minor"),
    "moderate": ("一般", "moderate"),
    "serious": ("严重", "serious"),
}


# The columns of a published record (``published_records``; ``riskengine publish`` writes them).
PUBLISHED_COLUMNS = (
    "record_type", "record_id", "uscc", "name", "kind_zh", "kind_en", "detail", "fine_cny", "since",
    "published_until",
)

def _offset(periods: int) -> pl.Expr:
    """decided_on + the full (0) or minimum (1) influence period of the row's severity."""
    expr = pl.lit(None, dtype=pl.Date)
    for sev, spans in INFLUENCE.items():
        expr = (
            pl.when(pl.col("severity") == sev)
            .then(pl.col("decided_on").dt.offset_by(spans[periods]))
            .otherwise(expr)
        )
    return expr


def _table(tables: Mapping[str, pl.LazyFrame], name: str) -> pl.LazyFrame | None:
    """A table of the lake, or None where this lake's contract has no such table."""
    return tables.get(name)


# Tables whose records an upheld objection voids (``record_voids``), with their key column.
_VOID_KEYS = {"penalties": "case_id", "list_entries": "entry_id", "commitments": "commitment_id"}


def mark_voided(tables: Mapping[str, pl.LazyFrame], as_of: date | None = None) -> dict[str, pl.LazyFrame]:
    """The tables with ``voided_on`` on penalties, list entries and commitments: the first void of the
    record (known as of D, with ``as_of``), null where none. A void is itself a record (CONTRACT §5)."""
    out = dict(tables)
    voids = tables.get("record_voids")
    for name, key in _VOID_KEYS.items():
        if name not in tables:
            continue
        if voids is None:
            out[name] = tables[name].with_columns(pl.lit(None, dtype=pl.Date).alias("voided_on"))
            continue
        mine = voids.filter(pl.col("record_table") == name)
        if as_of is not None:
            mine = known_before(mine, "voided_on", as_of)
        first = mine.group_by("record_id").agg(pl.col("voided_on").min()).rename({"record_id": key})
        out[name] = tables[name].join(first, on=key, how="left")
    return out


def drop_voided(tables: Mapping[str, pl.LazyFrame], as_of: date) -> dict[str, pl.LazyFrame]:
    """The tables without the records voided by a void known as of D."""
    marked = mark_voided(tables, as_of)
    return {
        name: (frame.filter(pl.col("voided_on").is_null()) if name in _VOID_KEYS else frame)
        for name, frame in marked.items()
    }


def list_entries(tables: Mapping[str, pl.LazyFrame], as_of: date | None = None) -> pl.LazyFrame | None:
    """The list entries with their removal: the entry's own ``removed_on`` or a later removal record
    (``list_removals``; with ``as_of``, one known as of D), whichever is earlier, with its reason and
    ``removal_id``. None where the lake has no list entries."""
    entries = tables.get("list_entries")
    if entries is None:
        return None
    removals = tables.get("list_removals")
    if removals is None:
        return entries.with_columns(pl.lit(None, dtype=pl.String).alias("removal_id"))
    if as_of is not None:
        removals = known_before(removals, "removed_on", as_of)
    first = (
        removals.sort("removed_on", "removal_id")
        .group_by("entry_id")
        .agg(
            pl.col("removal_id").first(),
            pl.col("removed_on").first().alias("_r_on"),
            pl.col("removal_reason").first().alias("_r_reason"),
        )
    )
    later = pl.col("_r_on").is_not_null() & (
        pl.col("removed_on").is_null() | (pl.col("_r_on") < pl.col("removed_on"))
    )
    return (
        entries.join(first, on="entry_id", how="left")
        .with_columns(
            pl.when(later).then(pl.col("_r_on")).otherwise(pl.col("removed_on")).alias("removed_on"),
            pl.when(later)
            .then(pl.col("_r_reason"))
            .otherwise(pl.col("removal_reason"))
            .alias("removal_reason"),
            pl.when(later).then(pl.col("removal_id")).otherwise(None).alias("removal_id"),
        )
        .drop("_r_on", "_r_reason")
    )


def penalties_with_influence(tables: Mapping[str, pl.LazyFrame], as_of: date | None = None) -> pl.DataFrame:
    """Every penalty with its first visible repair and influence period.

    ``influence_until`` is the first day the penalty no longer counts: decided_on + its full period,
    or, once repaired, the later of the repair day and decided_on + the minimum period (never later
    than the full period). With ``as_of``, only penalties and repairs known as of D are used.
    """
    pen = tables["penalties"]
    repairs = tables["credit_repairs"]
    if as_of is not None:
        pen = known_before(pen, "decided_on", as_of)
        repairs = known_before(repairs, "repaired_on", as_of)
    repairs = repairs.with_columns(visible_from("repaired_on").alias("_seen"))
    first_repair = (
        repairs.sort("_seen", "repair_id")
        .group_by("case_id")
        .agg(pl.col("repair_id").first(), pl.col("repaired_on").first())
    )
    end, min_end = _offset(0), _offset(1)
    return (
        pen.join(first_repair, on="case_id", how="left")
        .with_columns(
            pl.when(pl.col("repaired_on").is_null())
            .then(end)
            .otherwise(pl.min_horizontal(end, pl.max_horizontal(min_end, pl.col("repaired_on"))))
            .alias("influence_until"),
        )
        .sort("enterprise_id", "decided_on", "case_id")
        .collect()
    )


def _canonical(value: Any) -> Any:
    """A field value as JSON holds it (dates as ISO strings)."""
    return value.isoformat() if isinstance(value, date) else value


def record_hash(
    uscc: str, record_type: str, record_id: str, operation: str, fields: Mapping[str, Any]
) -> str:
    """SHA-256 of the record's canonical JSON (sorted keys): equal content, equal hash."""
    body = json.dumps(
        {
            "uscc": uscc,
            "record_type": record_type,
            "record_id": record_id,
            "operation": operation,
            "fields": fields,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(body.encode("utf-8")).hexdigest()


def _rows(
    frame: pl.DataFrame,
    record_type: str,
    id_col: str,
    field_cols: list[str],
    withdraw: pl.Expr,
    changed: list[str],
) -> list[dict[str, Any]]:
    present = [c for c in changed if c in frame.columns]
    frame = frame.with_columns(
        pl.when(withdraw).then(pl.lit("withdraw")).otherwise(pl.lit("upsert")).alias("_op"),
        pl.max_horizontal(*present).alias("_changed"),
    )
    out = []
    for row in frame.iter_rows(named=True):
        fields = {c: _canonical(row[c]) for c in field_cols}
        uscc, rid, op = row["enterprise_id"], str(row[id_col]), row["_op"]
        out.append(
            {
                "uscc": uscc,
                "record_type": record_type,
                "record_id": rid,
                "operation": op,
                "fields": json.dumps(fields, sort_keys=True, ensure_ascii=False),
                "hash": record_hash(uscc, record_type, rid, op, fields),
                "changed_on": row["_changed"],
            }
        )
    return out


def share_records(tables: Mapping[str, pl.LazyFrame], grades: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every credit record the platform should hold, one row each (``RECORD_SCHEMA``).

    * penalty: its decision and influence period; ``withdraw`` once a credit repair ends it early;
    * list_entry: the listing; ``withdraw`` once it is removed (by its own ``removed_on`` or a
      later ``list_removals`` record, e.g. an approved credit repair);
    * commitment: made, kept or breached, with the day of its status;
    * any of these three ``withdraw`` once an upheld objection voids it (``voided_on``);
    * credit_repair: an approved repair and the penalty it repairs;
    * grade (only when ``grades`` is given, i.e. the policy enables it): the current grade.
    """
    rows: list[dict[str, Any]] = []
    tables = mark_voided(tables)
    pen = penalties_with_influence(tables)
    rows += _rows(
        pen,
        "penalty",
        "case_id",
        [
            "decided_on",
            "severity",
            "fine_cny",
            "category",
            "dishonest_list",
            "influence_until",
            "repaired_on",
            "voided_on",
        ],
        pl.col("repaired_on").is_not_null() | pl.col("voided_on").is_not_null(),
        ["decided_on", "recorded_on", "repaired_on", "voided_on"],
    )
    entries = list_entries(tables)
    if entries is not None:
        rows += _rows(
            entries.sort("entry_id").collect(),
            "list_entry",
            "entry_id",
            ["list", "reason", "listed_on", "removed_on", "removal_reason", "removal_id", "voided_on"],
            pl.col("removed_on").is_not_null() | pl.col("voided_on").is_not_null(),
            ["listed_on", "removed_on", "recorded_on", "voided_on"],
        )
    commitments = _table(tables, "commitments")
    if commitments is not None:
        rows += _rows(
            commitments.sort("commitment_id").collect(),
            "commitment",
            "commitment_id",
            ["kind", "made_on", "due_on", "status", "status_changed_on", "voided_on"],
            pl.col("voided_on").is_not_null(),
            ["made_on", "status_changed_on", "recorded_on", "voided_on"],
        )
    repairs = (
        tables["credit_repairs"]
        .join(tables["penalties"].select("case_id", "enterprise_id"), on="case_id", how="inner")
        .sort("repair_id")
        .collect()
    )
    rows += _rows(
        repairs,
        "credit_repair",
        "repair_id",
        ["case_id", "repaired_on"],
        pl.lit(False),
        ["repaired_on", "recorded_on"],
    )
    if grades is not None and grades.height:
        g = grades.select("enterprise_id", "grade", "as_of").with_columns(
            pl.col("enterprise_id").alias("_id")
        )
        rows += _rows(g, "grade", "_id", ["grade"], pl.lit(False), ["as_of"])
    if not rows:
        return pl.DataFrame(schema=RECORD_SCHEMA)
    return pl.DataFrame(rows, schema=RECORD_SCHEMA)


def _label(labels: Mapping[str, tuple[str, str]], key: str | None) -> tuple[str, str]:
    return labels.get(key or "", (key or "", key or ""))


def published_records(
    tables: Mapping[str, pl.LazyFrame], rules: PublicationRules, as_of: date
) -> pl.DataFrame:
    """What a bureau may publish as of D, one row per penalty or list entry.

    Penalties: known as of D, in their publication period (decided_on + the policy's months for the
    severity > D), not decided by the simple procedure (minor, no fine or a fine up to the policy's
    limit), and not repaired by a repair known as of D. List entries: listed as of D (CONTRACT §2).
    Only public facts: no grade, score or reason of a grade.
    """
    tables = drop_voided(tables, as_of)
    names = tables["enterprises"].select("enterprise_id", "name").collect()
    pen = penalties_with_influence(tables, as_of).with_columns(pl.lit(as_of).alias(AS_OF))
    until = pl.lit(None, dtype=pl.Date)
    for sev in INFLUENCE:
        until = (
            pl.when(pl.col("severity") == sev)
            .then(pl.col("decided_on").dt.offset_by(f"{rules.months(sev)}mo"))
            .otherwise(until)
        )
    simple = (pl.col("severity") == "minor") & (
        pl.col("fine_cny").is_null() | (pl.col("fine_cny") <= rules.simple_procedure_max_fine_cny)
    )
    pen = pen.with_columns(until.alias("published_until")).filter(
        in_effect(pl.col("published_until")) & ~simple & pl.col("repaired_on").is_null()
    )
    pen_rows = pen.select(
        pl.lit("penalty").alias("record_type"),
        pl.col("case_id").alias("record_id"),
        pl.col("enterprise_id").alias("uscc"),
        pl.col("severity")
        .replace_strict({k: v[0] for k, v in SEVERITY_LABELS.items()}, default=None)
        .alias("kind_zh"),
        pl.col("severity")
        .replace_strict({k: v[1] for k, v in SEVERITY_LABELS.items()}, default=None)
        .alias("kind_en"),
        pl.col("category").alias("detail"),
        pl.col("fine_cny"),
        pl.col("decided_on").alias("since"),
        pl.col("published_until"),
    )
    frames = [pen_rows]
    entries = list_entries(tables, as_of)
    if entries is not None:
        listed = (
            known_before(entries, "listed_on", as_of)
            .filter(pl.col("removed_on").is_null() | (pl.col("removed_on") >= as_of))
            .collect()
        )
        frames.append(
            listed.select(
                pl.lit("list_entry").alias("record_type"),
                pl.col("entry_id").alias("record_id"),
                pl.col("enterprise_id").alias("uscc"),
                pl.col("list")
                .replace_strict({k: v[0] for k, v in LIST_LABELS.items()}, default=None)
                .alias("kind_zh"),
                pl.col("list")
                .replace_strict({k: v[1] for k, v in LIST_LABELS.items()}, default=None)
                .alias("kind_en"),
                pl.col("reason").replace(LIST_GROUNDS).alias("detail"),
                pl.lit(None, dtype=pl.Float64).alias("fine_cny"),
                pl.col("listed_on").alias("since"),
                pl.lit(None, dtype=pl.Date).alias("published_until"),
            )
        )
    out = pl.concat(frames, how="vertical_relaxed")
    return (
        out.join(names, left_on="uscc", right_on="enterprise_id", how="left")
        .select(PUBLISHED_COLUMNS)
        .sort("since", "record_id", descending=[True, False])
    )


def enterprise_record(
    tables: Mapping[str, pl.LazyFrame], enterprise_id: str, as_of: date
) -> dict[str, Any] | None:
    """A finance partner's view of one enterprise as of D (质量信用金融+), or None if unknown.

    Penalties still in their influence period, list entries current or removed, commitments kept or
    breached, approved repairs, and a good-standing statement: no penalty in its influence period, on
    no list, no breached commitment. Never a grade, score or reason (the face adds the grade only
    where the policy enables it).
    """

    tables = drop_voided(tables, as_of)

    def one(frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.filter(pl.col("enterprise_id") == enterprise_id)

    ent = one(tables["enterprises"]).select("enterprise_id", "name").collect()
    if ent.height == 0:
        return None
    scoped = {**tables, "penalties": one(tables["penalties"])}
    known_pen = penalties_with_influence(scoped, as_of)
    penalties = (
        known_pen.filter(pl.col("influence_until") > as_of)
        .select("case_id", "decided_on", "severity", "fine_cny", "category", "influence_until")
        .to_dicts()
    )
    repairs = (
        known_pen.filter(pl.col("repair_id").is_not_null())
        .select("repair_id", "case_id", "repaired_on")
        .to_dicts()
    )
    lists: list[dict[str, Any]] = []
    entries = list_entries(tables, as_of)
    if entries is not None:
        known = known_before(one(entries), "listed_on", as_of).sort("listed_on", "entry_id").collect()
        for row in known.iter_rows(named=True):
            removed = (
                row["removed_on"] if row["removed_on"] is not None and row["removed_on"] < as_of else None
            )
            lists.append(
                {
                    "entry_id": row["entry_id"],
                    "list": row["list"],
                    "listed_on": row["listed_on"],
                    "removed_on": removed,
                    "listed": removed is None,
                }
            )
    commitments: list[dict[str, Any]] = []
    com = _table(tables, "commitments")
    if com is not None:
        known = (
            known_before(one(com), "made_on", as_of)
            .filter(
                pl.col("status").is_in(["kept", "breached"])
                & pl.col("status_changed_on").is_not_null()
                & (pl.col("status_changed_on") < as_of)
            )
            .sort("made_on", "commitment_id")
            .collect()
        )
        commitments = known.select(
            "commitment_id", "kind", "made_on", "status", "status_changed_on"
        ).to_dicts()
    listed_now = [e for e in lists if e["listed"]]
    breached = [c for c in commitments if c["status"] == "breached"]
    good = not penalties and not listed_now and not breached
    if good:
        zh = (
            "截至该日，无处于影响期内的行政处罚，未被列入经营异常名录或严重违法失信名单，无违背信用承诺记录。"
        )
        en = (
            "As of this day: no administrative penalty within its influence period, on no abnormal-"
            "operation or serious-dishonesty list, no breached credit commitment."
        )
    else:
        parts_zh, parts_en = [], []
        if penalties:
            parts_zh.append(f"{len(penalties)} 项行政处罚处于影响期内")
            parts_en.append(
                f"{len(penalties)} administrative penalt{'y' if len(penalties) == 1 else 'ies'} "
                "within the influence period"
            )
        if listed_now:
            parts_zh.append("被列入" + "、".join(_label(LIST_LABELS, e["list"])[0] for e in listed_now))
            parts_en.append(
                "listed on the " + ", ".join(_label(LIST_LABELS, e["list"])[1] for e in listed_now)
            )
        if breached:
            parts_zh.append(f"{len(breached)} 项信用承诺未履行")
            parts_en.append(f"{len(breached)} breached credit commitment{'s' if len(breached) > 1 else ''}")
        zh, en = "截至该日：" + "；".join(parts_zh) + "。", "As of this day: " + "; ".join(parts_en) + "."
    return {
        "enterprise_id": enterprise_id,
        "name": ent["name"][0],
        "as_of": as_of,
        "penalties": penalties,
        "lists": lists,
        "commitments": commitments,
        "repairs": repairs,
        "good_standing": {"in_good_standing": good, "text_zh": zh, "text_en": en},
    }


def read_credit_record(lake: Path, enterprise_id: str, as_of: date) -> dict[str, Any] | None:
    """``enterprise_record`` from a lake folder (None for an enterprise the lake does not hold)."""
    return enterprise_record(load_tables(lake), enterprise_id, as_of)


def enterprise_exists(lake: Path, enterprise_id: str) -> bool:
    """Whether the lake's enterprises table holds ``enterprise_id``."""
    found = scan_table(lake, "enterprises").filter(pl.col("enterprise_id") == enterprise_id).select(pl.len())
    return bool(found.collect().item() > 0)
