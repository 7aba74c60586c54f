"""The 双随机 random draw: inclusion probabilities at the policy ratios, systematic stratum sizes, and
a simple random sample within each stratum (rule 2 of ``riskengine.supervision.plan``)."""

from __future__ import annotations

import numpy as np
import polars as pl


def scale_probabilities(base: np.ndarray, total: float) -> np.ndarray:
    """Multiply ``base`` (all > 0) by one factor, capping at 1, so the sum is ``total`` (or all 1)."""
    if total <= 0 or base.size == 0:
        return np.zeros_like(base, dtype=float)
    if total >= base.size:
        return np.ones_like(base, dtype=float)
    capped = np.zeros(base.size, dtype=bool)
    while True:
        factor = (total - capped.sum()) / base[~capped].sum()
        newly = ~capped & (base * factor >= 1.0)
        if not newly.any():
            break
        capped |= newly
    return np.where(capped, 1.0, base * factor)


def systematic_round(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integers ``n_k`` with ``E[n_k] = expected_k``, each floor or ceil, whose sum is the rounded total.

    Systematic sampling with one uniform random start over the cumulative expectations.
    """
    if expected.size == 0:
        return np.zeros(0, dtype=np.int64)
    u = rng.random()
    cum = np.concatenate([[0.0], np.cumsum(expected)])
    points = np.floor(cum + u + 1e-9)
    return np.diff(points).astype(np.int64)


def inclusion_probabilities(frame: pl.DataFrame, capacity: float) -> pl.DataFrame:
    """``frame`` (with annual ``ratio``) sorted by enterprise_id, plus this period's
    ``inclusion_probability``: ratio / 12 scaled (capped at 1) to an expected total of ``capacity``."""
    frame = frame.sort("enterprise_id")
    base = (frame.get_column("ratio").to_numpy() / 12.0).astype(float)
    return frame.with_columns(pl.Series("inclusion_probability", scale_probabilities(base, float(capacity))))


def stratified_draw(frame: pl.DataFrame, capacity: int, rng: np.random.Generator,
                    strata: tuple[str, ...] = ("grade", "sector")) -> pl.DataFrame:
    """Draw ``capacity`` enterprises (expected) from ``frame`` at the policy ratios.

    ``frame`` needs ``enterprise_id``, the ``strata`` columns and ``ratio`` (annual). Returns the drawn
    rows with ``inclusion_probability`` (the same for every member of a stratum).
    """
    if frame.height == 0 or capacity <= 0:
        return frame.head(0).with_columns(pl.lit(0.0).alias("inclusion_probability"))
    frame = inclusion_probabilities(frame, capacity)
    sizes = frame.group_by(*strata, "inclusion_probability").agg(pl.len().alias("n")).sort(*strata)
    order = rng.permutation(sizes.height)
    sizes = sizes[order.tolist()]
    expected = (sizes["n"].to_numpy() * sizes["inclusion_probability"].to_numpy())
    counts = np.minimum(systematic_round(expected, rng), sizes["n"].to_numpy())
    drawn: list[pl.DataFrame] = []
    for key, count in zip(sizes.select(*strata).iter_rows(), counts, strict=True):
        if count <= 0:
            continue
        members = frame.filter(pl.all_horizontal(pl.col(c) == v for c, v in zip(strata, key, strict=True)))
        pick = np.sort(rng.choice(members.height, size=int(count), replace=False))
        drawn.append(members[pick.tolist()])
    if not drawn:
        return frame.head(0)
    return pl.concat(drawn)
