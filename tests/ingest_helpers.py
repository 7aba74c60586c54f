"""Small ingest sources written in a test: valid USCCs, rows of enterprises and inspections, the lake's
quarantine, a folder snapshot."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

from riskengine.core.ids import uscc_check_char
from riskengine.lake import ingest as ingest_module
from riskengine.lake.ingest import ingest
from riskengine.lake.layout import scan_quarantine

DAY = date(2025, 6, 30)  # the ingest day of every test: no date may lie after it


def uscc(i: int, division: str = "420106") -> str:
    """A valid Unified Social Credit Code numbered ``i``."""
    first17 = f"91{division}{i:09d}"
    return first17 + uscc_check_char(first17)


E1, E2 = uscc(1), uscc(2)


def enterprise(eid: str = E1, **overrides: Any) -> dict[str, Any]:
    row = {
        "enterprise_id": eid,
        "name": "武汉甲公司",
        "district": "420106",
        "sector": "wire_cable",
        "established_on": "2010-05-01",
        "registered_capital": "100",
        "status": "active",
    }
    return {**row, **overrides}


def inspection(iid: str = "I1", eid: str = E1, **overrides: Any) -> dict[str, Any]:
    row = {
        "inspection_id": iid,
        "enterprise_id": eid,
        "inspected_on": "2021-03-04",
        "kind": "random",
        "inspector_id": "P7",
        "outcome": "pass",
        "findings_minor": "0",
    }
    return {**row, **overrides}


def write_csv(folder: Path, table: str, rows: list[dict[str, Any]], fields: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{table}.csv"
    fields = fields or list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def source(tmp_path: Path, name: str = "src", **tables: list[dict[str, Any]]) -> Path:
    folder = tmp_path / name
    tables.setdefault("enterprises", [enterprise(E1), enterprise(E2, name="武汉乙公司")])
    defaults = {"enterprises": list(enterprise()), "inspections": list(inspection())}
    for table, rows in tables.items():
        write_csv(folder, table, rows, fields=None if rows else defaults[table])
    return folder


def run(src: Path, lake: Path, **kwargs: Any) -> ingest_module.IngestReport:
    return ingest(src, lake, ingest_day=DAY, **kwargs)


def quarantined(lake: Path) -> list[dict[str, Any]]:
    return scan_quarantine(lake).collect().to_dicts()


def only_entry(lake: Path, rule: str) -> dict[str, Any]:
    entries = [e for e in quarantined(lake) if e["rule"] == rule]
    assert len(entries) == 1, quarantined(lake)
    return entries[0]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``folder`` with its bytes (folders map to None)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }
