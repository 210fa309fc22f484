"""Per-patient EFS prediction: a fitted model with its metadata, intervals, risk groups and reasons.

:func:`fit_efs_model` tunes a pipeline on all the training data (forests out of bag, other models by inner
cross-validation), refits it, and wraps it in an :class:`EFSModel`, which predicts each new patient's EFS curve,
EFS at fixed horizons with a 95% interval, a risk group and the clinical variables that moved the prediction most
(SHAP).

Intervals
---------
* Random survival forest: the bias-corrected infinitesimal jackknife (Wager, Hastie & Efron, JMLR
  2014;15:1625-1651) from each tree's survival probability and its bootstrap in-bag counts, calibrated by
  empirical Bayes against the training patients (see :mod:`carrisk.intervals`), formed on the logit scale
  and transformed back.
* Cox models: percentile interval over bootstrap refits of the final estimator (fixed hyper-parameters) on the
  training design matrix.
* Linear-index models (the two-part model, deviance-tuned Cox, their stack and the default 50/50 average):
  the ``centred`` bootstrap interval of :mod:`carrisk.bootstrap`: the logit-scale spread of refits of the final
  estimator at 1/10 of the penalties it chose, moved onto the point prediction (which is always inside). The
  shrunken model's own refits share its shrinkage bias, which then no interval shows; the less penalised refits
  spread wider and cover it. In the truth benchmark (20 cohorts of n = 420) this interval covers the true
  6-month EFS far more often than the shrunken model's own bootstrap (numbers in ``benchmarks/results/truth.md``
  and the model card). Bundles written before it keep their percentile interval (``metadata["interval_bootstrap"]``
  absent).
All describe the uncertainty of the fitted model given its training data, not of the patient's outcome.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.base import clone

from carrisk import explain
from carrisk.bootstrap import INTERVAL_PENALTY_DIVISOR, bootstrap_interval, bootstrap_refits
from carrisk.casemix import case_mix_summary
from carrisk.explain import ShapResult
from carrisk.features import LOG_BLASTS_FLOOR_PCT, ClinicalFeatures, FeatureSpec
from carrisk.intervals import (
    MAX_ROWS_PER_TREE,
    VariancePrior,
    inbag_counts,
    infinitesimal_jackknife_variance,
    little_bags_variance,
    reference_rows,
    variance_prior,
)
from carrisk.metrics import DEFAULT_HORIZONS_DAYS
from carrisk.models import SurvivalForest, check_survival_target, step_survival
from carrisk.provenance import data_fingerprint, package_versions
from carrisk.schema import (
    ID_COLUMN,
    PROBLEM_COLUMNS,
    RecordError,
    read_records,
    validate_feature_table,
    validate_records,
)
from carrisk.tuning import chosen_params, final_pipeline, tuned_model, tuning_record
from carrisk.units import DAYS_PER_MONTH, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS
from carrisk.unseen import (
    level_counts,
    marginalisation_plan,
    marginalised,
    mixture_interval,
    quiet_encoder,
    reference_level_notes,
    warn_scored_as_reference,
)

DEFAULT_HORIZONS: dict[str, float] = dict(DEFAULT_HORIZONS_DAYS)
Z_95 = 1.959963984540054
#: Rows predicted at a time: bounds the per-tree arrays (trees x rows x horizons) and the SHAP work per chunk.
PREDICT_CHUNK_ROWS = 2_000
RISK_GROUPS = ("low", "intermediate", "high")


#: Bootstrap refits of the cause-specific model fitted with an EFS model (intervals of the cause shares).
CAUSE_BOOTSTRAP = 20


def horizon_names(horizons: Mapping[str, float] | Sequence[float]) -> dict[str, float]:
    """Name horizons given in days: 182.625 -> "6mo", 365.25 -> "12mo"; a mapping is kept as it is."""
    if isinstance(horizons, Mapping):
        return {str(k): float(v) for k, v in horizons.items()}
    return {f"{round(float(d) / DAYS_PER_MONTH)}mo": float(d) for d in horizons}


def risk_groups(efs_12mo: np.ndarray, cutpoints: np.ndarray | Sequence[float]) -> np.ndarray:
    """Risk group of each patient: "low" at or above the upper cutpoint of predicted 12-month EFS, "high" below
    the lower one, "intermediate" between (the cutpoints are the training tertiles)."""
    lower, upper = cutpoints
    return np.where(efs_12mo >= upper, "low", np.where(efs_12mo < lower, "high", "intermediate"))


def predictions_table(
    model: Any,
    records: Any,
    horizons: Mapping[str, float] | Sequence[float],
    *,
    skip_invalid: bool,
    **options: Any,
) -> pd.DataFrame:
    """The ``predict_efs`` table of any model with ``valid_rows``, ``iter_predictions`` and ``empty_predictions``.

    The chunks of :meth:`EFSModel.iter_predictions` (``options`` go to it) concatenated, or the empty table when no
    row is valid; the problems of the rows left out are in ``attrs["rejected"]``.
    """
    frame, rejected = model.valid_rows(records, skip_invalid=skip_invalid)
    chunks = list(model.iter_predictions(frame, horizons, **options))
    out = pd.concat(chunks) if chunks else model.empty_predictions(horizons)
    out.attrs["rejected"] = rejected.to_dict("records")
    return out


@dataclass
class _CoxBootstrap:
    """Bootstrap refits of a Cox model: coefficients and baseline survival on a common grid."""

    coefs: np.ndarray  # (B, p)
    grid: np.ndarray  # (G,)
    baseline: np.ndarray  # (B, G)


class EFSModel:
    """A fitted EFS model with everything needed to predict and explain new patients.

    Create it with :func:`fit_efs_model`; save and load it with :func:`carrisk.save_model` /
    :func:`carrisk.load_model`.

    Attributes
    ----------
    pipeline : Pipeline
        Features -> imputation -> (scaling) -> estimator, fitted on all training data.
    model_name : str
    params : dict
        Hyper-parameters chosen by tuning (out of bag for forests, inner cross-validation otherwise).
    risk_cutpoints : (2,) ndarray
        Predicted 12-month EFS tertiles of the training patients: above the upper = low risk, below the lower =
        high risk.
    metadata : dict
        Training fingerprint, seeds, horizons, versions, synthetic-data flag, cross-validated metrics (if run).
    cause_model : carrisk.competing.CauseSpecificModel or None
        How patients fail (see :meth:`predict_causes`); fitted by :func:`fit_efs_model` when the training records
        have the outcome columns, None otherwise (and in bundles saved before models carried one).
    """

    cause_model: Any = None

    def __init__(
        self,
        pipeline: Any,
        model_name: str,
        params: dict[str, Any],
        risk_cutpoints: np.ndarray,
        metadata: dict[str, Any],
        background: np.ndarray,
        inbag: np.ndarray | None = None,
        bootstrap: _CoxBootstrap | None = None,
        reference: np.ndarray | None = None,
        refits: list[Any] | None = None,
        level_counts: dict[str, dict[str, int]] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.model_name = model_name
        self.params = params
        self.risk_cutpoints = risk_cutpoints
        self.metadata = metadata
        self.background = background
        self.inbag = inbag
        self.bootstrap = bootstrap
        self.reference = reference
        self.refits = refits
        self.level_counts = level_counts
        self.variance_priors: dict[float, VariancePrior | None] = {}
        self._explainer: Any = None

    def __repr__(self) -> str:
        data = self.metadata.get("training_data", {})
        synthetic = ", SYNTHETIC training data" if self.metadata.get("synthetic_training_data") else ""
        return (
            f"EFSModel({self.model_name!r}, trained on {data.get('rows', '?')} patients with "
            f"{data.get('events', '?')} events{synthetic}; interval: "
            f"{str(self.metadata.get('interval_method', 'none')).split(':')[0]})"
        )

    # ----- pieces -----
    @property
    def features(self) -> ClinicalFeatures:
        return self.pipeline.named_steps["features"]

    @property
    def estimator(self) -> Any:
        return self.pipeline[-1]

    @property
    def time_grid(self) -> np.ndarray:
        return np.asarray(self.estimator.unique_times_, dtype=float)

    def check_horizon(self, days: float, what: str = "horizon") -> None:
        """Refuse a prediction horizon beyond the model's curve, which ends at the last training time.

        Beyond it the curve would only repeat its last value: no training patient was followed that long.

        Raises
        ------
        ValueError
            ``days`` is not a positive number or exceeds the last time of :attr:`time_grid`.
        """
        last = float(self.time_grid[-1])
        if not np.isfinite(days) or days <= 0:
            raise ValueError(f"{what} must be a positive number of days, got {days!r}")
        if days > last:
            raise ValueError(
                f"{what} {days:g} days is beyond this model's follow-up: its EFS curve ends at day {last:g} "
                f"(the last training time); choose at most {last:g} days"
            )

    def manifest(self) -> dict[str, Any]:
        """What the bundle manifest records about this model."""
        spec = self.features.spec or FeatureSpec()
        return {
            "model": self.model_name,
            "hyperparameters": self.params,
            "feature_spec": {k: v for k, v in spec.__dict__.items()},
            "mode": spec.mode,
            "features": list(spec.input_columns),
            "design_columns": list(self.features.get_feature_names_out()),
            "time_grid_days": {
                "n": len(self.time_grid),
                "min": float(self.time_grid[0]),
                "max": float(self.time_grid[-1]),
            },
            "risk_cutpoints_efs_12mo": list(map(float, self.risk_cutpoints)),
            **({"cause_model": self.cause_model.manifest()} if hasattr(self.cause_model, "manifest") else {}),
            **self.metadata,
        }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_explainer"] = None  # rebuilt on demand; keeps bundles small
        return state

    # ----- prediction -----
    def _design(self, records: pd.DataFrame) -> np.ndarray:
        return self.pipeline[:-1].transform(records)

    def _survival_at(self, design: np.ndarray, times: np.ndarray) -> np.ndarray:
        return self.estimator.predict_survival_matrix(design, times)

    def _leaves(self, design: np.ndarray) -> np.ndarray | None:
        """Leaf of each row in each tree (n_rows x n_trees, global leaf ids of the explainer) for forests."""
        if not isinstance(self.estimator, SurvivalForest):
            return None
        return self.explainer().apply(design)

    def _curves(self, design: np.ndarray, leaves: np.ndarray | None) -> np.ndarray:
        """Survival curves on the model's time grid (n_rows x n_grid).

        For a forest: the mean of the trees' leaf survival functions (what scikit-survival computes), read from
        the leaves found once with the explainer's compiled tree walk.
        """
        if leaves is None:
            return self._survival_at(design, self.time_grid)
        per_leaf = self.explainer().leaf_values("survival")  # (n_leaves, n_grid), already divided by n_trees
        curves = np.zeros((len(design), per_leaf.shape[1]))
        for tree in range(leaves.shape[1]):
            curves += per_leaf[leaves[:, tree]]
        return curves

    def _intervals(
        self, design: np.ndarray, times: np.ndarray, point: np.ndarray, leaves: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.inbag is not None and leaves is not None:
            per_tree = self._per_tree_survival(leaves, times)  # (B, n, T)
            variance = np.empty_like(point)
            group_size = self.ci_group_size
            for j, horizon in enumerate(times):
                if group_size > 1:  # grf's little bags: no jackknife, no variance prior
                    variance[:, j] = little_bags_variance(per_tree[:, :, j], group_size)
                    continue
                estimates = infinitesimal_jackknife_variance(per_tree[:, :, j], self.inbag)
                prior = self.variance_prior(float(horizon))
                variance[:, j] = np.maximum(estimates, 0.0) if prior is None else prior.posterior_mean(estimates)
            clipped = np.clip(point, 1e-4, 1 - 1e-4)
            se_logit = np.sqrt(variance) / (clipped * (1 - clipped))
            return expit(logit(clipped) - Z_95 * se_logit), expit(logit(clipped) + Z_95 * se_logit)
        refits = getattr(self, "refits", None)  # absent from bundles written before refit intervals
        if refits:
            method = self.metadata.get("interval_bootstrap", {}).get("method", "percentile")
            return bootstrap_interval(refits, design, times, point, method=method)
        if self.bootstrap is not None:
            boot = self.bootstrap
            s0 = step_survival(boot.grid, boot.baseline, times)  # (B, T)
            lp = design @ boot.coefs.T  # (n, B)
            draws = s0[None, :, :] ** np.exp(lp)[:, :, None]  # (n, B, T)
            return np.quantile(draws, 0.025, axis=1), np.quantile(draws, 0.975, axis=1)
        nan = np.full_like(point, np.nan)
        return nan, nan

    @property
    def ci_group_size(self) -> int:
        """Trees per half-sample group of the forest (grf's little bags); 1 for bootstrap forests and other models."""
        return int(getattr(getattr(self.estimator, "forest_", None), "ci_group_size_", 1))

    def variance_prior(self, horizon: float) -> VariancePrior | None:
        """Empirical-Bayes prior of the IJ variance at ``horizon``, from the training patients kept (at most 2,000)."""
        if horizon not in self.variance_priors:
            if self.ci_group_size > 1:
                return None  # little-bags intervals need no prior
            leaves = None if self.reference is None else self._leaves(self.reference)
            if leaves is None or self.inbag is None:
                return None  # not a forest with its training patients kept: the raw jackknife estimate is used
            reference = self._per_tree_survival(leaves, np.array([horizon]))[:, :, 0]
            self.variance_priors[horizon] = variance_prior(reference, self.inbag, seed=self.metadata["seeds"]["model"])
        return self.variance_priors[horizon]

    def _per_tree_survival(self, leaves: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Each tree's survival probability at ``times`` (n_trees x n_rows x n_times), read from its leaves."""
        n_trees = leaves.shape[1]
        per_leaf = self.explainer().leaf_values("survival", np.asarray(times, dtype=float)) * n_trees
        return per_leaf[leaves.T]

    def predict_survival(self, records: Any, times: Sequence[float] | np.ndarray) -> np.ndarray:
        """Predicted EFS probability of each patient at ``times`` (days), shape (n_patients, n_times).

        The model's curves read as right-continuous steps (1 before the first grid time); no intervals or
        reasons, so this is the cheap path used by evaluation and model updating.
        """
        times = np.asarray(times, dtype=float)

        def survival(frame: pd.DataFrame) -> np.ndarray:
            design = self._design(frame)
            return step_survival(self.time_grid, self._curves(design, self._leaves(design)), times)

        return marginalised(_as_records(records), self.features, getattr(self, "level_counts", None), survival)

    def risk_group(self, efs_12mo: np.ndarray) -> np.ndarray:
        """Risk group from predicted 12-month EFS and the training tertiles."""
        return risk_groups(efs_12mo, self.risk_cutpoints)

    def explainer(self) -> Any:
        """The SHAP explainer of the final estimator (built once, on first use)."""
        if self._explainer is None:
            names = list(self.features.get_feature_names_out())
            if isinstance(self.estimator, SurvivalForest):
                self._explainer = explain.ForestExplainer(self.estimator.forest_, feature_names=names)
            elif hasattr(self.estimator, "survival_from_indices"):  # any linear-index model: its own S(t)
                self._explainer = explain.CoxExplainer(
                    self.estimator,
                    background=self.background,
                    feature_names=names,
                    groups=self.features.feature_groups_,
                )
            else:
                self._explainer = explain.CoxExplainer(
                    self.estimator.model_,
                    background=self.background,
                    baseline_survival=self.estimator.model_,
                    feature_names=names,
                    groups=self.features.feature_groups_,
                )
        return self._explainer

    def explain(
        self, records: Any, horizon: float = SIX_MONTHS_DAYS, output: str = "survival", aggregate: bool = True
    ) -> explain.ShapResult:
        """SHAP values of S(horizon) (``output="survival"``) or of the risk score, per clinical variable.

        ``base_value + sum(values) == prediction`` for every patient. A patient whose unknown level is marginalised
        (see :meth:`predict_efs`) is explained as the same mixture: Shapley values are linear in the game.
        """
        self.check_horizon(horizon)
        frame = _as_records(records)
        categorized = self.features.categorize(frame)
        expanded, weights, assumptions = marginalisation_plan(frame, categorized, getattr(self, "level_counts", None))
        warn_scored_as_reference(self.features, categorized, assumptions)
        with quiet_encoder():
            design = self._design(expanded)
        result = self._explain_rows(design, weights, horizon, output, aggregate)
        return dataclasses.replace(result, data=self.explained_data(frame, result.feature_names))

    def explained_data(self, records: pd.DataFrame, feature_names: Sequence[str]) -> pd.DataFrame:
        """The patients' values of the explained features, as a reader (and the plots) should see them.

        The explainers see the model's standardised design matrix; this is what it encodes. Design columns
        (``aggregate=False``): the clinical features before imputation and scaling (NaN = missing). Clinical
        variables: a variable read from one number is that number (``age_years`` in years, ``marrow_blasts_pct`` in
        %, from the model's log10(% + 0.01)); any other, its readable value as the reasons show it ("naive", "none").
        """
        with quiet_encoder():
            unscaled = pd.DataFrame(
                np.asarray(self.features.transform(records), dtype=float),
                columns=list(self.features.get_feature_names_out()),
            )
        if all(name in unscaled.columns for name in feature_names):
            return unscaled[list(feature_names)]
        shown = self.display_values(records).reset_index(drop=True)
        members: dict[str, list[str]] = {}
        for column, variable in self.features.feature_groups_.items():
            members.setdefault(variable, []).append(column)
        columns: dict[str, Any] = {}
        for name in feature_names:
            own = members.get(name, [name])
            if name == "marrow_blasts_pct" and own == ["marrow_blasts_log10"]:
                columns[name] = np.round(10 ** unscaled[own[0]].to_numpy() - LOG_BLASTS_FLOOR_PCT, 9)
            elif len(own) == 1 and own[0] in unscaled.columns and name not in _LABELLED_VARIABLES:
                columns[name] = unscaled[own[0]].to_numpy()
            elif name in shown.columns:
                columns[name] = shown[name].to_numpy(dtype=object)
            else:
                columns[name] = np.full(len(records), np.nan)
        return pd.DataFrame(columns)

    def _explain_rows(
        self, design: np.ndarray, weights: Any, horizon: float, output: str = "survival", aggregate: bool = True
    ) -> ShapResult:
        """:meth:`explain` of the design matrix of a marginalisation plan's rows, mixed back by its ``weights``."""
        n_patients = weights.shape[0]
        if isinstance(self.estimator, SurvivalForest):
            result = self.explainer().shap_values(
                design, output="risk" if output == "risk" else "survival", times=None if output == "risk" else [horizon]
            )
        else:
            result = self.explainer().shap_values(
                design,
                output="linear_predictor" if output == "risk" else "survival",
                times=None if output == "risk" else [horizon],
            )
        if result.values.ndim == 3:
            result = result.select_time(horizon)
        if len(design) > n_patients:
            result = dataclasses.replace(
                result,
                values=np.asarray(weights @ result.values),
                predictions=np.asarray(weights @ result.predictions),
                data=result.data.iloc[:n_patients],
            )
        column_level = list(result.feature_names) == list(self.features.get_feature_names_out())
        return result.aggregate(self.features.feature_groups_) if aggregate and column_level else result

    def display_values(self, records: pd.DataFrame) -> pd.DataFrame:
        """Readable value of each clinical variable for each patient (what the explanation shows)."""
        return self._display(records, self.features.categorize(records))

    def _display(self, records: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
        """:meth:`display_values` from the records' categorized table (``features.categorize(records)``)."""
        columns: dict[str, list[str]] = {}
        for group in dict.fromkeys(self.features.feature_groups_.values()):
            if group == "marrow_blasts_pct" and group in records.columns:
                values = records[group].tolist()
            elif group == "cd19_expression":
                values = table["cd19"].tolist()
            elif group == "prior_hsct":
                values = [
                    _transplant_history(c, m)
                    for c, m in zip(table["prior_hsct_count"], table["months_since_last_hsct"])
                ]
            elif group in table.columns:
                values = table[group].tolist()
            else:
                continue
            columns[group] = [_readable(v, yes_no=group in _LABELLED_VARIABLES) for v in values]
        return pd.DataFrame(columns, index=table.index)

    def predict_efs(
        self,
        records: Any,
        horizons: Mapping[str, float] | Sequence[float] = DEFAULT_HORIZONS,
        *,
        top: int = 3,
        explain_horizon: float = SIX_MONTHS_DAYS,
        skip_invalid: bool = False,
        chunk_rows: int = PREDICT_CHUNK_ROWS,
    ) -> pd.DataFrame:
        """Predict each patient's EFS: curve, EFS at each horizon with a 95% interval, risk group, top reasons.

        Parameters
        ----------
        records : DataFrame, path to CSV/Parquet, or list of dicts
            Patients in the record schema (outcome columns optional); for a generic-mode model, a table with the
            model's own feature columns (see :meth:`validate`).
        horizons : mapping name -> days, or days
            Default 6 and 12 months.
        top : int
            Number of clinical variables in ``top_reasons`` (by |SHAP| of EFS at ``explain_horizon``).
        skip_invalid : bool
            Predict the valid rows only; invalid rows are listed in ``result.attrs["rejected"]`` (a DataFrame
            as a list of problem dicts). Otherwise an invalid row raises :class:`RecordError` listing every problem.
            When every row is invalid the result is empty (with its columns).
        chunk_rows : int
            Rows predicted at a time (memory is bounded by the chunk, not the input; results are identical).

        Returns
        -------
        DataFrame
            One row per (valid) patient in input order: ``patient_id``, ``efs_<h>``, ``efs_<h>_lo``,
            ``efs_<h>_hi`` for each horizon, ``risk_group``, ``top_reasons`` (list of dicts with ``variable``,
            ``value``, ``effect`` = change in EFS probability at ``explain_horizon``), ``assumptions`` (what
            was assumed, "" if nothing: a blinatumomab response, CD19 or KMT2A status that is unknown and was
            seen in fewer than 10 training patients is marginalised over the known levels, see
            :mod:`carrisk.unseen`), ``curve`` (dict with ``days`` and ``efs``).
        """
        return predictions_table(
            self,
            records,
            horizons,
            skip_invalid=skip_invalid,
            top=top,
            explain_horizon=explain_horizon,
            chunk_rows=chunk_rows,
        )

    def predict_causes(
        self,
        records: Any,
        horizons: Mapping[str, float] | Sequence[float] = DEFAULT_HORIZONS,
        *,
        skip_invalid: bool = False,
    ) -> pd.DataFrame:
        """Each patient's cumulative incidence of every first-event cause, adding up to ``1 - EFS`` of this model.

        The EFS prediction decides how many fail by each time, the stored :attr:`cause_model` of what; the table
        is :func:`carrisk.predict_causes` of this model's :meth:`predict_efs` (intervals: the cause shares'
        bootstrap, not the EFS model's own uncertainty).

        Parameters
        ----------
        records : DataFrame, path to CSV/Parquet, or list of dicts
            Patients in the record schema (outcome columns optional).
        horizons : mapping name -> days, or days
            Default 6 and 12 months.
        skip_invalid : bool
            Predict the valid rows only (as :meth:`predict_efs`).

        Returns
        -------
        DataFrame
            ``patient_id``, ``efs_<h>``, ``cif_<cause>_<h>`` (with ``_lo``/``_hi``) and ``cause_curves``.

        Raises
        ------
        ValueError
            If this model carries no cause-specific model.
        """
        if self.cause_model is None:
            raise ValueError(
                "this model carries no cause-specific model (trained without the outcome columns, in generic mode, "
                "or saved by an older carrisk); retrain it on records, or give the training records "
                "(--cause-training RECORDS.csv)"
            )
        frame, _ = self.valid_rows(records, skip_invalid=skip_invalid)
        efs = pd.concat(list(self.iter_predictions(frame, horizons, top=0))) if len(frame) else None
        if efs is None:
            efs = self.empty_predictions(horizons)
        return self.split_by_cause(efs, frame, horizons=horizons)

    def split_by_cause(
        self,
        efs_prediction: pd.DataFrame,
        records: pd.DataFrame,
        cause_model: Any = None,
        horizons: Mapping[str, float] | Sequence[float] = DEFAULT_HORIZONS,
    ) -> pd.DataFrame:
        """:func:`carrisk.predict_causes` of this model's ``efs_prediction`` for ``records`` (same rows).

        A patient whose unknown level the EFS prediction marginalised gets the same mixture of the cause model's
        incidences. ``cause_model`` defaults to the stored :attr:`cause_model`.
        """
        from carrisk.competing.prediction import predict_causes

        frame = records.reset_index(drop=True)
        expanded, weights, _ = marginalisation_plan(
            frame, self.features.categorize(frame), getattr(self, "level_counts", None)
        )
        model = self.cause_model if cause_model is None else cause_model
        return predict_causes(efs_prediction, model, frame, horizons, mixture=(expanded, weights))

    def validate(self, records: Any, *, source: str = "records") -> pd.DataFrame:
        """Check records against what this model reads; raise :class:`RecordError` listing every problem.

        A clinical model checks the carrisk record schema (outcome columns ignored). A generic-mode model checks
        its own feature spec: each feature column present, numbers finite, categories among the training levels
        (missing cells are allowed and imputed), identifiers unique.
        """
        frame = _as_records(records)
        spec = self.features.spec or FeatureSpec()
        if spec.clinical:
            return validate_records(frame, outcomes="ignore", source=source)
        levels: dict[str, list[str]] = {}
        for _, builder in self.features.builders_:
            levels.update({k: v for k, v in getattr(builder, "categories_", {}).items() if k in spec.categorical})
        id_col = spec.id_col if spec.id_col in frame.columns else None
        return validate_feature_table(frame, spec.numeric, levels, id_col=id_col, source=source)

    def valid_rows(self, records: Any, *, skip_invalid: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The records to predict and the problems of the rows left out (``skip_invalid``).

        Raises
        ------
        RecordError
            Any problem without ``skip_invalid``; a table-level problem (a missing column) always.
        """
        frame = _as_records(records)
        rejected = pd.DataFrame(columns=PROBLEM_COLUMNS)
        try:
            self.validate(frame)
        except RecordError as err:
            if not skip_invalid:
                raise
            rejected = err.to_frame()
            if rejected["row"].isna().any():
                raise  # a missing column cannot be skipped row by row
            frame = frame.drop(index=sorted({int(r) - 1 for r in rejected["row"]}))
        return frame, rejected

    def iter_predictions(
        self,
        frame: pd.DataFrame,
        horizons: Mapping[str, float] | Sequence[float] = DEFAULT_HORIZONS,
        *,
        top: int = 3,
        explain_horizon: float = SIX_MONTHS_DAYS,
        chunk_rows: int = PREDICT_CHUNK_ROWS,
    ) -> Iterator[pd.DataFrame]:
        """Predictions for validated records (see :meth:`valid_rows`), ``chunk_rows`` rows at a time, in order.

        Every row is predicted independently of the others, so the chunks concatenated equal one unchunked
        prediction bit for bit; peak memory grows with ``chunk_rows``, not with the input.
        """
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
        named = horizon_names(horizons)
        for name, days in {**named, "explain_horizon": explain_horizon}.items():
            if not np.isfinite(days) or days <= 0:
                raise ValueError(f"horizon {name!r} must be a positive number of days, got {days!r}")
        # The fixed horizons (6 and 12 months, the band) may lie past a short-follow-up model's curve: its value
        # there is the curve's last one, and every patient's assumptions say so (explain refuses such a horizon).
        last = float(self.time_grid[-1])
        beyond = [name for name, days in named.items() if days > last]
        note = (
            f"EFS at {', '.join(beyond[:3])}{' and later' if len(beyond) > 3 else ''} is past this model's follow-up "
            f"(its curve ends at day {last:g}): carried forward from day {last:g}"
            if beyond
            else ""
        )
        explain_horizon = min(explain_horizon, last)  # the same SHAP values: the curve is flat after its end
        for start in range(0, len(frame), chunk_rows):
            table = self._predict_chunk(frame.iloc[start : start + chunk_rows], named, top, explain_horizon)
            if note:
                table["assumptions"] = [f"{a}; {note}" if a else note for a in table["assumptions"]]
            yield table

    def empty_predictions(self, horizons: Mapping[str, float] | Sequence[float] = DEFAULT_HORIZONS) -> pd.DataFrame:
        """A prediction table with no rows: the columns :meth:`predict_efs` returns."""
        columns = [ID_COLUMN]
        for name in horizon_names(horizons):
            columns += [f"efs_{name}", f"efs_{name}_lo", f"efs_{name}_hi"]
        return pd.DataFrame(columns=[*columns, "risk_group", "top_reasons", "assumptions", "curve"])

    def _predict_chunk(
        self, frame: pd.DataFrame, named: Mapping[str, float], top: int, explain_horizon: float
    ) -> pd.DataFrame:
        # The encoder warns that an unseen level is scored as the reference level; here that is not what happens
        # (unknown levels are marginalised) or the ``assumptions`` column already says it, per patient.
        with quiet_encoder():
            return self._predict_chunk_quietly(frame, named, top, explain_horizon)

    def _predict_chunk_quietly(
        self, frame: pd.DataFrame, named: Mapping[str, float], top: int, explain_horizon: float
    ) -> pd.DataFrame:
        # records with a rare or unseen "unknown" level are predicted as the mixture over the known levels
        categorized = self.features.categorize(frame)
        expanded, weights, assumptions = marginalisation_plan(
            frame.reset_index(drop=True), categorized, getattr(self, "level_counts", None)
        )
        assumptions = reference_level_notes(self.features, categorized, assumptions)
        design = self._design(expanded)
        times = np.array(list(named.values()), dtype=float)
        grid = self.time_grid
        leaves = self._leaves(design)
        curves = self._curves(design, leaves)
        point = step_survival(grid, curves, times)
        lo, hi = self._intervals(design, times, point, leaves)
        curves, point = np.asarray(weights @ curves), np.asarray(weights @ point)
        lo, hi = mixture_interval(weights, lo, hi)  # a marginalised patient's spans its candidate levels
        out = pd.DataFrame({ID_COLUMN: self.patient_ids(frame)})
        for j, name in enumerate(named):
            out[f"efs_{name}"] = point[:, j]
            out[f"efs_{name}_lo"] = np.minimum(lo[:, j], point[:, j])
            out[f"efs_{name}_hi"] = np.maximum(hi[:, j], point[:, j])
        efs_12 = step_survival(grid, curves, np.array([TWELVE_MONTHS_DAYS]))[:, 0]
        out["risk_group"] = self.risk_group(efs_12)
        if top and len(frame):
            shap_result = self._explain_rows(design, weights, explain_horizon)  # marginalised like the prediction
            shown = self._display(frame.reset_index(drop=True), categorized.reset_index(drop=True))
            out["top_reasons"] = top_reasons(shap_result, shown, top)
        else:
            out["top_reasons"] = [[] for _ in range(len(frame))]
        out["assumptions"] = assumptions
        out["curve"] = [{"days": grid.tolist(), "efs": c.tolist()} for c in curves]
        out.index = frame.index
        return out

    def patient_ids(self, frame: pd.DataFrame) -> np.ndarray:
        """Each record's identifier as text: ``patient_id``, else the spec's id column, else the row number."""
        spec = self.features.spec or FeatureSpec()
        for column in (ID_COLUMN, spec.id_col):
            if column is not None and column in frame.columns:
                return frame[column].astype(str).to_numpy()
        return np.asarray(frame.index)


#: Yes/no variables: read from one 0/1 column, shown (and put in an explanation's data) as "yes"/"no".
_LABELLED_VARIABLES = ("down_syndrome", "prior_inotuzumab")


def _transplant_history(count: Any, months: Any) -> str:
    """``none``, ``2``, ``1 (last 14 months ago)``, ``missing``; a missing count or gap may be None or NaN."""
    if count is None or count != count:
        return "missing" if months is None or months != months else f"count missing (last {months:.0f} months ago)"
    if count == 0:
        return "none"
    if months is None or months != months:
        return f"{count:.0f}"
    return f"{count:.0f} (last {months:.0f} months ago)"


def _readable(value: Any, yes_no: bool = False) -> str:
    if value is None or value != value:
        return "missing"
    if isinstance(value, float) and yes_no:
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def top_reasons(shap_result: explain.ShapResult, shown: pd.DataFrame, top: int) -> list[list[dict[str, Any]]]:
    """Each patient's ``top`` variables by absolute SHAP value: ``variable``, readable ``value``, ``effect``."""
    values = shap_result.values
    reasons = []
    for i in range(len(values)):
        order = np.argsort(-np.abs(values[i]))[:top]
        reasons.append(
            [
                {
                    "variable": shap_result.feature_names[k],
                    "value": str(shown.iloc[i].get(shap_result.feature_names[k], "")),
                    "effect": float(values[i, k]),
                }
                for k in order
            ]
        )
    return reasons


def _as_records(records: Any) -> pd.DataFrame:
    if isinstance(records, pd.DataFrame):
        return records.reset_index(drop=True)
    if isinstance(records, str | os.PathLike):
        return read_records(Path(records))
    if isinstance(records, Iterable):
        return pd.DataFrame(list(records))
    raise TypeError(f"records must be a DataFrame, a file path or a list of dicts, not {type(records).__name__}")


#: The default model of :func:`fit_efs_model` and ``carrisk train`` on carrisk records: the truth benchmark's winner
#: (the 50/50 average of the two-part model and the deviance-tuned Cox model; see the README's truth section).
DEFAULT_MODEL = "average"
#: The default for generic survival tables, where the day-28 response of the two-part model means nothing.
DEFAULT_GENERIC_MODEL = "coxnet_cv"


def fit_efs_model(
    records: pd.DataFrame,
    y: np.ndarray,
    model: str | None = None,
    *,
    spec: FeatureSpec | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    seed: int = 0,
    inner_folds: int = 3,
    scoring: str = "harrell",
    n_bootstrap: int = 100,
    synthetic: bool = False,
    cv_metrics: Mapping[str, Any] | None = None,
    causes: bool | None = None,
    **params: Any,
) -> EFSModel:
    """Tune on all records (see :func:`carrisk.tuned_model`), refit, and wrap the result as an :class:`EFSModel`.

    Parameters
    ----------
    records, y
        Raw training records and survival target.
    model : {"average", "two_part", "coxnet_cv", "stacked", "rsf", "coxnet", "coxph", "gbsa"} or None
        None: :data:`DEFAULT_MODEL` (the 50/50 average, which won the truth benchmark) for carrisk records,
        :data:`DEFAULT_GENERIC_MODEL` for a generic survival table (``spec.clinical`` False).
    seed : int
        Seeds the tuning folds, the forest and the bootstrap (recorded).
    scoring : {"harrell", "uno", "ibs", "deviance"}
        Criterion of the grid search for models with a grid (see :func:`carrisk.tuned_model`; recorded). The
        default models choose their penalties inside the estimator by proper scores.
    n_bootstrap : int
        Bootstrap refits for the intervals of the Cox and linear-index models.
    synthetic : bool
        Whether the training data are synthetic (recorded in the metadata and the model card).
    cv_metrics : mapping, optional
        Cross-validated metrics to record (from :func:`carrisk.cross_validate`).
    causes : bool, optional
        Also fit the cause-specific model of :meth:`EFSModel.predict_causes` (a
        :class:`carrisk.competing.CauseSpecificModel` with :data:`CAUSE_BOOTSTRAP` bootstrap refits seeded by
        ``seed``; about 15 s at n = 420). Default: when the records are in the record schema with all their
        outcome columns; a contradiction in them then only warns and skips it, while ``causes=True`` raises it.
    """
    check_survival_target(y)
    if model is None:
        model = DEFAULT_MODEL if spec is None or spec.clinical else DEFAULT_GENERIC_MODEL
    records = records.reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        tuned = tuned_model(
            model, spec, grid, inner_folds=inner_folds, scoring=scoring, random_state=seed, **params
        ).fit(records, y)
    pipeline = final_pipeline(tuned)
    design = pipeline[:-1].transform(records)
    efs_12 = pipeline[-1].predict_survival_matrix(design, np.array([TWELVE_MONTHS_DAYS]))[:, 0]
    cutpoints = np.quantile(efs_12, [1 / 3, 2 / 3])
    rng = np.random.default_rng(seed)
    background = design[rng.choice(len(design), size=min(100, len(design)), replace=False)]
    inbag = bootstrap = refits = None
    group_size = 1  # trees per half-sample group of a little-bags forest
    interval_bootstrap: dict[str, Any] | None = None
    if isinstance(pipeline[-1], SurvivalForest):
        inbag = inbag_counts(pipeline[-1].forest_, len(design))
        group_size = int(getattr(pipeline[-1].forest_, "ci_group_size_", 1))  # 1: bootstrap trees
        if group_size > 1:
            interval_method = (
                f"little bags (grf's bootstrap of little bags, groups of {group_size} trees on shared half-samples), "
                "objective-Bayes debiased (logit scale)"
            )
        else:
            interval_method = "infinitesimal jackknife, bias-corrected, empirical-Bayes calibrated (logit scale)"
    elif hasattr(pipeline[-1], "survival_from_indices"):
        refits = bootstrap_refits(pipeline[-1], design, y, n_bootstrap, seed, INTERVAL_PENALTY_DIVISOR)
        interval_bootstrap = {"method": "centred", "penalty_divisor": INTERVAL_PENALTY_DIVISOR, "refits": len(refits)}
        interval_method = (
            f"bootstrap, centred: the logit-scale 2.5-97.5 % spread of {len(refits)} refits of the final estimator "
            f"at 1/{INTERVAL_PENALTY_DIVISOR:g} of its chosen penalties, around their median, moved onto the point"
        )
    else:
        if hasattr(pipeline[-1], "coef_"):
            bootstrap = _bootstrap_cox(pipeline[-1], design, y, n_bootstrap, rng)
        interval_method = f"bootstrap percentile ({n_bootstrap} refits)"
    metadata = {
        "synthetic_training_data": synthetic,
        "intended_use": "research and education; not for clinical decisions",
        "training_data": data_fingerprint(records) | {"events": int(check_survival_target(y)[0].sum())},
        "training_case_mix": case_mix_summary(pipeline.named_steps["features"].categorize(records)),
        "seeds": {"tuning": seed, "model": seed, "bootstrap": seed},
        "horizons_days": DEFAULT_HORIZONS,
        "interval_method": interval_method,
        **({"interval_bootstrap": interval_bootstrap} if interval_bootstrap else {}),
        "tuning": tuning_record(tuned, inner_folds, scoring),
        "cv_metrics": dict(cv_metrics or {}),
        "versions": package_versions(),
    }
    fitted = EFSModel(
        pipeline,
        model,
        chosen_params(tuned),
        cutpoints,
        metadata,
        background,
        inbag,
        bootstrap,
        # the patients whose jackknife estimates fit the variance prior (a seeded subset of large training sets)
        reference=design[reference_rows(len(design), seed)] if inbag is not None and group_size == 1 else None,
        refits=refits,
        level_counts=level_counts(pipeline.named_steps["features"].categorize(records)),
    )
    if inbag is not None and fitted.ci_group_size == 1:
        for horizon in DEFAULT_HORIZONS.values():
            fitted.variance_prior(horizon)  # fitted once here, stored in the bundle
        fitted.metadata.update(_interval_noise(fitted, len(design), inbag.shape[1]))
        if fitted.metadata.get("interval_warning"):
            warnings.warn(fitted.metadata["interval_warning"], UserWarning, stacklevel=2)
    last = float(fitted.time_grid[-1])
    short = [name for name, days in DEFAULT_HORIZONS.items() if days > last]
    if short:
        warnings.warn(
            f"the training follow-up ends at day {last:g}: this model's EFS at {', '.join(short)} can only be "
            f"carried forward from day {last:g} (predictions say so in their assumptions)",
            UserWarning,
            stacklevel=2,
        )
    fitted.cause_model = _fit_cause_model(records, spec, causes, seed)
    return fitted


def _interval_noise(fitted: EFSModel, n_rows: int, n_trees: int) -> dict[str, Any]:
    """The forest's jackknife noise-to-signal ratio, and a warning when its intervals are too wide to use."""
    priors = [prior for prior in fitted.variance_priors.values() if prior is not None]
    if not priors:
        return {}
    ratio = max(prior.noise_to_signal for prior in priors)
    out: dict[str, Any] = {"interval_noise_to_signal": round(ratio, 3)}
    if n_rows > MAX_ROWS_PER_TREE * n_trees:
        out["interval_warning"] = (
            f"the forest's intervals are inflated by Monte-Carlo noise ({n_trees} trees for {n_rows} training rows, "
            f"more than {MAX_ROWS_PER_TREE} rows per tree; jackknife noise {ratio:.1f}x the typical variance): they "
            f"are wider than the forest's sampling variability (1.6x at 25 rows per tree, +-30 points at 500); "
            f"grow at least one tree per {MAX_ROWS_PER_TREE} training rows for intervals of the right width, or "
            f"use engine='hist' (its default ci_group_size=2 gives grf's little-bags intervals, whose noise does "
            f"not grow with the rows per tree)"
        )
    return out


def _fit_cause_model(records: pd.DataFrame, spec: FeatureSpec | None, causes: bool | None, seed: int) -> Any:
    """The cause-specific model for :func:`fit_efs_model` (None when ``causes`` is False or not applicable)."""
    from carrisk.competing.prediction import CauseSpecificModel
    from carrisk.schema import OUTCOME_COLUMNS

    applicable = (spec is None or spec.mode == "clinical") and set(OUTCOME_COLUMNS) <= set(records.columns)
    if causes is False or (causes is None and not applicable):
        return None
    if causes and not applicable:
        raise ValueError(
            "causes=True needs records in the record schema with the outcome columns " + ", ".join(OUTCOME_COLUMNS)
        )
    try:
        return CauseSpecificModel(spec, n_bootstrap=CAUSE_BOOTSTRAP, random_state=seed).fit(records)
    except RecordError as err:
        if causes:
            raise
        first = err.problems[0] if err.problems else err
        warnings.warn(f"no cause-specific model fitted ({len(err.problems)} problem(s): {first})", stacklevel=3)
        return None


def _bootstrap_cox(estimator: Any, design: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> Any:
    grid = np.asarray(estimator.unique_times_, dtype=float)
    coefs, baselines = [], []
    zero = np.zeros((1, design.shape[1]))
    for _ in range(n):
        index = rng.integers(0, len(design), len(design))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                refit = clone(estimator).fit(design[index], y[index])
        except (ValueError, ArithmeticError):
            continue
        coefs.append(np.ravel(refit.coef_))
        baselines.append(refit.predict_survival_matrix(zero, grid)[0] ** 1.0)
    if not coefs:
        return None
    return _CoxBootstrap(np.array(coefs), grid, np.array(baselines))
