"""Default model: unknown levels marginalised by hand, exact SHAP of a linear-index model, interval contract."""

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sksurv.util import Surv

from carrisk import fit_efs_model, simulate_cohort, survival_target
from carrisk.explain import CoxExplainer
from carrisk.two_part import TwoPartSurvival
from carrisk.unseen import marginalisation_plan


@pytest.fixture(scope="module")
def default_model():
    cohort = simulate_cohort(300, seed=11)
    return fit_efs_model(cohort.records, survival_target(cohort.records), seed=0, n_bootstrap=10), cohort


def test_fit_efs_model_default_is_the_average_model_with_centred_refit_intervals(default_model):
    model, cohort = default_model
    assert model.model_name == "average"
    np.testing.assert_allclose(model.pipeline[-1].weights_, [0.5, 0.5])
    assert "1/10 " in model.metadata["interval_method"]
    assert model.metadata["interval_bootstrap"] == {"method": "centred", "penalty_divisor": 10.0, "refits": 10}
    assert model.metadata["tuning"]["scoring"].startswith("proper scores")
    pred = model.predict_efs(cohort.records.head(20), top=0)
    assert np.all(pred["efs_6mo_lo"] <= pred["efs_6mo"]) and np.all(pred["efs_6mo"] <= pred["efs_6mo_hi"])
    assert (pred["efs_6mo_hi"] - pred["efs_6mo_lo"]).mean() > 0.01
    # the centred interval contains the point by construction: predict_efs never has to move it
    design = model.pipeline[:-1].transform(cohort.records.head(20))
    times = np.array([182.625])
    point = model.pipeline[-1].predict_survival_matrix(design, times)
    lo, hi = model._intervals(design, times, point, None)
    assert np.all(lo < point) and np.all(point < hi)


def test_unknown_blinatumomab_response_is_the_training_share_weighted_average(default_model):
    model, cohort = default_model
    counts = model.level_counts["blina_status"]
    record = cohort.records.iloc[[3]].copy()
    record["blina_exposed"] = "yes"
    record["blina_response"] = "not evaluable"
    if counts.get("exposed_unknown", 0) >= 10:
        pytest.skip("this cohort has enough 'exposed_unknown' patients to model the level itself")
    out = model.predict_efs(record, top=3)
    responder, nonresponder = record.copy(), record.copy()
    responder["blina_response"], nonresponder["blina_response"] = "CR", "NR"
    share = counts["responder"] / (counts["responder"] + counts["nonresponder"])
    by_hand = share * model.predict_efs(responder, top=0)["efs_6mo"][0]
    by_hand += (1 - share) * model.predict_efs(nonresponder, top=0)["efs_6mo"][0]
    assert out["efs_6mo"][0] == pytest.approx(by_hand, rel=1e-10)
    assert "exposed_unknown" in out["assumptions"][0] and "responder" in out["assumptions"][0]
    assert model.predict_efs(responder, top=0)["assumptions"][0] == ""


def test_marginalised_shap_values_add_up_to_the_mixture(default_model):
    model, cohort = default_model
    record = cohort.records.iloc[[5]].copy().assign(blina_exposed="yes", blina_response="not evaluable")
    expanded, weights, _ = marginalisation_plan(record, model.features.categorize(record), model.level_counts)
    assert expanded.shape[0] == 3 and weights.shape == (1, 3)  # the record itself (weight 0) and two variants
    result = model.explain(expanded)
    mixed = np.asarray(weights @ result.values)[0]
    efs = model.predict_efs(record, top=0)["efs_6mo"][0]
    assert result.base_values + mixed.sum() == pytest.approx(efs, abs=1e-12)
    explained = model.explain(record)  # explain marginalises like predict_efs
    assert explained.predictions[0] == pytest.approx(efs, abs=1e-12)
    np.testing.assert_allclose(explained.values[0], mixed, atol=1e-12)


def _brute_force_shapley(value, players):
    """Shapley values by the definition: weighted marginal contributions over every coalition."""
    n = len(players)
    phi = np.zeros(n)
    for i in range(n):
        others = [p for p in range(n) if p != i]
        for size in range(n):
            for coalition in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                phi[i] += weight * (value(set(coalition) | {i}) - value(set(coalition)))
    return phi


