"""Confidence intervals for bagged-forest predictions: infinitesimal jackknife with empirical-Bayes calibration.

For a bagged prediction :math:`\\hat\\theta(x) = B^{-1}\\sum_b t_b(x)` the infinitesimal jackknife (IJ) estimates
its sampling variance as :math:`\\hat V_{IJ} = \\sum_i \\mathrm{Cov}_b(N_{bi}, t_b)^2`, with :math:`N_{bi}` the
number of times training row i is in tree b's bootstrap sample [1]. With a finite number of trees this estimate
is biased upwards by Monte-Carlo noise, about :math:`(n/B)\\,\\mathrm{Var}_b(t_b)`; subtracting that bias gives an
unbiased but noisy estimate, which can be negative when B is not much larger than n. Following the reference
implementation of [1] (randomForestCI), the bias-corrected estimates of a reference set of patients are treated
as noisy observations of their true variances: a smooth prior on the true variances is fitted by
g-modelling [2] (noise level estimated by comparing the estimate of half the trees with that of all trees), and
each new patient's variance is the posterior mean given its own estimate. The result is always positive and is
shrunk towards the variances typical of the reference patients.

Forests grown in groups of trees sharing a half-sample (``ci_group_size >= 2``) instead use grf's bootstrap of
little bags [3] (:func:`little_bags_variance`): its Monte-Carlo noise is removed by comparing the spread of the group
means with the spread within groups, and does not grow with the training rows per tree as the IJ's does.

References
----------
.. [1] Wager S, Hastie T, Efron B. Confidence intervals for random forests: the jackknife and the
   infinitesimal jackknife. J Mach Learn Res 2014;15:1625-1651.
.. [2] Efron B. Empirical Bayes deconvolution estimates. Biometrika 2016;103:1-20.
.. [3] Athey S, Tibshirani J, Wager S. Generalized random forests. Ann Stat 2019;47:1148-1178 (section 4.1);
   Sexton J, Laake P. Standard errors for bagged and random forest estimators. Comput Stat Data Anal
   2009;53:801-811. Implementation followed: grf (github.com/grf-labs/grf, commit 5bee99b), core/src/forest/
   ForestTrainer.cpp, core/src/prediction/RegressionPredictionStrategy.cpp, ObjectiveBayesDebiaser.cpp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_ndtr
from scipy.stats import norm

N_BINS = 1000
UNIFORM_FRACTION = 0.1
POLYNOMIAL_DEGREE = 2
#: At most this many reference patients fit the variance prior (a random subset of larger training sets: the prior
#: is a smooth density of 2 parameters, and the IJ covariance is n_train x reference).
MAX_REFERENCE = 2000
#: Above this many training rows per tree the forest's intervals are flagged as too wide: the jackknife's
#: Monte-Carlo noise grows with n / B. Measured (benchmarks/interval_coverage.py, hist engine, 50 replicates):
#: 420 rows / 200 trees covers the forest's expected 6-month EFS 95.3% with the right width; 5,000 rows / 200 trees
#: 99.8% with 1.6x the needed width; 100,000 rows / 200 trees gives +-30-point intervals.
MAX_ROWS_PER_TREE = 10
#: Float64 cells of the (n_train x targets) IJ covariance computed at once (128 MB).
_IJ_BLOCK_CELLS = 1 << 24


def objective_bayes_debias(var_between: np.ndarray, group_noise: np.ndarray, num_good_groups: float) -> np.ndarray:
    """grf's objective-Bayes debiasing of a between-groups variance (``ObjectiveBayesDebiaser::debias``,
    grf core/src/prediction/ObjectiveBayesDebiaser.cpp), elementwise.

    The method-of-moments estimate ``S = var_between - group_noise`` has standard error about
    ``se = max(var_between, group_noise) * sqrt(2 / num_good_groups)``; with a flat prior on ``S >= 0`` and a
    Gaussian error, the estimate is ``S + se * phi(r) / Phi(r)`` with ``r = S / se`` (0 where ``se < 1e-10``, as
    grf's ``equal_doubles(initial_se, 0.0, 1.0e-10)``). grf writes ``Phi(r)`` as ``0.5 * erfc(-r / sqrt 2)``; the
    ratio is computed here in log space (the same number, without 0/0 for very negative ``r``). Always > 0 when
    ``se > 0``.
    """
    var_between = np.asarray(var_between, dtype=float)
    group_noise = np.asarray(group_noise, dtype=float)
    initial_estimate = var_between - group_noise
    initial_se = np.maximum(var_between, group_noise) * np.sqrt(2.0 / num_good_groups)
    zero = np.abs(initial_se) < 1.0e-10
    safe_se = np.where(zero, 1.0, initial_se)
    ratio = initial_estimate / safe_se
    mills = np.exp(norm.logpdf(ratio) - log_ndtr(ratio))  # phi(r) / Phi(r)
    return np.where(zero, 0.0, initial_estimate + safe_se * mills)


def little_bags_variance(per_tree: np.ndarray, group_size: int) -> np.ndarray:
    """Variance of a forest prediction by grf's bootstrap of little bags (Athey, Tibshirani and Wager 2019,
    section 4.1; Sexton and Laake 2009), for trees grown in groups of ``group_size`` on shared half-samples
    (:meth:`carrisk.hist_forest.HistForest.fit` with ``ci_group_size``).

    Follows grf's ``RegressionPredictionStrategy::compute_variance``
    (core/src/prediction/RegressionPredictionStrategy.cpp) with every tree's weight 1 (the forest prediction is
    the plain mean of the trees' predictions ``t_b``): ``rho_b = t_b - mean_b t_b``;
    ``var_between = mean_g (mean_{b in g} rho_b)^2``; ``var_total = mean_b rho_b^2``;
    ``group_noise = (var_total - var_between) / (group_size - 1)``; the variance is
    :func:`objective_bayes_debias` ``(var_between, group_noise, n_groups)`` (positive; ``var_between -
    group_noise`` would be the unbiased but possibly negative estimate). Trees are taken in order: trees
    ``g L .. g L + L - 1`` form group ``g``; every group is complete (grf skips groups with an empty leaf; a
    survival tree always predicts).

    Parameters
    ----------
    per_tree : (n_trees, m)
        Each tree's prediction for m targets.
    group_size : int
        Trees per group (>= 2); ``n_trees`` must be a multiple of it.

    Returns
    -------
    (m,) variance estimates.
    """
    per_tree = np.asarray(per_tree, dtype=float)
    n_trees = per_tree.shape[0]
    if group_size < 2 or n_trees % group_size:
        raise ValueError(f"need group_size >= 2 dividing the number of trees ({n_trees}), got {group_size}")
    num_groups = n_trees // group_size
    rho = per_tree - per_tree.mean(axis=0)
    group_rho = rho.reshape(num_groups, group_size, *per_tree.shape[1:]).mean(axis=1)
    var_between = (group_rho**2).sum(axis=0) / num_groups
    var_total = (rho**2).sum(axis=0) / (num_groups * group_size)
    group_noise = (var_total - var_between) / (group_size - 1)
    return objective_bayes_debias(var_between, group_noise, num_groups)


def inbag_counts(forest: Any, n_samples: int) -> np.ndarray:
    """Bootstrap in-bag counts (n_samples x n_trees) of a fitted scikit-learn-style forest.

    scikit-learn draws tree b's bootstrap sample as ``RandomState(tree.random_state).randint(0, n, n)``; the
    draw is repeated here (the tests check it against the forest's own out-of-bag predictions). A forest that records
    its counts (``inbag_counts_``, the histogram engine of :mod:`carrisk.hist_forest`) returns them.
    """
    if hasattr(forest, "inbag_counts_"):
        if forest.inbag_counts_.shape[0] != n_samples:
            raise ValueError(f"the forest was trained on {forest.inbag_counts_.shape[0]} rows, not {n_samples}")
        return forest.inbag_counts_
    if not forest.bootstrap or forest.max_samples is not None:
        raise ValueError("in-bag counts are reconstructed only for bootstrap=True and max_samples=None")
    counts = np.empty((n_samples, len(forest.estimators_)), dtype=np.uint8)
    for b, tree in enumerate(forest.estimators_):
        draw = np.random.RandomState(tree.random_state).randint(0, n_samples, n_samples, dtype=np.int32)
        counts[:, b] = np.bincount(draw, minlength=n_samples)
    return counts


def infinitesimal_jackknife_variance(per_tree: np.ndarray, inbag: np.ndarray, bias_correct: bool = True) -> np.ndarray:
    """IJ variance of a bagged prediction, optionally with the finite-forest bias correction.

    Parameters
    ----------
    per_tree : (n_trees, m)
        Each tree's prediction for m targets (e.g. patients x horizons, flattened).
    inbag : (n_train, n_trees)
        In-bag counts.
    bias_correct : bool
        Subtract the Monte-Carlo bias ``n * mean_i Var_b(N_bi) / B * mean_b (t_b - mean t)^2`` (may then be
        negative: see :func:`calibrate_variance`).

    Returns
    -------
    (m,) variance estimates.
    """
    n_train, n_trees = inbag.shape
    centred_pred = per_tree - per_tree.mean(axis=0)
    counts = inbag.astype(float)
    centred_inbag = counts - counts.mean(axis=1, keepdims=True)
    raw = np.empty(centred_pred.shape[1])
    block = max(1, _IJ_BLOCK_CELLS // n_train)  # the covariance in column blocks: memory bounded for large n_train
    for start in range(0, raw.size, block):
        cov = centred_inbag @ centred_pred[:, start : start + block] / n_trees
        raw[start : start + block] = (cov**2).sum(axis=0)
    if not bias_correct:
        return raw
    inbag_var = float(np.mean(counts.var(axis=1)))
    boot_var = (centred_pred**2).mean(axis=0)
    return raw - n_train * inbag_var * boot_var / n_trees


@dataclass(frozen=True)
class VariancePrior:
    """Empirical-Bayes prior on true variances: a density ``g`` on the grid ``x``, and the noise level ``sigma``."""

    x: np.ndarray
    g: np.ndarray
    sigma: float

    @property
    def noise_to_signal(self) -> float:
        """The jackknife estimates' Monte-Carlo noise sd over the prior's mean variance (the typical true variance).

        A diagnostic, noisy from fit to fit: median 1.7 (10th-90th percentile 1.4-2.0, up to 3.7) for 420 patients
        and 200 trees, whose intervals cover 95 %; 2.6 for 5,000 rows and 200 trees, whose intervals are 1.6x too
        wide. Where the noise dominates, the posterior is mostly the noise level itself: more trees, not a
        different prior, fix that (see :data:`MAX_ROWS_PER_TREE`).
        """
        mean = float(self.g @ self.x)
        return float(self.sigma / mean) if mean > 0 else float("inf")

    def posterior_mean(self, estimates: np.ndarray) -> np.ndarray:
        """Posterior mean of the true variance given noisy estimates (always > 0)."""
        estimates = np.asarray(estimates, dtype=float)
        kernel = norm.pdf((self.x[None, :] - estimates.reshape(-1, 1)) / self.sigma)
        weights = kernel * self.g[None, :]
        total = weights.sum(axis=1)
        mean = (weights @ self.x) / np.where(total > 0, total, 1.0)
        fallback = np.maximum(estimates.ravel(), float(self.g @ self.x))  # far outside the prior's support
        return np.where(total > 0, mean, fallback).reshape(estimates.shape)


def fit_variance_prior(estimates: np.ndarray, sigma: float) -> VariancePrior:
    """Fit the g-modelling prior of [2] to bias-corrected variance estimates with Gaussian noise ``sigma``.

    The prior lives on [0, max]: ``g(x) ~ exp(eta_1 x + eta_2 x^2)``, mixed with 10 % uniform mass, fitted by
    maximum marginal likelihood of the estimates (convolution with N(0, sigma^2) noise). As in randomForestCI,
    estimates and grid are expressed in units of their standard deviation while fitting.
    """
    estimates = np.asarray(estimates, dtype=float).ravel()
    scale = float(np.std(estimates)) or float(np.abs(estimates).max()) or 1.0
    z, s = estimates / scale, sigma / scale
    lo = min(z.min() - 2 * z.std(), 0.0)
    hi = max(z.max() + 2 * z.std(), z.std(), 1.0)
    grid = np.linspace(lo, hi, N_BINS)
    support = grid >= 0
    basis = np.column_stack([np.where(support, grid**j, 0.0) for j in range(1, POLYNOMIAL_DEGREE + 1)])
    noise = norm.pdf((z[:, None] - grid[None, :]) / s) / s  # (n, bins): density of each estimate given a bin
    uniform = support / support.sum()

    def prior(eta: np.ndarray) -> np.ndarray | None:
        raw = np.exp(np.clip(basis @ eta, -700, 700)) * support
        total = raw.sum()
        if not np.isfinite(total) or total <= 1e-300:
            return None
        return (1 - UNIFORM_FRACTION) * raw / total + UNIFORM_FRACTION * uniform

    def negative_log_likelihood(eta: np.ndarray) -> float:
        g = prior(eta)
        if g is None:
            return 1e6 * (1 + float(eta @ eta))
        return float(-np.log(np.maximum(noise @ g, 1e-7)).sum())

    eta = minimize(negative_log_likelihood, np.full(POLYNOMIAL_DEGREE, -1.0), method="Nelder-Mead").x
    g = prior(eta)
    if g is None:  # pragma: no cover - the optimiser never returns the penalised region in practice
        g = uniform
    return VariancePrior(grid * scale, g, sigma)


def half_forest_noise(per_tree: np.ndarray, inbag: np.ndarray, seed: int = 0) -> float:
    """Noise level of bias-corrected IJ estimates: RMS difference between half the trees and all of them."""
    rng = np.random.default_rng(seed)
    half = rng.choice(per_tree.shape[0], size=per_tree.shape[0] // 2, replace=False)
    full = infinitesimal_jackknife_variance(per_tree, inbag)
    halved = infinitesimal_jackknife_variance(per_tree[half], inbag[:, half])
    return float(np.sqrt(np.mean((halved - full) ** 2)))


def reference_rows(n_rows: int, seed: int = 0, max_rows: int | None = None) -> np.ndarray:
    """Indices of the training rows that fit the variance prior: all of them, or a seeded random ``max_rows``
    (default :data:`MAX_REFERENCE`)."""
    max_rows = MAX_REFERENCE if max_rows is None else max_rows
    if n_rows <= max_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=max_rows, replace=False))


def variance_prior(reference_per_tree: np.ndarray, inbag: np.ndarray, seed: int = 0) -> VariancePrior | None:
    """Fit the empirical-Bayes prior from reference targets of one kind (e.g. training patients, one horizon).

    Parameters
    ----------
    reference_per_tree : (n_trees, r)
        Tree predictions for the reference targets.
    inbag : (n_train, n_trees)
    seed : int
        Seeds the choice of the half forest used to estimate the noise level.

    Returns
    -------
    VariancePrior, or None when the reference estimates carry no spread or no noise (then use the
    bias-corrected estimate floored at 0).
    """
    reference = infinitesimal_jackknife_variance(reference_per_tree, inbag)
    sigma = half_forest_noise(reference_per_tree, inbag, seed)
    if sigma <= 0 or np.ptp(reference) == 0:
        return None
    return fit_variance_prior(reference, sigma)
