"""The result of every carrisk explainer: :class:`ShapResult`, and the table helpers the explainers share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True, repr=False)
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

    def __repr__(self) -> str:
        n, p = self.values.shape[:2]
        if self.times is None:
            at = ""
        elif np.ndim(self.times) == 0:
            at = f" at {float(self.times):g} days"
        else:
            at = f" at {np.size(self.times)} times"
        kind = "exact" if self.exact else "approximate"
        return (
            f"ShapResult({kind} SHAP values of {self.output}{at}: {n} patient(s) x {p} feature(s) "
            f"{self.feature_names[:4]}{' ...' if p > 4 else ''}; additivity error {self.additivity_error():.1e}; "
            "see .to_frame() and carrisk.explain.plot_waterfall / plot_beeswarm)"
        )

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
    """The column as numbers for a plot's colour scale; a column of categories has no order, so it is NaN (grey),
    never the alphabetical rank of its levels under a "low to high" colour bar."""
    return pd.to_numeric(column, errors="coerce").astype(float)


def _as_frame(X: Any, feature_names: Sequence[str] | None) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(f"X must be 2-dimensional (patients x features), got shape {array.shape}.")
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(array.shape[1])]
    return pd.DataFrame(array, columns=names)
