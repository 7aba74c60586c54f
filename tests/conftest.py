"""Shared fixtures: one small generated city and its lake, built once per test session.

Tests that need realistic data use these instead of generating their own, to keep the suite fast.
Treat both folders as read-only (copy them with ``shutil.copytree`` before changing anything).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SMALL_CITY_ENTERPRISES = 1500
SMALL_CITY_SEED = 7


@pytest.fixture(scope="session")
def small_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean synthetic city source folder (CSV, 2019-01-01..2025-12-31) with ``_truth/``."""
    from riskengine.synth import generate_city

    out = tmp_path_factory.mktemp("city") / "src"
    generate_city(out, n_enterprises=SMALL_CITY_ENTERPRISES, seed=SMALL_CITY_SEED)
    return out


@pytest.fixture(scope="session")
def small_lake(small_city: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small city ingested into a lake."""
    from riskengine.lake.ingest import ingest

    lake = tmp_path_factory.mktemp("lake") / "lake"
    ingest(small_city, lake)
    return lake
