"""The scikit-learn estimator contract, for the checks that apply to survival estimators and record transformers.

``parametrize_with_checks`` cannot run as a whole here: its checks fit on plain numeric ``y`` (survival models
need a structured event/time target) and on random numeric ``X`` (the feature builders need record columns with
clinical spellings). The construction checks below do apply and are run individually; fitting behaviour
(clone, pickling, Pipeline, refit forgets the first fit) is tested in test_features.py and test_models.py.
"""

import pytest
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from carrisk.features import (
    BlinatumomabStatus,
    CD19Expression,
    ClinicalFeatures,
    Covariates,
    DiseaseBurden,
    KMT2ARearrangement,
    PriorTransplant,
)
from carrisk.models import CoxPH, GradientBoostedSurvival, PenalizedCox, SurvivalForest
from carrisk.penalized import CoxnetCV, PenaltyWeights
from carrisk.two_part import TwoPartSurvival

ESTIMATORS = [
    BlinatumomabStatus(), DiseaseBurden(), CD19Expression(), KMT2ARearrangement(), PriorTransplant(), Covariates(),
    ClinicalFeatures(), SurvivalForest(), PenalizedCox(), CoxPH(), GradientBoostedSurvival(), CoxnetCV(),
    TwoPartSurvival(), PenaltyWeights(),
]  # fmt: skip


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize(
    "check",
    [check_no_attributes_set_in_init, check_get_params_invariance, check_set_params],
    ids=lambda c: c.__name__,
)
def test_construction_contract(estimator, check):
    check(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_parameters_default_constructible(estimator):
    check_parameters_default_constructible(type(estimator).__name__, estimator)


def test_refit_forgets_the_first_fit(example_records):
    builder = ClinicalFeatures().fit(example_records)
    first = list(builder.get_feature_names_out())
    subset = example_records[example_records["blina_exposed"].isin(["no", "N", "n"])]
    refit = builder.fit(subset)
    assert "blina_status_nonresponder" in first and "blina_status_nonresponder" not in refit.get_feature_names_out()
