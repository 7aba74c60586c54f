"""The city's ground truth: the latent monthly p_fail of every enterprise (``DIR/_truth/risk.parquet``),
written by the generator and read back only by evaluation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from riskengine.core.errors import UsageError
from riskengine.core.files import atomic_write
from riskengine.synth.world import (
    DEFAULT_START,
    _as_date,
    _month_starts,
)


def _truth_block(ids: np.ndarray, truth: np.ndarray, start: date, rows: slice
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ids of the block, row index into them, month as days since epoch, p_fail), months existing only."""
    block = truth[rows]
    n, m = block.shape
    months = _month_starts(start, m).astype(np.int32)
    flat = block.ravel()
    keep = ~np.isnan(flat)
    ent = np.repeat(np.arange(n, dtype=np.int32), m)[keep]
    return ids[rows], ent, np.tile(months, n)[keep], flat[keep].astype(np.float64)


def truth_frame(ids: np.ndarray, truth: np.ndarray, start: date | str = DEFAULT_START,
                rows: slice = slice(None)) -> pl.DataFrame:
    """The ground truth in the contract's long format (enterprise_id, month, p_fail) for ``rows``.

    ``truth`` is the enterprises x months matrix of ``simulate_city`` (NaN where none existed).
    """
    block_ids, ent, months, p = _truth_block(ids, truth, _as_date(start, "start"), rows)
    return pl.DataFrame({
        "enterprise_id": pl.Series(block_ids).gather(ent),
        "month": pl.Series(months).cast(pl.Date),
        "p_fail": p,
    })


def _write_truth(path: Path, ids: np.ndarray, truth: np.ndarray, start: date,
                 advance: Callable[[float], None] | None = None, chunk: int = 250_000) -> int:
    """Stream the truth matrix to Parquet in enterprise chunks (2M x 84 months does not fit as a frame).

    Rows are ordered by enterprise then month. enterprise_id goes in as an Arrow dictionary (no string
    copy per row) and is stored without the Arrow schema, so readers see a plain string column; p_fail
    is not dictionary-encoded (every value differs).
    """

    schema = pa.schema([("enterprise_id", pa.dictionary(pa.int32(), pa.string())), ("month", pa.date32()),
                        ("p_fail", pa.float64())])
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        with pq.ParquetWriter(tmp, schema, compression="zstd", use_dictionary=["enterprise_id", "month"],
                              store_schema=False, dictionary_pagesize_limit=1 << 26) as writer:
            for lo in range(0, len(ids), chunk):
                block_ids, ent, months, p = _truth_block(ids, truth, start, slice(lo, lo + chunk))
                rows += len(p)
                writer.write_table(pa.table({
                    "enterprise_id": pa.DictionaryArray.from_arrays(ent, pa.array(block_ids, pa.string())),
                    "month": pa.array(months, pa.int32()).cast(pa.date32()),
                    "p_fail": pa.array(p),
                }, schema=schema))
                if advance is not None:
                    advance(min(chunk, len(ids) - lo))

    atomic_write(path, write)
    return rows


def load_truth(path: Path) -> pl.DataFrame:
    """Read a synthetic city's ground truth (``enterprise_id``, ``month``, ``p_fail``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "_truth" / "risk.parquet" if (path / "_truth").is_dir() else path / "risk.parquet"
    if not path.is_file():
        raise UsageError(f"{path}: no ground-truth file (expected SOURCE/_truth/risk.parquet)")
    try:
        truth = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise UsageError(f"{path}: unreadable ground truth ({exc})") from exc
    missing = {"enterprise_id", "month", "p_fail"} - set(truth.columns)
    if missing:
        raise UsageError(f"{path}: ground truth lacks column(s) {', '.join(sorted(missing))}")
    return truth
