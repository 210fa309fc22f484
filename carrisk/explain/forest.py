"""Exact TreeSHAP for scikit-survival random survival forests: :class:`ForestExplainer` (see :mod:`carrisk.explain`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from carrisk.explain._kernels import (
    _apply,
    _apply_serial,
    _flatten_forest,
    _gauss_legendre_rules,
    _interventional_weights,
    _leaf_masks,
    _leaf_steps,
    _max_depth,
    _path_dependent_curves,
    _shapley_weight_table,
)
from carrisk.explain.result import ShapResult, _as_frame

ForestOutput = Literal["risk", "survival", "cumulative_hazard"]
FeaturePerturbation = Literal["tree_path_dependent", "interventional"]

#: Memory budget for one block of per-record Shapley weights (patients x records, float64).
_WEIGHT_BLOCK_BYTES = 128 * 2**20
#: Patients walked through the trees together by the path-dependent kernel (at most; see _SHAP_BLOCK_BYTES).
_SHAP_BLOCK_ROWS = 128
#: Memory budget of one block's SHAP accumulator (features x outputs x patients, float64) per thread.
_SHAP_BLOCK_BYTES = 4 * 2**20
#: Below this many rows the compiled tree walk runs serially (thread start-up dominates otherwise).
_PARALLEL_MIN_ROWS = 64


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
        """SHAP values (n, p, n_outputs) from one walk of every tree per block of patients (see the package notes)."""
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
