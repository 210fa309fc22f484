"""Histogram random survival forest for registry-size data: comprisk's numba kernel behind scikit-survival's tree API.

:class:`HistForest` fits comprisk's ``CompetingRiskForest`` (features binned to at most 256 levels, log-rank
splits from per-bin event and at-risk counts, trees grown in parallel threads) on a single-cause survival target
and converts every fitted tree into the arrays a scikit-learn tree exposes (``tree_.children_left``, ``feature``,
``threshold``, ``weighted_n_node_samples``, ``value``). Everything in carrisk that reads a scikit-survival forest
(exact TreeSHAP in :mod:`carrisk.explain`, the infinitesimal-jackknife intervals in :mod:`carrisk.intervals`)
therefore reads this forest unchanged.

Conversions (each checked by the tests):

- comprisk sends a row left when its bin index is <= the split bin, i.e. when ``x < edges[bin]`` (bins come from
  ``searchsorted(edges, x, side="right")``); scikit-learn sends it left when ``x <= threshold``, so the threshold
  is the largest float64 below the edge. Inputs are cast to float32 before fitting and predicting, as
  scikit-learn's trees and the explainer do, so all three see the same numbers.
- Leaves keep comprisk's event and at-risk counts on the time grid; the leaf cumulative hazard is Nelson-Aalen and
  the leaf survival Kaplan-Meier (scikit-survival's ``value[..., 0]`` and ``value[..., 1]``). The forest survival is the
  mean of the trees' Kaplan-Meier curves, the risk the mean cumulative hazard summed over the grid, as in
  scikit-survival.
- Covers (``weighted_n_node_samples``) are the bootstrap counts: a leaf's at-risk count at the first grid time
  (every row of the leaf), an internal node's the sum of its children's.
- In-bag counts (``inbag_counts_``): comprisk keeps each tree's out-of-bag rows but not its bootstrap counts; the
  draw is replayed from the seed and checked against the stored out-of-bag rows, so a change in comprisk's sampling
  raises instead of giving wrong intervals.

Training times must already lie on the grid (:class:`carrisk.models.SurvivalForest` coarsens them upwards to at
most ``max_times`` event-time quantiles first), so comprisk's own time grid is exactly the distinct event times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: comprisk's limit on the leaf time grid.
MAX_GRID_TIMES = 65_535
#: Coarse time bins of the log-rank split statistic (comprisk's default). At 20,000 rows the full 200-time grid
#: gave held-out C 0.7261 vs 0.7266 with 10 bins, 15x slower (benchmarks/results/scale.json, "split_settings").
SPLIT_TIMES = 10


def require_comprisk() -> Any:
    try:
        import comprisk
    except ImportError as err:  # pragma: no cover - the scale extra is installed in development
        raise ImportError(
            "engine='hist' needs comprisk: pip install 'carrisk[scale]' (or pip install comprisk)"
        ) from err
    return comprisk


def resolve_max_features(max_features: str | float | int | None, n_features: int) -> int:
    """Features tried per split, by scikit-learn's rule ("sqrt" rounds down; comprisk's own rule rounds up)."""
    if max_features is None:
        return n_features
    if max_features == "sqrt":
        return max(1, int(np.sqrt(n_features)))
    if max_features == "log2":
        return max(1, int(np.log2(n_features)))
    if isinstance(max_features, (int, np.integer)) and not isinstance(max_features, bool):
        return max(1, min(int(max_features), n_features))
    if isinstance(max_features, float) and 0 < max_features <= 1:
        return max(1, int(max_features * n_features))
    raise ValueError(f"max_features must be 'sqrt', 'log2', None, an int or a fraction in (0, 1], got {max_features!r}")


@dataclass
class _TreeArrays:
    """The subset of ``sklearn.tree._tree.Tree`` that carrisk's explainer reads; ``value`` is built on access from
    sparse leaf counts (dense float64 tables would take 1.6 GB at 100,000 rows x 100 trees)."""

    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_go_to_left: np.ndarray
    weighted_n_node_samples: np.ndarray
    leaf_of_node: np.ndarray  # leaf index, -1 for internal nodes
    n_times: int
    # nonzero cells of the (n_leaves, n_times) tables of bootstrap-weighted exits (events + censorings) and events
    cell_leaf: np.ndarray
    cell_time: np.ndarray
    cell_exits: np.ndarray
    cell_events: np.ndarray

    @property
    def node_count(self) -> int:
        return int(self.children_left.size)

    def leaf_curves(self) -> tuple[np.ndarray, np.ndarray]:
        """Nelson-Aalen cumulative hazard and Kaplan-Meier survival of every leaf, (n_leaves, n_times) each."""
        n_leaves = int(self.leaf_of_node.max()) + 1
        exits = np.zeros((n_leaves, self.n_times))
        events = np.zeros((n_leaves, self.n_times))
        exits[self.cell_leaf, self.cell_time] = self.cell_exits
        events[self.cell_leaf, self.cell_time] = self.cell_events
        at_risk = np.cumsum(exits[:, ::-1], axis=1)[:, ::-1]
        hazard = np.divide(events, at_risk, out=np.zeros_like(events), where=at_risk > 0)
        return np.cumsum(hazard, axis=1), np.cumprod(1.0 - hazard, axis=1)

    @property
    def value(self) -> np.ndarray:
        """(node_count, n_times, 2): cumulative hazard and survival of every leaf (zeros at internal nodes)."""
        chf, survival = self.leaf_curves()
        out = np.zeros((self.node_count, chf.shape[1], 2))
        is_leaf = self.leaf_of_node >= 0
        out[is_leaf, :, 0] = chf[self.leaf_of_node[is_leaf]]
        out[is_leaf, :, 1] = survival[self.leaf_of_node[is_leaf]]
        return out

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Leaf index (into the leaf tables) reached by each row of float64 ``X``; left when ``x <= threshold``."""
        node = np.zeros(X.shape[0], dtype=np.int64)
        active = np.arange(X.shape[0])
        while active.size:
            current = node[active]
            go_left = X[active, self.feature[current]] <= self.threshold[current]
            node[active] = np.where(go_left, self.children_left[current], self.children_right[current])
            active = active[self.children_left[node[active]] >= 0]
        return self.leaf_of_node[node]


