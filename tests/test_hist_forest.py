"""The histogram forest engine (comprisk behind scikit-survival's tree API): conversion, SHAP, in-bag counts."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from carrisk.explain import ForestExplainer
from carrisk.hist_forest import resolve_max_features
from carrisk.intervals import inbag_counts, infinitesimal_jackknife_variance
from carrisk.models import AUTO_HIST_MIN_ROWS, AUTO_TIME_GRID_THRESHOLD, SurvivalForest, coarsen_times

pytest.importorskip("comprisk")


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous, integer and binary features; log hazard 0.8 x0 - 0.6 x1 + 0.5 x2; ~40 % censored."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.standard_normal(n), rng.integers(0, 5, n), rng.integers(0, 2, n), rng.random((n, 2))])
    lp = 0.8 * X[:, 0] - 0.6 * X[:, 1] / 2 + 0.5 * X[:, 2]
    event_time = -np.log(rng.random(n)) / np.exp(lp) * 300
    censor = rng.uniform(0, 600, n)
    return X, Surv.from_arrays(event_time <= censor, np.minimum(event_time, censor))


@pytest.fixture(scope="module")
def fitted() -> tuple[SurvivalForest, np.ndarray, np.ndarray]:
    X, y = _data(600, 0)
    forest = SurvivalForest(n_estimators=12, min_samples_leaf=10, engine="hist", n_jobs=1, random_state=3).fit(X, y)
    return forest, X, y


def test_converted_trees_reproduce_comprisk_predictions(fitted):
    forest, X, _ = fitted
    X_new, _ = _data(200, 1)
    explainer = ForestExplainer(forest.forest_)
    np.testing.assert_allclose(explainer.predict(X_new), forest.predict(X_new), rtol=0, atol=1e-10)
    surv = forest.predict_survival_function(X_new, return_array=True)
    np.testing.assert_allclose(explainer.predict(X_new, "survival"), surv, rtol=0, atol=1e-12)
    chf = forest.forest_.predict_cumulative_hazard_function(X_new)
    np.testing.assert_allclose(explainer.predict(X_new, "cumulative_hazard"), chf, rtol=0, atol=1e-10)
    # rows exactly on a bin edge or a training value are routed the same way
    np.testing.assert_allclose(explainer.predict(X), forest.predict(X), rtol=0, atol=1e-10)


def test_leaf_curves_are_nelson_aalen_and_kaplan_meier_of_the_in_bag_rows_of_the_leaf(fitted):
    forest, X, y = fitted
    explainer = ForestExplainer(forest.forest_)
    leaves = explainer.apply(X)  # global leaf ids, tree by tree
    inbag = inbag_counts(forest.forest_, len(X))
    coarse, _ = coarsen_times(y["time"], y["event"], AUTO_TIME_GRID_THRESHOLD)
    grid = forest.unique_times_
    for b in (0, 7):
        tree = forest.forest_.estimators_[b].tree_
        first = explainer._tree_leaf_ptr[b]
        for node in np.flatnonzero(tree.leaf_of_node >= 0)[:5]:
            in_leaf = leaves[:, b] == first + np.searchsorted(np.flatnonzero(tree.children_left < 0), node)
            w = inbag[in_leaf, b].astype(float)
            t, e = coarse[in_leaf], y["event"][in_leaf]
            at_risk = np.array([(w * (t >= g)).sum() for g in grid])
            events = np.array([(w * e * (t == g)).sum() for g in grid])
            hazard = np.divide(events, at_risk, out=np.zeros_like(events), where=at_risk > 0)
            assert tree.weighted_n_node_samples[node] == w.sum() > 0
            np.testing.assert_allclose(tree.value[node, :, 0], np.cumsum(hazard), atol=1e-12)
            np.testing.assert_allclose(tree.value[node, :, 1], np.cumprod(1 - hazard), atol=1e-12)
        internal = np.flatnonzero(tree.children_left >= 0)
        covers = tree.weighted_n_node_samples
        assert covers[0] == len(X)
        np.testing.assert_array_equal(
            covers[internal], covers[tree.children_left[internal]] + covers[tree.children_right[internal]]
        )


@pytest.mark.parametrize("output", ["risk", "survival"])
def test_exact_shap_is_additive_on_hist_trees(fitted, output):
    forest, X, _ = fitted
    explainer = ForestExplainer(forest.forest_)
    result = explainer.shap_values(X[:25], output=output)
    assert result.additivity_error() < 1e-8
    prediction = forest.predict(X[:25]) if output == "risk" else forest.predict_survival_function(X[:25], True)
    total = result.base_values + result.values.sum(axis=1)
    np.testing.assert_allclose(total, prediction, rtol=0, atol=1e-8)


def test_interventional_shap_is_additive_on_hist_trees(fitted):
    forest, X, _ = fitted
    explainer = ForestExplainer(forest.forest_, background=X[:40], feature_perturbation="interventional")
    result = explainer.shap_values(X[50:60])
    total = result.base_values + result.values.sum(axis=1)
    np.testing.assert_allclose(total, forest.predict(X[50:60]), rtol=0, atol=1e-8)


def test_inbag_counts_feed_the_jackknife(fitted):
    forest, X, _ = fitted
    inbag = inbag_counts(forest.forest_, len(X))
    assert inbag.shape == (len(X), 12)
    np.testing.assert_array_equal(inbag.sum(axis=0), np.full(12, len(X)))
    # per-tree predictions from the converted leaves average to the forest prediction; IJ variance is finite
    explainer = ForestExplainer(forest.forest_)
    leaves = explainer.apply(X[:30])
    per_tree = (explainer.leaf_values("survival", [200.0])[leaves, 0] * 12).T  # (B, n)
    np.testing.assert_allclose(per_tree.mean(axis=0), explainer.predict(X[:30], "survival", 200.0), atol=1e-12)
    variance = infinitesimal_jackknife_variance(per_tree, inbag, bias_correct=False)
    assert np.all(np.isfinite(variance)) and np.all(variance > 0)
    with pytest.raises(ValueError, match="trained on 600 rows"):
        inbag_counts(forest.forest_, 599)


def test_hist_engine_learns_the_signal_and_agrees_with_the_exact_forest():
    X, y = _data(1500, 2)
    X_test, y_test = _data(1000, 3)
    params = dict(n_estimators=30, min_samples_leaf=15, n_jobs=1, random_state=0)
    c = {}
    for engine in ("hist", "sksurv"):
        risk = SurvivalForest(engine=engine, **params).fit(X, y).predict(X_test)
        c[engine] = concordance_index_censored(y_test["event"], y_test["time"], risk)[0]
    assert c["hist"] > 0.65
    assert abs(c["hist"] - c["sksurv"]) < 0.02


def test_engine_choice_and_errors():
    X, y = _data(300, 4)
    forest = SurvivalForest(n_estimators=3, random_state=0).fit(X, y)
    assert forest.engine == "auto" and forest.engine_ == "sksurv"  # small data keep the exact reference
    assert AUTO_HIST_MIN_ROWS > 1000
    assert clone(SurvivalForest(engine="hist")).get_params()["engine"] == "hist"
    with pytest.raises(ValueError, match="engine must be one of auto, sksurv, hist, got 'fast'"):
        SurvivalForest(engine="fast").fit(X, y)
    with pytest.raises(ValueError, match="low_memory=True applies to engine='sksurv' only"):
        SurvivalForest(engine="hist", low_memory=True).fit(X, y)


def test_oob_score_with_hist_engine():
    X, y = _data(400, 5)
    forest = SurvivalForest(n_estimators=20, engine="hist", oob_score=True, n_jobs=1, random_state=0).fit(X, y)
    assert forest.oob_prediction_.shape == (400,)
    assert 0.6 < forest.oob_score_ < 1


def test_fitted_hist_forest_pickles_without_comprisk_classes(fitted):
    forest, X, _ = fitted
    assert b"comprisk" not in pickle.dumps(forest)  # loads with carrisk's allow-list, without comprisk
    again = pickle.loads(pickle.dumps(forest))
    np.testing.assert_array_equal(again.predict(X[:20]), forest.predict(X[:20]))


def test_max_features_follows_scikit_learn():
    assert resolve_max_features("sqrt", 10) == 3  # comprisk's own rule gives 4
    assert resolve_max_features("log2", 10) == 3
    assert resolve_max_features(0.5, 10) == 5
    assert resolve_max_features(None, 7) == 7
    with pytest.raises(ValueError, match="max_features must be"):
        resolve_max_features("all", 10)


@pytest.mark.parametrize(
    ("output", "times"), [("survival", None), ("cumulative_hazard", [50.0, 200.0]), ("risk", None)]
)
def test_tree_walk_shap_equals_the_per_leaf_reference_on_hist_trees(fitted, output, times):
    from tests._treeshap_reference import reference_path_dependent_shap

    forest, X, _ = fitted
    explainer = ForestExplainer(forest.forest_)
    rows = X[:37]  # two full blocks of patients and a partial one
    ours = explainer.shap_values(rows, output=output, times=times)
    reference = reference_path_dependent_shap(explainer, rows, output, times)
    np.testing.assert_allclose(ours.values.reshape(reference.shape), reference, rtol=0, atol=1e-10)
    assert ours.additivity_error() < 1e-10
