"""Tests for carrisk.explain: exact TreeSHAP for survival forests, Cox SHAP, aggregation and plots."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shap
from sksurv.datasets import load_gbsg2
from sksurv.ensemble import RandomSurvivalForest
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.preprocessing import OneHotEncoder
from sksurv.util import Surv

import carrisk
from carrisk import explain
from carrisk.explain import CoxExplainer, ForestExplainer, ShapResult, _kernels, cox

HORIZONS_DAYS = [365.25, 730.5]
ATOL = 1e-6


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def gbsg2() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = load_gbsg2()
    return OneHotEncoder().fit_transform(X), y


@pytest.fixture(scope="module")
def forest(gbsg2) -> RandomSurvivalForest:
    X, y = gbsg2
    return RandomSurvivalForest(n_estimators=30, min_samples_leaf=15, random_state=0, n_jobs=1).fit(X, y)


@pytest.fixture(scope="module")
def patients(gbsg2) -> pd.DataFrame:
    return gbsg2[0].iloc[::7]


@pytest.fixture(scope="module")
def background(gbsg2) -> pd.DataFrame:
    return gbsg2[0].sample(40, random_state=1)


@pytest.fixture(scope="module", params=["tree_path_dependent", "interventional"])
def forest_explainer(request, forest, background) -> ForestExplainer:
    return ForestExplainer(forest, background=background, feature_perturbation=request.param)


def _synthetic(n: int, n_features: int, seed: int, missing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    X[:, -1] = rng.integers(0, 2, n)
    time = rng.exponential(100.0 * np.exp(-X[:, 0] - 0.5 * X[:, 1]))
    censor = rng.exponential(150.0, n)
    X[rng.random(X.shape) < missing] = np.nan
    return X, Surv.from_arrays(time <= censor, np.minimum(time, censor))


@pytest.fixture(scope="module")
def small_forest() -> tuple[RandomSurvivalForest, np.ndarray]:
    X, y = _synthetic(300, 4, seed=0)
    return RandomSurvivalForest(n_estimators=5, min_samples_leaf=10, random_state=0).fit(X, y), X


def _survival_at(forest, X, horizons) -> np.ndarray:
    return np.array([[fn(t) for t in horizons] for fn in forest.predict_survival_function(X)])


# ------------------------------------------------------------------------------------------------ forest
def test_risk_shap_is_additive_and_reproduces_forest_predict(forest_explainer, forest, patients):
    result = forest_explainer.shap_values(patients)
    assert result.values.shape == (len(patients), patients.shape[1])
    np.testing.assert_allclose(result.predictions, forest.predict(patients), rtol=0, atol=ATOL)
    np.testing.assert_allclose(result.base_values + result.values.sum(axis=1), forest.predict(patients), atol=ATOL)


def test_survival_shap_at_two_horizons_is_additive(forest_explainer, forest, patients):
    result = forest_explainer.shap_values(patients, output="survival", times=HORIZONS_DAYS)
    expected = _survival_at(forest, patients, HORIZONS_DAYS)
    assert result.values.shape == (len(patients), patients.shape[1], 2)
    np.testing.assert_allclose(result.predictions, expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(result.base_values + result.values.sum(axis=1), expected, rtol=0, atol=ATOL)


def test_scalar_horizon_drops_the_time_axis(forest_explainer, patients):
    result = forest_explainer.shap_values(patients, output="survival", times=HORIZONS_DAYS[0])
    assert result.values.shape == patients.shape
    assert np.ndim(result.base_values) == 0
    assert result.additivity_error() < ATOL


def test_whole_curve_matches_survival_function_at_every_grid_time(forest_explainer, forest, patients):
    result = forest_explainer.shap_values(patients, output="survival")
    curves = forest.predict_survival_function(patients, return_array=True)
    np.testing.assert_array_equal(result.times, forest.unique_times_)
    np.testing.assert_allclose(result.predictions, curves, rtol=0, atol=ATOL)
    np.testing.assert_allclose(result.base_values + result.values.sum(axis=1), curves, rtol=0, atol=ATOL)


def test_curve_slice_equals_single_horizon_explanation(forest_explainer, patients):
    curve = forest_explainer.shap_values(patients, output="survival")
    t = float(curve.times[20])
    single = forest_explainer.shap_values(patients, output="survival", times=t)
    np.testing.assert_allclose(curve.select_time(t).values, single.values, atol=1e-12)


def test_cumulative_hazard_shap_is_additive(forest_explainer, forest, patients):
    result = forest_explainer.shap_values(patients, output="cumulative_hazard", times=HORIZONS_DAYS)
    idx = np.searchsorted(forest.unique_times_, HORIZONS_DAYS, side="right") - 1
    expected = forest.predict_cumulative_hazard_function(patients, return_array=True)[:, idx]
    np.testing.assert_allclose(result.base_values + result.values.sum(axis=1), expected, rtol=0, atol=ATOL)


def test_path_dependent_equals_shap_tree_explainer_on_converted_trees(forest, patients):
    explainer = ForestExplainer(forest)
    ours = explainer.shap_values(patients, output="survival", times=HORIZONS_DAYS)
    tree_explainer = shap.TreeExplainer(explainer.to_shap_model("survival", HORIZONS_DAYS))
    theirs = tree_explainer.shap_values(patients.to_numpy(np.float32).astype(np.float64))
    np.testing.assert_allclose(ours.values, theirs, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.base_values, tree_explainer.expected_value, rtol=0, atol=1e-10)


def _naive_path_dependent_shap(explainer: ForestExplainer, x: np.ndarray) -> np.ndarray:
    """Reference: Shapley values of the cover-weighted conditional expectation, by subset enumeration."""
    model = explainer.to_shap_model("risk")
    p = x.size

    def expectation(tree, node, present):
        if tree["children_left"][node] < 0:
            return tree["values"][node, 0]
        left, right = tree["children_left"][node], tree["children_right"][node]
        f = tree["features"][node]
        if f in present:
            return expectation(tree, left if x[f] <= tree["thresholds"][node] else right, present)
        cover = tree["node_sample_weight"]
        return (
            cover[left] * expectation(tree, left, present) + cover[right] * expectation(tree, right, present)
        ) / cover[node]

    def value(present):
        return sum(expectation(tree, 0, present) for tree in model["trees"])

    phi = np.zeros(p)
    for i in range(p):
        others = [j for j in range(p) if j != i]
        for size in range(p):
            weight = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
            for subset in itertools.combinations(others, size):
                phi[i] += weight * (value({*subset, i}) - value(set(subset)))
    return phi


def test_path_dependent_equals_naive_subset_enumeration(small_forest):
    forest, X = small_forest
    explainer = ForestExplainer(forest)
    rows = X[:5].astype(np.float32).astype(np.float64)
    ours = explainer.shap_values(rows).values
    naive = np.array([_naive_path_dependent_shap(explainer, x) for x in rows])
    np.testing.assert_allclose(ours, naive, rtol=0, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("output", ["risk", "survival"])
def test_interventional_equals_shap_exact_explainer(small_forest, output):
    forest, X = small_forest
    background, rows = X[:25], X[100:130]
    horizon = 50.0
    column = np.searchsorted(forest.unique_times_, horizon, side="right") - 1
    if output == "risk":
        model_fn = forest.predict
    else:

        def model_fn(Z):
            return forest.predict_survival_function(Z, return_array=True)[:, column]

    masker = shap.maskers.Independent(background, max_samples=len(background))
    reference = shap.ExactExplainer(model_fn, masker)(rows)
    explainer = ForestExplainer(forest, background=background, feature_perturbation="interventional")
    ours = explainer.shap_values(rows, output=output, times=None if output == "risk" else horizon)
    np.testing.assert_allclose(ours.values, reference.values, rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours.base_values, reference.base_values[0], rtol=0, atol=ATOL)


def test_missing_values_follow_the_trees_default_direction():
    X, y = _synthetic(300, 4, seed=3, missing=0.15)
    forest = RandomSurvivalForest(n_estimators=5, min_samples_leaf=10, random_state=0).fit(X, y)
    background, rows = X[:25], X[50:80]
    assert np.isnan(rows).any()
    ours = ForestExplainer(forest, background=background, feature_perturbation="interventional").shap_values(rows)
    masker = shap.maskers.Independent(background, max_samples=len(background))
    reference = shap.ExactExplainer(forest.predict, masker)(rows)
    np.testing.assert_allclose(ours.values, reference.values, rtol=0, atol=ATOL)
    path_dependent = ForestExplainer(forest).shap_values(rows)
    np.testing.assert_allclose(path_dependent.predictions, forest.predict(rows), rtol=0, atol=ATOL)
    assert path_dependent.additivity_error() < ATOL


def test_tree_walk_with_fewer_quadrature_points_on_short_paths_equals_per_leaf_reference():
    from tests._treeshap_reference import reference_path_dependent_shap

    X, y = _synthetic(300, 8, seed=11)
    forest = RandomSurvivalForest(n_estimators=4, min_samples_leaf=2, max_features=3, random_state=2).fit(X, y)
    explainer = ForestExplainer(forest)
    flat = explainer._flat
    m = np.diff(flat.leaf_ptr)
    leaf_nodes = np.flatnonzero(flat.left < 0)
    path_features = _kernels._node_path_features(flat.roots, flat.left, flat.right, flat.feature, 8)
    np.testing.assert_array_equal(path_features[leaf_nodes], m[flat.node_leaf[leaf_nodes]])
    leaf_order = flat.node_order[flat.left < 0][np.argsort(flat.node_leaf[flat.left < 0])]
    assert np.all(leaf_order >= np.maximum(1, (m + 1) // 2))  # each leaf: at least ceil(m / 2) points (exact)
    internal = np.flatnonzero(flat.left >= 0)
    children = np.concatenate([flat.left[internal], flat.right[internal]])
    parents = np.concatenate([internal, internal])
    assert np.all(flat.node_order[parents] >= flat.node_order[children])  # enough points for every leaf below
    assert np.unique(leaf_order).size >= 3
    assert np.any(flat.node_order[children] < flat.node_order[parents])  # the rule shrinks: product recomputed
    rows = X[:30]
    for output in ("risk", "survival"):
        ours = explainer.shap_values(rows, output=output)
        reference = reference_path_dependent_shap(explainer, rows, output)
        np.testing.assert_allclose(ours.values, reference.reshape(ours.values.shape), rtol=0, atol=1e-12)
        assert ours.additivity_error() < 1e-12


def test_tree_walk_equals_per_leaf_reference_on_long_paths_with_every_pass_pattern():
    # leaves with up to 12 path features: rules of 1 to 7+ points, so the leaf weights take every pass pattern
    # (2, 4, 4 + 2, 4 + 4 points) and the per-feature coefficients are reused and recomputed
    from tests._treeshap_reference import reference_path_dependent_shap

    X, y = _synthetic(500, 14, seed=3, missing=0.05)
    forest = RandomSurvivalForest(n_estimators=3, min_samples_leaf=1, max_features=None, random_state=4).fit(X, y)
    explainer = ForestExplainer(forest)
    flat = explainer._flat
    leaf_points = flat.node_order[flat.left < 0]
    assert {1, 2, 3, 4, 5, 6} <= set(leaf_points.tolist()) and flat.max_path_features >= 12
    rows = X[:20]
    for output in ("survival", "cumulative_hazard"):
        ours = explainer.shap_values(rows, output=output)
        np.testing.assert_allclose(ours.values, reference_path_dependent_shap(explainer, rows, output), atol=1e-12)
        assert ours.additivity_error() < 1e-12


def test_leaf_steps_are_the_nonzero_differences_after_the_first_columns_common_value(small_forest):
    forest, _ = small_forest
    explainer = ForestExplainer(forest)
    values = explainer.leaf_values("survival")
    shift = 1.0 / len(explainer.trees)  # no event at the first time in most leaves
    assert np.mean(values[:, 0] == shift) > 0.5
    ptr, cols, steps = explainer._increments(values)
    dense = np.diff(values, axis=1, prepend=shift)
    rows, expected_cols = np.nonzero(dense)
    np.testing.assert_array_equal(ptr, np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(values)))]))
    np.testing.assert_array_equal(cols, expected_cols)
    np.testing.assert_array_equal(steps, dense[rows, expected_cols])
    assert ptr[-1] < np.count_nonzero(np.diff(values, axis=1, prepend=0.0))  # fewer steps than without the shift


def test_tree_walk_equals_per_leaf_reference_with_missing_values_and_repeated_splits():
    from tests._treeshap_reference import reference_path_dependent_shap

    X, y = _synthetic(400, 3, seed=5, missing=0.1)  # 3 features, deep trees: features repeat along paths
    forest = RandomSurvivalForest(n_estimators=6, min_samples_leaf=3, random_state=1).fit(X, y)
    explainer = ForestExplainer(forest)
    assert max(np.bincount(explainer._flat.rec_leaf)) == 3 and explainer._flat.max_path_features == 3
    rows = X[:40]
    assert np.isnan(rows).any()
    ours = explainer.shap_values(rows, output="survival")
    np.testing.assert_allclose(ours.values, reference_path_dependent_shap(explainer, rows, "survival"), atol=1e-12)
    assert ours.additivity_error() < 1e-12


def test_float32_threshold_ties_are_split_as_in_sklearn(forest, gbsg2):
    X = gbsg2[0]
    explainer = ForestExplainer(forest)
    tree = forest.estimators_[0].tree_
    node = int(np.flatnonzero(tree.children_left >= 0)[0])
    # inputs that sit exactly on, just below and just above a split threshold, in float32
    rows = pd.concat([X.iloc[:1]] * 3, ignore_index=True)
    threshold = np.float32(tree.threshold[node])
    rows.iloc[:, tree.feature[node]] = [threshold, np.nextafter(threshold, -np.inf), np.nextafter(threshold, np.inf)]
    result = explainer.shap_values(rows)
    np.testing.assert_allclose(result.predictions, forest.predict(rows), rtol=0, atol=ATOL)
    assert result.additivity_error() < ATOL


def test_low_memory_forest_explains_risk_and_refuses_survival(gbsg2, patients):
    X, y = gbsg2
    forest = RandomSurvivalForest(n_estimators=10, min_samples_leaf=15, low_memory=True, random_state=0).fit(X, y)
    explainer = ForestExplainer(forest)
    result = explainer.shap_values(patients)
    np.testing.assert_allclose(result.base_values + result.values.sum(axis=1), forest.predict(patients), atol=ATOL)
    with pytest.raises(ValueError, match="low_memory"):
        explainer.shap_values(patients, output="survival", times=365.0)


def test_invalid_requests_raise_with_a_fix(forest, patients):
    with pytest.raises(ValueError, match="background"):
        ForestExplainer(forest, feature_perturbation="interventional")
    explainer = ForestExplainer(forest)
    with pytest.raises(ValueError, match="last training time"):
        explainer.shap_values(patients, output="survival", times=1e6)
    with pytest.raises(ValueError, match="output"):
        explainer.shap_values(patients, output="hazard")


# ------------------------------------------------------------------------------------------------ Cox
@pytest.fixture(scope="module")
def cox_data() -> tuple[pd.DataFrame, np.ndarray, CoxPHSurvivalAnalysis]:
    X, y = _synthetic(200, 4, seed=5)
    frame = pd.DataFrame(X, columns=["age_years", "marrow_blasts_pct", "ldh", "prior_transplant"])
    return frame, y, CoxPHSurvivalAnalysis().fit(frame, y)


def test_cox_linear_shap_is_coef_times_centred_x(cox_data):
    X, _, model = cox_data
    background = X.iloc[:50]
    result = CoxExplainer(model.coef_, background).shap_values(X.iloc[50:60])
    expected = model.coef_ * (X.iloc[50:60].to_numpy() - background.to_numpy().mean(axis=0))
    np.testing.assert_array_equal(result.values, expected)
    assert result.base_values == pytest.approx(model.coef_ @ background.to_numpy().mean(axis=0), abs=1e-12)


def test_cox_linear_shap_from_model_reproduces_predict(cox_data):
    X, _, model = cox_data
    result = CoxExplainer(model, X.iloc[:50]).shap_values(X.iloc[50:60])
    np.testing.assert_allclose(result.predictions, model.predict(X.iloc[50:60]), atol=1e-10)
    assert result.additivity_error() < 1e-10


def test_cox_survival_shap_is_additive_and_equals_exact_explainer(cox_data):
    X, _, model = cox_data
    background, rows = X.iloc[:30].to_numpy(), X.iloc[60:75]
    horizon = 60.0
    explainer = CoxExplainer(model, X.iloc[:30], baseline_survival=model)
    result = explainer.shap_values(rows, output="survival", times=horizon)
    expected = np.array([fn(horizon) for fn in model.predict_survival_function(rows)])
    np.testing.assert_allclose(result.predictions, expected, rtol=0, atol=ATOL)
    assert result.additivity_error() < ATOL
    assert result.exact

    def survival_at_horizon(Z):
        return np.array([fn(horizon) for fn in model.predict_survival_function(pd.DataFrame(Z, columns=X.columns))])

    reference = shap.ExactExplainer(
        survival_at_horizon, shap.maskers.Independent(background, max_samples=len(background))
    )(rows.to_numpy())
    np.testing.assert_allclose(result.values, reference.values, rtol=0, atol=ATOL)


def test_cox_baseline_tuple_matches_model_baseline(cox_data):
    X, _, model = cox_data
    s0 = model.baseline_survival_
    from_tuple = CoxExplainer(model.coef_, X.iloc[:30], baseline_survival=(s0.x, s0.y))
    from_model = CoxExplainer(model.coef_, X.iloc[:30], baseline_survival=model)
    a = from_tuple.shap_values(X.iloc[40:50], output="survival", times=[30.0, 90.0])
    b = from_model.shap_values(X.iloc[40:50], output="survival", times=[30.0, 90.0])
    np.testing.assert_allclose(a.values, b.values, atol=1e-10)


def _naive_group_shapley(coef, background, x, horizon_s0, players):
    """Reference: interventional Shapley values over column groups, by subset enumeration."""
    q = len(players)

    def value(present):
        columns = [c for g in present for c in players[g]]
        hybrid = background.copy()
        hybrid[:, columns] = x[columns]
        return np.mean(horizon_s0 ** np.exp(hybrid @ coef))

    phi = np.zeros(q)
    for g in range(q):
        others = [h for h in range(q) if h != g]
        for size in range(q):
            weight = math.factorial(size) * math.factorial(q - size - 1) / math.factorial(q)
            for subset in itertools.combinations(others, size):
                phi[g] += weight * (value({*subset, g}) - value(set(subset)))
    return phi


def test_cox_grouped_survival_shap_moves_one_hot_columns_together():
    rng = np.random.default_rng(7)
    status = rng.integers(0, 3, 60)
    X = pd.DataFrame(
        {
            "age_years": rng.normal(size=60),
            "blina_status_responder": (status == 1).astype(float),
            "blina_status_nonresponder": (status == 2).astype(float),
            "ldh": rng.normal(size=60),
        }
    )
    coef = np.array([0.4, -0.8, 0.9, 0.3])
    groups = {"blina_status_responder": "blina_status", "blina_status_nonresponder": "blina_status"}
    s0 = (np.array([0.0, 100.0, 200.0]), np.array([1.0, 0.8, 0.6]))
    explainer = CoxExplainer(coef, X.iloc[:20], baseline_survival=s0, groups=groups)
    result = explainer.shap_values(X.iloc[20:26], output="survival", times=150.0)
    assert result.feature_names == ["age_years", "blina_status", "ldh"]
    assert result.additivity_error() < ATOL
    players = [[0], [1, 2], [3]]
    naive = np.array(
        [_naive_group_shapley(coef, X.iloc[:20].to_numpy(), x, 0.8, players) for x in X.iloc[20:26].to_numpy()]
    )
    np.testing.assert_allclose(result.values, naive, rtol=0, atol=1e-10)
    assert set(result.data["blina_status"]) <= {"responder", "nonresponder", "reference"}


def test_cox_permutation_fallback_is_additive_and_flagged_approximate(cox_data, monkeypatch):
    X, _, model = cox_data
    exact = CoxExplainer(model, X.iloc[:30], baseline_survival=model).shap_values(
        X.iloc[40:45], output="survival", times=60.0
    )
    monkeypatch.setattr(cox, "MAX_EXACT_GROUPS", 2)
    sampled = CoxExplainer(model, X.iloc[:30], baseline_survival=model, n_permutations=200, random_state=0).shap_values(
        X.iloc[40:45], output="survival", times=60.0
    )
    assert not sampled.exact
    assert sampled.additivity_error() < ATOL
    np.testing.assert_allclose(sampled.values, exact.values, atol=0.02)


def _all_coalitions_shap(contrib_x, contrib_bg, survival):
    """Reference: every patient's 2^q coalitions against the whole background (the kernel before pruning)."""
    q = contrib_x.shape[1]
    masks = np.arange(2**q)
    in_coalition = ((masks[:, None] >> np.arange(q)) & 1).astype(float)
    sizes = in_coalition.sum(axis=1).astype(int)
    bg_part = np.einsum("cq,mqk->cmk", 1.0 - in_coalition, contrib_bg)
    phi = []
    for x in contrib_x:
        value = survival(np.einsum("cq,qk->ck", in_coalition, x)[:, None, :] + bg_part).mean(axis=1)
        row = []
        for g in range(q):
            without = masks[(masks >> g) & 1 == 0]
            weights = [math.factorial(s) * math.factorial(q - s - 1) / math.factorial(q) for s in sizes[without]]
            row.append(np.asarray(weights) @ (value[without | (1 << g)] - value[without]))
        phi.append(row)
    return np.asarray(phi)