@dataclass
class _ConvertedTree:
    tree_: _TreeArrays
    low_memory: bool = False


def convert_tree(flat: Any, edges: list[np.ndarray]) -> _ConvertedTree:
    """Turn one comprisk ``FlatTree`` (binned splits, leaf counts) into scikit-learn tree arrays."""
    left = np.asarray(flat.left_children, dtype=np.int64).copy()
    right = np.asarray(flat.right_children, dtype=np.int64).copy()
    is_leaf = np.asarray(flat.is_leaf_flags, dtype=bool)
    left[is_leaf] = -1
    right[is_leaf] = -1
    feature = np.where(is_leaf, -2, np.asarray(flat.features, dtype=np.int64))
    threshold = np.full(left.size, -2.0)
    split_bin = np.asarray(flat.split_values, dtype=np.int64)
    internal = np.flatnonzero(~is_leaf)
    for node in internal:
        threshold[node] = np.nextafter(edges[feature[node]][split_bin[node]], -np.inf)
    if np.any(left[internal] <= internal) or np.any(right[internal] <= internal):
        raise ValueError("comprisk tree is not numbered parent-before-children; cannot convert it")
    leaf_of_node = np.asarray(flat.leaf_idx_of_node, dtype=np.int64)
    at_risk = np.asarray(flat.leaf_at_risk, dtype=np.int64)
    cover = np.zeros(left.size)
    cover[is_leaf] = at_risk[leaf_of_node[is_leaf], 0]
    for node in internal[::-1]:  # children have larger ids than their parent
        cover[node] = cover[left[node]] + cover[right[node]]
    events = np.asarray(flat.leaf_event_counts)[:, 0, :]
    exits = at_risk - np.hstack([at_risk[:, 1:], np.zeros((at_risk.shape[0], 1), dtype=at_risk.dtype)])
    cells = np.nonzero(exits)
    if np.any(events[exits == 0]):
        raise ValueError("comprisk leaf has events at a time without exits; cannot convert it")
    arrays = _TreeArrays(
        children_left=left,
        children_right=right,
        feature=np.where(is_leaf, 0, feature),
        threshold=threshold,
        missing_go_to_left=np.zeros(left.size, dtype=np.uint8),
        weighted_n_node_samples=cover,
        leaf_of_node=leaf_of_node,
        n_times=int(at_risk.shape[1]),
        cell_leaf=cells[0].astype(np.int32),
        cell_time=cells[1].astype(np.int32),
        cell_exits=exits[cells].astype(np.uint32),
        cell_events=events[cells].astype(np.uint32),
    )
    return _ConvertedTree(arrays)


def replay_inbag(model: Any, n_samples: int) -> np.ndarray:
    """Bootstrap counts (n_samples x n_trees) of a comprisk forest fitted with ``samptype="swr"``, replayed from its
    seed the way ``CompetingRiskForest._build_ensemble`` draws them; checked against the stored out-of-bag rows."""
    rng = np.random.RandomState(model.random_state)
    counts = np.empty((n_samples, model.n_estimators), dtype=np.uint8)
    size = model._resolved_sampsize_
    for b in range(model.n_estimators):
        drawn = rng.choice(n_samples, size=size, replace=True)
        rng.randint(0, 2**31)  # the tree's own seed
        counts[:, b] = np.minimum(np.bincount(drawn, minlength=n_samples), 255)
        oob = np.asarray(model.oob_indices_[b])
        if not np.array_equal(np.flatnonzero(counts[:, b] == 0), np.sort(oob)):
            raise RuntimeError(
                f"comprisk {require_comprisk().__version__} draws its bootstrap samples differently from what "
                "carrisk replays; in-bag counts (and intervals) are unavailable for engine='hist'."
            )
    return counts


