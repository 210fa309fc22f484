"""Competing risks: how patients fail (no CR, CD19-positive or CD19-negative relapse, lineage switch, death).

- :mod:`carrisk.competing.outcomes`: the first event's cause from the record's outcome columns.
- :mod:`carrisk.competing.nonparametric`: Aalen-Johansen cumulative incidence with intervals, Gray's test.
"""

from carrisk.competing.nonparametric import CumulativeIncidence, GrayTest, aalen_johansen, gray_test
from carrisk.competing.outcomes import CAUSE_LABELS, CAUSES, cause_names, derive_first_event

__all__ = [
    "CAUSES",
    "CAUSE_LABELS",
    "CumulativeIncidence",
    "GrayTest",
    "aalen_johansen",
    "cause_names",
    "derive_first_event",
    "gray_test",
]
