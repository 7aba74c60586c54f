"""The synthetic city: a developer tool that generates source folders and their ground truth.

It uses only the core (``riskengine.core``); workflows, the CLI and tests use it.
"""

from riskengine.core.ids import make_usccs
from riskengine.synth.city import (
    CITY_TABLES,
    DEFAULT_END,
    DEFAULT_START,
    DISTRICTS,
    FORMATS,
    SECTOR_KEYS,
    SECTORS,
    Drift,
    SyntheticCity,
    check_parameters,
    generate_city,
    generate_city_frames,
    generate_tables,
    simulate_city,
    truth_frame,
)

__all__ = [
    "CITY_TABLES",
    "DEFAULT_END", "DEFAULT_START", "DISTRICTS", "Drift", "FORMATS", "SECTORS", "SECTOR_KEYS",
    "SyntheticCity",
    "check_parameters", "generate_city", "generate_city_frames", "generate_tables", "make_usccs",
    "simulate_city", "truth_frame",
]