class HistForest:
    """A fitted comprisk histogram forest, converted to scikit-learn-like trees and presented like scikit-survival's
    ``RandomSurvivalForest``.

    Built by :meth:`fit` (used by :class:`carrisk.models.SurvivalForest` with ``engine="hist"``). Only numpy arrays
    are kept: comprisk is needed to fit, not to predict, explain or load a saved model.

    Attributes
    ----------
    estimators_ : list
        Converted trees, each with a scikit-learn-like ``tree_``.
    unique_times_, is_event_time_ : ndarray
        The time grid (every grid time is an event time).
    inbag_counts_ : ndarray of uint8, shape (n_train, n_trees)
        Bootstrap count of each training row in each tree.
    oob_prediction_ : ndarray or None
        comprisk's out-of-bag risk (integrated cumulative hazard) of each training row, with ``oob=True``.
    n_features_in_ : int
    """

    def __init__(self, model: Any, n_samples: int, oob: bool = False) -> None:
        self.unique_times_ = np.asarray(model.unique_times_, dtype=np.float64)
        self.is_event_time_ = np.ones(self.unique_times_.size, dtype=bool)
        self.n_features_in_ = int(model.n_features_in_)
        self.estimators_ = [convert_tree(tree, model.bin_edges_) for tree in model.trees_]
        self.inbag_counts_ = replay_inbag(model, n_samples)
        self.oob_prediction_ = np.asarray(model.predict_oob_risk()) if oob else None

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        event: np.ndarray,
        time: np.ndarray,
        *,
        n_estimators: int,
        min_samples_leaf: int,
        max_features: str | float | int | None,
        max_samples: float | int | None,
        n_jobs: int | None,
        random_state: int,
        oob: bool = False,
        n_bins: int = 256,
    ) -> HistForest:
        """Fit comprisk's histogram forest with scikit-survival's defaults (bootstrap of n rows, unlimited depth,
        ``min_samples_split=6``), exhaustive split search over the bins (``nsplit=0``) and the split statistic on
        :data:`SPLIT_TIMES` coarse time bins (leaves keep the full grid)."""
        comprisk = require_comprisk()
        X32 = np.asarray(X, dtype=np.float32).astype(np.float64)
        n, p = X32.shape
        n_grid = int(np.unique(time[event]).size)
        if n_grid > MAX_GRID_TIMES:
            raise ValueError(f"engine='hist' supports at most {MAX_GRID_TIMES} distinct event times; set max_times")
        model = comprisk.CompetingRiskForest(
            n_estimators=n_estimators,
            max_depth=None,
            min_samples_split=6,
            min_samples_leaf=min_samples_leaf,
            max_features=resolve_max_features(max_features, p),
            samptype="swr",
            sampsize=max_samples,
            random_state=random_state,
            n_bins=n_bins,
            time_grid=n_grid,
            n_jobs=-1 if n_jobs is None else n_jobs,
            splitrule="logrank",
            nsplit=0,
            split_ntime=SPLIT_TIMES,
        )
        model.fit(X32, np.asarray(time, dtype=np.float64), np.asarray(event, dtype=np.int32))
        return cls(model, n, oob=oob)

    def _mean_curves(self, X: np.ndarray, which: int) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32).astype(np.float64)
        total = np.zeros((X.shape[0], self.unique_times_.size))
        for tree in self.estimators_:
            total += tree.tree_.leaf_curves()[which][tree.tree_.apply(X)]
        return total / len(self.estimators_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Risk score: the ensemble cumulative hazard summed over the time grid."""
        return self._mean_curves(X, 0).sum(axis=1)

    def predict_cumulative_hazard_function(self, X: np.ndarray, return_array: bool = True) -> np.ndarray:
        """Ensemble (mean of the trees') Nelson-Aalen cumulative hazard on the grid, n x n_times."""
        return self._mean_curves(X, 0)

    def predict_survival_function(self, X: np.ndarray, return_array: bool = True) -> Any:
        """Ensemble survival (mean of the trees' Kaplan-Meier curves) on the grid; step functions unless
        ``return_array``."""
        survival = self._mean_curves(X, 1)
        if return_array:
            return survival
        from sksurv.functions import StepFunction

        return np.array([StepFunction(self.unique_times_, row) for row in survival])
