"""The histogram forest engine (carrisk's numba kernel behind scikit-survival's tree API): splits against a brute-force
log-rank search, leaf curves, routing, determinism, SHAP, in-bag counts."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from carrisk._hist_kernel import apply_binned, bootstrap_counts
from carrisk._safe_load import restricted_load
from carrisk.explain import ForestExplainer
from carrisk.hist_forest import (
    HistForest,
    apply_bins,
    fit_bin_edges,
    resolve_max_features,
    resolve_n_bootstrap,
    split_time_bins,
)
from carrisk.intervals import inbag_counts, infinitesimal_jackknife_variance
from carrisk.models import AUTO_HIST_MIN_ROWS, AUTO_TIME_GRID_THRESHOLD, SurvivalForest, coarsen_times


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
    forest = SurvivalForest(
        n_estimators=12, min_samples_leaf=10, engine="hist", ci_group_size=1, n_jobs=1, random_state=3
    ).fit(X, y)
    return forest, X, y


def test_explainer_reads_the_trees_as_the_forest_predicts(fitted):
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


def test_fitted_hist_forest_loads_through_the_allow_list(fitted, tmp_path):
    import joblib

    forest, X, _ = fitted
    assert b"comprisk" not in pickle.dumps(forest)
    path = tmp_path / "forest.joblib"
    joblib.dump(forest, path, compress=3)
    with open(path, "rb") as handle:
        again = restricted_load(handle, str(path))
    np.testing.assert_array_equal(again.predict(X[:20]), forest.predict(X[:20]))
    np.testing.assert_array_equal(again.forest_.inbag_counts_, forest.forest_.inbag_counts_)


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


# -- the kernel against independent references --------------------------------------------------------------------


def _tied_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Few-level, binary, rounded, duplicated and constant features; integer times (ties); some rows censored
    before the first event time (never at risk)."""
    rng = np.random.default_rng(seed)
    level = rng.integers(0, 4, n)
    X = np.column_stack([level, rng.integers(0, 2, n), rng.normal(size=n).round(1), level, np.ones(n)]).astype(float)
    time = rng.integers(1, 15, n).astype(float) - 0.3 * level
    event = rng.random(n) < 0.6
    early = rng.choice(n, 4, replace=False)
    time[early], event[early] = 0.1, False
    return X, event, time


def _log_rank(w, e, ts, left, n_times):
    """The split statistic by its definition: weighted at-risk (exit bin >= t) and events (exit bin == t) per coarse
    time, over the times with at least 2 at risk; None when the variance is ~0."""
    t = np.arange(n_times)[:, None]
    at_risk, events = w * (ts >= t), w * e * (ts == t)
    y, yl = at_risk.sum(axis=1), at_risk[:, left].sum(axis=1)
    d, dl = events.sum(axis=1), events[:, left].sum(axis=1)
    ok = y >= 2
    y, yl, d, dl = y[ok], yl[ok], d[ok], dl[ok]
    u = np.sum(dl - d * yl / y)
    v = np.sum(d * yl * (y - yl) * (y - d) / (y * y * (y - 1)))
    return u * u / v if v > 1e-12 else None


def _candidate_stats(Xb, w, e, ts, min_leaf, weights_rule, n_times):
    """Every admissible split of a node (bins <= b go left) and its statistic, by exhaustive search."""
    out = {}
    for f in range(Xb.shape[0]):
        for b in np.unique(Xb[f])[:-1]:
            left = Xb[f] <= b
            size_left = w[left].sum() if weights_rule else left.sum()
            size_right = w[~left].sum() if weights_rule else (~left).sum()
            if size_left >= min_leaf and size_right >= min_leaf:
                stat = _log_rank(w, e, ts, left, n_times)
                if stat is not None:
                    out[(f, int(b))] = stat
    return out


