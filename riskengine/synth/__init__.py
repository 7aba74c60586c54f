"""The synthetic city: a developer tool that generates source folders and their ground truth.

It uses only the core (``riskengine.core``); workflows, the CLI and tests use it.
"""

from riskengine.core.ids import make_usccs
from riskengine.synth.city import generate_city, generate_city_frames, generate_tables
from riskengine.synth.drift import Drift
from riskengine.synth.simulate import simulate_city
from riskengine.synth.truth import load_truth, truth_frame
from riskengine.synth.world import (
    CITY_TABLES,
    DEFAULT_END,
    DEFAULT_START,
    DISTRICTS,
    FORMATS,
    SECTOR_KEYS,
    SECTORS,
    SyntheticCity,
    check_parameters,
)

__all__ = [
    "CITY_TABLES",
    "DEFAULT_END", "DEFAULT_START", "DISTRICTS", "Drift", "FORMATS", "SECTORS", "SECTOR_KEYS",
    "SyntheticCity",
    "check_parameters", "generate_city", "generate_city_frames", "generate_tables", "load_truth",
    "make_usccs", "simulate_city", "truth_frame",
]
