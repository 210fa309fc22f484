"""Histogram random survival forest for registry-size data: carrisk's own numba kernel behind scikit-survival's
tree API.

:class:`HistForest` grows single-cause log-rank survival trees on binned features with the kernel in
:mod:`carrisk._hist_kernel` (trees in parallel threads, GIL released) and stores every tree as the arrays a
scikit-learn tree exposes (``tree_.children_left``, ``feature``, ``threshold``, ``weighted_n_node_samples``,
``value``). Everything in carrisk that reads a scikit-survival forest (exact TreeSHAP in :mod:`carrisk.explain`, the
infinitesimal-jackknife intervals in :mod:`carrisk.intervals`) therefore reads this forest unchanged.

Model (each point checked by the tests):

- Features are cast to float32 (as scikit-learn's trees and the explainer do) and binned to at most 256 levels:
  midpoints between consecutive distinct values when a feature has at most 256 of them, otherwise 255 interior
  quantile cut points of its distinct values (comprisk's rule). A row's bin is ``searchsorted(edges, x,
  side="right")``; the kernel sends it left when its bin is <= the split bin, i.e. when ``x < edges[bin]``, and
  scikit-learn's rule ``x <= threshold`` gives the same routing with the threshold the largest float64 below the
  edge.
- Splits maximise the log-rank statistic computed from the node's bootstrap-weighted event and at-risk counts on
  :data:`SPLIT_TIMES` coarse time bins (quantile buckets of the grid); bins are searched exhaustively.
- scikit-learn's forest semantics: bootstrap of ``n`` rows with replacement (or ``max_samples``), rows weighted by
  their bootstrap count; ``min_samples_leaf`` and ``min_samples_split`` count distinct in-bag rows (scikit-learn's
  splitter counts samples, not weights); ``max_features`` features are searched per node, constant ones not
  counting; ``max_depth``.
- Leaves store their bootstrap-weighted exits (events and censorings) and events only at the grid times where some
  of their rows leave (a leaf of 15 rows has at most 15 such cells), so the model grows with the rows, not with
  rows x grid times. The leaf cumulative hazard is Nelson-Aalen and the leaf survival Kaplan-Meier of those counts
  (scikit-survival's ``value[..., 0]`` and ``value[..., 1]``); the forest survival is the mean of the trees'
  Kaplan-Meier curves, the risk the mean cumulative hazard summed over the grid, as in scikit-survival.
- Covers (``weighted_n_node_samples``) are the bootstrap counts of the node's rows; ``inbag_counts_`` are the
  kernel's own bootstrap counts.
- ``ci_group_size=L >= 2`` replaces the bootstraps by grf's little bags: groups of ``L`` trees grown on one
  half-sample of ``floor(n / 2)`` rows (counts 0/1), for :func:`carrisk.intervals.little_bags_variance`.

Training times must lie on the grid or between its points: the grid is the distinct event times (at most 200:
:class:`carrisk.models.SurvivalForest` coarsens times upwards to ``max_times`` event-time quantiles first). A row
censored at ``c`` is at risk at the grid times ``<= c``; a row censored before the first event time is never at
risk (it still counts in its leaf's cover).

The module also keeps the converter of comprisk's trees (:func:`convert_tree`, :func:`replay_inbag`), which
:mod:`carrisk.competing.forest` uses and which reads models saved before carrisk had its own kernel.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np

#: comprisk's limit on the leaf time grid (the competing-risks forest).
MAX_GRID_TIMES = 65_535
#: Coarse time bins of the log-rank split statistic (comprisk's default). At 20,000 rows the full 200-time grid
#: gave held-out C 0.7261 vs 0.7266 with 10 bins, 15x slower (benchmarks/results/scale.json, "split_settings").
SPLIT_TIMES = 10
#: Most bins per feature (bins are stored as uint8).
MAX_BINS = 256
#: Nodes with at least this many distinct rows are searched with (bin, time) histograms, smaller ones by sorting their
#: rows by bin (:mod:`carrisk._hist_kernel`); both give the same splits.
HIST_MIN_ROWS = 4096


def require_comprisk() -> Any:
    try:
        import comprisk
    except ImportError as err:  # pragma: no cover - the scale extra is installed in development
        raise ImportError(
            "the competing-risks forest needs comprisk: pip install 'carrisk[scale]' (or pip install comprisk)"
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


def resolve_n_bootstrap(max_samples: float | int | None, n_samples: int) -> int:
    """Rows drawn per tree, by scikit-learn's rule: all ``n`` (None), an int <= n, or a fraction of ``n``."""
    if max_samples is None:
        return n_samples
    if isinstance(max_samples, Integral) and not isinstance(max_samples, bool):
        if not 1 <= max_samples <= n_samples:
            raise ValueError(f"max_samples must be in [1, {n_samples}], got {max_samples}")
        return int(max_samples)
    if isinstance(max_samples, float) and 0 < max_samples <= 1:
        return max(round(n_samples * max_samples), 1)
    raise ValueError(f"max_samples must be None, an int or a fraction in (0, 1], got {max_samples!r}")