@pytest.mark.parametrize("search", ["sort", "histogram"])
@pytest.mark.parametrize(("min_leaf", "leaf_size"), [(1, "rows"), (4, "rows"), (9, "rows"), (4, "weights")])
def test_every_split_is_the_best_of_a_brute_force_log_rank_search(min_leaf, leaf_size, search, monkeypatch):
    if search == "histogram":  # every node through the (bin, time) histogram path instead of the counting sort
        monkeypatch.setattr("carrisk.hist_forest.HIST_MIN_ROWS", 0)
    X, event, time = _tied_data(120, min_leaf)
    n_times = 4
    forest = HistForest.fit(X, event, time, n_estimators=3, min_samples_leaf=min_leaf, min_samples_split=2,
                            max_features=None, max_samples=None, n_jobs=1, random_state=min_leaf,
                            n_split_times=n_times, leaf_size=leaf_size)  # fmt: skip
    grid = np.unique(time[event])
    exit_index = np.searchsorted(grid, time, side="right") - 1
    ts = np.where(exit_index >= 0, split_time_bins(grid, n_times)[np.maximum(exit_index, 0)], -1)
    Xb = apply_bins(X, forest.bin_edges_)
    weights_rule = leaf_size == "weights"
    n_split = n_leaf_checked = 0
    for b, estimator in enumerate(forest.estimators_):
        tree = estimator.tree_
        rows = {0: np.flatnonzero(forest.inbag_counts_[:, b])}
        for node in range(tree.node_count):  # parents before children
            r = rows.pop(node)
            w, e = forest.inbag_counts_[r, b].astype(float), event[r].astype(float)
            assert tree.weighted_n_node_samples[node] == w.sum()
            stats = _candidate_stats(Xb[:, r], w, e, ts[r], min_leaf, weights_rule, n_times)
            if tree.children_left[node] >= 0:
                chosen = (int(tree.feature[node]), int(tree.split_bin[node]))
                best = max(stats.values())
                assert best > 0 and stats[chosen] >= best * (1 - 1e-9), (node, chosen, best)
                go_left = Xb[chosen[0], r] <= chosen[1]
                rows[tree.children_left[node]], rows[tree.children_right[node]] = r[go_left], r[~go_left]
                n_split += 1
            else:
                size = w.sum() if weights_rule else r.size
                if size >= 2 * min_leaf and e.any():  # could split: no split with a positive statistic exists
                    assert all(stat <= 1e-9 for stat in stats.values()), (node, max(stats.values()))
                    n_leaf_checked += 1
    assert n_split >= 9 and n_leaf_checked > 0


def test_leaf_curves_equal_kaplan_meier_and_nelson_aalen_of_the_weighted_in_bag_rows():
    X, event, time = _tied_data(200, 5)
    forest = HistForest.fit(X, event, time, n_estimators=4, min_samples_leaf=5, max_features="sqrt",
                            max_samples=None, n_jobs=1, random_state=1)  # fmt: skip
    grid = forest.unique_times_
    for b, estimator in enumerate(forest.estimators_):
        tree = estimator.tree_
        leaves = tree.apply(X)
        chf, survival = tree.leaf_curves()
        risk = tree.leaf_risk()
        for leaf in range(tree.n_leaves):
            w = forest.inbag_counts_[:, b] * (leaves == leaf)
            at_risk = np.array([(w * (time >= g)).sum() for g in grid], dtype=float)
            events = np.array([(w * event * (time == g)).sum() for g in grid], dtype=float)
            hazard = np.divide(events, at_risk, out=np.zeros_like(events), where=at_risk > 0)
            np.testing.assert_allclose(chf[leaf], np.cumsum(hazard), rtol=0, atol=1e-12)
            np.testing.assert_allclose(survival[leaf], np.cumprod(1 - hazard), rtol=0, atol=1e-12)
            np.testing.assert_allclose(risk[leaf], np.cumsum(hazard).sum(), rtol=1e-12)
            cells = slice(tree.leaf_ptr[leaf], tree.leaf_ptr[leaf + 1])
            assert tree.cell_time[cells].size <= np.count_nonzero(w)  # sparse: at most one cell per row
        assert tree.cell_time.dtype == np.uint16