def test_two_part_exact_shap_equals_the_shapley_definition():
    rng = np.random.default_rng(0)
    n = 400
    X = rng.normal(size=(n, 3))
    cr = rng.random(n) < 1 / (1 + np.exp(-(1.0 - X[:, 0])))
    after = 28 + rng.exponential(300 * np.exp(-0.7 * X[:, 1]))
    time = np.where(cr, np.minimum(after, 800.0), 28.0)
    y = Surv.from_arrays(np.where(cr, after <= 800.0, True), time)
    model = TwoPartSurvival(cr_C=1.0, post_alpha=0.01).fit(X, y)
    background = X[:25]
    explainer = CoxExplainer(model, background)
    x = X[30:31]
    result = explainer.shap_values(x, output="survival", times=200.0)

    def value(coalition):
        mixed = background.copy()
        for j in coalition:
            mixed[:, j] = x[0, j]
        return model.predict_survival_matrix(mixed, np.array([200.0]))[:, 0].mean()

    np.testing.assert_allclose(result.values[0], _brute_force_shapley(value, range(3)), atol=1e-12)
    assert result.base_values + result.values.sum() == pytest.approx(model.predict_survival_matrix(x, [200.0])[0, 0])
    with pytest.raises(ValueError, match="2 linear indices"):
        explainer.shap_values(x)  # no single linear predictor to explain


def test_an_unseen_level_without_a_defensible_mixture_is_named_in_the_assumptions(default_model):
    model, cohort = default_model
    record = cohort.records.iloc[[2]].copy().assign(cd19_expression="negative")
    if "negative" in model.features.categorize(cohort.records)["cd19"].to_numpy():
        pytest.skip("the training cohort has CD19-negative patients")
    out = model.predict_efs(record, top=0)
    note = "cd19 'negative' was not seen in training: scored as the reference level 'bright'"
    assert note in out["assumptions"][0]
    with pytest.warns(UserWarning, match=note) as caught:  # explain has no assumptions column: it warns instead
        model.explain(record)
    assert not [w for w in caught if "encoded as the reference level" in str(w.message)]


def test_prediction_names_unseen_levels_without_a_misleading_encoder_warning():
    import warnings

    import pandas as pd

    from carrisk import load_default_model

    model = load_default_model()
    record = pd.read_csv(Path(__file__).resolve().parents[1] / "carrisk" / "data" / "example_patients.csv").iloc[[0]]
    record = record.assign(blina_exposed="unknown", blina_response=None)  # never seen in training
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "encoded as the reference level" would be false here
        table = model.predict_efs(record, top=1)
        explained = model.explain(record)
    assert "averaged over" in table["assumptions"].iloc[0]
    assert explained.predictions[0] == pytest.approx(table["efs_6mo"].iloc[0], abs=1e-12)


def _unknown_response_records(cohort):
    """Five patients of the cohort, made blinatumomab-exposed with the response not evaluable."""
    records = cohort.records.iloc[:5].copy()
    records["blina_exposed"] = "yes"
    records["blina_response"] = "not evaluable"
    return records


def test_predict_survival_marginalises_unknown_levels_as_predict_efs_does(default_model):
    """evaluate, update and calibration read predict_survival: it must give what predict_efs gives."""
    model, cohort = default_model
    if model.level_counts["blina_status"].get("exposed_unknown", 0) >= 10:
        pytest.skip("this cohort has enough 'exposed_unknown' patients to model the level itself")
    records = pd.concat([_unknown_response_records(cohort), cohort.records.iloc[5:10]])
    times = [182.625, 365.25]
    table = model.predict_efs(records, times, top=0)
    np.testing.assert_allclose(model.predict_survival(records, times), table[["efs_6mo", "efs_12mo"]], rtol=1e-12)
    # and it is not the raw pipeline's prediction (which scores the rare level by its own shrunken coefficient)
    raw = model.pipeline[-1].predict_survival_matrix(model.pipeline[:-1].transform(records.iloc[:5]), times)
    assert np.abs(model.predict_survival(records.iloc[:5], times) - raw).max() > 1e-4


