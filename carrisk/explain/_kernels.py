"""SHAP explanations for the carrisk survival models.

Two explainers share one result type:

* :class:`ForestExplainer` computes exact TreeSHAP values for a fitted scikit-survival
  :class:`~sksurv.ensemble.RandomSurvivalForest` (or :class:`~sksurv.ensemble.ExtraSurvivalTrees`),
  for the risk score, the survival probability at one or more horizons, or the whole survival curve on a
  time grid in one pass (time-dependent SHAP, as in SurvSHAP(t) [3]_, but exact).
* :class:`CoxExplainer` computes exact SHAP values of a Cox model's linear predictor and exact interventional
  Shapley values of its survival probability :math:`S(t \\mid x) = S_0(t)^{\\exp(\\beta^\\top x)}`.

Both return a :class:`ShapResult`, which can be turned into a tidy DataFrame, aggregated from design-matrix
columns to clinical variables, and drawn with :func:`plot_waterfall`, :func:`plot_beeswarm`, :func:`plot_bar`
and :func:`plot_dependence`.

Why the forest needs its own TreeSHAP
-------------------------------------
``shap.TreeExplainer`` refuses survival forests (shap issue #3308), although every survival tree is an
ordinary scikit-learn tree whose nodes store the Nelson–Aalen cumulative hazard function (CHF) and the
Kaplan–Meier survival function on the forest's ``unique_times_``, and the forest's outputs are plain averages
over trees (``RandomSurvivalForest._predict`` sums the trees and divides by their number):

* risk score: ``forest.predict(X)`` = mean over trees of :math:`\\sum_{j:\\,\\text{event time}} H_h(T_j)`
  for the leaf :math:`h` reached (``SurvivalTree.predict`` sums the CHF over ``is_event_time_`` columns; a
  ``low_memory=True`` tree stores that sum directly and nothing else);
* survival: ``predict_survival_function`` = mean over trees of the leaf Kaplan–Meier curves, evaluated as a
  right-continuous step function on ``unique_times_``.

Every output is therefore a sum over all leaves of all trees of ``leaf value / n_trees`` times the
indicator "x reaches this leaf", and SHAP values are linear in the leaf values.

* ``tree_path_dependent``: per leaf, the path-dependent TreeSHAP game [1]_ is the product game
  :math:`g(S) = v \\prod_{i \\in S} o_i \\prod_{i \\notin S} z_i` over the distinct features of the path
  (:math:`o_i` = 1 if the patient satisfies the path's conditions on feature :math:`i`, :math:`z_i` = product
  of cover ratios). By Owen's multilinear extension its Shapley values are
  :math:`v (o_i - z_i) \\int_0^1 \\prod_{j \\ne i} (t o_j + (1 - t) z_j)\\,dt`, a polynomial of degree < m in
  t integrated exactly by Gauss-Legendre quadrature on :math:`\\lceil m/2 \\rceil` nodes (as in Linear TreeSHAP [4]_).
  A numba kernel walks every tree once per block of up to 128 patients (SIMD lanes), keeping the product at the
  quadrature nodes along the path (a repeated feature replaces its factor by one of three precomputed ratios, as o
  is 0 or 1). Each node's rule is exact for the longest path below it (at least :math:`\\lceil m/2 \\rceil`
  points for the largest m of its leaves); where it shrinks, the product is recomputed from the path's factors,
  and a per-tree dynamic programme picks the rules of least work (keeping the parent's rule is often cheaper), so
  a leaf costs about :math:`m \\lceil m/2 \\rceil` multiply-adds per patient with its own m, not the forest's
  longest path. Every failed condition (:math:`o_i = 0`) gets the same weight. Leaf values enter as sparse steps
  along the output columns (a leaf's Kaplan-Meier curve changes only at its own event times), so the whole curve
  costs the leaf's number of steps, not the number of grid times; every leaf of a tree is first shifted by the
  same constant (the first column's common value), which leaves SHAP values unchanged and removes the step of
  most leaves at the first time. The SHAP curve is the cumulative sum of the steps' contributions. This is what
  ``shap.TreeExplainer`` computes on the same trees (the test-suite checks it against shap's C++ code through
  :meth:`ForestExplainer.to_shap_model`, against subset enumeration, and against the earlier per-leaf polynomial
  algorithm in ``tests/_treeshap_reference.py``).
* ``interventional``: per leaf and background row the game is :math:`v\\,1[A \\subseteq S,\\ B \\cap S =
  \\emptyset]` where :math:`A` holds the path features only the patient satisfies and :math:`B` those only the
  background row satisfies [2]_; its Shapley values are :math:`v\\,(a-1)!\\,b!/(a+b)!` for :math:`i \\in A` and
  :math:`-v\\,a!\\,(b-1)!/(a+b)!` for :math:`i \\in B`. Background rows are grouped per leaf by the bit mask of
  conditions they satisfy, so the cost is per distinct mask, not per background row. The weights of every
  (leaf, path feature) record are computed per patient and multiplied with the leaf values (one BLAS call per
  feature).

Both are exact: ``base_values + values.sum(features) == predictions`` up to floating-point rounding, and the
predictions equal the forest's own ``predict``/``predict_survival_function``. Inputs are cast to float32 and
compared with the float64 thresholds exactly as scikit-learn's trees do.

References
----------
.. [1] Lundberg, S. M., Erion, G., Chen, H., et al. "From local explanations to global understanding with
       explainable AI for trees." Nature Machine Intelligence 2, 56–67 (2020).
.. [2] Laberge, G., Pequignot, Y. "Understanding interventional TreeSHAP: how and why it works."
       arXiv:2209.15123 (2022).
.. [3] Krzyziński, M., Spytek, M., Baniecki, H., Biecek, P. "SurvSHAP(t): time-dependent explanations of
       machine learning survival models." Knowledge-Based Systems 262, 110234 (2023).
.. [4] Yu, P., Bifet, A., Read, J., Xu, C. "Linear TreeShap." Advances in Neural Information Processing Systems
       35 (2022).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numba
import numpy as np
import pandas as pd
import scipy.sparse as sp

from carrisk.units import DAYS_PER_MONTH

__all__ = [
    "CoxExplainer",
    "ForestExplainer",
    "ShapResult",
    "plot_bar",
    "plot_beeswarm",
    "plot_dependence",
    "plot_waterfall",
]

ForestOutput = Literal["risk", "survival", "cumulative_hazard"]
FeaturePerturbation = Literal["tree_path_dependent", "interventional"]

#: Memory budget for one block of per-record Shapley weights (patients x records, float64).
_WEIGHT_BLOCK_BYTES = 128 * 2**20
#: Patients walked through the trees together by the path-dependent kernel (at most; see _SHAP_BLOCK_BYTES).
_SHAP_BLOCK_ROWS = 128
#: Memory budget of one block's SHAP accumulator (features x outputs x patients, float64) per thread.
_SHAP_BLOCK_BYTES = 4 * 2**20
#: Largest number of distinct features on one root-to-leaf path (bit masks are int64).
_MAX_PATH_FEATURES = 62
#: Largest number of feature groups for exhaustive coalition enumeration in CoxExplainer.
MAX_EXACT_GROUPS = 14


# ----------------------------------------------------------------------------------------------------------
# Result
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShapResult:
    """SHAP values of one model output for a set of patients.

    Attributes
    ----------
    values : ndarray, shape (n, p) or (n, p, n_times)
        Attribution of each feature (column) to each patient's prediction.
    base_values : float or ndarray, shape (n_times,)
        Expected model output the attributions start from (same for every patient).
    predictions : ndarray, shape (n,) or (n, n_times)
        The model output being explained; ``base_values + values.sum(axis=1) == predictions``.
    feature_names : list of str
        Names of the ``p`` features.
    data : DataFrame, shape (n, p)
        The explained feature values (after float32 casting for forests).
    output : str
        ``"risk"``, ``"survival"``, ``"cumulative_hazard"`` or ``"linear_predictor"``.
    times : ndarray or None
        Horizons of a survival/CHF output: shape (n_times,) with a time axis, a 0-d array for a single
        horizon, ``None`` for the risk score and the linear predictor.
    exact : bool
        ``False`` when the values were estimated by permutation sampling.
    meta : dict
        Provenance: feature perturbation, model class, groups, number of permutations.
    """

    values: np.ndarray
    base_values: float | np.ndarray
    predictions: np.ndarray
    feature_names: list[str]
    data: pd.DataFrame
    output: str
    times: np.ndarray | None = None
    exact: bool = True
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_time_axis(self) -> bool:
        """Whether ``values`` carries a trailing time axis."""
        return self.values.ndim == 3

    def additivity_error(self) -> float:
        """Largest ``|base_values + sum(values) - predictions|`` over patients (and times)."""
        total = np.asarray(self.base_values) + self.values.sum(axis=1)
        return float(np.max(np.abs(total - self.predictions))) if total.size else 0.0

    def select_time(self, time: float) -> ShapResult:
        """Return the 2-d result at one of the stored horizons.

        Parameters
        ----------
        time : float
            One of ``self.times``.

        Returns
        -------
        ShapResult
            Values of shape (n, p) for that horizon.
        """
        if not self.has_time_axis:
            raise ValueError("This result has no time axis; select_time applies to multi-horizon results.")
        times = np.asarray(self.times, dtype=float)
        hits = np.flatnonzero(np.isclose(times, time))
        if hits.size == 0:
            raise ValueError(f"time={time} is not one of the explained horizons {times.tolist()[:10]}...")
        k = int(hits[0])
        return replace(
            self,
            values=self.values[:, :, k],
            base_values=float(np.asarray(self.base_values)[k]),
            predictions=self.predictions[:, k],
            times=np.asarray(times[k]),
        )

    def to_frame(self) -> pd.DataFrame:
        """Tidy long table with one row per patient, feature (and time).

        Returns
        -------
        DataFrame
            Columns ``row``, ``feature``, ``value``, ``shap`` and, for a time axis, ``time``.
        """
        n, p = self.values.shape[:2]
        rows = np.repeat(np.arange(n), p)
        features = np.tile(np.asarray(self.feature_names, dtype=object), n)
        feature_values = self.data.to_numpy(dtype=object).reshape(-1)
        if not self.has_time_axis:
            return pd.DataFrame(
                {"row": rows, "feature": features, "value": feature_values, "shap": self.values.reshape(-1)}
            )
        n_times = self.values.shape[2]
        return pd.DataFrame(
            {
                "row": np.repeat(rows, n_times),
                "feature": np.repeat(features, n_times),
                "value": np.repeat(feature_values, n_times),
                "time": np.tile(np.asarray(self.times, dtype=float), n * p),
                "shap": self.values.reshape(-1),
            }
        )

    def aggregate(self, groups: Mapping[str, str]) -> ShapResult:
        """Sum the attributions of columns that encode the same clinical variable.

        Shapley values are additive over features, so the sum of a group's column attributions is the
        attribution of the group as a whole in the column-level game (it is not the Shapley value of the
        game played over groups, which :class:`CoxExplainer` computes when given ``groups``).

        Parameters
        ----------
        groups : mapping of str to str
            Column name -> variable name, e.g. ``{"blina_status_responder": "blina_status",
            "blina_status_nonresponder": "blina_status"}``. Columns not in the mapping keep their name.

        Returns
        -------
        ShapResult
            Result with one feature per variable, in order of first appearance. The data of a variable
            made of several columns is the label of its non-zero column(s) (one-hot) with the group
            prefix removed; the total attribution per patient is unchanged.
        """
        unknown = set(groups) - set(self.feature_names)
        if unknown:
            raise ValueError(f"groups names columns that are not explained features: {sorted(unknown)}")
        variable_of = [groups.get(name, name) for name in self.feature_names]
        variables = list(dict.fromkeys(variable_of))
        index = {v: i for i, v in enumerate(variables)}
        membership = np.zeros((len(self.feature_names), len(variables)))
        for j, v in enumerate(variable_of):
            membership[j, index[v]] = 1.0
        values = np.einsum("npk,pq->nqk", _with_time_axis(self.values), membership)
        if not self.has_time_axis:
            values = values[:, :, 0]
        return replace(
            self,
            values=values,
            feature_names=variables,
            data=_variable_data(self.data, variable_of, variables),
            meta={**self.meta, "groups": dict(groups)},
        )

    def to_explanation(self, row: int | None = None):
        """Convert to a :class:`shap.Explanation` (2-d results only).

        Parameters
        ----------
        row : int, optional
            Return the explanation of one patient only.

        Returns
        -------
        shap.Explanation
        """
        import shap

        if self.has_time_axis:
            raise ValueError("Select one horizon first, e.g. result.select_time(182.625).")
        n = self.values.shape[0]
        base = np.full(n, float(np.asarray(self.base_values)))
        numeric = self.data.apply(_numeric_codes).to_numpy(dtype=float)
        explanation = shap.Explanation(
            values=self.values,
            base_values=base,
            data=numeric,
            display_data=self.data.to_numpy(dtype=object),
            feature_names=list(self.feature_names),
        )
        return explanation if row is None else explanation[row]


def _with_time_axis(values: np.ndarray) -> np.ndarray:
    return values if values.ndim == 3 else values[:, :, None]


def _variable_data(data: pd.DataFrame, variable_of: Sequence[str], variables: Sequence[str]) -> pd.DataFrame:
    """One column per variable: the column itself, or the one-hot label for multi-column variables."""
    members: dict[str, list[int]] = {}
    for j, v in enumerate(variable_of):
        members.setdefault(v, []).append(j)
    # a design matrix (all float64) is read as one array; other tables column by column, keeping their dtypes
    block = data.to_numpy() if all(dtype == np.float64 for dtype in data.dtypes) else None
    columns = {}
    for v in variables:
        if len(members[v]) == 1:
            j = members[v][0]
            columns[v] = block[:, j] if block is not None else data.iloc[:, j].to_numpy()
        else:
            values = block[:, members[v]] if block is not None else data.iloc[:, members[v]].to_numpy(dtype=float)
            columns[v] = _one_hot_labels(values != 0, [str(data.columns[j]) for j in members[v]], v)
    return pd.DataFrame(columns, index=data.index)


def _one_hot_labels(active: np.ndarray, columns: Sequence[str], variable: str) -> np.ndarray:
    """Label of the active one-hot column(s) per row, prefix ``variable_`` or ``variable=`` removed."""
    prefixes = (variable + "_", variable + "=")
    names = [c[len(variable) + 1 :] if c[: len(variable) + 1] in prefixes else c for c in columns]
    labels = ["+".join(n for n, on in zip(names, row, strict=True) if on) or "reference" for row in active]
    return np.asarray(labels, dtype=object)


def _numeric_codes(column: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().any() or column.isna().all():
        return numeric.astype(float)
    return pd.Series(pd.Categorical(column).codes, index=column.index, dtype=float)


def _as_frame(X: Any, feature_names: Sequence[str] | None) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(f"X must be 2-dimensional (patients x features), got shape {array.shape}.")
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(array.shape[1])]
    return pd.DataFrame(array, columns=names)


def _shapley_weight_table(max_players: int) -> np.ndarray:
    """``table[m, k] = k! (m - k - 1)! / m!``, the Shapley weight of a coalition of size k among m players."""
    table = np.zeros((max_players + 1, max(max_players, 1)))
    for m in range(1, max_players + 1):
        for k in range(m):
            table[m, k] = 1.0 / (m * math.comb(m - 1, k))
    return table


# ----------------------------------------------------------------------------------------------------------
# numba kernels
# ----------------------------------------------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def _satisfies(x: float, lo: float, hi: float, nan_ok: bool) -> bool:
    if np.isnan(x):
        return nan_ok
    return lo < x <= hi


@numba.njit(cache=True, inline="always")
def _popcount(mask: np.int64) -> int:
    count = 0
    while mask:
        mask &= mask - 1
        count += 1
    return count


@numba.njit(parallel=True, cache=True)
def _interventional_weights(
    X, leaf_ptr, rec_feature, rec_lo, rec_hi, rec_nan_ok, rec_col, bg_ptr, bg_mask, bg_weight, table, out
):
    n_leaves = leaf_ptr.shape[0] - 1
    for s in numba.prange(X.shape[0]):
        for leaf in range(n_leaves):
            start = leaf_ptr[leaf]
            m = leaf_ptr[leaf + 1] - start
            x_mask = np.int64(0)
            for j in range(m):
                r = start + j
                out[s, rec_col[r]] = 0.0
                if _satisfies(X[s, rec_feature[r]], rec_lo[r], rec_hi[r], rec_nan_ok[r]):
                    x_mask |= np.int64(1) << j
            full = (np.int64(1) << m) - 1
            only_bg = full & ~x_mask  # conditions the patient fails: the background row must satisfy them
            b = _popcount(only_bg)
            for u in range(bg_ptr[leaf], bg_ptr[leaf + 1]):
                z_mask = bg_mask[u]
                if only_bg & ~z_mask:
                    continue  # neither the patient nor the background row opens these conditions
                only_x = x_mask & ~z_mask
                a = _popcount(only_x)
                if a + b == 0:
                    continue
                w_x = table[a + b, a - 1] * bg_weight[u] if a > 0 else 0.0
                w_bg = table[a + b, a] * bg_weight[u] if b > 0 else 0.0
                for j in range(m):
                    bit = np.int64(1) << j
                    if only_x & bit:
                        out[s, rec_col[start + j]] += w_x
                    elif only_bg & bit:
                        out[s, rec_col[start + j]] -= w_bg


@numba.njit(cache=True)
def _max_depth(roots, left, right):
    deepest = 0
    stack = np.empty(2 * left.size + 1, dtype=np.int64)
    depth = np.empty(2 * left.size + 1, dtype=np.int64)
    for t in range(roots.shape[0]):
        top = 1
        stack[0] = roots[t]
        depth[0] = 0
        while top > 0:
            top -= 1
            node, d = stack[top], depth[top]
            deepest = max(deepest, d)
            if left[node] >= 0:
                stack[top], depth[top] = left[node], d + 1
                stack[top + 1], depth[top + 1] = right[node], d + 1
                top += 2
    return deepest


@numba.njit(cache=True, inline="always")
def _pick(o, a, b):
    # a where o == 1, b where o == 0: both products are exact, so is the sum (branch-free, so loops vectorise)
    return o * a + (1.0 - o) * b


@numba.njit(parallel=True, cache=True, fastmath={"contract"})
def _path_dependent_curves(
    X, roots, left, right, feature, threshold, nan_left, cover, node_leaf, node_order, inc_ptr, inc_col, inc_val,
    gl_nodes, gl_weights, max_depth, block, out
):  # fmt: skip
    # One depth-first walk of every tree per block of patients; arrays are laid out with the block's patients
    # innermost, so the arithmetic runs in SIMD lanes over patients. poly[d, q] holds prod_j (t o_j + (1 - t) z_j)
    # over the path's distinct features at the points of the Gauss-Legendre rule of the node at depth d, whose
    # number of points node_order[node] suffices for every leaf below it (rows q >= n_q are padding, multiplied by
    # zero coefficients). Cost per (patient, leaf): m (n_q + k) multiply-adds for m path features and k steps, plus
    # n_q per node; the step scatter into acc (time x feature x patient, 4 MB per block at 200 times) dominates.
    # fastmath "contract" only fuses a * b + c into one rounding (FMA); results stay exact to ~1e-16.
    n, p = X.shape
    q_max = gl_nodes.shape[0]
    q_pad = q_max + 1  # the leaf weights are summed over groups of 4 or 2 points
    n_out = out.shape[2]
    fail_coef = np.zeros((q_max, q_pad))  # a failed condition's weight: -sum_q w_q P(t_q) / (1 - t_q)
    for r in range(q_max):
        for q in range(r + 1):
            fail_coef[r, q] = -gl_weights[r, q] / (1.0 - gl_nodes[r, q])
    for blk in numba.prange((n + block - 1) // block):
        s0 = blk * block
        nb = min(block, n - s0)
        xb = np.empty((p, nb))  # the block's features, patients contiguous
        for j in range(p):
            for b in range(nb):
                xb[j, b] = X[s0 + b, j]
        satisfied = np.ones((p, nb))  # o_j: the patient meets every condition on feature j so far
        zero = np.ones(p)  # z_j: product of the cover ratios of the conditions on feature j so far
        on_path = np.zeros(p, dtype=np.bool_)
        path = np.empty(p, dtype=np.int64)  # distinct features in order of first appearance (the records' order)
        n_path = 0
        poly = np.ones((max_depth + 1, q_pad, nb))  # row q_max: padding (times a zero coefficient)
        undo_feature = np.empty(max_depth + 1, dtype=np.int64)
        undo_zero = np.empty(max_depth + 1)
        undo_satisfied = np.empty((max_depth + 1, nb))
        undo_new = np.zeros(max_depth + 1, dtype=np.bool_)
        stack_node = np.empty(max_depth + 2, dtype=np.int64)
        stack_depth = np.empty(max_depth + 2, dtype=np.int64)
        stack_parent = np.empty(max_depth + 2, dtype=np.int64)
        goes = np.empty(nb)
        w_fail = np.empty(nb)
        weight = np.empty((p, nb))
        coef = np.zeros((p, q_pad))  # per feature, for coef_zero[j] and coef_points[j]
        coef_zero = np.full(p, np.nan)
        coef_points = np.zeros(p, dtype=np.int64)
        acc = np.zeros((n_out, p, nb))
        depth = 0
        for t in range(roots.shape[0]):
            top = 1
            stack_node[0], stack_depth[0], stack_parent[0] = roots[t], 0, -1
            while top > 0:
                top -= 1
                node, d, parent = stack_node[top], stack_depth[top], stack_parent[top]
                while depth >= d and depth > 0:
                    j = undo_feature[depth]
                    zero[j] = undo_zero[depth]
                    satisfied[j, :] = undo_satisfied[depth, :]
                    if undo_new[depth]:
                        on_path[j] = False
                        n_path -= 1
                    depth -= 1
                n_q = node_order[node]
                if parent >= 0:
                    j = feature[parent]
                    went_left = left[parent] == node
                    z_old = zero[j]
                    z_new = z_old * cover[node] / cover[parent]
                    undo_feature[d], undo_zero[d], undo_new[d] = j, z_old, not on_path[j]
                    undo_satisfied[d, :] = satisfied[j, :]
                    thr = threshold[parent]
                    nan_goes_left = 1.0 if nan_left[parent] else 0.0
                    follow_left = 1.0 if went_left else 0.0
                    for b in range(nb):  # 1.0 where the patient follows this edge (as 0/1 arithmetic: vectorises)
                        x = xb[j, b]
                        left_b = (1.0 if x <= thr else 0.0) + (1.0 if x != x else 0.0) * nan_goes_left
                        goes[b] = _pick(follow_left, left_b, 1.0 - left_b)
                    same_rule = n_q == node_order[parent]
                    if same_rule:
                        if on_path[j]:
                            # o_old and goes are 0 or 1: the factor's ratio takes one of three values
                            r_failed = z_new / z_old
                            for q in range(n_q):
                                tq = gl_nodes[n_q - 1, q]
                                sq = 1.0 - tq
                                den = tq + sq * z_old
                                r_stays = (tq + sq * z_new) / den
                                r_fails = sq * z_new / den
                                for b in range(nb):  # products with 0 or 1 select exactly (and vectorise)
                                    o, g = satisfied[j, b], goes[b]
                                    r = _pick(o, _pick(g, r_stays, r_fails), r_failed)
                                    poly[d, q, b] = poly[d - 1, q, b] * r
                        else:
                            for q in range(n_q):
                                tq = gl_nodes[n_q - 1, q]
                                sz = (1.0 - tq) * z_new
                                for b in range(nb):
                                    poly[d, q, b] = poly[d - 1, q, b] * (tq * goes[b] + sz)
                    for b in range(nb):
                        satisfied[j, b] *= goes[b]
                    zero[j] = z_new
                    if not on_path[j]:
                        on_path[j] = True
                        path[n_path] = j
                        n_path += 1
                    depth = d
                    if not same_rule:  # fewer points suffice below: the product afresh on the shorter rule
                        for q in range(n_q):
                            tq = gl_nodes[n_q - 1, q]
                            sq = 1.0 - tq
                            for b in range(nb):
                                poly[d, q, b] = 1.0
                            for k in range(n_path):
                                jk = path[k]
                                zk = sq * zero[jk]
                                for b in range(nb):
                                    poly[d, q, b] *= tq * satisfied[jk, b] + zk
                if left[node] >= 0:
                    stack_node[top], stack_depth[top], stack_parent[top] = right[node], d + 1, node
                    stack_node[top + 1], stack_depth[top + 1], stack_parent[top + 1] = left[node], d + 1, node
                    top += 2
                    continue
                leaf = node_leaf[node]
                lo, hi = inc_ptr[leaf], inc_ptr[leaf + 1]
                if hi == lo or n_path == 0:
                    continue
                # Owen: phi_i = (o_i - z_i) int_0^1 prod_{j != i} (t o_j + (1 - t) z_j) dt, a polynomial of degree
                # < n_path integrated exactly on n_q >= ceil(n_path / 2) points: sum_q P(t_q) coef_i[q] with
                # coef_i[q] = (1 - z_i) w_q / (t_q + (1 - t_q) z_i) where the patient meets feature i's conditions and
                # the same -w_q / (1 - t_q) for every failed condition. A feature's coefficients are kept while its z
                # and the rule stay (most of a leaf's features were split above its parent). Each weight is one pass
                # over the patients per 4 points (the last pass 2 points when 1 or 2 remain; padding is zero).
                n2 = (n_q + 1) // 2 * 2
                for k in range(n_path):
                    j = path[k]
                    z = zero[j]
                    if coef_zero[j] != z or coef_points[j] != n_q:
                        coef_zero[j], coef_points[j] = z, n_q
                        for q in range(n_q):
                            tq = gl_nodes[n_q - 1, q]
                            coef[j, q] = (1.0 - z) * gl_weights[n_q - 1, q] / (tq + (1.0 - tq) * z)
                        for q in range(n_q, n2):
                            coef[j, q] = 0.0
                for q in range(0, n2, 2):  # the failed conditions' weight, 2 points per pass
                    c0, c1 = fail_coef[n_q - 1, q], fail_coef[n_q - 1, q + 1]
                    if q == 0:
                        for b in range(nb):
                            w_fail[b] = poly[d, 0, b] * c0 + poly[d, 1, b] * c1
                    else:
                        for b in range(nb):
                            w_fail[b] += poly[d, q, b] * c0 + poly[d, q + 1, b] * c1
                for k in range(n_path):
                    j = path[k]
                    q = 0
                    while q < n2:
                        last = q + 4 >= n2
                        if q + 4 <= n2:
                            c0, c1, c2, c3 = coef[j, q], coef[j, q + 1], coef[j, q + 2], coef[j, q + 3]
                            if q == 0 and last:  # one pass: the sum, or the failed weight
                                for b in range(nb):
                                    v = poly[d, 0, b] * c0 + poly[d, 1, b] * c1
                                    v += poly[d, 2, b] * c2 + poly[d, 3, b] * c3
                                    weight[k, b] = _pick(satisfied[j, b], v, w_fail[b])
                            elif q == 0:
                                for b in range(nb):
                                    weight[k, b] = (poly[d, 0, b] * c0 + poly[d, 1, b] * c1) + (
                                        poly[d, 2, b] * c2 + poly[d, 3, b] * c3
                                    )
                            elif not last:
                                for b in range(nb):
                                    weight[k, b] += (poly[d, q, b] * c0 + poly[d, q + 1, b] * c1) + (
                                        poly[d, q + 2, b] * c2 + poly[d, q + 3, b] * c3
                                    )
                            else:  # last pass: add, or the failed weight
                                for b in range(nb):
                                    v = weight[k, b] + (poly[d, q, b] * c0 + poly[d, q + 1, b] * c1)
                                    v += poly[d, q + 2, b] * c2 + poly[d, q + 3, b] * c3
                                    weight[k, b] = _pick(satisfied[j, b], v, w_fail[b])
                            q += 4
                        else:  # two points, the last pass
                            c0, c1 = coef[j, q], coef[j, q + 1]
                            if q == 0:
                                for b in range(nb):
                                    v = poly[d, 0, b] * c0 + poly[d, 1, b] * c1
                                    weight[k, b] = _pick(satisfied[j, b], v, w_fail[b])
                            else:
                                for b in range(nb):
                                    v = weight[k, b] + (poly[d, q, b] * c0 + poly[d, q + 1, b] * c1)
                                    weight[k, b] = _pick(satisfied[j, b], v, w_fail[b])
                            q += 2
                # the leaf's steps along the output columns, each feature's weight times the step
                for e in range(lo, hi):
                    col, step = inc_col[e], inc_val[e]
                    for k in range(n_path):
                        j = path[k]
                        for b in range(nb):
                            acc[col, j, b] += weight[k, b] * step
        for b in range(nb):  # the SHAP curve is the running sum of the steps' contributions
            for j in range(p):
                total = 0.0
                for c in range(n_out):
                    total += acc[c, j, b]
                    out[s0 + b, j, c] = total


@numba.njit(parallel=True, cache=True)
def _leaf_steps(values, shift, ptr, cols, steps):
    # Nonzero steps of each row of values (the first against shift): with cols empty, their number into ptr[i + 1];
    # otherwise (ptr cumulative) the columns and steps, as np.diff(values, axis=1, prepend=shift) and np.nonzero.
    count_only = cols.size == 0
    for i in numba.prange(values.shape[0]):
        prev, e = shift, 0 if count_only else ptr[i]
        for c in range(values.shape[1]):
            step = values[i, c] - prev
            prev = values[i, c]
            if step != 0.0:
                if not count_only:
                    cols[e], steps[e] = c, step
                e += 1
        if count_only:
            ptr[i + 1] = e


@numba.njit(cache=True)
def _leaf_masks(X, leaf_ptr, rec_feature, rec_lo, rec_hi, rec_nan_ok, out):
    for s in range(X.shape[0]):
        for leaf in range(leaf_ptr.shape[0] - 1):
            mask = np.int64(0)
            for j in range(leaf_ptr[leaf + 1] - leaf_ptr[leaf]):
                r = leaf_ptr[leaf] + j
                if _satisfies(X[s, rec_feature[r]], rec_lo[r], rec_hi[r], rec_nan_ok[r]):
                    mask |= np.int64(1) << j
            out[leaf, s] = mask


def _walk(X, s, roots, left, right, feature, threshold, nan_left, node_leaf, out):
    for t in range(roots.shape[0]):
        node = roots[t]
        while left[node] >= 0:
            x = X[s, feature[node]]
            go_left = nan_left[node] if np.isnan(x) else x <= threshold[node]
            node = left[node] if go_left else right[node]
        out[s, t] = node_leaf[node]


_walk_jit = numba.njit(cache=True)(_walk)


@numba.njit(parallel=True, cache=True)
def _apply(X, roots, left, right, feature, threshold, nan_left, node_leaf, out):
    for s in numba.prange(X.shape[0]):
        _walk_jit(X, s, roots, left, right, feature, threshold, nan_left, node_leaf, out)


@numba.njit(cache=True)
def _apply_serial(X, roots, left, right, feature, threshold, nan_left, node_leaf, out):
    # a few rows: starting the parallel thread pool costs more than the walk itself
    for s in range(X.shape[0]):
        _walk_jit(X, s, roots, left, right, feature, threshold, nan_left, node_leaf, out)


# ----------------------------------------------------------------------------------------------------------
# Forest
# ----------------------------------------------------------------------------------------------------------
#: Below this many rows the compiled tree walk runs serially (thread start-up dominates otherwise).
_PARALLEL_MIN_ROWS = 64


@dataclass(frozen=True)
class _FlatForest:
    """Trees of a survival forest flattened into arrays (global node and leaf numbering)."""

    roots: np.ndarray  # (n_trees,) global node id of each root
    left: np.ndarray  # (n_nodes,) global id, -1 for leaves
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray  # float64, compared with float32-cast inputs as scikit-learn does
    nan_left: np.ndarray  # bool, missing values go left
    cover: np.ndarray  # weighted (bootstrap) sample count per node
    node_leaf: np.ndarray  # (n_nodes,) leaf id or -1
    leaf_tree: np.ndarray  # (n_leaves,) tree index
    leaf_node: np.ndarray  # (n_leaves,) node id within its tree
    leaf_prob: np.ndarray  # cover(leaf) / cover(root): weight of the leaf in the path-dependent base value
    leaf_ptr: np.ndarray  # (n_leaves + 1,) records of leaf l are leaf_ptr[l]:leaf_ptr[l + 1]
    rec_feature: np.ndarray
    rec_lo: np.ndarray
    rec_hi: np.ndarray
    rec_nan_ok: np.ndarray
    rec_zero: np.ndarray
    rec_leaf: np.ndarray
    rec_col: np.ndarray  # column of the record in the weight matrix (columns sorted by feature)
    col_rec: np.ndarray  # inverse permutation of rec_col
    feature_ptr: np.ndarray  # (p + 1,) weight columns of feature f are feature_ptr[f]:feature_ptr[f + 1]
    max_path_features: int
    node_order: np.ndarray  # (n_nodes,) Gauss-Legendre points the path-dependent kernel uses at each node


@numba.njit(cache=True)
def _leaf_records(roots, left, right, feature, threshold, nan_left, cover, n_features, leaf_ptr, fill, out):
    # Depth-first (left first) walk of every tree carrying, per feature on the path, the interval (lo, hi], whether
    # a missing value follows the path and the product of cover ratios. Without ``fill`` it writes each leaf's number
    # of distinct path features to leaf_ptr[leaf + 1]; with ``fill`` (leaf_ptr then cumulative) it writes the leaves
    # and their records, in order of first appearance on the path, into the arrays of ``out``.
    node_leaf, leaf_tree, leaf_node, leaf_prob, rec_feature, rec_lo, rec_hi, rec_nan_ok, rec_zero, rec_leaf = out
    lo = np.full(n_features, -np.inf)
    hi = np.full(n_features, np.inf)
    nan_ok = np.ones(n_features, dtype=np.bool_)
    zero = np.ones(n_features)
    on_path = np.zeros(n_features, dtype=np.bool_)
    path = np.empty(n_features, dtype=np.int64)
    size = left.size + 2
    stack_node = np.empty(size, dtype=np.int64)
    stack_depth = np.empty(size, dtype=np.int64)
    stack_parent = np.empty(size, dtype=np.int64)
    undo_feature = np.empty(size, dtype=np.int64)
    undo_lo = np.empty(size)
    undo_hi = np.empty(size)
    undo_nan = np.empty(size, dtype=np.bool_)
    undo_zero = np.empty(size)
    undo_new = np.empty(size, dtype=np.bool_)
    n_path = 0
    depth = 0
    leaf = 0
    for t in range(roots.shape[0]):
        root = roots[t]
        top = 1
        stack_node[0], stack_depth[0], stack_parent[0] = root, 0, -1
        while top > 0:
            top -= 1
            node, d, parent = stack_node[top], stack_depth[top], stack_parent[top]
            while depth >= d and depth > 0:  # leave the subtree of the previous branch
                j = undo_feature[depth]
                lo[j], hi[j], nan_ok[j], zero[j] = undo_lo[depth], undo_hi[depth], undo_nan[depth], undo_zero[depth]
                if undo_new[depth]:
                    on_path[j] = False
                    n_path -= 1
                depth -= 1
            if parent >= 0:
                j = feature[parent]
                is_left = left[parent] == node
                undo_feature[d], undo_lo[d], undo_hi[d] = j, lo[j], hi[j]
                undo_nan[d], undo_zero[d], undo_new[d] = nan_ok[j], zero[j], not on_path[j]
                if is_left:
                    hi[j] = min(hi[j], threshold[parent])
                else:
                    lo[j] = max(lo[j], threshold[parent])
                nan_ok[j] = nan_ok[j] and nan_left[parent] == is_left
                zero[j] *= cover[node] / cover[parent]
                if not on_path[j]:
                    on_path[j] = True
                    path[n_path] = j
                    n_path += 1
                depth = d
            if left[node] >= 0:
                stack_node[top], stack_depth[top], stack_parent[top] = right[node], d + 1, node
                stack_node[top + 1], stack_depth[top + 1], stack_parent[top + 1] = left[node], d + 1, node
                top += 2
                continue
            if fill:
                node_leaf[node] = leaf
                leaf_tree[leaf] = t
                leaf_node[leaf] = node - root
                leaf_prob[leaf] = cover[node] / cover[root]
                start = leaf_ptr[leaf]
                for k in range(n_path):
                    j = path[k]
                    r = start + k
                    rec_feature[r], rec_lo[r], rec_hi[r] = j, lo[j], hi[j]
                    rec_nan_ok[r], rec_zero[r], rec_leaf[r] = nan_ok[j], zero[j], leaf
            else:
                leaf_ptr[leaf + 1] = n_path
            leaf += 1


@numba.njit(cache=True)
def _node_path_features(roots, left, right, feature, n_features):
    # number of distinct features on the path from the root to each node (0 at the roots)
    count = np.zeros(left.size, dtype=np.int64)
    seen = np.zeros(n_features, dtype=np.int64)  # how many ancestors of the current node split on the feature
    stack = np.empty(2 * left.size + 2, dtype=np.int64)  # node, then -1 - node once its subtree is done
    for t in range(roots.shape[0]):
        top = 1
        stack[0] = roots[t]
        while top > 0:
            top -= 1
            node = stack[top]
            if node < 0:
                seen[feature[-1 - node]] -= 1
                continue
            if left[node] < 0:
                continue
            j = feature[node]
            child_count = count[node] + (1 if seen[j] == 0 else 0)
            count[left[node]] = count[right[node]] = child_count
            seen[j] += 1
            stack[top] = -1 - node
            stack[top + 1] = right[node]
            stack[top + 2] = left[node]
            top += 3
    return count


@numba.njit(cache=True)
def _node_orders(roots, left, right, node_leaf, leaf_ptr, path_features):
    # Gauss-Legendre points of each node's rule. A leaf with m distinct path features needs at least
    # ceil(m / 2) points, so a node needs at least the largest such number below it (rmin). More points than that
    # stay exact, and the kernel then keeps the parent's product instead of recomputing it from the path's
    # factors ((n_path + 1) r multiply-adds per patient), at the price of r per node and (m + 1) r per leaf below
    # (r rounded up to even: the leaf weights are summed over 4 points per pass, the last pass 2). Per tree, a
    # dynamic programme over (node, rule) picks the rules of least total cost: sub[node, r] is the cost below a
    # node whose rule is r.
    n = left.size
    rmin = np.ones(n, dtype=np.int64)
    for node in range(n - 1, -1, -1):  # children have larger ids than their parent
        if left[node] < 0:
            leaf = node_leaf[node]
            rmin[node] = max(1, (leaf_ptr[leaf + 1] - leaf_ptr[leaf] + 1) // 2)
        else:
            rmin[node] = max(rmin[left[node]], rmin[right[node]])
    order = np.ones(n, dtype=np.int64)
    inf = np.inf
    for t in range(roots.shape[0]):
        start = roots[t]
        stop = roots[t + 1] if t + 1 < roots.shape[0] else n
        r_top = rmin[start]
        sub = np.full((stop - start, r_top + 1), inf)
        for node in range(stop - 1, start - 1, -1):
            i = node - start
            for r in range(rmin[node], r_top + 1):
                if left[node] < 0:
                    sub[i, r] = (path_features[node] + 1) * ((r + 1) // 2 * 2)
                    continue
                total = 0.0
                for child in (left[node], right[node]):
                    c = child - start
                    best = r + sub[c, r]  # keep the parent's rule: one factor per point
                    for r2 in range(rmin[child], r):  # or recompute the product on fewer points
                        best = min(best, (path_features[child] + 1) * r2 + sub[c, r2])
                    total += best
                sub[i, r] = total
        best_r = r_top
        for r in range(rmin[start], r_top + 1):
            if sub[0, r] < sub[0, best_r]:
                best_r = r
        order[start] = best_r
        for node in range(start, stop):  # parents before children
            if left[node] < 0:
                continue
            r = order[node]
            for child in (left[node], right[node]):
                c = child - start
                best, best_r = r + sub[c, r], r
                for r2 in range(rmin[child], r):
                    cost = (path_features[child] + 1) * r2 + sub[c, r2]
                    if cost < best:
                        best, best_r = cost, r2
                order[child] = best_r
    return order


def _gauss_legendre_rules(max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the 1..max_points-point Gauss-Legendre rules on [0, 1], row q - 1 holding the q-point
    rule (zero-padded); the q-point rule integrates polynomials of degree < 2q exactly."""
    nodes, weights = np.zeros((max_points, max_points)), np.zeros((max_points, max_points))
    for q in range(1, max_points + 1):
        t, w = np.polynomial.legendre.leggauss(q)
        nodes[q - 1, :q], weights[q - 1, :q] = (t + 1.0) / 2.0, w / 2.0
    return nodes, weights