def test_threshold_routing_equals_the_kernel_bin_routing():
    X, y = _data(500, 6)
    forest = SurvivalForest(n_estimators=5, min_samples_leaf=5, engine="hist", n_jobs=1, random_state=0).fit(X, y)
    edges = forest.forest_.bin_edges_
    finite = edges[np.isfinite(edges)]
    X_new, _ = _data(300, 7)
    # values exactly on bin edges and one float below/above them, plus values outside the training range
    X_new[:100] = np.resize(finite, (100, X.shape[1]))
    X_new[100:200] = np.nextafter(np.resize(finite, (100, X.shape[1])), -np.inf)
    X_new[200:220] = np.nextafter(np.resize(finite, (20, X.shape[1])), np.inf)
    X_new[220:230] *= 100
    for rows in (X, X_new):
        rows64 = rows.astype(np.float32).astype(np.float64)
        Xb = apply_bins(rows64, edges)
        for estimator in forest.forest_.estimators_:
            tree = estimator.tree_
            nodes = apply_binned(Xb, np.arange(len(rows)), tree.children_left, tree.children_right, tree.feature,
                                 tree.split_bin)  # fmt: skip
            np.testing.assert_array_equal(tree.leaf_of_node[nodes], tree.apply(rows64))


def test_same_seed_gives_the_same_forest_with_one_or_two_threads():
    X, y = _data(700, 8)
    fits = [
        SurvivalForest(n_estimators=6, min_samples_leaf=5, engine="hist", n_jobs=jobs, random_state=11).fit(X, y)
        for jobs in (1, 2, 2)
    ]
    first = fits[0].forest_
    for other in (fits[1].forest_, fits[2].forest_):
        np.testing.assert_array_equal(other.inbag_counts_, first.inbag_counts_)
        np.testing.assert_array_equal(other.tree_seeds_, first.tree_seeds_)
        for a, b in zip(first.estimators_, other.estimators_, strict=True):
            for name, value in vars(a.tree_).items():
                np.testing.assert_array_equal(getattr(b.tree_, name), value)
    other_seed = SurvivalForest(n_estimators=6, min_samples_leaf=5, engine="hist", n_jobs=1, random_state=12)
    assert not np.array_equal(other_seed.fit(X, y).forest_.inbag_counts_, first.inbag_counts_)


def test_bootstrap_max_samples_and_max_depth():
    X, event, time = _tied_data(300, 9)
    common = dict(n_estimators=3, min_samples_leaf=3, max_features="sqrt", n_jobs=1, random_state=4)
    forest = HistForest.fit(X, event, time, max_samples=0.5, max_depth=3, **common)
    for b, estimator in enumerate(forest.estimators_):
        tree = estimator.tree_
        counts = bootstrap_counts(300, 150, forest.tree_seeds_[b])
        np.testing.assert_array_equal(forest.inbag_counts_[:, b], counts)
        assert tree.weighted_n_node_samples[0] == counts.sum() == resolve_n_bootstrap(0.5, 300)
        depth = np.zeros(tree.node_count, dtype=int)
        for node in np.flatnonzero(tree.children_left >= 0):
            depth[tree.children_left[node]] = depth[tree.children_right[node]] = depth[node] + 1
        assert depth.max() <= 3
    with pytest.raises(ValueError, match="max_samples"):
        HistForest.fit(X, event, time, max_samples=301, **common)
    with pytest.raises(ValueError, match="finite"):
        HistForest.fit(np.where(X > 0, np.nan, X), event, time, max_samples=None, **common)


