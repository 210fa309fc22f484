"""Competing risks: how patients fail (no CR, CD19-positive or CD19-negative relapse, lineage switch, death).

- :mod:`carrisk.competing.outcomes`: the first event's cause from the record's outcome columns.
- :mod:`carrisk.competing.nonparametric`: Aalen-Johansen cumulative incidence with intervals, Gray's test.
- :mod:`carrisk.competing.regression`: cause-specific Cox and Fine-Gray regression.
- :mod:`carrisk.competing.study`: the cohort analysis that ``carrisk reproduce`` reports.
- :mod:`carrisk.competing.prediction`: per-patient cause incidences consistent with an EFS prediction.
- :mod:`carrisk.competing.metrics`: Wolbers' cause-specific concordance, Brier score of a cumulative incidence.
"""

from carrisk.competing.metrics import cause_concordance, cif_brier_score
from carrisk.competing.nonparametric import CumulativeIncidence, GrayTest, aalen_johansen, gray_test
from carrisk.competing.outcomes import CAUSE_LABELS, CAUSES, cause_names, derive_first_event
from carrisk.competing.prediction import CauseSpecificModel, predict_causes
from carrisk.competing.regression import HazardRegression, cause_specific_cox, fine_gray
from carrisk.competing.study import CompetingRisksReport, competing_risks_analysis

__all__ = [
    "CAUSES",
    "CAUSE_LABELS",
    "CauseSpecificModel",
    "CompetingRisksReport",
    "CumulativeIncidence",
    "GrayTest",
    "HazardRegression",
    "aalen_johansen",
    "cause_concordance",
    "cause_names",
    "cause_specific_cox",
    "cif_brier_score",
    "competing_risks_analysis",
    "derive_first_event",
    "fine_gray",
    "gray_test",
    "predict_causes",
]