def _flatten_forest(trees: Sequence[Any], n_features: int) -> _FlatForest:
    roots, lefts, rights, features, thresholds, nan_lefts, covers = ([] for _ in range(7))
    offset = 0
    for tree in trees:
        tree_ = tree.tree_
        left = tree_.children_left.astype(np.int64)
        right = tree_.children_right.astype(np.int64)
        internal = np.flatnonzero(left >= 0)
        if np.any(left[internal] <= internal) or np.any(right[internal] <= internal):
            raise ValueError("tree nodes are not numbered parent-before-children; cannot explain this forest")
        roots.append(offset)
        lefts.append(np.where(left >= 0, left + offset, -1))
        rights.append(np.where(right >= 0, right + offset, -1))
        features.append(np.where(left >= 0, tree_.feature.astype(np.int64), 0))
        thresholds.append(tree_.threshold.astype(np.float64))
        nan_lefts.append(np.asarray(getattr(tree_, "missing_go_to_left", np.zeros(tree_.node_count)), dtype=bool))
        covers.append(tree_.weighted_n_node_samples.astype(np.float64))
        offset += tree_.node_count
    roots_arr = np.asarray(roots, dtype=np.int64)
    left, right, feature = np.concatenate(lefts), np.concatenate(rights), np.concatenate(features)
    threshold, nan_left, cover = np.concatenate(thresholds), np.concatenate(nan_lefts), np.concatenate(covers)
    n_leaves = int(np.count_nonzero(left < 0))
    walk = (roots_arr, left, right, feature, threshold, nan_left, cover, n_features)
    leaf_ptr = np.zeros(n_leaves + 1, dtype=np.int64)
    empty_int, empty_float, empty_bool = np.empty(0, np.int64), np.empty(0), np.empty(0, np.bool_)
    counts_only = (empty_int, empty_int, empty_int, empty_float, empty_int, empty_float, empty_float, empty_bool,
                   empty_float, empty_int)  # fmt: skip
    _leaf_records(*walk, leaf_ptr, False, counts_only)
    max_m = int(leaf_ptr.max(initial=0))
    if max_m > _MAX_PATH_FEATURES:
        raise ValueError(
            f"A tree path splits on {max_m} distinct features; at most {_MAX_PATH_FEATURES} are supported. "
            "Limit max_depth of the forest."
        )
    np.cumsum(leaf_ptr, out=leaf_ptr)
    n_records = int(leaf_ptr[-1])
    node_leaf = np.full(left.size, -1, dtype=np.int64)
    leaves = (np.empty(n_leaves, np.int64), np.empty(n_leaves, np.int64), np.empty(n_leaves))
    records = (np.empty(n_records, np.int64), np.empty(n_records), np.empty(n_records), np.empty(n_records, np.bool_),
               np.empty(n_records), np.empty(n_records, np.int64))  # fmt: skip
    _leaf_records(*walk, leaf_ptr, True, (node_leaf, *leaves, *records))
    rec_feature = records[0]
    path_features = _node_path_features(roots_arr, left, right, feature, n_features)
    order = np.argsort(rec_feature, kind="stable")
    rec_col = np.empty_like(order)
    rec_col[order] = np.arange(order.size)
    return _FlatForest(
        roots=roots_arr,
        left=left,
        right=right,
        feature=feature,
        threshold=threshold,
        nan_left=nan_left,
        cover=cover,
        node_leaf=node_leaf,
        leaf_tree=leaves[0],
        leaf_node=leaves[1],
        leaf_prob=leaves[2],
        leaf_ptr=leaf_ptr,
        rec_feature=rec_feature,
        rec_lo=records[1],
        rec_hi=records[2],
        rec_nan_ok=records[3],
        rec_zero=records[4],
        rec_leaf=records[5],
        rec_col=rec_col,
        col_rec=order,
        feature_ptr=np.searchsorted(rec_feature[order], np.arange(n_features + 1)),
        max_path_features=max_m,
        node_order=_node_orders(roots_arr, left, right, node_leaf, leaf_ptr, path_features),
    )


