"""Buckets of enterprises: a stable hash of ``enterprise_id`` that splits a lake into parts.

A bucketed lake lays each table that carries ``enterprise_id`` out in hive-style folders,
``LAKE/<table>/bucket=NNNN/<run_id>.parquet`` (any engine still reads it as one dataset), so that a
part of the work reads only its slice of every table (CONTRACT §8). The hash is 32-bit FNV-1a over
the id's UTF-8 bytes: it is the same on every machine, Python and Polars version (Polars' own
``hash`` is not stable across versions), so a bucket written today is found tomorrow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from riskengine.core.errors import FatalInputError, UsageError

LAYOUT_FILE = "_layout.json"
BUCKET_PREFIX = "bucket="
MAX_BUCKETS = 4096

_FNV_OFFSET = np.uint64(2166136261)
_FNV_PRIME = np.uint64(16777619)
_MASK = np.uint64(0xFFFFFFFF)


def check_buckets(n: int) -> int:
    """``n`` if it is a valid bucket count, else ``UsageError``."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_BUCKETS:
        raise UsageError(f"buckets must be a whole number from 1 to {MAX_BUCKETS}; got {n}")
    return n


def fnv1a(ids: pl.Series) -> np.ndarray:
    """32-bit FNV-1a of each id's UTF-8 bytes (uint64 array holding 32-bit values; null ids hash as '')."""
    arr = ids.cast(pl.String).fill_null("").to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.large_string())
    arr = arr.cast(pa.large_binary())
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]
    data_buf = bufs[2]
    data = (np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None
            else np.zeros(0, dtype=np.uint8))
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    h = np.full(len(starts), _FNV_OFFSET, dtype=np.uint64)
    for k in range(int(lengths.max()) if len(lengths) else 0):
        live = np.nonzero(lengths > k)[0]
        byte = data[starts[live] + k].astype(np.uint64)
        h[live] = ((h[live] ^ byte) * _FNV_PRIME) & _MASK
    return h


def bucket_of(ids: pl.Series, n: int) -> pl.Series:
    """The bucket (0 .. n-1) of each enterprise id."""
    check_buckets(n)
    return pl.Series("bucket", (fnv1a(ids) % np.uint64(n)).astype(np.int32), dtype=pl.Int32)


def bucket_expr(column: str, n: int) -> pl.Expr:
    """``bucket_of`` as a Polars expression over ``column``."""
    check_buckets(n)
    return pl.col(column).map_batches(lambda s: bucket_of(s, n), return_dtype=pl.Int32)


def folder_name(bucket: int) -> str:
    return f"{BUCKET_PREFIX}{bucket:04d}"


def lake_buckets(lake: Path) -> int | None:
    """The lake's bucket count (``LAKE/_layout.json``), or None for a lake laid out in plain files."""
    path = Path(lake) / LAYOUT_FILE
    if not path.is_file():
        return None
    try:
        n = int(json.loads(path.read_text(encoding="utf-8"))["buckets"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FatalInputError(f"{path}: unreadable lake layout ({exc})") from exc
    return check_buckets(n)


def layout_bytes(n: int) -> bytes:
    """The content of ``LAKE/_layout.json`` for ``n`` buckets."""
    return json.dumps({"buckets": check_buckets(n), "hash": "fnv1a32(enterprise_id utf-8) mod buckets"},
                      indent=2).encode("utf-8")


def split(frame: pl.DataFrame, n: int) -> list[tuple[int, pl.DataFrame]]:
    """``frame``'s rows per bucket of its ``enterprise_id`` (only non-empty buckets; row order kept)."""
    if frame.height == 0:
        return []
    keyed = frame.with_columns(bucket_of(frame["enterprise_id"], n).alias("_bucket"))
    return [(int(b), part.drop("_bucket"))
            for (b,), part in keyed.partition_by("_bucket", maintain_order=True, as_dict=True).items()]