def resolve_n_threads(n_jobs: int | None, n_trees: int) -> int:
    """Threads growing trees: all cores for None or -1, ``cpu + 1 + n_jobs`` for other negatives (joblib's rule)."""
    cpus = os.cpu_count() or 1
    if n_jobs is None:
        n_jobs = -1
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning")
    threads = n_jobs if n_jobs > 0 else max(1, cpus + 1 + n_jobs)
    return max(1, min(threads, n_trees))


def fit_bin_edges(X: np.ndarray, n_bins: int = MAX_BINS) -> np.ndarray:
    """Bin edges of every feature (comprisk's rule), padded with +inf: shape (p, n_bins - 1).

    Midpoints between consecutive distinct values if a feature has at most ``n_bins`` of them, else ``n_bins - 1``
    interior quantile cut points of its distinct values. Bin of x = number of edges <= x.
    """
    if not 2 <= n_bins <= MAX_BINS:
        raise ValueError(f"n_bins must be in [2, {MAX_BINS}], got {n_bins}")
    return np.vstack([_feature_edges(X[:, j], n_bins) for j in range(X.shape[1])])


def _feature_edges(column: np.ndarray, n_bins: int) -> np.ndarray:
    distinct = np.unique(column)
    if distinct.size <= n_bins:
        cuts = (distinct[:-1] + distinct[1:]) / 2.0
    else:
        cuts = np.quantile(distinct, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    edges = np.full(n_bins - 1, np.inf)
    edges[: cuts.size] = cuts
    return edges


def _half_samples(n: int, n_groups: int, random_state: int) -> np.ndarray:
    """(n_groups, n) 0/1 masks: group ``g``'s half-sample of ``floor(n / 2)`` distinct rows without replacement,
    from its own child of ``SeedSequence(random_state)`` (grf's ``sample_clusters(num_rows, 0.5)``)."""
    size = n // 2
    if size < 1:
        raise ValueError("ci_group_size > 1 needs at least 2 training rows (half-samples of floor(n / 2) rows)")
    out = np.zeros((n_groups, n), dtype=np.uint8)
    for g, child in enumerate(np.random.SeedSequence(random_state).spawn(n_groups)):
        out[g, np.random.default_rng(child).choice(n, size=size, replace=False)] = 1
    return out


def _node_values(leaf_of_node: np.ndarray, chf: np.ndarray, survival: np.ndarray) -> np.ndarray:
    """(node_count, n_times, 2): each leaf's cumulative hazard and survival at its node (zeros at internal nodes)."""
    out = np.zeros((leaf_of_node.size, chf.shape[1], 2))
    is_leaf = leaf_of_node >= 0
    out[is_leaf, :, 0] = chf[leaf_of_node[is_leaf]]
    out[is_leaf, :, 1] = survival[leaf_of_node[is_leaf]]
    return out


def _route(tree: Any, X: np.ndarray) -> np.ndarray:
    """Leaf index reached by each row of ``X`` in a tree of scikit-learn arrays (``x <= threshold`` goes left)."""
    node = np.zeros(X.shape[0], dtype=np.int64)
    active = np.flatnonzero(tree.children_left[node] >= 0)
    while active.size:
        current = node[active]
        go_left = X[active, tree.feature[current]] <= tree.threshold[current]
        node[active] = np.where(go_left, tree.children_left[current], tree.children_right[current])
        active = active[tree.children_left[node[active]] >= 0]
    return np.asarray(tree.leaf_of_node[node])


def apply_bins(X: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bins of float64 ``X`` (n, p) as a (p, n) uint8 array: ``Xb[f, i]`` = number of edges of ``f`` <= ``X[i, f]``."""
    out = np.empty((X.shape[1], X.shape[0]), dtype=np.uint8)
    for j in range(X.shape[1]):
        out[j] = np.searchsorted(edges[j], X[:, j], side="right")
    return out


def split_time_bins(grid: np.ndarray, n_split: int = SPLIT_TIMES) -> np.ndarray:
    """Coarse split-time bin of every grid index: ``n_split`` quantile buckets of the grid values (comprisk's
    ``coarsen_time_grid``; the identity when the grid is not longer than ``n_split``)."""
    n_grid = grid.size
    if n_split >= n_grid:
        return np.arange(n_grid, dtype=np.int64)
    breaks = np.searchsorted(grid, np.quantile(grid, np.linspace(0.0, 1.0, n_split + 1)), side="left")
    breaks[-1] = n_grid
    out = np.empty(n_grid, dtype=np.int64)
    for j in range(n_split):
        out[breaks[j] : breaks[j + 1]] = j
    return out


def _smallest_uint(values: np.ndarray) -> np.ndarray:
    top = int(values.max()) if values.size else 0
    return values.astype(np.uint16 if top <= np.iinfo(np.uint16).max else np.uint32)


@dataclass
class _HistTree:
    """One fitted tree: the subset of ``sklearn.tree._tree.Tree`` that carrisk's explainer reads, plus sparse leaf
    counts. ``value`` is built on access (dense float64 tables would take 1.6 GB at 100,000 rows x 100 trees).

    Leaf ``l``'s cells are ``cell_time/cell_exits/cell_events[leaf_ptr[l]:leaf_ptr[l + 1]]``: the grid times (in
    increasing order) at which some of its rows leave the risk set, the bootstrap-weighted number leaving (events and
    censorings) and the weighted events there.
    """

    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray  # -2 at leaves, as in scikit-learn
    threshold: np.ndarray  # -2.0 at leaves
    split_bin: np.ndarray  # the kernel's split: bin <= split_bin goes left
    missing_go_to_left: np.ndarray
    weighted_n_node_samples: np.ndarray
    leaf_of_node: np.ndarray  # leaf index, -1 for internal nodes
    n_times: int
    leaf_ptr: np.ndarray
    cell_time: np.ndarray
    cell_exits: np.ndarray
    cell_events: np.ndarray

    @property
    def node_count(self) -> int:
        return int(self.children_left.size)

    @property
    def n_leaves(self) -> int:
        return int(self.leaf_ptr.size - 1)

    def leaf_curves(self, leaves: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Nelson-Aalen cumulative hazard and Kaplan-Meier survival of ``leaves`` (default all), (len, n_times)."""
        from carrisk._hist_kernel import leaf_curves

        chosen = np.arange(self.n_leaves) if leaves is None else np.asarray(leaves, dtype=np.int64)
        return leaf_curves(self.leaf_ptr, self.cell_time, self.cell_exits, self.cell_events, chosen, self.n_times)

    def leaf_risk(self) -> np.ndarray:
        """Each leaf's cumulative hazard summed over the grid (scikit-survival's risk score of the tree)."""
        hazard = self.cell_events / np.maximum(self._at_risk_of_cells(), 1.0)
        leaf_of_cell = np.repeat(np.arange(self.n_leaves), np.diff(self.leaf_ptr))
        return np.bincount(leaf_of_cell, hazard * (self.n_times - self.cell_time), minlength=self.n_leaves)

    def _at_risk_of_cells(self) -> np.ndarray:
        """At-risk count at each cell: the leaf's exits at this cell's time and later."""
        exits = self.cell_exits.astype(np.float64)
        after = np.cumsum(exits[::-1])[::-1]  # exits at this cell and every later cell of every later leaf
        next_leaf_start = np.repeat(self.leaf_ptr[1:], np.diff(self.leaf_ptr))
        later_leaves = np.append(after, 0.0)[next_leaf_start]
        return after - later_leaves

    @property
    def value(self) -> np.ndarray:
        """(node_count, n_times, 2): cumulative hazard and survival of every leaf (zeros at internal nodes)."""
        return _node_values(self.leaf_of_node, *self.leaf_curves())

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Leaf index (into the leaf tables) reached by each row of float64 ``X``; left when ``x <= threshold``."""
        return _route(self, X)


@dataclass
class _HistEstimator:
    """A fitted tree as the explainer sees a scikit-survival ``SurvivalTree``: ``tree_`` and ``low_memory``."""

    tree_: _HistTree
    low_memory: bool = False


class HistForest:
    """A fitted histogram survival forest, presented like scikit-survival's ``RandomSurvivalForest``.

    Built by :meth:`fit` (used by :class:`carrisk.models.SurvivalForest` with ``engine="hist"``). Only numpy arrays
    (and small dataclasses of them) are kept, so a fitted forest is saved and loaded like every carrisk model.
    Forests saved before carrisk had its own kernel (comprisk's trees, converted) load and predict as before.

    Attributes
    ----------
    estimators_ : list
        Fitted trees, each with a scikit-learn-like ``tree_``.
    unique_times_, is_event_time_ : ndarray
        The time grid (every grid time is an event time).
    inbag_counts_ : ndarray of uint8, shape (n_train, n_trees)
        Bootstrap count of each training row in each tree (the kernel's own draws).
    oob_prediction_ : ndarray or None
        Out-of-bag risk (the mean over the trees where the row is out of bag of the leaf's cumulative hazard
        summed over the grid; 0 for a row in every bootstrap sample), with ``oob=True``.
    bin_edges_ : ndarray, shape (n_features, 255)
        Bin edges of every feature (padded with +inf).
    tree_seeds_ : ndarray of uint64
        Seed of every tree (its bootstrap and feature draws), derived from ``random_state``.
    ci_group_size_ : int
        1 for the bootstrap forest; ``L >= 2``: trees ``g L .. g L + L - 1`` share a half-sample (grf's little
        bags, see :meth:`fit`). Forests saved before this attribute existed read as 1.
    n_features_in_ : int
    """

    #: class default: forests pickled before little bags existed are bootstrap forests
    ci_group_size_: int = 1

    estimators_: list[Any]
    unique_times_: np.ndarray
    is_event_time_: np.ndarray
    inbag_counts_: np.ndarray
    oob_prediction_: np.ndarray | None
    n_features_in_: int
    bin_edges_: np.ndarray
    tree_seeds_: np.ndarray

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
        min_samples_split: int = 6,
        max_depth: int | None = None,
        n_bins: int = MAX_BINS,
        n_split_times: int = SPLIT_TIMES,
        leaf_size: str = "rows",
        ci_group_size: int = 1,
    ) -> HistForest:
        """Grow ``n_estimators`` trees with scikit-survival's defaults (bootstrap of n rows, unlimited depth,
        ``min_samples_split=6``), exhaustive split search over the bins and the split statistic on
        ``n_split_times`` coarse time bins (leaves keep the full grid).

        ``leaf_size="rows"`` counts distinct in-bag rows for ``min_samples_leaf`` and ``min_samples_split``
        (scikit-learn's rule); ``"weights"`` counts bootstrap-weighted rows (comprisk's rule; benchmarks only).

        ``ci_group_size = L >= 2`` grows the trees in groups of ``L`` for grf's "little bags" variance
        (:func:`carrisk.intervals.little_bags_variance`): group ``g`` (trees ``g L .. g L + L - 1``) draws a
        half-sample of ``floor(n / 2)`` distinct rows without replacement, and every tree of the group is grown on
        all of it (in-bag counts 0/1), each with its own feature stream. This is grf's ``ForestTrainer::
        train_ci_group`` (core/src/forest/ForestTrainer.cpp: ``sample_clusters(num_rows, 0.5)``, i.e.
        ``static_cast<size_t>(n * 0.5)`` rows, then ``subsample(clusters, sample_fraction * 2)``, the whole
        half-sample at grf's default ``sample.fraction = 0.5``). The half-samples come from ``random_state``
        (``SeedSequence(random_state).spawn``), drawn before the trees, so they do not depend on the threads.
        ``n_estimators`` must be a multiple of ``L`` and ``max_samples`` None. ``ci_group_size=1``: the bootstrap
        forest, unchanged.
        """
        from carrisk._hist_kernel import bootstrap_counts, grow_tree

        if leaf_size not in ("rows", "weights"):
            raise ValueError(f"leaf_size must be 'rows' or 'weights', got {leaf_size!r}")
        if not 1 <= n_split_times <= 255:
            raise ValueError(f"n_split_times must be in [1, 255], got {n_split_times}")
        if n_estimators < 1 or min_samples_leaf < 1 or min_samples_split < 2:
            raise ValueError("need n_estimators >= 1, min_samples_leaf >= 1 and min_samples_split >= 2")
        if isinstance(ci_group_size, bool) or not isinstance(ci_group_size, Integral) or ci_group_size < 1:
            raise ValueError(f"ci_group_size must be an integer >= 1, got {ci_group_size!r}")
        ci_group_size = int(ci_group_size)
        if ci_group_size > 1:
            if n_estimators % ci_group_size:
                raise ValueError(
                    f"n_estimators ({n_estimators}) must be a multiple of ci_group_size ({ci_group_size}): "
                    "the trees are grown in groups sharing a half-sample"
                )
            if max_samples is not None:
                raise ValueError(
                    "max_samples must be None with ci_group_size > 1: every tree of a group is grown on its group's "
                    "half-sample of floor(n / 2) rows"
                )
        X64 = np.asarray(X, dtype=np.float32).astype(np.float64)
        if not np.all(np.isfinite(X64)):
            raise ValueError("engine='hist' needs finite features (impute missing values first)")
        event = np.asarray(event, dtype=bool)
        time = np.asarray(time, dtype=np.float64)
        n, p = X64.shape
        grid = np.unique(time[event])
        if grid.size == 0:
            raise ValueError("no events in the training data")
        if not 2 <= n_bins <= MAX_BINS:
            raise ValueError(f"n_bins must be in [2, {MAX_BINS}], got {n_bins}")
        edges = np.empty((p, n_bins - 1))
        Xb = np.empty((p, n), dtype=np.uint8)

        def bin_feature(j: int) -> None:  # fit_bin_edges and apply_bins, one feature per thread
            column = np.ascontiguousarray(X64[:, j])
            edges[j] = _feature_edges(column, n_bins)
            Xb[j] = np.searchsorted(edges[j], column, side="right")

        t_full = np.searchsorted(grid, time, side="right") - 1  # last grid index at risk, -1: never
        t_split = np.where(t_full >= 0, split_time_bins(grid, n_split_times)[np.maximum(t_full, 0)], -1)
        event_u8 = event.astype(np.uint8)
        mtry = resolve_max_features(max_features, p)
        n_boot = resolve_n_bootstrap(max_samples, n)
        seeds = np.random.SeedSequence(random_state).generate_state(n_estimators, dtype=np.uint64)
        inbag = np.empty((n_estimators, n), dtype=np.uint8)
        half_samples = _half_samples(n, n_estimators // ci_group_size, random_state) if ci_group_size > 1 else None
        depth = -1 if max_depth is None else int(max_depth)

        def grow(b: int) -> _HistEstimator:
            if half_samples is None:
                counts = bootstrap_counts(n, n_boot, seeds[b])
            else:  # a little bag: every tree of group b // L on the group's half-sample
                counts = half_samples[b // ci_group_size].astype(np.int64)
            if counts.max() > np.iinfo(np.uint8).max:  # pragma: no cover - needs a row drawn > 255 times
                raise ValueError("a row was drawn more than 255 times; in-bag counts are stored as uint8")
            inbag[b] = counts
            left, right, feature, split_bin, cover, leaf_of_node, leaf_ptr, cell_time, cell_exits, cell_events, _ = (
                grow_tree(Xb, t_split, t_full, event_u8, counts, n_split_times, grid.size, mtry, min_samples_leaf,
                          min_samples_split, depth, leaf_size == "weights", seeds[b], HIST_MIN_ROWS)
            )  # fmt: skip
            internal = left >= 0
            threshold = np.full(left.size, -2.0)
            threshold[internal] = np.nextafter(edges[feature[internal], split_bin[internal]], -np.inf)
            tree = _HistTree(
                children_left=left.astype(np.int32),
                children_right=right.astype(np.int32),
                feature=feature.astype(np.int32),
                threshold=threshold,
                split_bin=split_bin,
                missing_go_to_left=np.zeros(left.size, dtype=np.uint8),
                weighted_n_node_samples=cover,
                leaf_of_node=leaf_of_node.astype(np.int32),
                n_times=int(grid.size),
                leaf_ptr=leaf_ptr,
                cell_time=_smallest_uint(cell_time),
                cell_exits=_smallest_uint(cell_exits),
                cell_events=_smallest_uint(cell_events),
            )
            return _HistEstimator(tree)

        with ThreadPoolExecutor(max_workers=resolve_n_threads(n_jobs, n_estimators)) as pool:
            list(pool.map(bin_feature, range(p)))
            estimators = list(pool.map(grow, range(n_estimators)))
        forest = cls()
        forest.estimators_ = estimators
        forest.unique_times_ = grid
        forest.is_event_time_ = np.ones(grid.size, dtype=bool)
        forest.n_features_in_ = p
        forest.inbag_counts_ = inbag.T
        forest.bin_edges_ = edges
        forest.tree_seeds_ = seeds
        forest.ci_group_size_ = ci_group_size
        forest.oob_prediction_ = forest._oob_risk(Xb) if oob else None
        return forest

    def _oob_risk(self, Xb: np.ndarray) -> np.ndarray:
        from carrisk._hist_kernel import apply_binned

        total = np.zeros(Xb.shape[1])
        trees = np.zeros(Xb.shape[1])
        for b, estimator in enumerate(self.estimators_):
            tree = estimator.tree_
            rows = np.flatnonzero(self.inbag_counts_[:, b] == 0)
            nodes = apply_binned(Xb, rows, tree.children_left, tree.children_right, tree.feature, tree.split_bin)
            total[rows] += tree.leaf_risk()[tree.leaf_of_node[nodes]]
            trees[rows] += 1
        return np.divide(total, trees, out=np.zeros_like(total), where=trees > 0)

    def _mean_curves(self, X: np.ndarray, which: int) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32).astype(np.float64)
        total = np.zeros((X.shape[0], self.unique_times_.size))
        for tree in self.estimators_:
            leaves, inverse = np.unique(tree.tree_.apply(X), return_inverse=True)
            if isinstance(tree.tree_, _HistTree):
                total += tree.tree_.leaf_curves(leaves)[which][inverse]
            else:  # a comprisk tree converted by an earlier carrisk
                total += tree.tree_.leaf_curves()[which][leaves][inverse]
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


# -- comprisk's trees (the competing-risks forest; models saved by earlier carrisk versions) ----------------------


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
        return _node_values(self.leaf_of_node, *self.leaf_curves())

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Leaf index (into the leaf tables) reached by each row of float64 ``X``; left when ``x <= threshold``."""
        return _route(self, X)


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