class ForestExplainer:
    """Exact TreeSHAP for a fitted scikit-survival random survival forest.

    Parameters
    ----------
    forest : RandomSurvivalForest, ExtraSurvivalTrees or SurvivalTree
        Fitted model. Forests fitted with ``low_memory=True`` can be explained for the risk score only.
    background : array-like, shape (n_background, p), optional
        Reference patients for ``feature_perturbation="interventional"`` (e.g. 100 training rows); the
        base value is the mean model output over them. Ignored for ``"tree_path_dependent"``.
    feature_perturbation : {"tree_path_dependent", "interventional"}, default "tree_path_dependent"
        ``"tree_path_dependent"`` uses the training covers stored in the trees (no background, fastest);
        ``"interventional"`` breaks feature dependence by replacing absent features with background values,
        which matches ``shap.ExactExplainer`` with an independent masker on ``forest.predict``.
    feature_names : sequence of str, optional
        Defaults to ``forest.feature_names_in_`` or ``x0, x1, ...``.

    Notes
    -----
    The trees are converted once, at construction; :meth:`shap_values` can then be called for any output.
    Cost per patient is :math:`O(\\sum_{\\text{leaves}} m (m/2 + k))` with :math:`m` the number of distinct
    features on a leaf's path and :math:`k` the leaf's number of steps in the requested output (path-dependent;
    the whole survival curve costs about as much as one horizon), or :math:`O(\\sum m^2)` times the number of
    distinct background patterns per leaf plus a matrix product with the leaf values (interventional).
    """

    def __init__(
        self,
        forest: Any,
        background: Any = None,
        feature_perturbation: FeaturePerturbation = "tree_path_dependent",
        feature_names: Sequence[str] | None = None,
    ) -> None:
        if feature_perturbation not in ("tree_path_dependent", "interventional"):
            raise ValueError(
                f"feature_perturbation must be 'tree_path_dependent' or 'interventional', got {feature_perturbation!r}."
            )
        if not hasattr(forest, "estimators_") and not hasattr(forest, "tree_"):
            raise ValueError("forest must be a fitted RandomSurvivalForest or SurvivalTree; call fit first.")
        self.forest = forest
        self.feature_perturbation = feature_perturbation
        self.trees = list(forest.estimators_) if hasattr(forest, "estimators_") else [forest]
        self.n_features = int(forest.n_features_in_)
        if feature_names is None:
            feature_names = getattr(forest, "feature_names_in_", None)
        if feature_names is None:
            feature_names = [f"x{j}" for j in range(self.n_features)]
        self.feature_names = [str(name) for name in feature_names]
        if len(self.feature_names) != self.n_features:
            raise ValueError(f"Got {len(self.feature_names)} feature names for {self.n_features} features.")
        self.low_memory = bool(getattr(self.trees[0], "low_memory", False))
        self.unique_times = np.asarray(forest.unique_times_, dtype=np.float64)
        self.is_event_time = np.asarray(forest.is_event_time_, dtype=bool)
        self._flat = _flatten_forest(self.trees, self.n_features)
        self._tree_leaf_ptr = np.searchsorted(self._flat.leaf_tree, np.arange(len(self.trees) + 1))
        self._table = _shapley_weight_table(max(self._flat.max_path_features, 1))
        self._background_masks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.background: np.ndarray | None = None
        if feature_perturbation == "interventional":
            if background is None:
                raise ValueError("feature_perturbation='interventional' needs background data, e.g. 100 training rows.")
            self.background = self._prepare_X(background)
            self._background_masks = self._group_background(self.background)

    # -- inputs and leaf values --------------------------------------------------------------------------
    def _prepare_X(self, X: Any) -> np.ndarray:
        """Cast to float32 like scikit-learn's trees, then to float64 for exact threshold comparisons."""
        array = np.asarray(X.to_numpy() if isinstance(X, pd.DataFrame) else X, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (n, {self.n_features}), got {array.shape}.")
        return np.ascontiguousarray(array, dtype=np.float64)

    def _group_background(self, background: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        flat = self._flat
        n_leaves = flat.leaf_ptr.size - 1
        masks = np.empty((n_leaves, background.shape[0]), dtype=np.int64)
        _leaf_masks(background, flat.leaf_ptr, flat.rec_feature, flat.rec_lo, flat.rec_hi, flat.rec_nan_ok, masks)
        masks.sort(axis=1)
        is_new = np.ones_like(masks, dtype=bool)
        is_new[:, 1:] = masks[:, 1:] != masks[:, :-1]
        starts = np.flatnonzero(is_new.reshape(-1))
        counts = np.diff(np.append(starts, masks.size))
        bg_ptr = np.concatenate([[0], np.cumsum(is_new.sum(axis=1))]).astype(np.int64)
        return bg_ptr, masks.reshape(-1)[starts], counts / background.shape[0]

    def _output_columns(self, output: str, times: Any) -> tuple[np.ndarray | None, np.ndarray | None, bool]:
        """Columns of unique_times_ for the output, the horizons, and whether the time axis is kept."""
        if output == "risk":
            if times is not None:
                raise ValueError("times applies to output='survival' or 'cumulative_hazard', not 'risk'.")
            return None, None, False
        if output not in ("survival", "cumulative_hazard"):
            raise ValueError(f"output must be 'risk', 'survival' or 'cumulative_hazard', got {output!r}.")
        if self.low_memory:
            raise ValueError(
                "This forest was fitted with low_memory=True and stores only the risk score; "
                "explain output='risk' or refit with low_memory=False to explain survival."
            )
        if times is None:
            return np.arange(self.unique_times.size), self.unique_times.copy(), True
        horizons = np.asarray(times, dtype=np.float64)
        keep_axis = horizons.ndim > 0
        horizons = np.atleast_1d(horizons)
        if not np.all(np.isfinite(horizons)) or horizons.min() < 0 or horizons.max() > self.unique_times[-1]:
            raise ValueError(
                f"times must lie in [0, {self.unique_times[-1]:g}] (the forest's last training time), "
                f"got {horizons.tolist()}."
            )
        # right-continuous step function, as sksurv.functions.StepFunction evaluates it
        columns = np.maximum(np.searchsorted(self.unique_times, horizons, side="right") - 1, 0)
        return columns, horizons, keep_axis

    def leaf_values(self, output: ForestOutput = "risk", times: Any = None) -> np.ndarray:
        """Per-leaf contribution to the forest output: leaf value divided by the number of trees.

        Parameters
        ----------
        output : {"risk", "survival", "cumulative_hazard"}
        times : float or array-like, optional
            Horizons; ``None`` means every time in ``forest.unique_times_``.

        Returns
        -------
        ndarray, shape (n_leaves, n_outputs)
        """
        columns, _, _ = self._output_columns(output, times)
        key = (output, None if columns is None else tuple(columns.tolist()))
        cache = self.__dict__.setdefault("_leaf_value_cache", {})
        if key not in cache:
            cache[key] = self._compute_leaf_values(output, columns)
        return cache[key]

    def _compute_leaf_values(self, output: str, columns: np.ndarray | None) -> np.ndarray:
        flat = self._flat
        n_leaves = flat.leaf_ptr.size - 1
        values = np.empty((n_leaves, 1 if columns is None else columns.size))
        every_column = columns is not None and np.array_equal(columns, np.arange(self.unique_times.size))
        which = 0 if output == "cumulative_hazard" else 1
        for t, tree in enumerate(self.trees):
            leaves = slice(self._tree_leaf_ptr[t], self._tree_leaf_ptr[t + 1])  # leaves are numbered tree by tree
            node_values = tree.tree_.value[flat.leaf_node[leaves]]
            if output == "risk":
                if self.low_memory:
                    values[leaves, 0] = node_values[:, 0, 0]
                else:
                    values[leaves, 0] = node_values[:, self.is_event_time, 0].sum(axis=1)
            else:
                values[leaves] = node_values[:, :, which] if every_column else node_values[:, columns, which]
        values /= len(self.trees)
        return values

    def apply(self, X: Any) -> np.ndarray:
        """Leaf reached by each row in each tree, as indices into :meth:`leaf_values` rows (n x n_trees)."""
        return self._apply_prepared(self._prepare_X(X))

    def _apply_prepared(self, X: np.ndarray) -> np.ndarray:
        flat = self._flat
        leaves = np.empty((X.shape[0], flat.roots.size), dtype=np.int64)
        walk = _apply if X.shape[0] >= _PARALLEL_MIN_ROWS else _apply_serial
        walk(X, flat.roots, flat.left, flat.right, flat.feature, flat.threshold, flat.nan_left, flat.node_leaf, leaves)
        return leaves

    def _leaf_indicator(self, X: np.ndarray) -> sp.csr_matrix:
        flat = self._flat
        leaves = self._apply_prepared(X)
        n, n_trees = leaves.shape
        indptr = np.arange(0, n * n_trees + 1, n_trees)
        return sp.csr_matrix((np.ones(n * n_trees), leaves.reshape(-1), indptr), shape=(n, flat.leaf_ptr.size - 1))

    def predict(self, X: Any, output: ForestOutput = "risk", times: Any = None) -> np.ndarray:
        """Forest output from the converted trees (equals the forest's own predictions).

        Parameters
        ----------
        X : array-like, shape (n, p)
        output : {"risk", "survival", "cumulative_hazard"}
        times : float or array-like, optional

        Returns
        -------
        ndarray, shape (n,) or (n, n_times)
        """
        _, _, keep_axis = self._output_columns(output, times)
        prediction = self._leaf_indicator(self._prepare_X(X)) @ self.leaf_values(output, times)
        return prediction if keep_axis else prediction[:, 0]

    # -- SHAP ----------------------------------------------------------------------------------------------
    def _interventional_values(self, X: np.ndarray, values: np.ndarray) -> np.ndarray:
        """SHAP values (n, p, n_outputs): per-record Shapley weights times the leaf values, in row blocks."""
        flat = self._flat
        n, p = X.shape[0], self.n_features
        # columns of the weight matrix are grouped by feature: phi[:, f] = W[:, block_f] @ V[leaves of block_f]
        if "_block_leaves" not in self.__dict__:
            self._block_leaves = [
                flat.rec_leaf[flat.col_rec[flat.feature_ptr[f] : flat.feature_ptr[f + 1]]] for f in range(p)
            ]
        block_cache = self.__dict__.setdefault("_block_value_cache", {})
        if id(values) not in block_cache:  # leaf values are cached, so their identity is a key
            block_cache[id(values)] = (values, [values[leaves] for leaves in self._block_leaves])
        block_values = block_cache[id(values)][1]
        assert self._background_masks is not None  # set in __init__ whenever interventional
        bg_ptr, bg_mask, bg_weight = self._background_masks
        phi = np.zeros((n, p, values.shape[1]))
        rows_per_block = max(1, _WEIGHT_BLOCK_BYTES // (8 * max(flat.rec_col.size, 1)))
        for start in range(0, n, rows_per_block):
            stop = min(n, start + rows_per_block)
            weights = np.empty((stop - start, flat.rec_col.size))
            _interventional_weights(
                X[start:stop], flat.leaf_ptr, flat.rec_feature, flat.rec_lo, flat.rec_hi, flat.rec_nan_ok,
                flat.rec_col, bg_ptr, bg_mask, bg_weight, self._table, weights,
            )  # fmt: skip
            for f in range(p):
                lo, hi = flat.feature_ptr[f], flat.feature_ptr[f + 1]
                if hi > lo:
                    phi[start:stop, f] = weights[:, lo:hi] @ block_values[f]
        return phi

    def _increments(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Leaf values as sparse steps along the output columns (CSR: leaf -> column, step), cached per output.

        The steps are those of ``values - c`` with ``c`` the most common value in the first column (for the whole
        survival curve ``1 / n_trees``: no event at the first grid time). Shifting every leaf of a tree by the same
        constant leaves the path-dependent SHAP values unchanged (a constant tree's game is zero for every
        feature: each feature's leaf weights sum to zero over the tree), and most leaves then have no step in the
        first column: about 7.2 -> 6.2 steps per leaf for survival at 100,000 rows, and leaves without events need
        no work at all. Base values and predictions use the unshifted values.
        """
        cache = self.__dict__.setdefault("_increment_cache", {})
        if id(values) not in cache:  # leaf values are cached, so their identity is a key
            first, counts = np.unique(values[:, 0], return_counts=True)
            shift = float(first[np.argmax(counts)]) if first.size else 0.0
            ptr = np.zeros(values.shape[0] + 1, dtype=np.int64)
            _leaf_steps(values, shift, ptr, ptr[:0], values[:0, 0])  # steps per leaf
            np.cumsum(ptr, out=ptr)
            cols, steps = np.empty(ptr[-1], dtype=np.int64), np.empty(ptr[-1])
            _leaf_steps(values, shift, ptr, cols, steps)
            cache[id(values)] = (values, (ptr, cols, steps))
        return cache[id(values)][1]

    def _path_dependent_values(self, X: np.ndarray, values: np.ndarray) -> np.ndarray:
        """SHAP values (n, p, n_outputs) from one walk of every tree per block of patients (see the module notes)."""
        flat = self._flat
        if "_max_depth" not in self.__dict__:
            self._max_depth = int(_max_depth(flat.roots, flat.left, flat.right))
        inc_ptr, inc_col, inc_val = self._increments(values)
        gl_nodes, gl_weights = _gauss_legendre_rules(int(flat.node_order.max(initial=1)))
        out = np.empty((X.shape[0], self.n_features, values.shape[1]))
        block = int(np.clip(_SHAP_BLOCK_BYTES // (8 * self.n_features * values.shape[1]), 8, _SHAP_BLOCK_ROWS))
        _path_dependent_curves(
            X, flat.roots, flat.left, flat.right, flat.feature, flat.threshold, flat.nan_left, flat.cover,
            flat.node_leaf, flat.node_order, inc_ptr, inc_col, inc_val, gl_nodes, gl_weights, self._max_depth,
            block, out,
        )  # fmt: skip
        return out

    def base_values(self, output: ForestOutput = "risk", times: Any = None) -> np.ndarray:
        """Expected output: cover-weighted (path-dependent) or background mean (interventional).

        Parameters
        ----------
        output : {"risk", "survival", "cumulative_hazard"}
        times : float or array-like, optional

        Returns
        -------
        ndarray, shape (n_outputs,)
        """
        values = self.leaf_values(output, times)
        cache = self.__dict__.setdefault("_base_value_cache", {})
        key = id(values)  # leaf values are cached per output and horizons, so their identity is a key
        if key not in cache:
            if self.feature_perturbation == "tree_path_dependent":
                cache[key] = (values, self._flat.leaf_prob @ values)
            else:
                assert self.background is not None  # set in __init__ whenever interventional
                weights = np.asarray(self._leaf_indicator(self.background).mean(axis=0)).ravel()
                cache[key] = (values, weights @ values)
        return cache[key][1]

    def shap_values(self, X: Any, output: ForestOutput = "risk", times: Any = None) -> ShapResult:
        """Exact SHAP values of the forest output for each row of ``X``.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n, p)
            Patients to explain (design-matrix columns, in the forest's column order).
        output : {"risk", "survival", "cumulative_hazard"}, default "risk"
            ``"risk"`` explains ``forest.predict``; ``"survival"`` explains :math:`S(t \\mid x)` and
            ``"cumulative_hazard"`` :math:`H(t \\mid x)` at ``times``.
        times : float or array-like, optional
            A scalar horizon gives values of shape (n, p); an array gives (n, p, n_times); ``None`` (survival
            or CHF only) explains the whole curve on ``forest.unique_times_``.

        Returns
        -------
        ShapResult
            With ``base_values + values.sum(axis=1) == predictions`` to floating-point rounding.

        Raises
        ------
        ValueError
            If a horizon lies outside the training times, or survival output is requested from a
            ``low_memory=True`` forest.
        """
        _, horizons, keep_axis = self._output_columns(output, times)
        frame = _as_frame(X, self.feature_names)
        X64 = self._prepare_X(frame)
        values = self.leaf_values(output, times)
        if self.feature_perturbation == "tree_path_dependent":
            phi = self._path_dependent_values(X64, values)
        else:
            phi = self._interventional_values(X64, values)
        predictions = self._leaf_indicator(X64) @ values
        base = self.base_values(output, times)
        base_value: float | np.ndarray = base
        if not keep_axis:
            phi, predictions, base_value = phi[:, :, 0], predictions[:, 0], float(base[0])
        return ShapResult(
            values=phi,
            base_values=base_value,
            predictions=predictions,
            feature_names=list(self.feature_names),
            data=pd.DataFrame(X64, columns=self.feature_names, index=frame.index),
            output=output,
            times=None if horizons is None else (horizons if keep_axis else np.asarray(horizons[0])),
            meta={"feature_perturbation": self.feature_perturbation, "model": type(self.forest).__name__},
        )

    def to_shap_model(self, output: ForestOutput = "risk", times: Any = None) -> dict[str, Any]:
        """The forest in shap's custom tree-ensemble format, for ``shap.TreeExplainer``.

        Each tree is a dict of ``children_left``, ``children_right``, ``children_default``, ``features``,
        ``thresholds``, ``values`` and ``node_sample_weight``. Leaf values are the tree's output divided by
        the number of trees; internal nodes hold the cover-weighted mean of their leaves, which is what shap
        uses for the path-dependent expected value. Pass inputs to shap cast to float32 (then float64), as
        :meth:`shap_values` does, so that thresholds are compared exactly as in scikit-learn.

        Parameters
        ----------
        output : {"risk", "survival", "cumulative_hazard"}
        times : float or array-like, optional

        Returns
        -------
        dict
            ``{"trees": [...], "input_dtype": np.float64, "internal_dtype": np.float64}``.
        """
        leaf_values = self.leaf_values(output, times)
        flat = self._flat
        trees = []
        for t, tree in enumerate(self.trees):
            tree_ = tree.tree_
            cover = tree_.weighted_n_node_samples.astype(np.float64)
            left, right = tree_.children_left, tree_.children_right
            node_values = np.zeros((tree_.node_count, leaf_values.shape[1]))
            leaves = slice(self._tree_leaf_ptr[t], self._tree_leaf_ptr[t + 1])  # leaves are numbered tree by tree
            node_values[flat.leaf_node[leaves]] = leaf_values[leaves]
            for node in range(tree_.node_count - 1, -1, -1):  # children have larger ids than parents
                if left[node] >= 0:
                    node_values[node] = (
                        cover[left[node]] * node_values[left[node]] + cover[right[node]] * node_values[right[node]]
                    ) / (cover[left[node]] + cover[right[node]])
            nan_left = np.asarray(getattr(tree_, "missing_go_to_left", np.zeros(tree_.node_count)), dtype=bool)
            trees.append(
                {
                    "children_left": left.astype(np.int32),
                    "children_right": right.astype(np.int32),
                    "children_default": np.where(nan_left, left, right).astype(np.int32),
                    "features": np.where(left >= 0, tree_.feature, -2).astype(np.int32),
                    "thresholds": tree_.threshold.astype(np.float64),
                    "values": node_values,
                    "node_sample_weight": cover,
                }
            )
        return {"trees": trees, "input_dtype": np.float64, "internal_dtype": np.float64}


# ----------------------------------------------------------------------------------------------------------
# Cox
# ----------------------------------------------------------------------------------------------------------
class CoxExplainer:
    """Exact SHAP values for a Cox model, or for any model whose survival is a function of linear indices.

    Parameters
    ----------
    coef : array-like, shape (p,), fitted CoxPHSurvivalAnalysis / CoxnetSurvivalAnalysis, or a linear-index model
        Coefficients :math:`\\beta`. From a fitted sksurv Cox model they are read through its public ``predict``
        (:math:`\\beta_j` = predict(e_j) - predict(0)), which also gives the model's offset, so the linear
        predictor explained is exactly ``model.predict``. A *linear-index model* is any fitted estimator with
        ``index_coefs_`` (p, K), ``index_offsets_`` (K,) and ``survival_from_indices(eta, times)`` giving
        :math:`S(t \\mid x) = g(\\eta)` with :math:`\\eta = x^\\top B + b` (K = 1 for a Cox model; the two-part
        model has K = 2: log-odds of CR and post-CR log hazard; a stack concatenates its members' indices).
    background : array-like, shape (n_background, p)
        Reference patients; absent features take their values (interventional Shapley values).
    baseline_survival : tuple (times, s0) or fitted sksurv Cox model, optional
        Needed for ``output="survival"`` of a Cox model. A tuple gives :math:`S_0` on ``times`` such that
        :math:`S(t \\mid x) = S_0(t)^{\\exp(\\beta^\\top x)}`; a fitted model (Coxnet needs
        ``fit_baseline_model=True``) is evaluated through its ``predict_survival_function``. Not used for a
        linear-index model (it carries its own survival function).
    feature_names : sequence of str, optional
    groups : mapping of str to str, optional
        Column -> clinical variable; the columns of a variable enter and leave coalitions together, so the
        survival attributions are Shapley values of the game over variables. Ungrouped columns are their
        own player.
    n_permutations : int, default 256
        Permutations sampled when there are more than ``MAX_EXACT_GROUPS`` players.
    random_state : int, optional
        Seed for permutation sampling.

    Notes
    -----
    The linear predictor is additive, so its interventional SHAP values are exactly
    :math:`\\beta_j (x_j - \\bar{z}_j)` with base :math:`\\beta^\\top \\bar{z}` (+ offset).
    :math:`S(t \\mid x) = g(\\eta(x))` is not: with at most ``MAX_EXACT_GROUPS`` players the value of
    every coalition :math:`T` is computed exactly as the background mean of
    :math:`g(\\sum_{G \\in T} B_G^\\top x_G + \\sum_{G \\notin T} B_G^\\top z_G + b)`, costing
    :math:`2^q \\times n_{background}` evaluations per patient, and Shapley values follow from the subset
    formula. A player whose coefficients are all zero changes no coalition's value, so its Shapley value is
    exactly 0 (the null-player property) and it is left out of the enumeration. With more players,
    permutations are sampled (``shap.PermutationExplainer`` cannot keep one-hot columns together); each
    permutation telescopes, so additivity still holds exactly, but the values are estimates
    (``ShapResult.exact`` is ``False``).
    """

    def __init__(
        self,
        coef: Any,
        background: Any,
        baseline_survival: Any = None,
        *,
        feature_names: Sequence[str] | None = None,
        groups: Mapping[str, str] | None = None,
        n_permutations: int = 256,
        random_state: int | None = None,
    ) -> None:
        self.background_frame = _as_frame(background, feature_names)
        self.background = self.background_frame.to_numpy(dtype=np.float64)
        p = self.background.shape[1]
        self.feature_names = [str(c) for c in self.background_frame.columns]
        self.index_model = coef if hasattr(coef, "survival_from_indices") else None
        self.model = coef if hasattr(coef, "predict") and self.index_model is None else None
        if self.index_model is not None:
            self.index_coefs = np.asarray(self.index_model.index_coefs_, dtype=np.float64)
            self.index_offsets = np.asarray(self.index_model.index_offsets_, dtype=np.float64)
        elif self.model is not None:
            zero_row = self._model_frame(np.zeros((1, p)))
            offset = float(self.model.predict(zero_row)[0])
            self.index_coefs = (self.model.predict(self._model_frame(np.eye(p))) - offset)[:, None]
            self.index_offsets = np.array([offset])
        else:
            self.index_coefs = np.asarray(coef, dtype=np.float64).reshape(-1, 1)
            self.index_offsets = np.zeros(1)
        if self.index_coefs.shape[0] != p:
            raise ValueError(f"coef has {self.index_coefs.shape[0]} entries but background has {p} columns.")
        self.baseline_survival = baseline_survival
        self.groups = dict(groups or {})
        unknown = set(self.groups) - set(self.feature_names)
        if unknown:
            raise ValueError(f"groups names columns that are not features: {sorted(unknown)}")
        self.n_permutations = n_permutations
        self.random_state = random_state

    @property
    def coef(self) -> np.ndarray:
        """Coefficients of the linear predictor (models with one linear index)."""
        if self.index_coefs.shape[1] != 1:
            raise ValueError(
                f"this model has {self.index_coefs.shape[1]} linear indices, not one linear predictor: explain "
                "output='survival'"
            )
        return self.index_coefs[:, 0]

    @property
    def offset(self) -> float:
        return float(self.index_offsets[0])

    def _model_frame(self, X: np.ndarray) -> Any:
        names = getattr(self.model, "feature_names_in_", None)
        return pd.DataFrame(X, columns=names) if names is not None else X

    def _baseline_at(self, horizons: np.ndarray) -> np.ndarray:
        """Survival at each horizon for a patient with linear predictor ``coef @ x = 0``."""
        baseline = self.baseline_survival
        if baseline is None:
            raise ValueError("output='survival' needs baseline_survival=(times, s0) or a fitted Cox model.")
        if hasattr(baseline, "predict_survival_function"):
            zero_row = np.zeros((1, self.index_coefs.shape[0]))
            names = getattr(baseline, "feature_names_in_", None)
            frame = zero_row if names is None else pd.DataFrame(zero_row, columns=names)
            try:
                curve = baseline.predict_survival_function(frame)[0]
            except ValueError as error:
                raise ValueError(
                    f"Cannot get the baseline survival from {type(baseline).__name__} ({error}); fit "
                    "CoxnetSurvivalAnalysis with fit_baseline_model=True or pass (times, s0)."
                ) from error
            # the model's S(t | x = 0) is the baseline of S(t | x) = s0(t) ** exp(coef @ x)
            return np.asarray(curve(horizons), dtype=np.float64).reshape(-1)
        times, s0 = (np.asarray(a, dtype=np.float64) for a in baseline)
        index = np.searchsorted(times, horizons, side="right") - 1
        return np.where(index >= 0, s0[np.maximum(index, 0)], 1.0)

    def _survival_function(self, horizons: np.ndarray) -> Any:
        """``g``: linear indices without their offsets, shape (..., K) -> survival at ``horizons`` (..., T)."""
        if self.index_model is not None:
            model, offsets = self.index_model, self.index_offsets

            def of_indices(eta: np.ndarray) -> np.ndarray:
                return model.survival_from_indices(eta + offsets, horizons)

            return of_indices
        log_s0 = np.log(np.clip(self._baseline_at(horizons), np.finfo(float).tiny, None))

        def cox(eta: np.ndarray) -> np.ndarray:
            return np.exp(np.exp(eta[..., 0])[..., None] * log_s0)

        return cox

    def _players(self) -> tuple[list[str], np.ndarray]:
        variable_of = [self.groups.get(name, name) for name in self.feature_names]
        players = list(dict.fromkeys(variable_of))
        index = {v: i for i, v in enumerate(players)}
        return players, np.asarray([index[v] for v in variable_of])

    def shap_values(
        self, X: Any, output: Literal["linear_predictor", "survival"] = "linear_predictor", times: Any = None
    ) -> ShapResult:
        """SHAP values of the linear predictor or of the survival probability.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n, p)
        output : {"linear_predictor", "survival"}, default "linear_predictor"
            The linear predictor exists for models with one linear index only.
        times : float or array-like
            Horizon(s) for ``output="survival"``.

        Returns
        -------
        ShapResult
            Linear predictor: one value per column. Survival: one value per player (group or ungrouped
            column); feature names are the player names.
        """
        frame = _as_frame(X, self.feature_names)
        X64 = frame.to_numpy(dtype=np.float64)
        if output == "linear_predictor":
            mean = self.background.mean(axis=0)
            return ShapResult(
                values=self.coef * (X64 - mean),
                base_values=float(self.coef @ mean + self.offset),
                predictions=X64 @ self.coef + self.offset,
                feature_names=list(self.feature_names),
                data=frame.copy(),
                output=output,
            )
        if output != "survival":
            raise ValueError(f"output must be 'linear_predictor' or 'survival', got {output!r}.")
        if times is None:
            raise ValueError("output='survival' needs times (a horizon or an array of horizons).")
        horizons = np.asarray(times, dtype=np.float64)
        keep_axis = horizons.ndim > 0
        horizons = np.atleast_1d(horizons)
        survival = self._survival_function(horizons)
        players, player_of = self._players()
        q = len(players)
        p = self.index_coefs.shape[0]
        membership = np.zeros((p, q))
        membership[np.arange(p), player_of] = 1.0
        # contribution of each player to each linear index, for the patients (n, q, K) and the background
        contrib_x = np.einsum("np,pk,pq->nqk", X64, self.index_coefs, membership)
        contrib_bg = np.einsum("mp,pk,pq->mqk", self.background, self.index_coefs, membership)
        active = np.flatnonzero(np.abs(membership.T @ np.abs(self.index_coefs)).sum(axis=1) > 0)
        exact = len(active) <= MAX_EXACT_GROUPS
        # null players (all coefficients 0) add nothing to any coalition: their Shapley value is 0
        if exact:
            phi_active = _exact_index_game_shap(contrib_x[:, active], contrib_bg[:, active], survival)
        else:
            phi_active = self._permutation_survival_shap(contrib_x[:, active], contrib_bg[:, active], survival)
        phi = np.zeros((len(X64), q, len(horizons)))
        phi[:, active] = phi_active
        base = survival(contrib_bg.sum(axis=1)).mean(axis=0)
        predictions = survival(contrib_x.sum(axis=1))
        data = _variable_data(frame, [self.groups.get(c, c) for c in self.feature_names], players)
        base_value: float | np.ndarray = base
        if not keep_axis:
            phi, predictions, base_value = phi[:, :, 0], predictions[:, 0], float(base[0])
        return ShapResult(
            values=phi,
            base_values=base_value,
            predictions=predictions,
            feature_names=players,
            data=data,
            output=output,
            times=horizons if keep_axis else np.asarray(horizons[0]),
            exact=exact,
            meta={"groups": dict(self.groups), "n_permutations": None if exact else self.n_permutations},
        )

    def _permutation_survival_shap(self, contrib_x: np.ndarray, contrib_bg: np.ndarray, survival: Any) -> np.ndarray:
        rng = np.random.default_rng(self.random_state)
        n, q, _ = contrib_x.shape
        phi = None
        for _ in range(self.n_permutations):
            order = rng.permutation(q)
            eta = np.repeat(contrib_bg.sum(axis=1)[None, :, :], n, axis=0)  # (n, n_background, K)
            previous = survival(eta).mean(axis=1)
            if phi is None:
                phi = np.zeros((n, q, previous.shape[1]))
            for g in order:
                eta = eta + (contrib_x[:, g][:, None, :] - contrib_bg[:, g][None, :, :])
                current = survival(eta).mean(axis=1)
                phi[:, g] += current - previous
                previous = current
        return phi / self.n_permutations if phi is not None else np.zeros((n, q, 0))


#: Coalition values evaluated at once by :func:`_exact_index_game_shap` (bounds its arrays to a few MB).
_COALITION_BLOCK = 1 << 16


def _coalition_weights(d: int) -> np.ndarray:
    """Shapley weights of the ``2^d`` coalitions of ``d`` players, shape (2^d, d).

    Coalition ``S`` is the bit mask ``S`` (player ``j`` is bit ``j``); ``weights[S, j] = (|S|-1)! (d-|S|)! / d!``
    when ``j`` is in ``S`` and ``-|S|! (d-|S|-1)! / d!`` when it is not, so that ``weights.T @ v`` is every
    player's Shapley value of the game with coalition values ``v``.
    """
    in_coalition = ((np.arange(1 << d)[:, None] >> np.arange(d)) & 1).astype(bool)
    sizes = in_coalition.sum(axis=1)
    table = _shapley_weight_table(d)
    with_player = table[d, np.maximum(sizes - 1, 0)][:, None]
    without_player = table[d, np.minimum(sizes, d - 1)][:, None]
    return np.where(in_coalition, with_player, -without_player)


def _exact_index_game_shap(contrib_x: np.ndarray, contrib_bg: np.ndarray, survival: Any) -> np.ndarray:
    """Exact interventional Shapley values of ``survival(sum of the players' linear-index contributions)``.

    Parameters
    ----------
    contrib_x : (n, q, K) array
        Each player's contribution to each of the K linear indices, for the explained patients.
    contrib_bg : (m, q, K) array
        The same for the background patients.
    survival : callable
        ``(..., K)`` indices -> ``(..., T)`` outputs.

    Returns
    -------
    (n, q, T) array

    Notes
    -----
    The game of patient ``x`` is the background mean of one game per background patient ``z``,
    :math:`v_z(S) = g(\\sum_{G \\in S} c_G(x) + \\sum_{G \\notin S} c_G(z))`, and Shapley values are linear in
    the game, so :math:`\\phi(x) = \\frac{1}{m} \\sum_z \\phi(v_z)`. In :math:`v_z` a player whose contribution is
    the same for ``x`` and ``z`` (same category, same value) never changes a coalition's value: it is a null
    player, its Shapley value is 0, and removing it leaves every other player's Shapley value unchanged. So each
    pair (x, z) is solved exactly over its ``d`` differing players only: ``2^d`` evaluations of ``g`` instead
    of ``2^q`` (on the shipped model about 120 instead of 8,192 on average), pairs with the same ``d``
    together. The coalitions' indices are built by doubling (adding player ``j`` to the first ``2^j``
    coalitions gives the next ``2^j``), one addition per coalition. No BLAS call, so the cost does not depend
    on the BLAS thread count. The per-patient enumeration of all ``2^q`` coalitions it replaces is kept in the
    tests, which compare the two.
    """
    n, q, n_indices = contrib_x.shape
    bg_total = contrib_bg.sum(axis=1)  # (m, K): every pair's empty coalition
    phi = np.zeros((n, q, survival(bg_total[:1]).shape[-1]))
    differs = (contrib_x[:, None] != contrib_bg[None]).any(axis=3)  # (n, m, q)
    n_differing = differs.sum(axis=2)
    for d in map(int, np.unique(n_differing[n_differing > 0])):
        patient, background = np.nonzero(n_differing == d)
        players = np.nonzero(differs[patient, background])[1].reshape(-1, d)  # each pair's players, ascending
        weights = _coalition_weights(d)
        block = max(1, _COALITION_BLOCK >> d)
        for start in range(0, len(patient), block):
            i, z, g = (a[start : start + block] for a in (patient, background, players))
            delta = contrib_x[i[:, None], g] - contrib_bg[z[:, None], g]  # (pairs, d, K)
            eta = np.empty((1 << d, len(i), n_indices))  # (coalition, pair, K)
            eta[0] = bg_total[z]
            for j in range(d):
                np.add(eta[: 1 << j], delta[:, j], out=eta[1 << j : 2 << j])
            shapley = np.einsum("cd,cpt->pdt", weights, survival(eta))  # (pairs, d, T)
            np.add.at(phi, (i[:, None], g), shapley)
    return phi / len(contrib_bg)


# ----------------------------------------------------------------------------------------------------------
# Plots
# ----------------------------------------------------------------------------------------------------------
def _pyplot() -> Any:
    """pyplot on the non-interactive Agg backend (plots are only ever written to files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_atomic(fig: Any, path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG to a temporary file beside ``path``, then rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=".png")
    os.close(handle)
    try:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        os.replace(tmp, target)
    finally:
        _pyplot().close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def _output_label(result: ShapResult) -> str:
    if result.output in ("survival", "cumulative_hazard") and result.times is not None and np.ndim(result.times) == 0:
        days = float(result.times)
        name = "EFS" if result.output == "survival" else "cumulative hazard"
        return f"{name} at {days / DAYS_PER_MONTH:.0f} months ({days:g} days)"
    return result.output.replace("_", " ")


def _two_dimensional(result: ShapResult) -> ShapResult:
    if result.has_time_axis:
        raise ValueError("The result has a time axis; select a horizon first, e.g. result.select_time(182.625).")
    return result


def plot_waterfall(
    result: ShapResult,
    row: int,
    path: str | os.PathLike,
    max_display: int = 10,
    raw_values: Sequence[Any] | None = None,
    label: str | None = None,
) -> Path:
    """Waterfall of one patient: baseline, each variable's push, and the final prediction.

    Parameters
    ----------
    result : ShapResult
        A 2-d result (one horizon), e.g. ``explainer.shap_values(X, "survival", 182.625)``.
    row : int
        Patient (row position) to draw.
    path : path-like
        PNG file to write (atomically).
    max_display : int, default 10
        Variables shown; the rest are summed into one bar.
    raw_values : sequence, optional
        Values to print beside the variable names (e.g. unscaled clinical values), one per feature.
    label : str, optional
        How to name the patient in the title (e.g. the patient_id); default "Patient <row>".

    Returns
    -------
    Path
    """
    import shap

    plt = _pyplot()
    result = _two_dimensional(result)
    explanation = result.to_explanation(row)
    if raw_values is not None:
        if len(raw_values) != len(result.feature_names):
            raise ValueError(f"raw_values needs {len(result.feature_names)} entries, got {len(raw_values)}.")
        explanation.display_data = np.asarray(raw_values, dtype=object)
    plt.figure()
    shap.plots.waterfall(explanation, max_display=max_display, show=False)
    fig = plt.gcf()
    fig.suptitle(f"{label or f'Patient {row}'}: {_output_label(result)}", y=1.02)
    return _save_atomic(fig, path)


def plot_beeswarm(result: ShapResult, path: str | os.PathLike, max_display: int = 15) -> Path:
    """Beeswarm of SHAP values per variable, coloured by the variable's value.

    Parameters
    ----------
    result : ShapResult
        A 2-d result.
    path : path-like
        PNG file to write.
    max_display : int, default 15

    Returns
    -------
    Path
    """
    import shap

    return _summary_plot(shap.plots.beeswarm, result, path, max_display, "SHAP values")


def _summary_plot(plot: Any, result: ShapResult, path: str | os.PathLike, max_display: int, title: str) -> Path:
    plt = _pyplot()
    explanation = _two_dimensional(result).to_explanation()
    plt.figure()
    plot(explanation, max_display=max_display, show=False)
    fig = plt.gcf()
    fig.suptitle(f"{title}: {_output_label(result)}")
    return _save_atomic(fig, path)


def plot_bar(result: ShapResult, path: str | os.PathLike, max_display: int = 15) -> Path:
    """Bar chart of mean absolute SHAP value per variable.

    Parameters
    ----------
    result : ShapResult
        A 2-d result.
    path : path-like
        PNG file to write.
    max_display : int, default 15

    Returns
    -------
    Path
    """
    import shap

    return _summary_plot(shap.plots.bar, result, path, max_display, "Mean |SHAP|")


def plot_dependence(result: ShapResult, feature: str, path: str | os.PathLike, xlabel: str | None = None) -> Path:
    """SHAP value of one variable against its value, across patients.

    Parameters
    ----------
    result : ShapResult
        A 2-d result.
    feature : str
        Variable to draw.
    path : path-like
        PNG file to write.
    xlabel : str, optional
        Axis label for the variable's values (default: its name).

    Returns
    -------
    Path
    """
    result = _two_dimensional(result)
    if feature not in result.feature_names:
        raise ValueError(f"Unknown feature {feature!r}; choose one of {result.feature_names}.")
    j = result.feature_names.index(feature)
    column = result.data[feature]
    numeric = pd.to_numeric(column, errors="coerce")
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    if numeric.notna().all():
        ax.scatter(numeric, result.values[:, j], s=12, alpha=0.7)
    else:
        categories = pd.Categorical(column.astype(str))
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, size=len(column))
        ax.scatter(categories.codes + jitter, result.values[:, j], s=12, alpha=0.7)
        ax.set_xticks(range(len(categories.categories)), categories.categories, rotation=30, ha="right")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel(xlabel or feature)
    ax.set_ylabel(f"SHAP value ({_output_label(result)})")
    return _save_atomic(fig, path)