def _two_index_survival(eta):
    """A two-index survival function shaped like the two-part model's: P(CR) times a Cox survival."""
    log_s0 = np.log(np.array([0.9, 0.7]))
    return (1 / (1 + np.exp(-eta[..., 0])))[..., None] * np.exp(np.exp(eta[..., 1])[..., None] * log_s0)


@pytest.mark.parametrize("block", [1 << 16, 1])
def test_pruned_index_game_equals_enumerating_every_coalition(monkeypatch, block):
    # categorical players (few levels: many null players per pair) and continuous ones, two indices, two times
    rng = np.random.default_rng(3)
    n, m, q = 7, 25, 6
    levels = rng.normal(size=(q, 3, 2))
    contrib_bg = levels[np.arange(q), rng.integers(0, 3, (m, q))]
    contrib_x = levels[np.arange(q), rng.integers(0, 3, (n, q))]
    contrib_x[:, 0] = rng.normal(size=(n, 2))  # a continuous player differs from every background patient
    contrib_x[-1] = contrib_bg[0]  # a patient equal to a background patient (a pair with no differing player)
    monkeypatch.setattr(cox, "_COALITION_BLOCK", block)
    fast = cox._exact_index_game_shap(contrib_x, contrib_bg, _two_index_survival)
    np.testing.assert_allclose(fast, _all_coalitions_shap(contrib_x, contrib_bg, _two_index_survival), atol=1e-14)
    totals = _two_index_survival(contrib_x.sum(axis=1)) - _two_index_survival(contrib_bg.sum(axis=1)).mean(axis=0)
    np.testing.assert_allclose(fast.sum(axis=1), totals, atol=1e-14)


