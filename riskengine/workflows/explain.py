"""One enterprise's grade explained with the records behind it (CONTRACT §3 "Explanations", issue 18).

``explanation`` grades the enterprise as of D, groups the model's contributions into reasons
(``models.reasons``) and attaches to every own-record reason the lake records it rests on:
table, record id, date and a one-line description in Chinese and English, e.g.
"2025-03-14 抽检不合格（产品：电线，危害：高）". Evidence obeys the time rule (``features.asof``:
only records visible before D) and each reason's window (3 years for inspections, sampling tests,
penalties and recalls, 1 year for complaints; penalties also while their influence period runs).

The command line (``explain --format json``) and the API return the same structure; the API reads
the reasons stored with the grade and the evidence from ``Settings.service.lake_path``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from models.reason_groups import BASELINE, OTHER, reason_kind
from riskengine.core.config import Settings
from riskengine.core.errors import NotFoundError, UsageError
from riskengine.core.files import atomic_write
from riskengine.lake.layout import load_tables
from riskengine.workflows.evidence import empty_evidence, evidence
from riskengine.workflows.scoring import Explanation, explain_enterprise, score_enterprises

# --- the explanation ------------------------------------------------------------------------------


def _evidence_items(frame: pl.DataFrame, reason: str) -> list[dict[str, Any]]:
    return [_item(r) for r in frame.filter(pl.col("reason") == reason).iter_rows(named=True)]


def _item(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "table": r["table"],
        "record_id": r["record_id"],
        "date": r["date"].isoformat(),
        "text_zh": r["text_zh"],
        "text_en": r["text_en"],
    }


def assemble(
    row: Mapping[str, Any],
    reasons: list[Mapping[str, Any]],
    found: pl.DataFrame | Mapping[str, list[dict[str, Any]]],
    *,
    baseline: Mapping[str, Any] | None = None,
    decomposition: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """CONTRACT §3's explanation from a grades row, its reasons and the evidence found for it (the
    ``evidence`` frame, or its items already grouped by reason code)."""
    items = []
    for r in reasons:
        kind = reason_kind(r["code"])
        items.append(
            {
                "code": r["code"],
                "kind": kind,
                "contribution": r["contribution"],
                "text_zh": r["text_zh"],
                "text_en": r["text_en"],
                "evidence": ([] if kind != "own_record"
                             else found.get(r["code"], []) if isinstance(found, Mapping)
                             else _evidence_items(found, r["code"])),
            }
        )
    if baseline is None:
        stored = next((r for r in reasons if r["code"] == BASELINE), None)
        baseline = (
            {
                "text_zh": stored["text_zh"],
                "text_en": stored["text_en"],
                "contribution": stored["contribution"],
            }
            if stored
            else None
        )
    as_of = row["as_of"]
    return {
        "enterprise_id": row["enterprise_id"],
        "name": row.get("name"),
        "as_of": as_of.isoformat() if isinstance(as_of, date) else as_of,
        "grade": row["grade"],
        "model_grade": row.get("model_grade"),
        "score": row["score"],
        "probability": row["probability"],
        "rule": row.get("rule"),
        "model_version": row.get("model_version"),
        "baseline": baseline,
        "reasons": items,
        "decomposition": decomposition,
    }


def explain_with_records(
    lake: Path,
    enterprise_id: str,
    as_of: date,
    *,
    model: Any = None,
    previous: pl.DataFrame | None = None,
    settings: Settings | None = None,
) -> tuple[dict[str, Any], Explanation]:
    """Grade one enterprise as of D and explain it with its records: the ``explain --format json`` body
    and the full decomposition behind it (for the waterfall plot).

    Besides CONTRACT §3's fields, the body's ``decomposition`` lists every reason group's contribution
    with the model's base value and raw score: base value + the groups = raw score.
    """
    result = explain_enterprise(lake, enterprise_id, as_of, model=model, previous=previous, settings=settings)
    found = evidence(load_tables(Path(lake)), as_of, [enterprise_id])
    return explanation_from(result, found), result


def explanation_from(result: Explanation, found: pl.DataFrame) -> dict[str, Any]:
    """The explanation of ``explain_enterprise``'s result, with the evidence ``found`` for it."""
    groups = result.groups
    base_row = groups.filter(pl.col("code") == BASELINE).row(0, named=True)
    baseline = {
        "text_zh": base_row["text_zh"],
        "text_en": base_row["text_en"],
        "contribution": base_row["contribution"],
        "driven": bool(result.baseline_driven),
    }
    decomposition = {
        "base_value": result.base_value,
        "raw_score": result.raw,
        "groups": [
            {
                "code": g["code"],
                "kind": g["kind"],
                "contribution": g["contribution"],
                "text_zh": g["text_zh"],
                "text_en": g["text_en"],
            }
            for g in groups.sort("contribution", descending=True).iter_rows(named=True)
            if g["contribution"] != 0 or g["code"] in (BASELINE, OTHER)
        ],
    }
    return assemble(
        result.row, list(result.row["reasons"] or []), found, baseline=baseline, decomposition=decomposition
    )


# --- every graded enterprise at once (``explain --out FILE.jsonl``) --------------------------------------


def explanation_lines(grades: pl.DataFrame, tables: Mapping[str, pl.LazyFrame], as_of: date) -> pl.DataFrame:
    """(enterprise_id, explanation): CONTRACT §3's explanation of every row of ``grades`` as one JSON
    text, in the grades' order, built as the API builds it from a stored grade (``assemble``: the
    grade's stored reasons, own-record reasons with the records behind them found in ``tables``)."""
    ids = grades["enterprise_id"].to_list()
    found = evidence(tables, as_of, ids) if ids else empty_evidence()
    # Grouped once, in the evidence's order (newest first per enterprise and reason): a filter per
    # enterprise and reason costs more than the rest of the explanation.
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in found.iter_rows(named=True):
        grouped.setdefault(r["enterprise_id"], {}).setdefault(r["reason"], []).append(_item(r))
    texts = [
        json.dumps(assemble(row, list(row["reasons"] or []), grouped.get(row["enterprise_id"], {})),
                   ensure_ascii=False)
        for row in grades.iter_rows(named=True)
    ]
    return pl.DataFrame({"enterprise_id": ids, "explanation": texts},
                        schema={"enterprise_id": pl.String, "explanation": pl.String})


def check_jsonl(out: Path) -> Path:
    """The batch explanations go to a JSON Lines file (one explanation a line)."""
    out = Path(out)
    if out.suffix.lower() != ".jsonl":
        raise UsageError(f"--out must end .jsonl (one explanation a line); got {out}")
    return out


def write_jsonl(chunks: Iterable[Iterable[str]], out: Path) -> int:
    """Write the texts of ``chunks`` one a line (UTF-8) to ``out`` atomically; how many lines."""
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for chunk in chunks:
                for text in chunk:
                    f.write(text)
                    f.write("\n")
                    count += 1

    atomic_write(check_jsonl(out), write)
    return count


def explain_all(lake: Path, as_of: date, out: Path, *, model: Any = None,
                previous: pl.DataFrame | None = None, settings: Settings | None = None) -> int:
    """Grade every active enterprise of ``lake`` as of D (``score_enterprises``) and write each one's
    explanation to ``out`` (JSON Lines, in the grades' order); how many were written."""
    check_jsonl(out)
    grades = score_enterprises(lake, as_of, model=model, previous=previous, settings=settings)
    if grades.height == 0:
        raise NotFoundError(f"{lake}: no active enterprise established before {as_of}; nothing to explain")
    lines = explanation_lines(grades, load_tables(Path(lake)), as_of)
    return write_jsonl([lines["explanation"]], out)
