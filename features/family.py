"""What a feature family declares: its name, the event table it describes and its build.

``features.families.FAMILIES`` lists the families ``features.build`` loops over; a family module
declares ``FAMILY = Family(...)`` beside its ``build``. The profile (from the population) and the
associations (across enterprises, from the assembled frame) are built by ``features.build`` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl


@dataclass(frozen=True)
class Inputs:
    """What every family's build may read: the conformed tables (enterprise ids as dense codes), the
    population's keys, the sorted as_of dates, and what the families looking across enterprises need."""

    tables: Mapping[str, pl.LazyFrame]
    keys: pl.LazyFrame
    dates: list[date]
    half_life_days: float
    strictness: pl.LazyFrame | None = None
    rates: pl.LazyFrame | None = None


@dataclass(frozen=True)
class Family:
    """One feature family: ``name`` is the catalog's ``family`` (its columns' prefix); ``table`` the
    event table it describes (None for a family over several), left out and named where a lake lacks
    it; ``build`` its rows per (enterprise_id, as_of) with a visible record."""

    name: str
    table: str | None
    build: Callable[[Inputs], pl.LazyFrame]