def test_shipped_two_part_model_reasons_equal_every_coalition_enumeration():
    from carrisk.bundle import load_model
    from carrisk.schema import read_records
    from carrisk.shipped import default_model_path

    model = load_model(default_model_path())
    explainer = model.explainer()
    if not isinstance(explainer, CoxExplainer):
        pytest.skip("the shipped model is not a linear-index model")
    records = read_records(Path(carrisk.__file__).parent / "data" / "example_patients.csv").head(3)
    design = model._design(records)
    captured = {}

    def spy(contrib_x, contrib_bg, survival):
        captured["args"] = (contrib_x, contrib_bg, survival)
        return pruned(contrib_x, contrib_bg, survival)

    pruned = cox._exact_index_game_shap
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cox, "_exact_index_game_shap", spy)
        result = explainer.shap_values(design, output="survival", times=[182.625, 365.25])
    reference = _all_coalitions_shap(*captured["args"])
    assert reference.shape[1] >= 10  # the shipped model's players: the pruning matters here
    np.testing.assert_allclose(pruned(*captured["args"]), reference, atol=1e-13)
    assert result.exact and result.additivity_error() < 1e-12
    np.testing.assert_allclose(result.predictions, model.estimator.predict_survival_matrix(design, [182.625, 365.25]))


# ------------------------------------------------------------------------------------------------ results
def _toy_result(with_time: bool = False) -> ShapResult:
    rng = np.random.default_rng(0)
    names = ["blina_status_responder", "blina_status_nonresponder", "age_years"]
    data = pd.DataFrame([[1.0, 0.0, 30.0], [0.0, 1.0, 12.0], [0.0, 0.0, 55.0]], columns=names)
    shape = (3, 3, 4) if with_time else (3, 3)
    values = rng.normal(size=shape)
    base = np.full(4, 0.7) if with_time else 0.7
    return ShapResult(
        values=values,
        base_values=base,
        predictions=base + values.sum(axis=1),
        feature_names=names,
        data=data,
        output="survival",
        times=np.array([30.0, 91.0, 182.625, 365.25]) if with_time else np.asarray(182.625),
    )


