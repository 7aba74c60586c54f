"""The promotion comparison: AUC and capture at 10 % must each be at least the champion's; ties pass."""

from __future__ import annotations

import pytest

from models.registry import at_least_as_good

CHAMPION = {"auc": 0.80, "capture_10": 0.40, "rows": 1000.0}


@pytest.mark.parametrize(("auc", "capture", "promoted"), [
    (0.81, 0.41, True),    # better on both
    (0.80, 0.40, True),    # tie on both
    (0.80, 0.41, True),    # tie on AUC, better capture
    (0.81, 0.40, True),    # better AUC, tie on capture
    (0.81, 0.39, False),   # better AUC but worse capture: "and", not "or"
    (0.79, 0.41, False),   # better capture but worse AUC
    (0.7999, 0.40, False),  # AUC a hair below
    (0.80, 0.3999, False),  # capture a hair below
])
def test_promotion_needs_auc_and_capture_each_at_least_the_champions(
        auc: float, capture: float, promoted: bool) -> None:
    assert at_least_as_good({"auc": auc, "capture_10": capture, "rows": 1000.0}, CHAMPION) is promoted
