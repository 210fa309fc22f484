"""Tuning by proper scores: held-out integrated Brier score and Cox deviance, recorded in the model metadata."""

import numpy as np
import pytest
from sksurv.metrics import integrated_brier_score

from carrisk.datasets import load_public_dataset, load_survival_data
from carrisk.penalized import cox_partial_log_likelihood
from carrisk.tuning import _deviance_scorer, _ibs_scorer, _RememberTarget, tuned_model, tuning_record


@pytest.fixture(scope="module")
def gbsg2():
    return load_survival_data(load_public_dataset("gbsg2"), time_col="time", event_col="event")


def _split(data):
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.records))
    return order[:450], order[450:]


def test_ibs_scorer_is_minus_scikit_survival_integrated_brier_score(gbsg2):
    from carrisk.models import make_pipeline

    train, test = _split(gbsg2)
    pipeline = _RememberTarget(make_pipeline("coxph", gbsg2.spec).steps).fit(gbsg2.records.iloc[train], gbsg2.y[train])
    test_time = gbsg2.y[test]["time"]
    lo, hi = np.quantile(test_time, [0.1, 0.8])
    times = np.linspace(lo, min(hi, 0.99 * gbsg2.y[train]["time"].max()), 20)
    surv = pipeline[-1].predict_survival_matrix(pipeline[:-1].transform(gbsg2.records.iloc[test]), times)
    expected = integrated_brier_score(gbsg2.y[train], gbsg2.y[test], surv, times)
    assert _ibs_scorer(pipeline, gbsg2.records.iloc[test], gbsg2.y[test]) == pytest.approx(-expected, rel=1e-12)


def test_deviance_scorer_is_the_held_out_partial_log_likelihood_per_event(gbsg2):
    from carrisk.models import make_pipeline

    train, test = _split(gbsg2)
    pipeline = make_pipeline("coxph", gbsg2.spec).fit(gbsg2.records.iloc[train], gbsg2.y[train])
    y = gbsg2.y[test]
    by_hand = cox_partial_log_likelihood(pipeline.predict(gbsg2.records.iloc[test]), y["event"], y["time"])
    assert _deviance_scorer(pipeline, gbsg2.records.iloc[test], y) == pytest.approx(by_hand / y["event"].sum())


@pytest.mark.parametrize("scoring", ["ibs", "deviance"])
def test_coxnet_tuned_by_a_proper_score_records_it(gbsg2, scoring):
    search = tuned_model("coxnet", gbsg2.spec, {"model__alpha_ratio": [0.5, 0.01]}, scoring=scoring)
    search.fit(gbsg2.records, gbsg2.y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert tuning_record(search, 3, scoring) == {"method": "inner cross-validation", "folds": 3, "scoring": scoring}


def test_deviance_is_refused_for_models_without_a_cox_linear_predictor(gbsg2):
    with pytest.raises(ValueError, match="applies to coxnet and coxph only"):
        tuned_model("rsf", gbsg2.spec, scoring="deviance")
    with pytest.raises(ValueError, match="scoring must be one of"):
        tuned_model("coxnet", gbsg2.spec, scoring="brier")