def test_cross_validation_scores_the_marginalised_prediction():
    """A fold's out-of-fold EFS of an unknown-response patient is the training-share mixture of that fold."""
    from carrisk.models import make_pipeline
    from carrisk.tuning import final_pipeline
    from carrisk.unseen import level_counts
    from carrisk.validation import FoldTask, _run_fold

    cohort = simulate_cohort(240, seed=3)
    records = cohort.records.copy()
    records.loc[records.index[:5], ["blina_exposed", "blina_response"]] = ["yes", "not evaluable"]
    # nothing else unknown about them, so the mixture is over the blinatumomab response alone
    records.loc[records.index[:5], ["cd19_expression", "kmt2a_status"]] = ["bright", "not rearranged"]
    y = survival_target(records)
    train, test = np.arange(40, 240), np.arange(0, 40)
    estimator = make_pipeline("coxnet_cv", random_state=0)
    horizons = {"6mo": 182.625}
    result = _run_fold(FoldTask("coxnet_cv", 0, 0, train, test), estimator, records, y, horizons, 700.0)
    fitted = final_pipeline(estimator.fit(records.iloc[train], y[train]))
    counts = level_counts(fitted.named_steps["features"].categorize(records.iloc[train]))
    blina = counts["blina_status"]
    assert blina.get("exposed_unknown", 0) < 10  # rare in training: marginalised
    share = blina["responder"] / (blina["responder"] + blina["nonresponder"])
    by_hand = []
    for response in ("CR", "NR"):
        variant = records.iloc[:5].copy()
        variant["blina_response"] = response
        by_hand.append(fitted[-1].predict_survival_matrix(fitted[:-1].transform(variant), np.array([182.625]))[:, 0])
    mixture = share * by_hand[0] + (1 - share) * by_hand[1]
    np.testing.assert_allclose(result["predicted_efs"]["6mo"][:5], mixture, rtol=1e-10)


def test_a_marginalised_patients_interval_spans_the_intervals_of_its_candidate_levels(default_model):
    """The true EFS is that of one candidate level, not their average: the interval must reach both."""
    model, cohort = default_model
    if model.level_counts["blina_status"].get("exposed_unknown", 0) >= 10:
        pytest.skip("this cohort has enough 'exposed_unknown' patients to model the level itself")
    record = _unknown_response_records(cohort).iloc[[0]]
    record[["cd19_expression", "kmt2a_status"]] = ["bright", "not rearranged"]
    out = model.predict_efs(record, top=0)
    variants = []
    for response in ("CR", "NR"):
        variant = record.copy()
        variant["blina_response"] = response
        variants.append(model.predict_efs(variant, top=0))
    for h in ("6mo", "12mo"):
        assert out[f"efs_{h}_lo"][0] == pytest.approx(min(v[f"efs_{h}_lo"][0] for v in variants), rel=1e-12)
        assert out[f"efs_{h}_hi"][0] == pytest.approx(max(v[f"efs_{h}_hi"][0] for v in variants), rel=1e-12)
        assert out[f"efs_{h}_lo"][0] < out[f"efs_{h}"][0] < out[f"efs_{h}_hi"][0]


def test_mixture_interval_leaves_out_candidates_under_the_weight_floor():
    from scipy import sparse

    from carrisk.unseen import mixture_interval

    # patient 0 is one row; patient 1 mixes rows 1-3, row 3 with weight 0.01 (< 2.5 %)
    weights = sparse.csr_matrix(np.array([[1.0, 0, 0, 0], [0, 0.6, 0.39, 0.01]]))
    lo, hi = np.array([0.2, 0.5, 0.3, 0.0]), np.array([0.4, 0.7, 0.45, 0.1])
    out_lo, out_hi = mixture_interval(weights, lo, hi)
    np.testing.assert_array_equal(out_lo, [0.2, 0.3])
    np.testing.assert_array_equal(out_hi, [0.4, 0.7])