def test_bin_edges_and_split_time_bins_known_answers():
    X = np.column_stack([np.repeat([0.0, 1.0, 3.0], 4), np.arange(12.0)])
    edges = fit_bin_edges(X, n_bins=4)
    np.testing.assert_array_equal(edges[0], [0.5, 2.0, np.inf])  # few values: midpoints
    np.testing.assert_allclose(edges[1], np.quantile(np.arange(12.0), [0.25, 0.5, 0.75]))  # many: quantiles
    np.testing.assert_array_equal(apply_bins(X, edges)[0], np.repeat([0, 1, 2], 4))
    np.testing.assert_array_equal(split_time_bins(np.arange(1.0, 21.0), 4), np.repeat([0, 1, 2, 3], 5))
    np.testing.assert_array_equal(split_time_bins(np.arange(3.0), 10), [0, 1, 2])


def test_auto_engine_uses_the_histogram_kernel_at_registry_size():
    assert SurvivalForest()._resolve_engine(AUTO_HIST_MIN_ROWS) == "hist"
    assert SurvivalForest()._resolve_engine(AUTO_HIST_MIN_ROWS - 1) == "sksurv"


def test_forest_saved_with_comprisk_trees_still_predicts_and_explains():
    """A HistForest pickled by carrisk versions that converted comprisk's trees (``_ConvertedTree``/``_TreeArrays``)."""
    comprisk = pytest.importorskip("comprisk")
    from carrisk.hist_forest import convert_tree, replay_inbag

    X, y = _data(400, 10)
    coarse, _ = coarsen_times(y["time"], y["event"], AUTO_TIME_GRID_THRESHOLD)
    X64 = X.astype(np.float32).astype(np.float64)
    model = comprisk.CompetingRiskForest(n_estimators=4, min_samples_leaf=10, max_features=2, samptype="swr",
                                         random_state=5, time_grid=200, n_jobs=1, splitrule="logrank", nsplit=0,
                                         split_ntime=10)  # fmt: skip
    model.fit(X64, coarse, y["event"].astype(np.int32))
    old = HistForest()
    old.estimators_ = [convert_tree(tree, model.bin_edges_) for tree in model.trees_]
    old.unique_times_ = np.asarray(model.unique_times_, dtype=float)
    old.is_event_time_ = np.ones(old.unique_times_.size, dtype=bool)
    old.n_features_in_ = X.shape[1]
    old.inbag_counts_ = replay_inbag(model, len(X))
    old.oob_prediction_ = None
    again = pickle.loads(pickle.dumps(old))
    X_new, _ = _data(50, 11)
    expected = model.predict_chf(X_new.astype(np.float32).astype(np.float64))[:, 0, :]
    np.testing.assert_allclose(again.predict_cumulative_hazard_function(X_new), expected, rtol=0, atol=1e-10)
    explainer = ForestExplainer(again)
    np.testing.assert_allclose(explainer.predict(X_new), again.predict(X_new), rtol=0, atol=1e-10)


def _fingerprint(forest: HistForest) -> str:
    import hashlib

    digest = hashlib.sha256(np.ascontiguousarray(forest.inbag_counts_).tobytes())
    for estimator in forest.estimators_:
        tree = estimator.tree_
        for arr in (tree.children_left, tree.children_right, tree.feature, tree.split_bin, tree.leaf_ptr,
                    tree.cell_time, tree.cell_exits, tree.cell_events):  # fmt: skip
            digest.update(np.ascontiguousarray(arr).astype(np.int64).tobytes())
    return digest.hexdigest()


def test_ci_group_size_one_is_the_bootstrap_forest_bit_for_bit():
    # the fingerprint of this forest computed with carrisk before ci_group_size existed (commit c1d5818)
    X, y = _data(400, 5)
    common = dict(n_estimators=4, min_samples_leaf=5, max_features="sqrt", max_samples=None, n_jobs=1, random_state=7)
    default = HistForest.fit(X, y["event"], y["time"], **common)
    explicit = HistForest.fit(X, y["event"], y["time"], ci_group_size=1, **common)
    before = "d5bd86b848a5dfbd1a6cf766df46871f16f1b5a6ae8aea0cced43c5d0a873eef"
    assert _fingerprint(default) == _fingerprint(explicit) == before
    assert default.ci_group_size_ == explicit.ci_group_size_ == 1


