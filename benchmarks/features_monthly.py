"""Claim (issue 3): the full feature set for 12 monthly as_of dates of a 200,000-enterprise city in <= 60 s.

Run:  python benchmarks/features_monthly.py [--enterprises 200000] [--dates 12] [--end 2025-07-01]
      [--seed 7] [--repeats 3]
Prints one JSON object: median wall time and peak RSS of ``build_features(...).collect()`` (reading the
lake included) over ``--repeats`` fresh processes, CPU seconds (user + system) beside it, rows and
columns, and the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _features_city import city_lake, load_average, measure  # noqa: E402


def monthly(end: date, n: int) -> list[str]:
    """``n`` first-of-month dates ending at ``end`` (a first of month)."""
    out = []
    y, m = end.year, end.month
    for _ in range(n):
        out.append(date(y, m, 1).isoformat())
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return sorted(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=200_000)
    ap.add_argument("--dates", type=int, default=12)
    ap.add_argument("--end", type=date.fromisoformat, default=date(2025, 7, 1))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    lake = city_lake(args.enterprises, args.seed)
    dates = monthly(args.end, args.dates)
    runs = [measure("features", lake, dates) for _ in range(args.repeats)]
    wall = statistics.median(r["wall_s"] for r in runs)
    print(
        json.dumps(
            {
                "claim": "12 monthly as_of dates for 200,000 enterprises <= 60 s",
                "enterprises": args.enterprises,
                "as_of_dates": len(dates),
                "first": dates[0],
                "last": dates[-1],
                "rows": runs[0]["shape"][0],
                "columns": runs[0]["shape"][1],
                "wall_s_median": round(wall, 2),
                "wall_s_all": [round(r["wall_s"], 2) for r in runs],
                "cpu_s_median": round(statistics.median(r["cpu_s"] for r in runs), 2),
                "peak_rss_gib": round(max(r["peak_rss_bytes"] for r in runs) / 2**30, 2),
                "target_met": wall <= 60.0,
                "load_average_1m": round(load_average(), 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