@pytest.mark.parametrize("with_time", [False, True])
def test_aggregated_totals_equal_column_totals(with_time):
    result = _toy_result(with_time)
    grouped = result.aggregate({"blina_status_responder": "blina_status", "blina_status_nonresponder": "blina_status"})
    assert grouped.feature_names == ["blina_status", "age_years"]
    np.testing.assert_array_equal(grouped.values.sum(axis=1), result.values.sum(axis=1))
    np.testing.assert_array_equal(grouped.values[:, 1], result.values[:, 2])
    assert list(grouped.data["blina_status"]) == ["responder", "nonresponder", "reference"]
    assert grouped.additivity_error() < 1e-12


def test_aggregate_on_forest_result_keeps_totals(forest, patients):
    result = ForestExplainer(forest).shap_values(patients, output="survival", times=HORIZONS_DAYS)
    grouped = result.aggregate({"tgrade=II": "tgrade", "tgrade=III": "tgrade"})
    assert grouped.values.shape[1] == result.values.shape[1] - 1
    np.testing.assert_allclose(grouped.values.sum(axis=1), result.values.sum(axis=1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("with_time", [False, True])
def test_to_frame_is_tidy(with_time):
    result = _toy_result(with_time)
    frame = result.to_frame()
    expected_columns = {"row", "feature", "value", "shap"} | ({"time"} if with_time else set())
    assert set(frame.columns) == expected_columns
    assert len(frame) == result.values.size
    per_row = result.values.sum(axis=tuple(range(1, result.values.ndim)))
    np.testing.assert_allclose(frame.groupby("row")["shap"].sum().to_numpy(), per_row)


# ------------------------------------------------------------------------------------------------ plots
def test_plots_write_non_empty_png_files(tmp_path, forest, patients):
    result = ForestExplainer(forest).shap_values(patients, output="survival", times=182.625)
    grouped = result.aggregate({"tgrade=II": "tgrade", "tgrade=III": "tgrade"})
    paths = [
        explain.plot_waterfall(grouped, 0, tmp_path / "waterfall.png", max_display=5),
        explain.plot_beeswarm(grouped, tmp_path / "beeswarm.png"),
        explain.plot_bar(grouped, tmp_path / "bar.png"),
        explain.plot_dependence(grouped, "age", tmp_path / "dependence_age.png"),
        explain.plot_dependence(grouped, "tgrade", tmp_path / "dependence_tgrade.png"),
    ]
    for path in paths:
        assert path.exists()
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temp files left


def test_waterfall_needs_a_single_horizon(tmp_path, forest, patients):
    result = ForestExplainer(forest).shap_values(patients, output="survival", times=HORIZONS_DAYS)
    with pytest.raises(ValueError, match="select_time"):
        explain.plot_waterfall(result, 0, tmp_path / "w.png")
    path = explain.plot_waterfall(result.select_time(HORIZONS_DAYS[0]), 0, tmp_path / "w.png")
    assert path.stat().st_size > 1000


def test_the_beeswarm_colour_scale_leaves_categories_grey_not_ranked_alphabetically():
    import pandas as pd

    from carrisk import load_default_model

    records = pd.read_csv(Path(carrisk.__file__).parent / "data" / "example_patients.csv")
    explanation = load_default_model().explain(records).to_explanation()
    names = list(explanation.feature_names)
    assert np.isnan(explanation.data[:, names.index("blina_status")]).all()  # categories: no order, no colour
    np.testing.assert_allclose(explanation.data[:, names.index("age_years")], records["age_years"].astype(float))
