"""A synthetic city (Wuhan) to train and judge the engine on: enterprises and their event history.

Each enterprise carries a latent monthly risk (a logit): sector, size and age effects, a shared
effect within legal-representative clusters, a persistent individual propensity, a slow random-walk
drift, occasional deterioration shocks, and deterrence after a penalty. Events are drawn from that
risk month by month, vectorised over enterprises (the only Python loop runs over months):
12315 complaints; 双随机 random inspections at a uniform base ratio plus targeted, complaint,
follow-up and licence inspections (so observed outcomes carry selection bias); sampling tests for
product sectors; penalties, recalls, licences with suspensions and revocations, and credit repairs.

``DIR/_truth/risk.parquet`` holds the latent probability that an inspection by an inspector of
average strictness finds a failure (shared/CONTRACT.md, section 1); only evaluation reads it.
``dirty`` adds realistic bad rows so ``riskengine ingest`` can show its quarantine.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from riskengine.core.files import atomic_write
from riskengine.core.progress import progress
from riskengine.synth.dirty import inject_dirty
from riskengine.synth.drift import Drift
from riskengine.synth.simulate import simulate_city
from riskengine.synth.truth import _write_truth, truth_frame
from riskengine.synth.world import (
    CITY_TABLES,
    DEFAULT_END,
    DEFAULT_START,
    SyntheticCity,
    check_parameters,
)


def generate_tables(
    n_enterprises: int,
    seed: int,
    start: date | str = DEFAULT_START,
    end: date | str = DEFAULT_END,
    dirty: float = 0.0,
) -> dict[str, pl.DataFrame]:
    """The city's contract tables in memory (with dirty rows added when ``dirty`` > 0)."""
    return generate_city_frames(n_enterprises, seed, start, end, dirty=dirty).tables


def generate_city_frames(
    n_enterprises: int,
    seed: int,
    start: date | str = DEFAULT_START,
    end: date | str = DEFAULT_END,
    *,
    dirty: float = 0.0,
    fmt: str = "csv",
    drift: Drift | None = None,
) -> SyntheticCity:
    """The whole city in memory: tables, truth (long format), inspectors and a summary."""
    start_d, end_d = check_parameters(n_enterprises, seed, start, end, fmt, dirty)
    tables, ids, truth, inspectors = simulate_city(n_enterprises, seed, start_d, end_d, drift=drift)
    summary = _summary(n_enterprises, seed, start_d, end_d, fmt, dirty, tables)
    summary["drift"] = drift.to_dict() if drift is not None else None
    if dirty > 0:

        tables, injected = inject_dirty(tables, dirty, seed, allow_text_dates=fmt == "csv")
        summary["injected"] = injected
        summary["rows"] = {name: frame.height for name, frame in tables.items()}
    return SyntheticCity(tables, truth_frame(ids, truth, start_d), inspectors, summary)


def _summary(n: int, seed: int, start: date, end: date, fmt: str, dirty: float,
             tables: dict[str, pl.DataFrame]) -> dict[str, Any]:
    counts = {name: tables[name].height for name in CITY_TABLES}
    return {
        "enterprises": n, "seed": seed, "start": start.isoformat(), "end": end.isoformat(),
        "format": fmt, "dirty": dirty,
        "events": {k: v for k, v in counts.items() if k != "enterprises"},
        "rows": dict(counts),
        "injected": {},
    }


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _write_table(frame: pl.DataFrame, out: Path, name: str, fmt: str) -> Path:
    path = out / f"{name}.{fmt}"
    if fmt == "csv":
        atomic_write(path, lambda p: frame.write_csv(p))
    else:
        atomic_write(path, lambda p: frame.write_parquet(p))
    # A stale file of the other format would make the source ambiguous.
    (out / f"{name}.{'parquet' if fmt == 'csv' else 'csv'}").unlink(missing_ok=True)
    return path


def generate_city(
    out: Path,
    n_enterprises: int,
    seed: int,
    start: date | str = DEFAULT_START,
    end: date | str = DEFAULT_END,
    fmt: str = "csv",
    dirty: float = 0.0,
    drift: Drift | None = None,
) -> dict[str, Any]:
    """Write a synthetic city as a source folder: ``out/<table>.<fmt>`` and ``out/_truth/``.

    Returns the summary (rows per table, event counts, injected bad rows by kind); the same summary
    is written to ``out/_truth/summary.json``.
    """

    start_d, end_d = check_parameters(n_enterprises, seed, start, end, fmt, dirty)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "_truth").mkdir(exist_ok=True)
    n_months = (end_d.year - start_d.year) * 12 + end_d.month - start_d.month + 1
    with progress("simulating months", total=n_months) as advance:
        tables, ids, truth, inspectors = simulate_city(n_enterprises, seed, start_d, end_d, progress=advance,
                                                       drift=drift)
    summary = _summary(n_enterprises, seed, start_d, end_d, fmt, dirty, tables)
    summary["drift"] = drift.to_dict() if drift is not None else None
    if dirty > 0:

        tables, summary["injected"] = inject_dirty(tables, dirty, seed, allow_text_dates=fmt == "csv")
        summary["rows"] = {name: frame.height for name, frame in tables.items()}
    with progress("writing tables", total=len(tables)) as advance:
        for name in CITY_TABLES:
            _write_table(tables[name], out, name, fmt)
            advance(1)
    del tables
    with progress("writing ground truth", total=len(ids)) as advance:
        summary["truth_rows"] = _write_truth(out / "_truth" / "risk.parquet", ids, truth, start_d, advance)
    atomic_write(out / "_truth" / "inspectors.parquet", lambda p: inspectors.write_parquet(p))
    text = json.dumps(summary, ensure_ascii=False, indent=2)
    atomic_write(out / "_truth" / "summary.json", lambda p: _write_text(p, text))
    return summary
