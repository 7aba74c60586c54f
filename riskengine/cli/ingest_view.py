"""Rendering an ingest report for people: per-table counts and the top quarantine reasons (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def render_ingest_report(report: dict[str, Any], console: Console, *, top: int = 10) -> None:
    """Print the per-table table and, if rows were quarantined, the most frequent reasons."""
    counts = Table(title=f"ingest {report['run_id']} → {report['lake']}")
    for header in ("表 table", "读取 read", "接收 accepted", "隔离 quarantined", "重复 duplicates"):
        counts.add_column(header, justify="left" if header.startswith("表") else "right")
    totals = dict.fromkeys(("read", "accepted", "quarantined", "duplicates"), 0)
    for name, row in report["tables"].items():
        counts.add_row(name, *(f"{row[k]:,}" for k in totals))
        for k in totals:
            totals[k] += row[k]
    counts.add_row("合计 total", *(f"{totals[k]:,}" for k in totals), style="bold")
    console.print(counts)
    reasons = report["quarantine"]["top_reasons"][:top]
    if not reasons:
        return
    why = Table(title="隔离原因 top quarantine reasons")
    for header in ("表 table", "列 column", "规则 rule", "行数 rows", "示例 example (row: value → reason)"):
        why.add_column(header, justify="right" if header.startswith("行数") else "left")
    for item in reasons:
        example = f"{item['example_row']}: {item['example_value']!r} → {item['example_reason']}"
        why.add_row(item["table"], item["column"], f"{item['label_zh']} ({item['rule']})",
                    f"{item['rows']:,}", example)
    console.print(why)
