"""FineGrayModel: one ridge Fine-Gray model per cause on records, penalties by inner cross-validation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from carrisk.competing.fine_gray_model import FineGrayModel
from carrisk.competing.outcomes import CAUSES, derive_first_event
from carrisk.competing.regression import ridge_hazard_fit, subdistribution_cif
from carrisk.simulate import simulate_cohort


@pytest.fixture(scope="module")
def records():
    return simulate_cohort(n=300, seed=12).records


@pytest.fixture(scope="module")
def fitted(records):
    return FineGrayModel().fit(records)


def test_incidence_is_each_causes_ridge_fine_gray_fit(fitted, records):
    events = derive_first_event(records)
    time, code = events["time_days"].to_numpy(dtype=float), events["cause_code"].to_numpy(dtype=int)
    design = fitted.preprocess_.transform(records)
    predicted = fitted.predict_cif(records.iloc[:10])
    for k, cause in enumerate(CAUSES):
        fit = ridge_hazard_fit(time, code, design, k + 1, penalty=fitted.alpha_[cause], subdistribution=True)
        expected = subdistribution_cif(fit, design[:10], fitted.unique_times_)
        np.testing.assert_allclose(predicted[:, :, k], expected, atol=1e-12)
    assert set(fitted.alpha_) == set(CAUSES) and all(a in fitted.alphas for a in fitted.alpha_.values())
    assert fitted.alpha_["cd19neg"] == fitted.alphas[int(np.argmax(fitted.alpha_cv_["cd19neg"]))]


def test_estimator_contract_and_fixed_penalty(records):
    model = FineGrayModel(alpha=30.0)
    assert clone(model).get_params() == model.get_params() and not hasattr(model, "coef_")
    fitted = model.fit(records)
    assert fitted.alpha_ == dict.fromkeys(CAUSES, 30.0) and fitted.alpha_cv_ == {}
    assert fitted.manifest()["alpha_chosen"]["cd19neg"] == 30.0
    with pytest.raises(ValueError, match="alpha must be a number or 'cv'"):
        FineGrayModel(alpha="auto").fit(records)
