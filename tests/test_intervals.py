"""Infinitesimal-jackknife variance and its empirical-Bayes calibration: known answers and invariants."""

import numpy as np
import pytest

from carrisk import intervals
from carrisk.intervals import (
    fit_variance_prior,
    half_forest_noise,
    infinitesimal_jackknife_variance,
    little_bags_variance,
    objective_bayes_debias,
    reference_rows,
    variance_prior,
)


def bagged_means(y: np.ndarray, n_trees: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bag the sample mean of each column of y: in-bag counts and per-'tree' means."""
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    inbag = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_trees)], axis=1)
    per_tree = inbag.T @ y / n  # (B, m)
    return inbag, per_tree


def test_ij_of_a_bagged_mean_is_the_variance_of_the_mean():
    # For the bagged sample mean, V_IJ -> sum_i (y_i - ybar)^2 / n^2, the plug-in variance of the mean.
    rng = np.random.default_rng(1)
    y = rng.normal(size=(60, 5)) * np.array([1.0, 2.0, 0.5, 3.0, 1.5])
    inbag, per_tree = bagged_means(y, n_trees=4000, seed=2)
    plug_in = ((y - y.mean(axis=0)) ** 2).sum(axis=0) / len(y) ** 2
    corrected = infinitesimal_jackknife_variance(per_tree, inbag)
    np.testing.assert_allclose(corrected, plug_in, rtol=0.1)
    plain = infinitesimal_jackknife_variance(per_tree, inbag, bias_correct=False)
    assert np.all(plain > corrected)  # the uncorrected estimate carries the Monte-Carlo bias


def test_ij_known_answer_on_four_trees():
    inbag = np.array([[2, 0, 1, 1], [0, 2, 1, 1]])
    per_tree = np.array([[1.0], [3.0], [2.0], [2.0]])
    # Cov_b(N_b1, t_b) = mean((1, -1, 0, 0) * (-1, 1, 0, 0)) = -0.5; Cov_b(N_b2, t_b) = 0.5
    np.testing.assert_allclose(infinitesimal_jackknife_variance(per_tree, inbag, bias_correct=False), [0.5])
    # bias: n * mean_i Var_b(N_bi) * mean_b (t_b - mean t)^2 / B = 2 * 0.5 * 0.5 / 4
    np.testing.assert_allclose(infinitesimal_jackknife_variance(per_tree, inbag), [0.375])


def test_ij_in_column_blocks_equals_the_one_matrix_product(monkeypatch):
    # Large training sets compute the (n_train x targets) covariance in blocks of columns; same numbers.
    rng = np.random.default_rng(11)
    y = rng.normal(size=(50, 7))
    inbag, per_tree = bagged_means(y, n_trees=40, seed=12)
    centred = inbag - inbag.mean(axis=1, keepdims=True)
    direct = ((centred @ (per_tree - per_tree.mean(axis=0)) / 40) ** 2).sum(axis=0)
    monkeypatch.setattr(intervals, "_IJ_BLOCK_CELLS", 50 * 3)  # blocks of 3 columns: 3 + 3 + 1
    np.testing.assert_allclose(infinitesimal_jackknife_variance(per_tree, inbag, bias_correct=False), direct)


def test_reference_rows_keep_small_sets_and_subsample_large_ones_reproducibly():
    np.testing.assert_array_equal(reference_rows(1500, seed=3), np.arange(1500))
    rows = reference_rows(100_000, seed=3)
    assert rows.size == intervals.MAX_REFERENCE == 2000
    assert np.all(np.diff(rows) > 0) and rows[-1] < 100_000  # distinct, sorted, in range
    np.testing.assert_array_equal(rows, reference_rows(100_000, seed=3))
    assert not np.array_equal(rows, reference_rows(100_000, seed=4))


def test_few_trees_give_negative_corrected_estimates_that_calibration_repairs():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(200, 300)) * rng.uniform(0.5, 2.0, size=300)
    inbag, per_tree = bagged_means(y, n_trees=25, seed=4)  # B << n: very noisy
    corrected = infinitesimal_jackknife_variance(per_tree, inbag)
    assert (corrected <= 0).any()
    prior = variance_prior(per_tree, inbag, seed=0)
    calibrated = prior.posterior_mean(corrected)
    assert np.all(calibrated > 0)
    truth = ((y - y.mean(axis=0)) ** 2).sum(axis=0) / len(y) ** 2
    # shrinkage towards the typical variance beats the raw noisy estimate
    assert np.mean((calibrated - truth) ** 2) < np.mean((corrected - truth) ** 2)


def test_posterior_mean_is_monotone_and_follows_precise_estimates():
    rng = np.random.default_rng(5)
    estimates = rng.gamma(4.0, 0.25, size=400)
    prior = fit_variance_prior(estimates, sigma=0.01)
    grid = np.linspace(0.3, 2.0, 20)
    posterior = prior.posterior_mean(grid)
    assert np.all(np.diff(posterior) > 0)
    np.testing.assert_allclose(posterior, grid, atol=0.05)  # little noise: little shrinkage
    noisy = fit_variance_prior(estimates, sigma=2.0).posterior_mean(grid)
    assert np.ptp(noisy) < np.ptp(posterior)  # much noise: strong shrinkage towards the prior


def test_half_forest_noise_is_zero_without_tree_variation():
    inbag = np.ones((10, 8), dtype=int)
    per_tree = np.ones((8, 3))
    assert half_forest_noise(per_tree, inbag) == pytest.approx(0.0)
    assert variance_prior(per_tree, inbag) is None


def _grf_debias(var_between: float, group_noise: float, num_good_groups: float) -> float:
    """grf's ObjectiveBayesDebiaser::debias, line by line (core/src/prediction/ObjectiveBayesDebiaser.cpp)."""
    import math

    initial_estimate = var_between - group_noise
    initial_se = max(var_between, group_noise) * math.sqrt(2.0 / num_good_groups)
    if abs(initial_se) < 1.0e-10:
        return 0.0
    ratio = initial_estimate / initial_se
    numerator = math.exp(-ratio * ratio / 2) / math.sqrt(2 * math.pi)
    denominator = 0.5 * math.erfc(-ratio / math.sqrt(2))
    return initial_estimate + initial_se * numerator / denominator


def test_little_bags_known_answer_on_two_groups_of_two_trees():
    # column 0: t = 1, 3 | 2, 6: mean 3, rho = -2, 0 | -1, 3; group means -1, 1 -> var_between 1;
    # var_total (4 + 0 + 1 + 9) / 4 = 3.5; group_noise (3.5 - 1) / (2 - 1) = 2.5; S = -1.5, se = 2.5 * sqrt(2 / 2),
    # ratio -0.6: 1.53756... (positive although var_between - group_noise < 0).
    # column 1: constant trees -> 0. column 2: groups far apart -> close to var_between - group_noise.
    per_tree = np.array([[1.0, 0.5, 0.0], [3.0, 0.5, 0.2], [2.0, 0.5, 10.0], [6.0, 0.5, 10.2]])
    got = little_bags_variance(per_tree, 2)
    assert got[0] == pytest.approx(_grf_debias(1.0, 2.5, 2), rel=1e-12)
    assert got[0] == pytest.approx(1.537565, abs=1e-5)
    assert got[1] == 0.0
    # column 2: mean 5.1, rho = -5.1, -4.9 | 4.9, 5.1; group means -5, 5 -> var_between 25; var_total
    # (26.01 + 24.01 + 24.01 + 26.01) / 4 = 25.01; group_noise 0.01 -> S = 24.99, se = 25, ratio 0.9996
    assert got[2] == pytest.approx(_grf_debias(25.0, 0.01, 2), rel=1e-9)
    direct = objective_bayes_debias(np.array([1.0, 25.0]), np.array([2.5, 0.01]), 2)
    np.testing.assert_allclose(direct, [got[0], got[2]], rtol=1e-12)


def test_little_bags_groups_of_three_equal_the_formula():
    rng = np.random.default_rng(5)
    per_tree = rng.normal(size=(12, 4))
    rho = per_tree - per_tree.mean(axis=0)
    for j in range(4):
        groups = rho[:, j].reshape(4, 3)
        vb = float((groups.mean(axis=1) ** 2).mean())
        vt = float((rho[:, j] ** 2).mean())
        assert little_bags_variance(per_tree, 3)[j] == pytest.approx(_grf_debias(vb, (vt - vb) / 2, 4), rel=1e-10)
    with pytest.raises(ValueError, match="group_size"):
        little_bags_variance(per_tree, 5)
    with pytest.raises(ValueError, match="group_size"):
        little_bags_variance(per_tree, 1)


def test_little_bags_of_half_sample_means_estimate_the_variance_of_the_mean():
    # Trees = the mean of their group's half-sample plus tree-level noise (the trees' own randomness). The
    # half-sample mean's variance over half-samples is the plug-in variance of the full-sample mean,
    # sum_i (y_i - ybar)^2 / n^2 (times n / (n - 1)); the within-group noise is removed by the debiasing.
    rng = np.random.default_rng(3)
    n, groups, size = 60, 3000, 2
    y = rng.normal(size=(n, 3)) * np.array([1.0, 2.0, 0.5])
    per_tree = np.empty((groups * size, 3))
    for g in range(groups):
        half = rng.choice(n, n // 2, replace=False)
        per_tree[g * size : (g + 1) * size] = y[half].mean(axis=0) + rng.normal(size=(size, 3)) * 0.3
    plug_in = ((y - y.mean(axis=0)) ** 2).sum(axis=0) / n**2 * n / (n - 1)
    np.testing.assert_allclose(little_bags_variance(per_tree, size), plug_in, rtol=0.1)