def test_ci_groups_share_half_samples_and_do_not_depend_on_threads():
    X, y = _data(301, 4)
    fits = [
        SurvivalForest(
            n_estimators=8, min_samples_leaf=5, engine="hist", n_jobs=jobs, random_state=2, ci_group_size=2
        ).fit(X, y)
        for jobs in (1, 2)
    ]
    forest = fits[0].forest_
    assert forest.ci_group_size_ == 2
    counts = forest.inbag_counts_
    assert set(np.unique(counts)) == {0, 1}
    np.testing.assert_array_equal(counts.sum(axis=0), 150)  # floor(301 / 2) distinct rows per tree
    for g in range(4):
        np.testing.assert_array_equal(counts[:, 2 * g], counts[:, 2 * g + 1])  # one half-sample per group
        assert forest.estimators_[2 * g].tree_.weighted_n_node_samples[0] == 150
        for h in range(g):
            assert not np.array_equal(counts[:, 2 * g], counts[:, 2 * h])
    # trees of a group differ (their own feature streams)
    assert any(
        not np.array_equal(forest.estimators_[2 * g].tree_.feature, forest.estimators_[2 * g + 1].tree_.feature)
        for g in range(4)
    )
    other = fits[1].forest_
    np.testing.assert_array_equal(other.inbag_counts_, counts)
    for a, b in zip(forest.estimators_, other.estimators_, strict=True):
        for name, value in vars(a.tree_).items():
            np.testing.assert_array_equal(getattr(b.tree_, name), value)
    X3 = np.asarray(X[:5], dtype=float)
    np.testing.assert_array_equal(fits[0].predict(X3), fits[1].predict(X3))


def test_ci_group_size_errors():
    X, y = _data(200, 1)
    with pytest.raises(ValueError, match="multiple of ci_group_size"):
        SurvivalForest(n_estimators=7, engine="hist", n_jobs=1, random_state=0, ci_group_size=2).fit(X, y)
    with pytest.raises(ValueError, match="needs engine='hist'"):
        SurvivalForest(n_estimators=8, engine="sksurv", n_jobs=1, random_state=0, ci_group_size=2).fit(X, y)
    with pytest.raises(ValueError, match="max_samples"):
        SurvivalForest(n_estimators=8, engine="hist", max_samples=0.5, random_state=0, ci_group_size=2).fit(X, y)
    with pytest.raises(ValueError, match="ci_group_size must be"):
        SurvivalForest(n_estimators=8, engine="hist", random_state=0, ci_group_size=0).fit(X, y)
    assert SurvivalForest(ci_group_size=2).get_params()["ci_group_size"] == 2


def test_auto_group_size_is_little_bags_on_the_hist_engine_only():
    X, y = _data(200, 1)
    common = dict(min_samples_leaf=5, n_jobs=1, random_state=0)
    assert SurvivalForest().get_params()["ci_group_size"] == "auto"
    cases = [
        (dict(engine="hist", n_estimators=8), 2),
        (dict(engine="hist", n_estimators=7), 1),  # odd: no pairs
        (dict(engine="hist", n_estimators=8, max_samples=0.5), 1),  # subsamples: no half-samples
        (dict(engine="sksurv", n_estimators=8), 1),
        (dict(engine="auto", n_estimators=8), 1),  # 200 rows: the exact engine
    ]
    for params, size in cases:
        forest = SurvivalForest(**params, **common).fit(X, y)
        assert forest.ci_group_size_ == size, params
        assert getattr(forest.forest_, "ci_group_size_", 1) == size, params
    with pytest.raises(ValueError, match="ci_group_size must be an integer >= 1 or 'auto', got 'pairs'"):
        SurvivalForest(n_estimators=8, engine="hist", ci_group_size="pairs", **common).fit(X, y)
