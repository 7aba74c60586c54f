"""The feature families ``features.build`` loops over, in the order their columns are assembled.

Each family module declares ``FAMILY`` (``features.family``: its name, its event table, its build);
a new event table's family is that module and one line here. ``profile`` and ``associations`` are
built by ``features.build`` itself, from the population and from the assembled frame.
"""

from __future__ import annotations

from features import (
    commitments,
    complaints,
    inspections,
    licenses,
    lists,
    penalties,
    recalls,
    sampling,
    severity,
)
from features.family import Family

FAMILIES: tuple[Family, ...] = (
    inspections.FAMILY,
    sampling.FAMILY,
    penalties.FAMILY,
    recalls.FAMILY,
    complaints.FAMILY,
    licenses.FAMILY,
    severity.FAMILY,
    lists.FAMILY,
    commitments.FAMILY,
)
