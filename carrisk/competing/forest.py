"""Competing-risks random survival forest: Aalen-Johansen cumulative incidences in the leaves (Ishwaran 2014).

:class:`CompetingRiskForest` grows comprisk's histogram competing-risks trees (the ``scale`` extra; features binned
to at most 256 levels, exhaustive split search over the bins) on every first-event cause at once, the
randomForestSRC approach [1]_: splits maximise the composite competing-risks log-rank statistic over all causes
(``splitrule="logrankCR"``, rfSRC's default) or the cause-specific log-rank of one cause (``"logrank"``), and each
leaf keeps its bootstrap-weighted event counts by cause and at-risk counts on the grid of distinct training event
times. A leaf's cumulative incidence of cause ``k`` is the Aalen-Johansen estimate from those counts,

``F_k(t_j) = sum_{i <= j} S(t_{i-1}) d_ki / Y_i``, ``S`` the leaf's Kaplan-Meier of any event,

i.e. :func:`carrisk.competing.aalen_johansen` of the leaf's in-bag patients counted with their bootstrap
multiplicity (tests). The forest's incidence is the mean of the trees' leaf incidences, so the causes add up to
``1 - S`` of the forest (the mean of the leaves' Kaplan-Meier curves) at every time: the forest is its own EFS
model, consistent by construction.

The fitted trees are converted (with :func:`carrisk.hist_forest.convert_tree`) to the arrays a scikit-learn tree
exposes, plus sparse per-cause leaf counts: only numpy arrays are kept, so a fitted forest is saved and loaded like
every carrisk model (``carrisk._safe_load`` allow-list; comprisk is needed to fit, not to predict or explain), and
:meth:`CompetingRiskForest.explain_cif` runs carrisk's exact TreeSHAP (:class:`carrisk.explain.ForestExplainer`,
interventional) on the incidence of one cause at one horizon.

Time grid: a patient censored at ``c`` counts as at risk at every grid time ``<= c`` (comprisk maps censoring
times down to the grid), which is the Aalen-Johansen risk set; a patient censored before the first event time
counts as at risk at it (comprisk clips to the first grid time), the one departure from Aalen-Johansen, and the
only one: :meth:`CompetingRiskForest.fit` records how many such patients there were (``n_censored_before_grid_``;
none in the simulated cohorts, whose first events are early deaths).

References
----------
.. [1] Ishwaran H, Gerds TA, Kogalur UB, Moore RD, Gange SJ, Lau BM. Random survival forests for competing
   risks. Biostatistics 2014;15:757-773.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from carrisk.competing.outcomes import CAUSES, derive_first_event
from carrisk.competing.prediction import cause_design
from carrisk.features import FeatureSpec
from carrisk.hist_forest import MAX_GRID_TIMES, convert_tree, replay_inbag, require_comprisk, resolve_max_features
from carrisk.schema import TWELVE_MONTHS_DAYS

SPLIT_RULES = ("logrankCR", "logrank")


@dataclass
class _CauseTreeArrays:
    """One converted competing-risks tree: scikit-learn-like structure and sparse per-cause leaf counts."""

    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_go_to_left: np.ndarray
    weighted_n_node_samples: np.ndarray
    leaf_of_node: np.ndarray  # leaf index, -1 for internal nodes
    n_times: int
    n_causes: int
    # nonzero cells of the (n_leaves, n_times) tables of exits (events + censorings) and events of each cause
    cell_leaf: np.ndarray
    cell_time: np.ndarray
    cell_exits: np.ndarray
    cell_events: np.ndarray  # (cells, n_causes)

    @property
    def node_count(self) -> int:
        return int(self.children_left.size)

    def leaf_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Dense at-risk counts (n_leaves, n_times) and events (n_leaves, n_times, n_causes)."""
        n_leaves = int(self.leaf_of_node.max()) + 1
        exits = np.zeros((n_leaves, self.n_times))
        events = np.zeros((n_leaves, self.n_times, self.n_causes))
        exits[self.cell_leaf, self.cell_time] = self.cell_exits
        events[self.cell_leaf, self.cell_time] = self.cell_events
        return np.cumsum(exits[:, ::-1], axis=1)[:, ::-1], events

    def leaf_cif(self) -> np.ndarray:
        """Aalen-Johansen cumulative incidence of every cause in every leaf: (n_leaves, n_times, n_causes)."""
        at_risk, events = self.leaf_counts()
        hazard = np.divide(events, at_risk[..., None], out=np.zeros_like(events), where=at_risk[..., None] > 0)
        survival = np.cumprod(1.0 - hazard.sum(axis=2), axis=1)
        before = np.concatenate([np.ones((survival.shape[0], 1)), survival[:, :-1]], axis=1)
        return np.cumsum(before[..., None] * hazard, axis=1)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Leaf index reached by each row of float64 ``X`` (left when ``x <= threshold``)."""
        node = np.zeros(X.shape[0], dtype=np.int64)
        active = np.arange(X.shape[0])
        while active.size:
            current = node[active]
            go_left = X[active, self.feature[current]] <= self.threshold[current]
            node[active] = np.where(go_left, self.children_left[current], self.children_right[current])
            active = active[self.children_left[node[active]] >= 0]
        return self.leaf_of_node[node]


def _convert(flat: Any, edges: list[np.ndarray], n_causes: int, columns: np.ndarray) -> _CauseTreeArrays:
    """Structure from :func:`carrisk.hist_forest.convert_tree`; leaf counts of every cause from comprisk's tree,
    whose cause ``j`` is carrisk's cause ``columns[j]`` (comprisk numbers the causes seen in training 1, 2, ...)."""
    structure = convert_tree(flat, edges).tree_
    at_risk = np.asarray(flat.leaf_at_risk, dtype=np.int64)
    counts = np.asarray(flat.leaf_event_counts, dtype=np.int64)  # (leaves, causes seen in training, times)
    events = np.zeros((at_risk.shape[0], at_risk.shape[1], n_causes), dtype=np.int64)
    events[:, :, columns] = counts.transpose(0, 2, 1)
    exits = at_risk - np.hstack([at_risk[:, 1:], np.zeros((at_risk.shape[0], 1), dtype=at_risk.dtype)])
    if np.any(events[exits == 0]):
        raise ValueError("comprisk leaf has events at a time without exits; cannot convert it")
    cells = np.nonzero(exits)
    return _CauseTreeArrays(
        children_left=structure.children_left,
        children_right=structure.children_right,
        feature=structure.feature,
        threshold=structure.threshold,
        missing_go_to_left=structure.missing_go_to_left,
        weighted_n_node_samples=structure.weighted_n_node_samples,
        leaf_of_node=structure.leaf_of_node,
        n_times=int(at_risk.shape[1]),
        n_causes=n_causes,
        cell_leaf=cells[0].astype(np.int32),
        cell_time=cells[1].astype(np.int32),
        cell_exits=exits[cells].astype(np.uint32),
        cell_events=events[cells].astype(np.uint32),
    )


