"""Shared by the training benchmarks (``real_boston``, ``city_grades``): the options that pass
straight to ``TrainConfig`` for the inspection target and the blend, with train's own defaults."""

from __future__ import annotations

import argparse

from models.train_config import TrainConfig, parse_blend_weight
from riskengine.core.errors import UsageError


def _blend_weight(text: str) -> float | str:
    try:
        return parse_blend_weight(text)
    except UsageError as exc:  # argparse reports it as a usage error, not a traceback
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """``--inspection-snapshots``, ``--visit-window-months`` and ``--blend-weight``."""
    parser.add_argument("--inspection-snapshots", type=int, default=TrainConfig.inspection_snapshots,
                        help="the inspection target's fit months (default: train's: 24, fewer if the "
                             "lake's visits start later, at least --snapshots)")
    parser.add_argument("--visit-window-months", type=int, default=TrainConfig.visit_window_months,
                        help="the inspection target's rows: visits in [t, t + W months) of each month t")
    parser.add_argument("--blend-weight", type=_blend_weight, default=TrainConfig.blend_weight,
                        help="the blend's horizon-model weight, 'looked' or 'choose' (default: train's)")
