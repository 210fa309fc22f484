"""Competing risks: how patients fail (no CR, CD19-positive or CD19-negative relapse, lineage switch, death).

- :mod:`carrisk.competing.outcomes`: the first event's cause from the record's outcome columns.
- :mod:`carrisk.competing.nonparametric`: Aalen-Johansen cumulative incidence with intervals, Gray's test.
- :mod:`carrisk.competing.regression`: cause-specific Cox and Fine-Gray regression (also ridge, with the penalty
  chosen by cross-validated partial likelihood).
- :mod:`carrisk.competing.study`: the cohort analysis that ``carrisk reproduce`` reports.
- :mod:`carrisk.competing.prediction`: per-patient cause incidences consistent with an EFS prediction.
- :mod:`carrisk.competing.metrics`: Wolbers' cause-specific concordance, Brier score of a cumulative incidence.
- :mod:`carrisk.competing.fine_gray_model`: ridge Fine-Gray models of every cause on records.
- :mod:`carrisk.competing.forest`: competing-risks random survival forest (Aalen-Johansen leaves).
- :mod:`carrisk.competing.validation`: cross-validation of these models (``carrisk cv --causes``).
"""

from carrisk.competing.fine_gray_model import FineGrayModel
from carrisk.competing.forest import CompetingRiskForest
from carrisk.competing.metrics import cause_concordance, cif_brier_score
from carrisk.competing.nonparametric import CumulativeIncidence, GrayTest, aalen_johansen, gray_test
from carrisk.competing.outcomes import CAUSE_LABELS, CAUSES, cause_names, derive_first_event
from carrisk.competing.prediction import CauseSpecificModel, predict_causes
from carrisk.competing.regression import (
    HazardRegression,
    cause_specific_cox,
    cross_validated_penalty,
    fine_gray,
    ridge_hazard_fit,
)
from carrisk.competing.study import CompetingRisksReport, competing_risks_analysis

__all__ = [
    "CAUSES",
    "CAUSE_LABELS",
    "CauseSpecificModel",
    "CompetingRiskForest",
    "CompetingRisksReport",
    "CumulativeIncidence",
    "FineGrayModel",
    "GrayTest",
    "HazardRegression",
    "aalen_johansen",
    "cause_concordance",
    "cause_names",
    "cause_specific_cox",
    "cif_brier_score",
    "competing_risks_analysis",
    "cross_validated_penalty",
    "derive_first_event",
    "fine_gray",
    "gray_test",
    "predict_causes",
    "ridge_hazard_fit",
]