class _CifTree:
    """A tree seen by :class:`carrisk.explain.ForestExplainer` with one cause's incidence as its leaf curves."""

    def __init__(self, tree: _CauseTreeArrays, cause: int) -> None:
        self._tree = tree
        self._cause = cause

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tree, name)

    @property
    def node_count(self) -> int:
        return self._tree.node_count

    @property
    def value(self) -> np.ndarray:
        """(node_count, n_times, 2): the cause's incidence in both slots (zeros at internal nodes)."""
        cif = self._tree.leaf_cif()[..., self._cause]
        out = np.zeros((self._tree.node_count, cif.shape[1], 2))
        is_leaf = self._tree.leaf_of_node >= 0
        out[is_leaf] = cif[self._tree.leaf_of_node[is_leaf]][..., None]
        return out


class CompetingRiskForest(BaseEstimator):
    """Random survival forest for competing risks on carrisk records; see the module docstring.

    Parameters
    ----------
    spec : FeatureSpec, optional
        Design-matrix spec (default: the clinical record schema).
    n_estimators : int, default 200
    min_samples_leaf : int, default 15
        Minimum (bootstrap-weighted) patients in each child of a split; rfSRC's competing-risks default node
        size is 15.
    max_features : "sqrt", "log2", int, float or None, default "sqrt"
        Features tried per split, scikit-learn's rule.
    splitrule : {"logrankCR", "logrank"}, default "logrankCR"
        Composite competing-risks log-rank over all causes, or the cause-specific log-rank of ``split_cause``.
    split_cause : str, default "cd19neg"
        The cause of ``splitrule="logrank"`` (ignored otherwise).
    n_background : int, default 50
        Training patients kept as the background of :meth:`explain_cif`.
    n_jobs : int, default 1
        Threads growing the trees.
    random_state : int, default 0
        Seed of the bootstrap samples and feature draws.
    """

    def __init__(
        self,
        spec: FeatureSpec | None = None,
        n_estimators: int = 200,
        min_samples_leaf: int = 15,
        max_features: str | float | int | None = "sqrt",
        splitrule: str = "logrankCR",
        split_cause: str = "cd19neg",
        n_background: int = 50,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.spec = spec
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.splitrule = splitrule
        self.split_cause = split_cause
        self.n_background = n_background
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, records: pd.DataFrame, y: Any = None) -> CompetingRiskForest:
        """Fit on records with outcome columns (the first-event causes are derived from them).

        Raises
        ------
        carrisk.schema.RecordError
            If the records or their outcome columns are invalid or contradictory.
        ValueError
            If ``splitrule`` or ``split_cause`` is unknown, or there is no event.
        """
        if self.splitrule not in SPLIT_RULES:
            raise ValueError(f"splitrule must be one of {', '.join(SPLIT_RULES)}, got {self.splitrule!r}")
        if self.split_cause not in CAUSES:
            raise ValueError(f"split_cause must be one of {', '.join(CAUSES)}, got {self.split_cause!r}")
        comprisk = require_comprisk()
        records = records.reset_index(drop=True)
        events = derive_first_event(records)
        time = events["time_days"].to_numpy(dtype=float)
        code = events["cause_code"].to_numpy(dtype=np.int32)
        seen = np.unique(code[code > 0])  # comprisk needs the causes numbered 1, 2, ... without gaps
        if not seen.size:
            raise ValueError("no first event in the training records: the forest cannot be fitted.")
        split_code = CAUSES.index(self.split_cause) + 1
        if self.splitrule == "logrank" and split_code not in seen:
            raise ValueError(f"no first event of split_cause {self.split_cause!r} in the training records")
        self.preprocess_ = cause_design(self.spec, scale=False).fit(records)
        design = np.asarray(self.preprocess_.transform(records), dtype=np.float32).astype(np.float64)
        self.causes_ = CAUSES
        self.feature_groups_ = dict(self.preprocess_.named_steps["features"].feature_groups_)
        self.feature_names_ = list(self.preprocess_.named_steps["features"].get_feature_names_out())
        n_grid = int(np.unique(time[code > 0]).size)
        if n_grid > MAX_GRID_TIMES:
            raise ValueError(f"at most {MAX_GRID_TIMES} distinct event times are supported, got {n_grid}")
        model = comprisk.CompetingRiskForest(
            n_estimators=self.n_estimators,
            max_depth=None,
            min_samples_split=2 * self.min_samples_leaf,
            min_samples_leaf=self.min_samples_leaf,
            max_features=resolve_max_features(self.max_features, design.shape[1]),
            samptype="swr",
            random_state=self.random_state,
            time_grid=n_grid,
            n_jobs=self.n_jobs,
            splitrule=self.splitrule,
            cause=int(np.searchsorted(seen, split_code)) + 1,
            nsplit=0,
            split_ntime=None,
        )
        model.fit(design, time, (np.searchsorted(seen, code) + (code > 0)).astype(np.int32))
        self.unique_times_ = np.asarray(model.unique_times_, dtype=np.float64)
        self.n_censored_before_grid_ = int(((code == 0) & (time < self.unique_times_[0])).sum())
        self.estimators_ = [_convert(tree, model.bin_edges_, len(CAUSES), seen - 1) for tree in model.trees_]
        self.inbag_counts_ = replay_inbag(model, design.shape[0])
        self.n_features_in_ = design.shape[1]
        self.background_ = design[
            np.random.default_rng(self.random_state).permutation(len(design))[: self.n_background]
        ]
        return self

    def _design(self, records: pd.DataFrame) -> np.ndarray:
        design = self.preprocess_.transform(records.reset_index(drop=True))
        return np.asarray(design, dtype=np.float32).astype(np.float64)

    def predict_cif(self, records: pd.DataFrame) -> np.ndarray:
        """Each patient's cumulative incidence of every cause on ``unique_times_``: (n, grid, causes).

        The mean over the trees of the leaf Aalen-Johansen incidences; ``1 - sum over causes`` is the forest's
        event-free survival.
        """
        design = self._design(records)
        total = np.zeros((design.shape[0], self.unique_times_.size, len(self.causes_)))
        for tree in self.estimators_:
            total += tree.leaf_cif()[tree.apply(design)]
        return total / len(self.estimators_)

    def explain_cif(self, records: pd.DataFrame, cause: str = "cd19neg", horizon: float = TWELVE_MONTHS_DAYS) -> Any:
        """Exact interventional TreeSHAP of the forest's ``cause`` incidence at ``horizon``, per clinical variable.

        :class:`carrisk.explain.ForestExplainer` on the trees with the cause's leaf incidences, against the
        ``n_background`` training patients kept at fit; one-hot columns are summed into their clinical variable.
        ``base_values + values.sum(axis=1) == predictions`` (the forest's incidence) for every patient.

        Returns
        -------
        carrisk.explain.ShapResult
        """
        from carrisk.explain import ForestExplainer

        if cause not in self.causes_:
            raise ValueError(f"cause must be one of {', '.join(self.causes_)}, got {cause!r}")
        k = self.causes_.index(cause)
        view = SimpleNamespace(
            estimators_=[SimpleNamespace(tree_=_CifTree(tree, k), low_memory=False) for tree in self.estimators_],
            n_features_in_=self.n_features_in_,
            unique_times_=self.unique_times_,
            is_event_time_=np.ones(self.unique_times_.size, dtype=bool),
        )
        explainer = ForestExplainer(
            view, self.background_, feature_perturbation="interventional", feature_names=self.feature_names_
        )
        horizon = min(float(horizon), float(self.unique_times_[-1]))
        result = explainer.shap_values(self._design(records), output="survival", times=horizon)
        result = dataclasses.replace(result, output=f"cif_{cause}", meta={**result.meta, "model": type(self).__name__})
        return result.aggregate({name: self.feature_groups_.get(name, name) for name in self.feature_names_})


__all__ = ["CompetingRiskForest"]
