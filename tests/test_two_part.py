"""Two-part EFS model, deviance-tuned Cox, penalty weights: known answers and reference cross-checks."""

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import Surv

from carrisk.models import make_pipeline, survival_matrix
from carrisk.penalized import CoxnetCV, PenaltyWeights, cox_partial_log_likelihood
from carrisk.two_part import TwoPartSurvival


def _cox_data(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    beta = np.array([0.8, -0.5, 0.0])
    time = rng.exponential(1 / np.exp(X @ beta)) * 100
    censor = rng.uniform(0, 150, n)
    event = time <= censor
    return X, Surv.from_arrays(event, np.minimum(time, censor))


def _two_part_data(n: int = 600, seed: int = 1):
    """One binary covariate: CR 80 % vs 50 %; after CR an exponential hazard, doubled by the covariate."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n)
    cr = rng.random(n) < np.where(group == 1, 0.5, 0.8)
    after = 28 + rng.exponential(np.where(group == 1, 200.0, 400.0))
    censor = rng.uniform(100, 900, n)
    time = np.where(cr, np.minimum(after, censor), 28.0)
    event = np.where(cr, after <= censor, True)
    return group[:, None].astype(float), Surv.from_arrays(event, time), cr


def test_partial_log_likelihood_matches_lifelines_at_its_maximum():
    X, y = _cox_data()
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(T=y["time"], E=y["event"])
    fitted = CoxPHFitter().fit(frame, "T", "E")
    ours = cox_partial_log_likelihood(X @ fitted.params_.to_numpy(), y["event"], y["time"])
    assert ours == pytest.approx(fitted.log_likelihood_, rel=1e-8)


def test_partial_log_likelihood_breslow_ties_by_hand():
    # times 1, 1, 2 (events), 3 (censored); eta = 0, log 2, 0, 0
    eta = np.array([0.0, np.log(2.0), 0.0, 0.0])
    event = np.array([True, True, True, False])
    time = np.array([1.0, 1.0, 2.0, 3.0])
    by_hand = (0 - np.log(5.0)) + (np.log(2.0) - np.log(5.0)) + (0 - np.log(2.0))
    assert cox_partial_log_likelihood(eta, event, time) == pytest.approx(by_hand)


def test_coxnet_cv_at_a_tiny_penalty_is_the_cox_model():
    X, y = _cox_data()
    ours = CoxnetCV(alpha=1e-6, l1_ratio=0.5).fit(X, y)
    reference = CoxPHSurvivalAnalysis(ties="breslow").fit(X, y)
    np.testing.assert_allclose(ours.coef_, reference.coef_, atol=2e-3)
    times = np.array([20.0, 50.0, 100.0])
    expected = np.array([[f(t) for t in times] for f in reference.predict_survival_function(X[:5])])
    np.testing.assert_allclose(ours.predict_survival_matrix(X[:5], times), expected, atol=2e-3)


def test_coxnet_cv_keeps_the_penalty_with_the_smallest_cross_validated_deviance():
    X, y = _cox_data()
    model = CoxnetCV(cv=4).fit(X, y)
    best = int(np.argmin(model.cv_deviance_))
    assert model.alpha_ == model.alphas_[best]
    assert abs(model.coef_[0]) > abs(model.coef_[2])  # the real effect survives, the null one is small
    one_se = CoxnetCV(cv=4, rule="1se").fit(X, y)
    assert one_se.alpha_ >= model.alpha_


def test_two_part_cr_probability_is_the_group_proportion_when_unpenalised():
    X, y, cr = _two_part_data()
    model = TwoPartSurvival(cr_C=1e8, post_alpha=1e-8).fit(X, y)
    p = model.predict_cr_probability(np.array([[0.0], [1.0]]))
    np.testing.assert_allclose(p, [cr[X[:, 0] == 0].mean(), cr[X[:, 0] == 1].mean()], atol=1e-4)
    curves = model.predict_survival_matrix(np.array([[0.0], [1.0]]), np.array([27.9, 28.0, 300.0]))
    np.testing.assert_allclose(curves[:, 0], 1.0)
    np.testing.assert_allclose(curves[:, 1], p, atol=1e-9)  # S(28) = p_CR: nobody relapses on day 28
    assert curves[1, 2] < curves[0, 2]


def test_two_part_equals_an_independent_logistic_times_cox_computation():
    X, y, _ = _two_part_data()
    X = np.column_stack([X, np.random.default_rng(3).normal(size=len(X))])
    model = TwoPartSurvival(cr_C=0.5, post_alpha=0.01).fit(X, y)
    event, time = y["event"], y["time"]
    no_cr = event & (time <= 28)
    after = time > 28
    logistic = LogisticRegression(C=0.5, max_iter=5000).fit(X, (~no_cr).astype(int))
    cox = CoxnetCV(alpha=0.01).fit(X[after], y[after])
    times = np.array([10.0, 100.0, 365.0])
    expected = logistic.predict_proba(X[:7])[:, 1][:, None] * cox.predict_survival_matrix(X[:7], times)
    expected[:, 0] = 1.0
    np.testing.assert_allclose(model.predict_survival_matrix(X[:7], times), expected, rtol=1e-4)  # two solvers
    assert model.unique_times_[0] == 28.0


def test_two_part_pipeline_clones_and_predicts_on_records():
    from carrisk import simulate_cohort, survival_target

    cohort = simulate_cohort(200, seed=3)
    y = survival_target(cohort.records)
    pipeline = make_pipeline("two_part").fit(cohort.records, y)
    curves = survival_matrix(pipeline, cohort.records, [0.0, 28.0, 182.625, 365.25])
    assert np.all(curves[:, 0] == 1.0)
    assert np.all(np.diff(curves, axis=1) <= 1e-12)
    refit = clone(pipeline).fit(cohort.records, y)
    np.testing.assert_allclose(survival_matrix(refit, cohort.records, [182.625]), curves[:, [2]])


def test_two_part_needs_both_outcomes():
    X = np.zeros((5, 1))
    y = Surv.from_arrays([True] * 5, [28.0] * 4 + [10.0])
    with pytest.raises(ValueError, match="two-part model needs"):
        TwoPartSurvival().fit(X, y)


def test_penalty_weights_scale_standardised_columns_by_name():
    frame = pd.DataFrame(
        {"blina_status_nonresponder": [0.0, 1.0, 0.0, 1.0], "sex_F": [1.0, 0.0, 1.0, 1.0], "x": [1.0, 2.0, 3.0, 4.0]}
    )
    out = PenaltyWeights().fit(frame).transform(frame)
    np.testing.assert_allclose(out[:, 0], 10 * np.array([-1.0, 1.0, -1.0, 1.0]))
    np.testing.assert_allclose(out[:, 1], 0.0)  # weight 0: left out
    np.testing.assert_allclose(out[:, 2], (frame["x"] - 2.5) / frame["x"].std(ddof=0))
    equal = PenaltyWeights({}).fit(frame).transform(frame)
    np.testing.assert_allclose(np.abs(equal[:, 0]), 1.0)


def test_prespecified_weights_leave_the_studys_efs_factors_unshrunk_in_the_default_pipeline():
    from carrisk import simulate_cohort, survival_target

    cohort = simulate_cohort(120, seed=3)
    pipeline = make_pipeline("two_part").fit(cohort.records, survival_target(cohort.records))
    scale = pipeline.named_steps["scale"]
    weight = dict(zip(scale.feature_names_in_, scale.column_weights_))
    named = ("blina_status_responder", "blina_status_nonresponder", "disease_burden_high", "cd19_dim_or_partial")
    assert [weight[c] for c in named] == [10.0] * 4
    assert weight["kmt2a_rearranged"] == weight["prior_hsct_any"] == 1.0


def test_cr_penalty_grid_extends_past_its_old_edge_when_cv_wants_more_shrinkage():
    # Columns scaled by 300 make the same ridge shrinkage need a C 300**2 times smaller: the CV optimum of the
    # unscaled problem (interior) moves far below the first grid's smallest C, 1e-3.
    X, y, _ = _two_part_data(n=600, seed=3)
    noise = np.random.default_rng(3).normal(size=(len(X), 6))
    design = np.column_stack([X, noise])
    unscaled = TwoPartSurvival().fit(design, y)
    scaled = TwoPartSurvival().fit(design * 300.0, y)
    assert scaled.cr_C_ < 1e-3 and unscaled.cr_C_ > 1e-3
    assert not scaled.cr_C_at_edge_ and not unscaled.cr_C_at_edge_
    assert scaled.cr_Cs_[0] < scaled.cr_C_ < scaled.cr_Cs_[-1]
    # the same shrinkage: the refitted probabilities agree, to the grid's resolution
    np.testing.assert_allclose(
        scaled.predict_cr_probability(design * 300.0), unscaled.predict_cr_probability(design), atol=0.02
    )


def test_cr_penalty_at_the_floor_is_recorded_as_an_edge():
    X, y, _ = _two_part_data(n=300, seed=4)
    noise = np.random.default_rng(4).normal(size=(len(X), 4)) * 1e6  # pure noise: CV wants C -> 0
    model = TwoPartSurvival().fit(noise, y)
    assert model.cr_C_ == pytest.approx(1e-9) and model.cr_C_at_edge_
    assert TwoPartSurvival(cr_C=0.5).fit(X, y).cr_C_at_edge_ is False
