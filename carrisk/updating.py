"""Updating a saved model for a new centre: Steyerberg's hierarchy, chosen by Vergouwe et al.'s closed test.

Every update acts on the parent model's predicted EFS curves, so it works for any model with
``predict_survival(records, times)`` (forest, penalized Cox, ...) and never touches its internals. With
``H_p(t | x) = -log S_p(t | x)`` the parent's cumulative hazard and ``lp(x) = log H_p(t* | x)`` its risk score
at the reference time ``t*`` (12 months by default), centred at its mean ``lp_0`` in the update cohort, the
updated model is::

    H(t | x) = H_p(t | x) * exp(a + c * (lp(x) - lp_0) + g' (z(x) - z_0))

with the levels of Steyerberg's hierarchy [1]_ [2]_:

0. **original**: a = c = 0, g = 0.
1. **recalibration in the large**: ``a`` free (a baseline hazard multiplier ``exp(a)``).
2. **recalibration**: ``a`` and ``c`` free; ``1 + c`` is the calibration slope of the risk score (for a Cox
   parent, ``H_p(t|x) exp(c lp) = H_0(t) exp((1 + c) lp)``: the linear predictor's slope is re-estimated).
3. **revision**: also ``g``, a re-estimated log hazard ratio for every column ``z`` of the parent's design
   matrix that varies in the update cohort (the parent's risk score stays in as a covariate). With many
   columns and a few hundred patients the maximum-likelihood ``g`` overfits, so it is shrunk by the heuristic
   factor ``s = (chi2 - p) / chi2`` of van Houwelingen & le Cessie [5]_ (``chi2`` the likelihood-ratio statistic
   of the revision against the recalibration, ``p`` its extra parameters), towards the recalibration: the
   revision's change of the linear predictor over the recalibration's is multiplied by ``s`` (``g -> s g``,
   ``c -> c_recal + s (c_rev - c_recal)``); ``a`` is then matched to the Kaplan-Meier estimate as below. The
   standard errors of the shrunken ``c`` and ``g`` are the unshrunken fit's times ``s`` (an approximation
   that ignores the recalibration's own uncertainty). For a Cox parent ``lp`` is itself a linear function of
   ``z``, so only the revision's combined change ``c lp + g'z`` is determined, not ``c`` and ``g`` apart
   (their standard errors are then very large and mean nothing on their own). The ``risk_score_slope`` the
   update records for every level is therefore the least-squares slope of the updated risk score
   ``log H(t* | x)`` on the parent's ``lp(x)`` over the update cohort: ``1 + c`` below the revision, and for
   the revision the slope that its whole change ``c lp + g'z`` gives.

Because ``H_p`` is known, the log-likelihood of the updated model in ``(a, c, g)`` is that of a Poisson model
of the event indicator ``d_i`` with offset ``log H_p(t_i | x_i)`` (the follow-up truncated at ``t*``; the
terms not involving the parameters drop out; Crowson, Atkinson & Therneau [3]_). The levels are nested, so
they are compared by likelihood-ratio tests, and the level is chosen by the closed testing procedure of
Vergouwe et al. [4]_: test the original model against the revision (df = 2 + p); if not significant keep the
original; otherwise test recalibration in the large against the revision (df = 1 + p), then recalibration
(df = p); the first one not significantly worse than the revision is chosen, else the revision. The tests use
the unshrunken revision's likelihood, as in the paper.

The slope ``c`` and the effects ``g`` are the Poisson estimates, but the baseline term ``a`` of every level is
then set so that the update cohort's mean predicted event probability by ``t*`` equals its Kaplan-Meier
estimate (re-estimating the baseline survival at ``t*``, as for a Cox model's ``S_0(t*)`` [1]_ [6]_)::

    mean_i [1 - S_p(t* | x_i) ** exp(a + c (lp_i - lp_0) + g'(z_i - z_0))] = 1 - KM(t*).

The Poisson ``a`` is biased for calibration at ``t*`` whenever the new centre's hazard does not differ from
the parent's by one constant factor over ``[0, t*]``: the parent's curves jump at day 28 (no remission is an
event at day 28; the Poisson likelihood treats the cumulative hazard as continuous), and a centre with a worse
post-remission baseline but the same remission rate changes only the hazard after the jump. The likelihood
then averages the factor over the whole follow-up, weighted towards the early part that patients censored
before ``t*`` contribute, and on a centre with the post-remission hazard x 1.8 it left the predicted
12-month event probability 0.016 too low even with 20,000 patients. The matched ``a`` has no such bias; its
standard error is the Kaplan-Meier's (Greenwood) carried through the equation above by the delta method,
with ``c`` and ``g`` held fixed.

References
----------
.. [1] Steyerberg, E. W. (2019). Clinical Prediction Models, 2nd ed., chapter 20. Springer.
.. [2] Janssen, K. J. M., Moons, K. G. M., Kalkman, C. J., Grobbee, D. E., & Vergouwe, Y. (2008). "Updating
       methods improved the performance of a clinical prediction model in new patients". Journal of
       Clinical Epidemiology, 61(1), 76-86.
.. [3] Crowson, C. S., Atkinson, E. J., & Therneau, T. M. (2016). "Assessing calibration of prognostic risk
       scores". Statistical Methods in Medical Research, 25(4), 1692-1706.
.. [4] Vergouwe, Y., Nieboer, D., Oostenbrink, R., et al. (2017). "A closed testing procedure to select an
       appropriate method for updating prediction models". Statistics in Medicine, 36(28), 4529-4539.
.. [5] van Houwelingen, J. C., & le Cessie, S. (1990). "Predictive value of statistical models". Statistics in
       Medicine, 9(11), 1303-1325.
.. [6] van Houwelingen, H. C. (2000). "Validation, calibration, revision and combination of prognostic survival
       models". Statistics in Medicine, 19(24), 3401-3415.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, sparse, stats

from carrisk import explain as shap_explain
from carrisk.evaluate import check_event_count, cohort_outcome
from carrisk.metrics import DEFAULT_HORIZONS_DAYS
from carrisk.nonparametric import kaplan_meier_at
from carrisk.predict import DEFAULT_HORIZONS, predictions_table, risk_groups, top_reasons
from carrisk.schema import ID_COLUMN, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS, read_records
from carrisk.target import months_hint
from carrisk.unseen import marginalisation_plan, mixture_interval, quiet_encoder, warn_scored_as_reference

__all__ = ["LEVELS", "UpdateResult", "UpdatedModel", "closed_test", "update_model"]

LEVELS = ("original", "recalibration_in_the_large", "recalibration", "revision")
LEVEL_LABELS = {
    "original": "original model",
    "recalibration_in_the_large": "recalibration in the large (baseline hazard multiplier)",
    "recalibration": "recalibration (baseline and slope of the risk score)",
    "revision": "revision (recalibration plus every predictor's effect re-estimated)",
}
SURVIVAL_CLIP = 1e-6
PREDICT_CHUNK_ROWS = 2000


def _cumulative_hazard(surv: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(surv, SURVIVAL_CLIP, 1.0 - SURVIVAL_CLIP))


def _parent_hazard_at_own_times(parent: Any, records: pd.DataFrame, time: np.ndarray) -> np.ndarray:
    """``H_p(t_i | x_i)`` for each patient at their own (truncated) follow-up time, in chunks of patients."""
    out = np.empty(time.size)
    for start in range(0, time.size, PREDICT_CHUNK_ROWS):
        rows = slice(start, start + PREDICT_CHUNK_ROWS)
        chunk_times = time[rows]
        unique, inverse = np.unique(chunk_times, return_inverse=True)
        surv = parent.predict_survival(records.iloc[rows], unique)
        out[rows] = _cumulative_hazard(surv[np.arange(chunk_times.size), inverse])
    return out


def _design(parent: Any, records: pd.DataFrame) -> np.ndarray | None:
    pipeline = getattr(parent, "pipeline", None)
    if pipeline is None:
        return None
    with quiet_encoder():  # the rows of a marginalisation plan; levels scored as the reference are reported
        return np.asarray(pipeline[:-1].transform(records), dtype=float)


def _poisson_fit(events: np.ndarray, offset: np.ndarray, covariates: np.ndarray) -> tuple[np.ndarray, float, Any]:
    """Maximum-likelihood Poisson regression with an offset (statsmodels GLM); returns (coef, loglik, fit)."""
    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.GLM(events, covariates, family=sm.families.Poisson(), offset=offset).fit()
    return np.asarray(fit.params, dtype=float), float(fit.llf), fit


def _poisson_loglik(events: np.ndarray, mean: np.ndarray) -> float:
    mean = np.maximum(mean, 1e-300)
    return float(np.sum(events * np.log(mean) - mean))


def _matched_intercept(
    log_hazard_at_reference: np.ndarray, shift: np.ndarray, event: np.ndarray, time: np.ndarray, reference_days: float
) -> tuple[float, float] | None:
    """``a`` with mean predicted event probability by ``t*`` = 1 - Kaplan-Meier, and its delta-method SE.

    ``log_hazard_at_reference`` is ``log H_p(t* | x_i)`` and ``shift`` the rest of the log multiplier
    (``c (lp_i - lp_0) + g'(z_i - z_0)``). None when the Kaplan-Meier estimate at ``t*`` is undefined (no
    follow-up to ``t*``) or 0 or 1, where no finite ``a`` matches it.
    """
    km, lower, _ = kaplan_meier_at(event, time, reference_days)
    if not (np.isfinite(km) and np.isfinite(lower) and 0.0 < km < 1.0):
        return None
    base = log_hazard_at_reference + shift

    def excess(a: float) -> float:
        return float(np.mean(-np.expm1(-np.exp(base + a)))) - (1.0 - km)

    intercept = float(optimize.brentq(excess, -30.0, 30.0, xtol=1e-12))
    # log-log interval: lower = km ** exp(z sigma), sigma the SE of log(-log KM); SE(KM) = sigma * KM * |log KM|
    sigma = np.log(np.log(lower) / np.log(km)) / stats.norm.ppf(0.975)
    hazard = np.exp(base + intercept)
    derivative = float(np.mean(np.exp(-hazard) * hazard))  # d/da of the mean predicted event probability
    return intercept, float(sigma * km * -np.log(km) / derivative)


@dataclass
class _Fitted:
    coef: np.ndarray
    loglik: float
    covariance: np.ndarray | None


def closed_test(loglik: Mapping[str, float], df: Mapping[str, int], alpha: float = 0.05) -> pd.DataFrame:
    """Vergouwe et al.'s closed test: each level against the revision, least extensive first.

    Parameters
    ----------
    loglik : mapping level -> log-likelihood
        For every level in :data:`LEVELS`.
    df : mapping level -> number of estimated parameters
        0 for the original model.
    alpha : float
        Significance level of every test.

    Returns
    -------
    DataFrame
        One row per level except the revision: ``level``, ``lr_statistic``, ``df`` (revision's parameters
        minus the level's), ``p_value`` against the revision, and ``chosen`` (bool; exactly one row of the
        whole procedure is chosen, possibly the revision, which is added as the last row).
    """
    rows = []
    chosen: str | None = None
    for level in LEVELS[:-1]:
        statistic = max(2.0 * (loglik["revision"] - loglik[level]), 0.0)
        extra = df["revision"] - df[level]
        p_value = float(stats.chi2.sf(statistic, extra)) if extra > 0 else 1.0
        rows.append({"level": level, "lr_statistic": statistic, "df": extra, "p_value": p_value})
        if chosen is None and p_value >= alpha:
            chosen = level
    rows.append({"level": "revision", "lr_statistic": 0.0, "df": 0, "p_value": float("nan")})
    table = pd.DataFrame(rows)
    table["chosen"] = table["level"] == (chosen or "revision")
    table.insert(1, "label", table["level"].map(LEVEL_LABELS))
    table["loglik"] = table["level"].map(loglik)
    return table


class _UpdatedIndices:
    """The updated model as a linear-index model (see :class:`carrisk.explain.CoxExplainer`), for exact SHAP.

    The parent's ``K`` linear indices, plus one for the revision's ``g'(z - z_0)``; the updated survival is
    ``S_p(t | eta) ** exp(a + c (log H_p(t* | eta) - lp_0) + eta_K)``, a function of those indices only. A
    parent that is itself a linear-index model (two-part, penalized Cox, stack) gives its indices and
    ``S_p``; a Cox model (one linear predictor, as its explainer reads it) gives
    ``S_p(t | eta) = S_p(t | z = 0) ** exp(eta)``.
    """

    def __init__(self, model: UpdatedModel, parent_estimator: Any, cox_coef: np.ndarray | None = None) -> None:
        self.model, self.parent_estimator = model, parent_estimator
        if cox_coef is None:
            coefs = np.asarray(parent_estimator.index_coefs_, dtype=float)
            offsets = np.asarray(parent_estimator.index_offsets_, dtype=float)
        else:
            coefs, offsets = np.asarray(cox_coef, dtype=float).reshape(-1, 1), np.zeros(1)
        self.cox = cox_coef is not None
        revision = np.zeros(coefs.shape[0])
        revision[model.revision_columns] = model.revision_coef
        self.parent_indices = coefs.shape[1]
        self.index_coefs_ = np.column_stack([coefs, revision])
        centre = float(model.design_centre @ model.revision_coef) if model.revision_columns else 0.0
        self.index_offsets_ = np.r_[offsets, -centre]

    def _parent_survival(self, indices: np.ndarray, times: np.ndarray) -> np.ndarray:
        if not self.cox:
            return np.asarray(self.parent_estimator.survival_from_indices(indices, times), dtype=float)
        zero = np.zeros((1, self.index_coefs_.shape[0]))
        baseline = np.asarray(self.parent_estimator.predict_survival_matrix(zero, times), dtype=float)[0]
        return np.exp(np.exp(indices[..., 0])[..., None] * np.log(np.clip(baseline, np.finfo(float).tiny, None)))

    def survival_from_indices(self, indices: np.ndarray, times: np.ndarray) -> np.ndarray:
        parent_indices = indices[..., : self.parent_indices]
        survival = self._parent_survival(parent_indices, np.asarray(times, dtype=float))
        at_reference = self._parent_survival(parent_indices, np.array([self.model.reference_days]))
        lp = np.log(_cumulative_hazard(at_reference[..., 0]))
        log_multiplier = self.model.intercept + self.model.slope_change * (lp - self.model.lp_centre) + indices[..., -1]
        return np.asarray(survival ** np.exp(log_multiplier)[..., None])


class UpdatedModel:
    """A parent model whose predicted cumulative hazard is multiplied by ``exp(a + c lp + g'z)`` (see module).

    Created by :func:`update_model`; saved and loaded with :func:`carrisk.save_model`/:func:`carrisk.load_model`
    like any model. It predicts through the parent's curves, so it works for any parent model.

    Attributes
    ----------
    parent : object
        The original model (kept whole inside the bundle).
    level : str
        One of :data:`LEVELS`.
    intercept, slope_change : float
        ``a`` and ``c``.
    revision_coef : ndarray
        ``g`` for ``revision_columns`` (empty below the revision level).
    revision_columns : list of int
        Indices of the parent's design columns used by the revision.
    lp_centre : float
        ``lp_0``.
    design_centre : ndarray
        ``z_0`` for ``revision_columns``.
    reference_days : float
        ``t*``.
    risk_cutpoints : ndarray
        Tertiles of the updated 12-month EFS in the update cohort (risk groups of ``predict_efs``).
    update : dict
        What was done: level, coefficients with standard errors, the closed test, the update cohort's size,
        the parent's payload SHA-256.
    """

    def __init__(
        self,
        parent: Any,
        level: str,
        intercept: float,
        slope_change: float,
        revision_coef: np.ndarray,
        revision_columns: list[int],
        lp_centre: float,
        design_centre: np.ndarray,
        reference_days: float,
        risk_cutpoints: np.ndarray,
        update: dict[str, Any],
    ) -> None:
        self.parent = parent
        self.level = level
        self.intercept = intercept
        self.slope_change = slope_change
        self.revision_coef = revision_coef
        self.revision_columns = revision_columns
        self.lp_centre = lp_centre
        self.design_centre = design_centre
        self.reference_days = reference_days
        self.risk_cutpoints = risk_cutpoints
        self.update = update

    # ----- what evaluation and bundles read from a model -----
    @property
    def model_name(self) -> str:
        return f"{getattr(self.parent, 'model_name', type(self.parent).__name__)} ({self.level.replace('_', ' ')})"

    @property
    def params(self) -> Any:
        return getattr(self.parent, "params", None)

    @property
    def features(self) -> Any:
        return getattr(self.parent, "features", None)

    @property
    def pipeline(self) -> Any:
        return getattr(self.parent, "pipeline", None)

    @property
    def reference(self) -> Any:
        return getattr(self.parent, "reference", None)

    @property
    def background(self) -> Any:
        return getattr(self.parent, "background", None)

    @property
    def metadata(self) -> dict[str, Any]:
        return {**(getattr(self.parent, "metadata", {}) or {}), "update": self.update}

    def validate(self, records: Any, *, source: str = "records") -> pd.DataFrame:
        """The parent's record check (an update changes no input the model reads)."""
        return self.parent.validate(records, source=source)

    def valid_rows(self, records: Any, *, skip_invalid: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The parent's :meth:`~carrisk.EFSModel.valid_rows`."""
        return self.parent.valid_rows(records, skip_invalid=skip_invalid)

    def empty_predictions(self, horizons: Mapping[str, float] | Sequence[float] = DEFAULT_HORIZONS) -> pd.DataFrame:
        """The parent's empty prediction table (the same columns)."""
        return self.parent.empty_predictions(horizons)

    def display_values(self, records: pd.DataFrame) -> pd.DataFrame:
        """The parent's readable value of each clinical variable."""
        return self.parent.display_values(records)

    def patient_ids(self, frame: pd.DataFrame) -> np.ndarray:
        """The parent's identifier of each record."""
        return np.asarray(self.parent.patient_ids(frame))

    def split_by_cause(
        self,
        efs_prediction: pd.DataFrame,
        records: pd.DataFrame,
        cause_model: Any,
        horizons: Mapping[str, float] | Sequence[float] = DEFAULT_HORIZONS,
    ) -> pd.DataFrame:
        """The updated EFS split between the causes by ``cause_model`` (as the parent's ``split_by_cause``)."""
        return self.parent.split_by_cause(efs_prediction, records, cause_model, horizons)

    @property
    def cause_model(self) -> None:
        """None: the parent's cause-specific model describes the parent's EFS, not the updated one."""
        return None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_explainer", None)  # rebuilt on demand
        return state

    def manifest(self) -> dict[str, Any]:
        """The parent's manifest section with the update recorded under ``update``."""
        own = getattr(self.parent, "manifest", None)
        base = own() if callable(own) else {}
        return {**base, "model": self.model_name, "update": self.update}

    # ----- prediction -----
    def log_multiplier(self, records: pd.DataFrame) -> np.ndarray:
        """``a + c (lp - lp_0) + g'(z - z_0)`` per patient: the log of the cumulative-hazard multiplier."""
        records = records.reset_index(drop=True)
        lp = np.log(_cumulative_hazard(self.parent.predict_survival(records, [self.reference_days])[:, 0]))
        value = self.intercept + self.slope_change * (lp - self.lp_centre)
        if self.revision_columns:
            design = _design(self.parent, records)
            assert design is not None
            value = value + (design[:, self.revision_columns] - self.design_centre) @ self.revision_coef
        return value

    def _plan(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, Any, np.ndarray]:
        """The parent's marginalisation plan of ``frame``: (expanded rows, weights, indices of the rows used).

        A patient whose unknown level the parent marginalises is updated as each candidate level, then mixed:
        the update is a model of the EFS given every covariate, and the mixture is over the one not known (so the
        prediction is the same mixture :meth:`explain` explains, and its SHAP values add up to it).
        """
        features = getattr(self.parent, "features", None)
        if features is None:  # a parent without clinical features has nothing to marginalise
            return frame, sparse.identity(len(frame), format="csr"), np.arange(len(frame))
        expanded, weights, _ = marginalisation_plan(
            frame, features.categorize(frame), getattr(self.parent, "level_counts", None)
        )
        used = np.flatnonzero(np.asarray(abs(weights).sum(axis=0)).ravel() > 0)
        return expanded.iloc[used].reset_index(drop=True), weights[:, used], used

    def predict_survival(self, records: Any, times: Sequence[float] | np.ndarray) -> np.ndarray:
        """Updated EFS probability at ``times``: ``S_p(t|x) ** exp(log_multiplier(x))``, shape (n, len(times)).

        Marginalised patients (see :meth:`_plan`) get the mixture of their candidate levels' updated EFS.
        """
        frame = read_records(records).reset_index(drop=True)
        rows, weights, _ = self._plan(frame)
        parent = np.asarray(self.parent.predict_survival(rows, times), dtype=float)
        return np.asarray(weights @ (parent ** np.exp(self.log_multiplier(rows))[:, None]))

    def _index_model(self) -> _UpdatedIndices | None:
        """The update as a linear-index model, or None when the parent is not one (a forest)."""
        parent = self.parent
        estimator = getattr(parent, "estimator", None)
        if getattr(parent, "background", None) is None:
            return None
        if hasattr(estimator, "survival_from_indices"):
            return _UpdatedIndices(self, estimator)
        own = parent.explainer() if hasattr(parent, "explainer") else None
        if isinstance(own, shap_explain.CoxExplainer) and own.index_coefs.shape[1] == 1:
            return _UpdatedIndices(self, estimator, own.index_coefs[:, 0])  # the Cox model's coefficients
        return None

    def check_horizon(self, days: float, what: str = "horizon") -> None:
        """The parent's :meth:`~carrisk.EFSModel.check_horizon` (an update does not extend the curve)."""
        if hasattr(self.parent, "check_horizon"):
            self.parent.check_horizon(days, what)

    def explain(
        self, records: Any, horizon: float = SIX_MONTHS_DAYS, output: str = "survival", aggregate: bool = True
    ) -> shap_explain.ShapResult:
        """Exact SHAP values of the *updated* EFS probability at ``horizon``, per clinical variable.

        The updated survival ``S_p(t | x) ** exp(a + c (lp(x) - lp_0) + g'(z - z_0))`` is a function of the
        parent's linear indices (and, for a revision, of one more: ``g'z``), so it is explained exactly as the
        parent is (:class:`carrisk.explain.CoxExplainer`, interventional, the parent's background patients):
        recomputed, not rescaled from the parent's values. ``base_value + sum(values) == prediction``, the
        updated model's :meth:`predict_survival` at ``horizon``. Unknown levels are marginalised as in
        :meth:`carrisk.EFSModel.explain`.

        Raises
        ------
        ValueError
            For ``output`` other than ``"survival"``, or a parent that is not a linear-index model (a random
            survival forest: its tree SHAP does not carry through ``S ** m(x)``).
        """
        if output != "survival":
            raise ValueError(
                f"an updated model is explained on its EFS probability (output='survival'), not {output!r}"
            )
        parent = self.parent
        index_model = self._index_model()
        if index_model is None:
            raise ValueError(
                f"explanations of an updated {getattr(parent, 'model_name', type(parent).__name__)} model are not "
                "available: exact SHAP of the update needs a parent whose EFS is a function of linear indices "
                "(two-part, Cox, penalized Cox or a stack of them) with stored background patients"
            )
        self.check_horizon(horizon)
        frame = read_records(records).reset_index(drop=True)
        categorized = parent.features.categorize(frame)
        expanded, weights, assumptions = marginalisation_plan(frame, categorized, getattr(parent, "level_counts", None))
        warn_scored_as_reference(parent.features, categorized, assumptions)
        design = _design(parent, expanded)
        assert design is not None
        if self.__dict__.get("_explainer") is None:
            self.__dict__["_explainer"] = shap_explain.CoxExplainer(
                index_model,
                background=parent.background,
                feature_names=list(parent.features.get_feature_names_out()),
                groups=parent.features.feature_groups_,
            )
        result = self.__dict__["_explainer"].shap_values(design, output="survival", times=[horizon])
        if result.values.ndim == 3:
            result = result.select_time(horizon)
        if len(expanded) > len(frame):
            result = dataclasses.replace(
                result,
                values=np.asarray(weights @ result.values),
                predictions=np.asarray(weights @ result.predictions),
                data=result.data.iloc[: len(frame)],
            )
        result.meta["update"] = {"level": self.level, "parent_payload_sha256": self.update.get("parent_payload_sha256")}
        column_level = list(result.feature_names) == list(parent.features.get_feature_names_out())
        if aggregate and column_level:
            result = result.aggregate(parent.features.feature_groups_)
        if hasattr(parent, "explained_data"):
            result = dataclasses.replace(result, data=parent.explained_data(frame, result.feature_names))
        return result

    def iter_predictions(
        self,
        frame: pd.DataFrame,
        horizons: Mapping[str, float] | Sequence[float] = DEFAULT_HORIZONS,
        *,
        top: int = 3,
        explain_horizon: float = SIX_MONTHS_DAYS,
        **kwargs: Any,
    ) -> Iterator[pd.DataFrame]:
        """The parent's prediction chunks with EFS, interval bounds, curves, risk groups and reasons updated.

        The same monotone transformation ``S -> S ** m(x)`` is applied to the point estimate and both interval
        bounds (they remain an interval of the parent's uncertainty, carried through the update; the update's
        own estimation error is not included). Risk groups use the tertiles of the updated 12-month EFS in the
        update cohort. ``top_reasons`` are the SHAP values of the updated EFS (:meth:`explain`); for a parent
        without linear indices (a forest) they are empty and ``assumptions`` says so.
        """
        for table in self.parent.iter_predictions(frame, horizons, top=0, explain_horizon=explain_horizon, **kwargs):
            rows = frame.loc[table.index].reset_index(drop=True)
            expanded, weights, _ = self._plan(rows)
            if len(expanded) != len(rows) or weights.nnz != len(rows):  # some patients are marginalised
                parts = self.parent.iter_predictions(expanded, horizons, top=0, explain_horizon=explain_horizon)
                candidates = pd.concat(list(parts)).reset_index(drop=True)
            else:
                candidates = table.reset_index(drop=True)
            multiplier = np.exp(self.log_multiplier(expanded))
            for column in [c for c in table.columns if c.startswith("efs_")]:
                updated = np.clip(candidates[column].to_numpy(dtype=float), 0.0, 1.0) ** multiplier
                candidates[column] = updated
                if not column.endswith(("_lo", "_hi")):
                    table[column] = np.asarray(weights @ updated)
            for name in [c[: -len("_lo")] for c in table.columns if c.endswith("_lo")]:
                lo = candidates[f"{name}_lo"].to_numpy(dtype=float)
                hi = candidates[f"{name}_hi"].to_numpy(dtype=float)
                lo, hi = mixture_interval(weights, lo, hi)  # a marginalised patient's spans its candidates
                point = table[name].to_numpy(dtype=float)
                table[f"{name}_lo"], table[f"{name}_hi"] = np.minimum(lo, point), np.maximum(hi, point)
            days = [np.asarray(curve["days"]) for curve in table["curve"]]
            curves = np.asarray(
                weights @ np.array([np.asarray(c["efs"]) ** m for c, m in zip(candidates["curve"], multiplier)])
            )
            table["curve"] = [{"days": d.tolist(), "efs": c.tolist()} for d, c in zip(days, curves)]
            if "efs_12mo" in table:
                table["risk_group"] = risk_groups(table["efs_12mo"].to_numpy(), self.risk_cutpoints)
            if top and len(rows) and self._index_model() is not None:
                shap_result = self.explain(rows, horizon=explain_horizon)
                table["top_reasons"] = top_reasons(shap_result, self.display_values(rows), top)
            elif top and len(rows):
                note = "no reasons: an updated forest model has no exact explanation"
                table["assumptions"] = [f"{a}; {note}" if a else note for a in table["assumptions"]]
            yield table

    def predict_efs(
        self,
        records: Any,
        horizons: Mapping[str, float] | Sequence[float] = DEFAULT_HORIZONS,
        *,
        top: int = 3,
        explain_horizon: float = SIX_MONTHS_DAYS,
        skip_invalid: bool = False,
        **kwargs: Any,
    ) -> pd.DataFrame:
        """The parent's :meth:`~carrisk.EFSModel.predict_efs` table, updated (see :meth:`iter_predictions`)."""
        return predictions_table(
            self, records, horizons, skip_invalid=skip_invalid, top=top, explain_horizon=explain_horizon, **kwargs
        )


@dataclass
class UpdateResult:
    """Result of :func:`update_model`.

    Attributes
    ----------
    model : UpdatedModel
        The model at the chosen (or requested) level.
    closed_test : DataFrame
        :func:`closed_test`'s table.
    coefficients : DataFrame
        Per level: ``level``, ``term``, ``estimate``, ``se``.
    candidates : dict of level -> UpdatedModel
        The model at every level (for before/after comparisons).
    """

    model: UpdatedModel
    closed_test: pd.DataFrame
    coefficients: pd.DataFrame
    candidates: dict[str, UpdatedModel]

    def to_text(self) -> str:
        lines = ["Closed test (each level against the revision, likelihood ratio):"]
        for row in self.closed_test.to_dict("records"):
            mark = "  <- chosen" if row["chosen"] else ""
            p_value = f"p = {row['p_value']:.3g}" if np.isfinite(row["p_value"]) else "(full model)"
            lines.append(f"  {row['label']}: LR {row['lr_statistic']:.2f} on {row['df']} df, {p_value}{mark}")
        model = self.model
        lines.append(
            f"Chosen: {LEVEL_LABELS[model.level]}; baseline hazard multiplier exp(a) = {np.exp(model.intercept):.3f}, "
            f"slope of the updated risk score on the original's = {model.update['risk_score_slope']:.3f}"
        )
        return "\n".join(lines)


def update_model(
    model: Any,
    records: pd.DataFrame,
    *,
    level: str = "auto",
    alpha: float = 0.05,
    reference_days: float = TWELVE_MONTHS_DAYS,
    source: str = "records",
    time_col: str | None = None,
    event_col: str | None = None,
) -> UpdateResult:
    """Update ``model`` on a new centre's cohort with outcomes.

    Parameters
    ----------
    model : EFSModel or any object with ``predict_survival(records, times)``
        The parent model.
    records : DataFrame
        The new centre's patients with outcomes: carrisk records (``efs_days``, ``efs_event``) for a clinical
        model; for a generic-mode model its feature columns and outcome columns (see
        :func:`carrisk.evaluate.cohort_outcome`).
    level : {"auto", "original", "recalibration_in_the_large", "recalibration", "revision"}
        ``"auto"`` chooses by the closed test; otherwise that level is returned (the test is still reported).
    alpha : float, default 0.05
        Significance level of the closed test.
    reference_days : float, default 365.25
        ``t*``: the risk score is ``log H_p(t*)`` and follow-up is truncated at ``t*``.
    source : str
        Name of the cohort for messages.
    time_col, event_col : str, optional
        A generic-mode model's outcome columns in this cohort, if not named as in training.

    Returns
    -------
    UpdateResult

    Raises
    ------
    RecordError
        For invalid records or outcome values.
    ValueError
        For an unknown level, an absent outcome column, or no event before ``reference_days``.
    """
    if level != "auto" and level not in LEVELS:
        raise ValueError(f"level must be 'auto' or one of {list(LEVELS)}, got {level!r}")
    records = records.reset_index(drop=True)
    event, time, outcome_columns = cohort_outcome(model, records, source=source, time_col=time_col, event_col=event_col)
    if not time.max() > reference_days:
        raise ValueError(
            f"the reference time ({reference_days:g} days) is not within the follow-up of {source}: the longest "
            f"follow-up is {time.max():g} days{months_hint(time)}"
        )
    truncated_event = (event & (time <= reference_days)).astype(float)
    truncated_time = np.minimum(time, reference_days)
    n_events = int(truncated_event.sum())
    counted = f"{source} has {{n}} event(s) in {outcome_columns[1]!r} before {reference_days:g} days"
    check_event_count(n_events, counted, "updating")

    offset = np.log(_parent_hazard_at_own_times(model, records, truncated_time))
    lp = np.log(_cumulative_hazard(model.predict_survival(records, [reference_days])[:, 0]))
    lp_centre = float(lp.mean())
    lp_centred = lp - lp_centre
    design = _design(model, records)
    columns: list[int] = []
    design_centre = np.zeros(0)
    if design is not None:
        varying = [j for j in range(design.shape[1]) if np.ptp(design[:, j]) > 0]
        base = np.column_stack([np.ones(event.size), lp_centred])
        for j in varying:  # keep columns that add rank (drops exact collinearity, e.g. one-hot complements)
            candidate = np.column_stack([base, design[:, j]])
            if np.linalg.matrix_rank(candidate) > base.shape[1]:
                base = candidate
                columns.append(j)
        design_centre = design[:, columns].mean(axis=0) if columns else np.zeros(0)
    covariates = {
        "recalibration_in_the_large": np.ones((event.size, 1)),
        "recalibration": np.column_stack([np.ones(event.size), lp_centred]),
        "revision": np.column_stack([np.ones(event.size), lp_centred, design[:, columns] - design_centre])
        if design is not None and columns
        else np.column_stack([np.ones(event.size), lp_centred]),
    }
    fits: dict[str, _Fitted] = {
        "original": _Fitted(np.zeros(0), _poisson_loglik(truncated_event, np.exp(offset)), None)
    }
    for name, matrix in covariates.items():
        coef, loglik, fit = _poisson_fit(truncated_event, offset, matrix)
        fits[name] = _Fitted(coef, loglik, np.asarray(fit.cov_params()))
    df = {name: len(fits[name].coef) for name in LEVELS}
    test = closed_test({name: fits[name].loglik for name in LEVELS}, df, alpha)
    shrinkage = 1.0
    if columns:
        # Heuristic shrinkage (van Houwelingen & le Cessie 1990) of the revision's change over the recalibration:
        # the shrunken linear predictor is (1 - s) c_recal lp + s (c_rev lp + g'z). Shrinking the whole change,
        # not g alone, keeps it meaningful when lp is (nearly) a linear function of z, as for a Cox parent, where
        # c and g are not separately interpretable; a is matched to the Kaplan-Meier estimate below.
        chi2 = 2.0 * (fits["revision"].loglik - fits["recalibration"].loglik)
        shrinkage = float(max(0.0, (chi2 - len(columns)) / chi2)) if chi2 > 0 else 0.0
        unshrunk = fits["revision"]
        assert unshrunk.covariance is not None
        slope = (1.0 - shrinkage) * fits["recalibration"].coef[1] + shrinkage * unshrunk.coef[1]
        fits["revision"] = _Fitted(
            np.r_[unshrunk.coef[0], slope, shrinkage * unshrunk.coef[2:]],
            unshrunk.loglik,
            unshrunk.covariance * shrinkage**2,
        )
    intercept_method = "Poisson maximum likelihood (Kaplan-Meier at the reference time undefined)"
    for name in LEVELS[1:]:
        coef = fits[name].coef
        shift = covariates["revision"][:, 1 : coef.size] @ coef[1:] if coef.size > 1 else np.zeros(event.size)
        matched = _matched_intercept(lp, shift, event, time, reference_days)
        if matched is None:
            continue
        intercept_method = "mean predicted event probability by the reference time = Kaplan-Meier"
        poisson = fits[name]
        assert poisson.covariance is not None
        matched_covariance = poisson.covariance.copy()
        matched_covariance[0, :] = matched_covariance[:, 0] = 0.0
        matched_covariance[0, 0] = matched[1] ** 2
        fits[name] = _Fitted(np.r_[matched[0], coef[1:]], poisson.loglik, matched_covariance)
    chosen = str(test.loc[test["chosen"], "level"].iloc[0]) if level == "auto" else level

    names = list(getattr(getattr(model, "features", None), "get_feature_names_out", lambda: [])())
    coefficient_rows = []
    for name in LEVELS[1:]:
        terms = ["log baseline hazard multiplier (a)", "risk-score slope change (c)"]
        terms += [f"log hazard ratio, {names[j] if j < len(names) else j}" for j in columns]
        covariance = fits[name].covariance
        se = np.sqrt(np.clip(np.diag(covariance), 0.0, None)) if covariance is not None else np.zeros(0)
        for k, estimate in enumerate(fits[name].coef):
            coefficient_rows.append({"level": name, "term": terms[k], "estimate": float(estimate), "se": float(se[k])})
    coefficients = pd.DataFrame(coefficient_rows, columns=["level", "term", "estimate", "se"])

    # The slope of the updated risk score log H(t*) = lp + a + shift on the parent's lp over the update cohort:
    # 1 + c below the revision; for the revision, c alone is not interpretable (c and g trade off), the whole
    # change c lp + g'z is.
    lp_variance = float(np.var(lp_centred))
    risk_score_slopes = {"original": 1.0}
    for name in LEVELS[1:]:
        coef = fits[name].coef
        shift = covariates["revision"][:, 1 : coef.size] @ coef[1:] if coef.size > 1 else np.zeros(event.size)
        cross = float(np.mean(shift * lp_centred))
        risk_score_slopes[name] = 1.0 + cross / lp_variance if lp_variance > 0 else float("nan")

    manifest = getattr(model, "manifest_", None) or {}
    parent_hash = (manifest.get("payload") or {}).get("sha256")
    candidates: dict[str, UpdatedModel] = {}
    for name in LEVELS:
        coef = fits[name].coef
        intercept = float(coef[0]) if coef.size > 0 else 0.0
        slope_change = float(coef[1]) if coef.size > 1 else 0.0
        revision = coef[2:] if coef.size > 2 else np.zeros(0)
        record = {
            "level": name,
            "description": LEVEL_LABELS[name],
            "chosen_by": "closed test (Vergouwe et al. 2017)" if level == "auto" else "requested",
            "alpha": alpha,
            "reference_days": reference_days,
            "baseline_hazard_multiplier": float(np.exp(intercept)),
            "baseline_estimated_by": intercept_method if name != "original" else None,
            "risk_score_slope": risk_score_slopes[name],
            "lp_centre": lp_centre,
            "revision_shrinkage": shrinkage if name == "revision" else None,
            "coefficients": coefficients[coefficients["level"] == name].to_dict("records"),
            "closed_test": test.to_dict("records"),
            "update_cohort": {
                "source": source,
                "rows": int(event.size),
                "outcome_columns": {"time": outcome_columns[0], "event": outcome_columns[1]},
                "events_before_reference": int(truncated_event.sum()),
                "ids": ID_COLUMN in records,
            },
            "parent_payload_sha256": parent_hash,
            "parent_model": getattr(model, "model_name", type(model).__name__),
        }
        updated = UpdatedModel(
            model,
            name,
            intercept,
            slope_change,
            np.asarray(revision, dtype=float),
            columns if name == "revision" else [],
            lp_centre,
            design_centre if name == "revision" else np.zeros(0),
            float(reference_days),
            np.zeros(2),
            record,
        )
        efs_12 = updated.predict_survival(records, [DEFAULT_HORIZONS_DAYS["12mo"]])[:, 0]
        updated.risk_cutpoints = np.quantile(efs_12, [1 / 3, 2 / 3])
        candidates[name] = updated
    return UpdateResult(candidates[chosen], test, coefficients, candidates)
