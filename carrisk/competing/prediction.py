"""Per-patient cumulative incidence of each first-event cause, consistent with the EFS prediction.

Model (:class:`CauseSpecificModel`), the structure of the data-generating process of ``carrisk.simulate``:

- ``no_cr`` (no CR by day 28, including death before the assessment): logistic regression, ``p_noCR(x)``;
- each cause after CR (CD19+, CD19- relapse, lineage switch, unclassified, death in remission): a ridge Cox
  model of its cause-specific hazard among the patients who reached CR (other causes censored), with a Breslow
  baseline ``H0_k``;
- then ``S_CR(t_j) = S_CR(t_{j-1}) exp(-sum_k dH_kj)`` and
  ``CIF_k(t_j) = (1 - p_noCR) sum_{i<=j} S_CR(t_{i-1}) (1 - exp(-sum_k dH_ki)) dH_ki / sum_k dH_ki``
  on the grid of distinct event times, so the causes and the model's own EFS add up to 1 exactly.

Consistency with an EFS model (:func:`predict_causes`): the EFS model (e.g. the shipped forest) decides *how
many* fail in each step of its time grid, ``1 - EFS(t_{j-1}) - (1 - EFS(t_j))``; the cause-specific model
decides *of what*: each step is split between the causes in the proportions of the cause model's incidence
increments over the same step (or, where it has none, of its incidences so far). The causes then add up to
``1 - EFS(t)`` of the EFS model at every grid time, to floating-point error, and each stays non-decreasing
wherever the EFS curve is non-increasing.

Intervals: ``n_bootstrap`` refits of the cause model on bootstrap resamples (seeded), each splitting the same EFS
curve; the 2.5-97.5% spread of the refits about their median is moved onto the point estimate (a centred
interval, as for EFS: penalised refits are centred away from the full-data fit) and kept within ``[0, 1 - EFS]``.
When the EFS prediction carries its own interval at a horizon (``efs_<h>_lo``/``_hi``, as ``predict_efs`` gives),
the cause's interval is the share's band times the EFS interval's range of ``1 - EFS``, so it carries the EFS
model's uncertainty too. Measured against the simulator's truth (``python -m benchmarks.cause_interval_coverage``,
5 training cohorts of n = 420): the 95% intervals of the 12-month incidences cover the truth for 72% of patients
(CD19-negative relapse), 90% (CD19-positive), 43% (lineage switch), 71% (no CR), 76% (death in remission): they
are too narrow for the rarer causes, and are reported as such.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from carrisk.competing.outcomes import CAUSE_LABELS, CAUSES, derive_first_event
from carrisk.competing.regression import cross_validated_penalty, ridge_hazard_fit
from carrisk.features import ClinicalFeatures, FeatureSpec
from carrisk.schema import ID_COLUMN, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS

DEFAULT_HORIZONS = {"6mo": SIX_MONTHS_DAYS, "12mo": TWELVE_MONTHS_DAYS}
AFTER_CR_CAUSES = CAUSES[1:]
#: Ridge penalties the inner cross-validation of :class:`CauseSpecificModel` chooses from.
DEFAULT_ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)


def cause_design(spec: FeatureSpec | None, *, scale: bool = True) -> Pipeline:
    """The competing-risks models' design: clinical features, median imputation, and standardisation if ``scale``."""
    steps: list[tuple[str, Any]] = [
        ("features", ClinicalFeatures(spec)),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
    ]
    return Pipeline([*steps, ("scale", StandardScaler())] if scale else steps)


def cause_training_data(
    spec: FeatureSpec | None, records: pd.DataFrame
) -> tuple[Pipeline, np.ndarray, np.ndarray, np.ndarray]:
    """What a competing-risks model fits on: (fitted :func:`cause_design`, design matrix, time, cause code).

    The first-event time (days) and cause code come from :func:`carrisk.competing.derive_first_event`.

    Raises
    ------
    carrisk.schema.RecordError
        If the records or their outcome columns are invalid or contradictory.
    """
    records = records.reset_index(drop=True)
    events = derive_first_event(records)
    preprocess = cause_design(spec).fit(records)
    time = events["time_days"].to_numpy(dtype=float)
    code = events["cause_code"].to_numpy(dtype=int)
    return preprocess, preprocess.transform(records), time, code


class CauseSpecificModel(BaseEstimator):
    """Logistic no-CR model plus ridge cause-specific Cox models after CR; see the module docstring.

    Parameters
    ----------
    spec : FeatureSpec, optional
        Design-matrix spec (default: the clinical record schema).
    alpha : float or "cv", default "cv"
        Ridge penalty of the cause-specific Cox models (scikit-survival's ``0.5 * alpha * ||beta||^2`` on
        standardised columns, against a log partial likelihood summed over patients, so its weight falls as the
        cohort grows). ``"cv"``: chosen for each cause separately from ``alphas`` by ``inner_folds``-fold
        cross-validated partial log-likelihood on the training records (Verweij & van Houwelingen;
        :func:`carrisk.competing.regression.cross_validated_penalty`, folds seeded by ``random_state``), recorded
        in ``alpha_`` and the bundle manifest. With ~50 CD19-negative relapses and 26 design columns in a
        420-patient cohort weak penalties overfit (benchmarks/competing_truth.py measures the choice against the
        truth). A number fixes the penalty of every cause.
    alphas : tuple of float, default (1, 3, 10, 30, 100, 300, 1000, 3000)
        Candidates for ``alpha="cv"``.
    inner_folds : int, default 5
        Folds of the inner cross-validation.
    C : float, default 0.1
        Inverse ridge penalty of the no-CR logistic regression (fixed).
    n_background : int, default 20
        Training patients kept as the SHAP background of :meth:`explain_cif`.
    n_bootstrap : int, default 0
        Bootstrap refits kept for the intervals of :func:`predict_causes` (with the penalties chosen on the
        whole training set: the intervals do not include the uncertainty of that choice).
    random_state : int, default 0
        Seed of the bootstrap resamples and of the inner folds.

    Attributes
    ----------
    alpha_ : dict
        Cause (after CR) -> the ridge penalty used.
    alpha_cv_ : dict
        With ``alpha="cv"``: cause -> cross-validated partial log-likelihood of each of ``alphas``.
    """

    def __init__(
        self,
        spec: FeatureSpec | None = None,
        alpha: float | str = "cv",
        alphas: tuple[float, ...] = DEFAULT_ALPHAS,
        inner_folds: int = 5,
        C: float = 0.1,
        n_background: int = 20,
        n_bootstrap: int = 0,
        random_state: int = 0,
    ) -> None:
        self.spec = spec
        self.alpha = alpha
        self.alphas = alphas
        self.inner_folds = inner_folds
        self.C = C
        self.n_background = n_background
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state

    def fit(self, records: pd.DataFrame, y: Any = None) -> CauseSpecificModel:
        """Fit on records with outcome columns (the first-event causes are derived from them).

        Raises
        ------
        carrisk.schema.RecordError
            If the records or their outcome columns are invalid or contradictory.
        """
        self.preprocess_, design, time, code = cause_training_data(self.spec, records)
        self.causes_ = CAUSES
        self.feature_groups_ = dict(self.preprocess_.named_steps["features"].feature_groups_)
        self.feature_names_ = list(self.preprocess_.named_steps["features"].get_feature_names_out())
        self.unique_times_ = np.unique(time[code > 0])
        self.alpha_, self.alpha_cv_ = self._choose_alphas(design, time, code)
        self.coef_, self.intercept_, self.baseline_ = self._fit_parts(design, time, code)
        self.background_ = design[
            np.random.default_rng(self.random_state).permutation(len(design))[: self.n_background]
        ]
        rng = np.random.default_rng(self.random_state)
        self.bootstrap_ = []
        for _ in range(self.n_bootstrap):
            index = rng.integers(0, len(design), len(design))
            self.bootstrap_.append(self._fit_parts(design[index], time[index], code[index]))
        return self

    def _choose_alphas(
        self, design: np.ndarray, time: np.ndarray, code: np.ndarray
    ) -> tuple[dict[str, float], dict[str, list[float]]]:
        """Each after-CR cause's ridge penalty: fixed, or by inner cross-validation among patients in CR."""
        if not isinstance(self.alpha, str):
            return {cause: float(self.alpha) for cause in AFTER_CR_CAUSES}, {}
        if self.alpha != "cv":
            raise ValueError(f"alpha must be a number or 'cv', got {self.alpha!r}")
        in_cr = code != 1
        chosen, scores = {}, {}
        for k, cause in enumerate(AFTER_CR_CAUSES, start=2):
            chosen[cause], score = cross_validated_penalty(
                time[in_cr],
                code[in_cr],
                design[in_cr],
                k,
                self.alphas,
                subdistribution=False,
                folds=self.inner_folds,
                seed=self.random_state,
            )
            scores[cause] = [float(v) for v in score]
        return chosen, scores

    def manifest(self) -> dict[str, Any]:
        """What a bundle manifest records about this model: its settings and the penalties it chose."""
        tuned = self.alpha == "cv"  # models saved before the penalties were tuned have no alphas/inner_folds
        return {
            "model": type(self).__name__,
            "alpha": self.alpha,
            "alpha_chosen": dict(getattr(self, "alpha_", {})),
            "alpha_candidates": list(self.alphas) if tuned else None,
            "inner_folds": self.inner_folds if tuned else None,
            "C": self.C,
            "n_bootstrap": self.n_bootstrap,
            "random_state": self.random_state,
        }

    def _fit_parts(
        self, design: np.ndarray, time: np.ndarray, code: np.ndarray
    ) -> tuple[np.ndarray, float, np.ndarray]:
        """Coefficients (causes x columns), logistic intercept, baseline hazard increments on the grid."""
        grid = self.unique_times_
        coef = np.zeros((len(CAUSES), design.shape[1]))
        baseline = np.zeros((len(CAUSES), grid.size))
        no_cr = code == 1
        if no_cr.any() and not no_cr.all():
            logistic = LogisticRegression(C=self.C, max_iter=1000).fit(design, no_cr)
            coef[0], intercept = logistic.coef_[0], float(logistic.intercept_[0])
        else:
            intercept = 40.0 if no_cr.all() else -40.0
        if no_cr.any():  # when "no CR" is recorded: the distribution of its times (day 28, earlier if death)
            reached = np.searchsorted(np.sort(time[no_cr]), grid, side="right") / no_cr.sum()
            baseline[0] = np.diff(reached, prepend=0.0)
        in_cr = ~no_cr
        for k, cause in enumerate(AFTER_CR_CAUSES, start=1):
            failed = in_cr & (code == k + 1)
            if not failed.any():
                continue
            # scikit-survival's CoxPHSurvivalAnalysis(alpha, ties="breslow") fit, in O(n p^2) array operations
            # per Newton step (its own loops over patients in Python took minutes per fit at 100,000 rows)
            cox = ridge_hazard_fit(
                time[in_cr], np.where(failed, 2, 0)[in_cr], design[in_cr], 2, penalty=self.alpha_[cause],
                subdistribution=False,
            )  # fmt: skip
            coef[k] = cox.coef
            steps = np.cumsum(cox.baseline_hazard)
            index = np.searchsorted(cox.fail_times, grid, side="right") - 1
            cumulative = np.where(index >= 0, steps[np.maximum(index, 0)], 0.0)
            baseline[k] = np.diff(cumulative, prepend=0.0)
        return coef, intercept, baseline

    def _cif_from(self, lp: np.ndarray, intercept: float, baseline: np.ndarray) -> np.ndarray:
        """Cumulative incidence on the grid from linear predictors ``lp`` (..., causes): (..., grid, causes).

        "No CR by day 28" is ``P(no CR | x) * F(t)``, ``F`` the distribution of the times no CR was recorded
        (``baseline[0]`` holds its increments; a model saved before it was stored has zeros there, and its
        incidence of no CR is reached at the first grid time, as it was then).
        """
        p_no_cr = 1.0 / (1.0 + np.exp(-(lp[..., 0] + intercept)))
        timing = np.cumsum(baseline[0]) if baseline[0].sum() > 0 else np.ones(baseline.shape[1])
        hazard = np.exp(lp[..., 1:])[..., None, :] * baseline[1:].T  # (..., grid, causes after CR)
        total = hazard.sum(axis=-1)
        survival = np.exp(-np.cumsum(total, axis=-1))
        before = np.concatenate([np.ones((*survival.shape[:-1], 1)), survival[..., :-1]], axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            leave = np.where(total > 0, before * -np.expm1(-total) / total, 0.0)
        after_cr = (1.0 - p_no_cr)[..., None, None] * np.cumsum(leave[..., None] * hazard, axis=-2)
        no_cr = p_no_cr[..., None, None] * timing[:, None]
        return np.concatenate([no_cr, after_cr], axis=-1)

    def predict_cif(self, records: pd.DataFrame) -> np.ndarray:
        """Each patient's cumulative incidence of every cause on ``unique_times_``: (n, grid, causes).

        ``1 - sum over causes`` is this model's own EFS.
        """
        design = self.preprocess_.transform(records.reset_index(drop=True))
        return self._cif_from(design @ self.coef_.T, self.intercept_, self.baseline_)

    def bootstrap_cif(self, records: pd.DataFrame) -> np.ndarray:
        """:meth:`predict_cif` of each bootstrap refit: (refits, n, grid, causes); empty without refits."""
        design = self.preprocess_.transform(records.reset_index(drop=True))
        if not self.bootstrap_:
            return np.zeros((0, len(design), self.unique_times_.size, len(self.causes_)))
        return np.stack([self._cif_from(design @ c.T, b0, h) for c, b0, h in self.bootstrap_])

    def explain_cif(self, records: pd.DataFrame, cause: str = "cd19neg", horizon: float = TWELVE_MONTHS_DAYS) -> Any:
        """Exact interventional SHAP of this model's ``cause`` incidence at ``horizon``, per clinical variable.

        Players are the clinical variables (one-hot columns enter and leave together). Every variable adds a
        fixed amount to each cause's linear predictor, so the value of a coalition is the mean over the
        background patients of the incidence with the coalition's contributions from the patient and the rest
        from the background; Shapley values follow from the subset formula (2^13 coalitions for the 13 record
        variables), each averaged over ``n_background`` patients: about 10 s per patient on one core.
        ``base_values + values.sum(axis=1) == predictions`` for every patient.

        Returns
        -------
        carrisk.explain.ShapResult
        """
        from carrisk.explain import ShapResult  # shap and numba load only when explaining

        frame = records.reset_index(drop=True)
        design = self.preprocess_.transform(frame)
        players = list(dict.fromkeys(self.feature_groups_.get(c, c) for c in self.feature_names_))
        membership = np.zeros((len(self.feature_names_), len(players)))
        for column, name in enumerate(self.feature_names_):
            membership[column, players.index(self.feature_groups_.get(name, name))] = 1.0
        k = self.causes_.index(cause)
        last = int(np.searchsorted(self.unique_times_, horizon, side="right"))
        baseline = self.baseline_[:, :last]

        def value(lp: np.ndarray) -> np.ndarray:
            if last == 0:
                return np.zeros(lp.shape[:-1])
            return self._cif_from(lp, self.intercept_, baseline)[..., -1, k]

        # contributions of each player to each cause's linear predictor: (rows, players, causes)
        contrib_x = np.einsum("np,pq,kp->nqk", design, membership, self.coef_)
        contrib_bg = np.einsum("np,pq,kp->nqk", self.background_, membership, self.coef_)
        values = coalition_shap(contrib_x, contrib_bg, value)
        predictions = value(contrib_x.sum(axis=1))
        return ShapResult(
            values=values,
            base_values=float(value(contrib_bg.sum(axis=1)).mean()),
            predictions=predictions,
            feature_names=players,
            data=pd.DataFrame(index=frame.index),
            output=f"cif_{cause}",
            times=np.asarray(horizon),
            exact=True,
        )


def coalition_shap(contrib_x: np.ndarray, contrib_bg: np.ndarray, value: Any) -> np.ndarray:
    """Exact interventional Shapley values of ``value`` for players that add to several linear predictors.

    Parameters
    ----------
    contrib_x : (n, q, m) array
        Each patient's contribution of player ``g`` to linear predictor ``k``.
    contrib_bg : (b, q, m) array
        The same for the background patients.
    value : callable
        Maps linear predictors ``(..., m)`` to the explained output ``(...)``.

    Returns
    -------
    (n, q) array
        ``phi_g = sum_T |T|! (q-|T|-1)! / q! (v(T + g) - v(T))`` with ``v(T)`` the background mean of
        ``value`` at the patient's contributions for ``T`` and the background's for the rest. Cost:
        ``2^q x b`` evaluations per patient.
    """
    n, q, _ = contrib_x.shape
    masks = np.arange(2**q)
    in_coalition = ((masks[:, None] >> np.arange(q)) & 1).astype(float)  # (2^q, q)
    sizes = in_coalition.sum(axis=1).astype(int)
    factorial = np.cumprod(np.r_[1.0, np.arange(1, q + 1)])
    weight_of_size = factorial[:q] * factorial[q - 1 :: -1] / factorial[q]
    background_part = np.einsum("tq,bqk->tbk", 1.0 - in_coalition, contrib_bg)  # (2^q, b, m)
    phi = np.zeros((n, q))
    for i in range(n):
        patient_part = in_coalition @ contrib_x[i]  # (2^q, m)
        v = np.concatenate(
            [
                value(patient_part[c : c + 512, None, :] + background_part[c : c + 512]).mean(axis=1)
                for c in range(0, masks.size, 512)
            ]
        )
        for g in range(q):
            without = masks[(masks >> g) & 1 == 0]
            phi[i, g] = weight_of_size[sizes[without]] @ (v[without | (1 << g)] - v[without])
    return phi


def predict_causes(
    efs_prediction: pd.DataFrame,
    cause_model: Any,
    records: pd.DataFrame,
    horizons: Mapping[str, float] | Sequence[float] = DEFAULT_HORIZONS,
    mixture: tuple[pd.DataFrame, Any] | None = None,
) -> pd.DataFrame:
    """Cumulative incidence of each cause per patient, adding up to ``1 - EFS`` of an EFS model's prediction.

    Parameters
    ----------
    efs_prediction : DataFrame
        Output of ``EFSModel.predict_efs(records)`` (its ``curve`` column: ``days`` and ``efs``), same rows.
    cause_model : CauseSpecificModel or CompetingRiskForest
        Fitted; any model with ``predict_cif(records)`` (patients x ``unique_times_`` x ``causes_``) decides the
        shares (intervals only from a model with ``bootstrap_cif``, i.e. a bootstrapped cause-specific model).
    records : DataFrame
        The patients, same rows and order as ``efs_prediction``.
    horizons : mapping name -> days, or days
    mixture : (expanded records, weights), optional
        :func:`carrisk.unseen.marginalisation_plan` of ``records``: a patient whose unknown level the EFS model
        marginalised gets the same mixture of the cause model's incidences (``weights @ cif(expanded)``) instead
        of the cause model scoring the unseen level as its reference level.

    Returns
    -------
    DataFrame
        ``patient_id``, ``efs_<h>``, and for each cause and horizon ``cif_<cause>_<h>`` (plus ``_lo`` and
        ``_hi`` with a bootstrapped cause model), and ``cause_curves`` (dict with ``days`` and one list per
        cause); ``sum_k cif_<k>_<h> == 1 - efs_<h>``.
    """
    named = dict(horizons) if isinstance(horizons, Mapping) else {f"{h:g}d": float(h) for h in horizons}
    frame = records.reset_index(drop=True)
    if len(frame) != len(efs_prediction):
        raise ValueError(f"efs_prediction has {len(efs_prediction)} rows but records has {len(frame)}.")
    days = np.asarray(efs_prediction["curve"].iloc[0]["days"], dtype=float) if len(frame) else np.zeros(0)
    efs = np.array([c["efs"] for c in efs_prediction["curve"]], dtype=float).reshape(len(frame), days.size)
    expanded, weights = mixture if mixture is not None else (frame, None)

    def mixed(cif: np.ndarray) -> np.ndarray:  # (len(expanded), times, causes) -> (n, times, causes)
        if weights is None:
            return cif
        return np.asarray(weights @ cif.reshape(cif.shape[0], -1)).reshape(len(frame), *cif.shape[1:])

    with warnings.catch_warnings():  # an unseen level is marginalised above, or noted in the EFS assumptions
        warnings.filterwarnings("ignore", message=r".*were not seen in training", category=UserWarning)
        cause_cif = mixed(cause_model.predict_cif(expanded))
        refits = cause_model.bootstrap_cif(expanded) if hasattr(cause_model, "bootstrap_cif") else []
    point = _split(efs, days, cause_cif, cause_model.unique_times_)
    out = pd.DataFrame({ID_COLUMN: efs_prediction[ID_COLUMN].to_numpy()})
    index = np.searchsorted(days, np.array(list(named.values())), side="right") - 1
    bands = None
    if len(refits):
        replicates = np.stack([_split(efs, days, mixed(cif), cause_model.unique_times_) for cif in refits])
        # centred on the point (as the EFS interval): the refits' spread about their median, moved onto the point,
        # kept within [0, 1 - EFS]; the refits' own centre is offset from the full-data fit (penalised refits)
        spread = np.percentile(replicates - np.median(replicates, axis=0), [2.5, 97.5], axis=0)
        ceiling = (1.0 - efs)[:, :, None]
        bands = (np.clip(point + spread[0], 0.0, point), np.clip(point + spread[1], point, ceiling))
    for h, (name, _) in enumerate(named.items()):
        i = index[h]
        out[f"efs_{name}"] = efs[:, i] if i >= 0 else 1.0
        for k, cause in enumerate(cause_model.causes_):
            out[f"cif_{cause}_{name}"] = point[:, i, k] if i >= 0 else 0.0
            if bands is not None:
                low, high = (bands[0][:, i, k], bands[1][:, i, k]) if i >= 0 else (np.zeros(len(frame)),) * 2
                if f"efs_{name}_lo" in efs_prediction and i >= 0:
                    # the EFS model's own uncertainty too: the share's band times the EFS interval's failure range
                    failed = 1.0 - efs[:, i]
                    with np.errstate(invalid="ignore", divide="ignore"):
                        share_low = np.where(failed > 0, low / failed, 0.0)
                        share_high = np.where(failed > 0, high / failed, 0.0)
                    most = 1.0 - efs_prediction[f"efs_{name}_lo"].to_numpy(dtype=float)
                    low = share_low * (1.0 - efs_prediction[f"efs_{name}_hi"].to_numpy(dtype=float))
                    high = np.where(failed > 0, share_high * most, high)
                out[f"cif_{cause}_{name}_lo"] = low
                out[f"cif_{cause}_{name}_hi"] = high
    out["cause_curves"] = [
        {"days": days.tolist(), **{cause: point[r, :, k].tolist() for k, cause in enumerate(cause_model.causes_)}}
        for r in range(len(frame))
    ]
    return out


def cause_model_for(
    efs_model: Any, training_records: pd.DataFrame | None = None, *, n_bootstrap: int = 20, random_state: int = 0
) -> CauseSpecificModel:
    """Fit the cause-specific model on the records an EFS model was trained on.

    Parameters
    ----------
    efs_model : EFSModel
        Its ``metadata["build"]["cohort"]`` names the simulated cohort it was built from (the shipped default
        model does); otherwise give ``training_records``.
    training_records : DataFrame, optional
        Records with outcome columns.
    n_bootstrap, random_state : int
        Bootstrap refits for the intervals, and their seed.

    Raises
    ------
    ValueError
        If no training records are given and the model does not say which simulated cohort trained it.
    """
    if training_records is None:
        cohort = dict(efs_model.metadata.get("build", {}).get("cohort", {}))
        if cohort.get("generator") != "carrisk.simulate_cohort":
            raise ValueError(
                "this model carries no cause-specific model and does not record a simulated training cohort; "
                "retrain it on records with outcome columns, or give its training records (--cause-training)"
            )
        from carrisk.simulate import simulate_cohort

        training_records = simulate_cohort(n=int(cohort["n"]), seed=int(cohort["seed"])).records
    return CauseSpecificModel(n_bootstrap=n_bootstrap, random_state=random_state).fit(training_records)


def _split(efs: np.ndarray, days: np.ndarray, cause_cif: np.ndarray, cause_times: np.ndarray) -> np.ndarray:
    """Split each step of ``1 - efs`` (n, grid) between the causes in the cause model's proportions.

    Where the cause model has no step in an EFS step (a time its fit saw no event at, e.g. in a bootstrap
    resample) the step is split like the cause model's remaining incidence after it (the kinds of failure still to
    come: no longer "no CR" after day 28), and only past the last of those like the incidence so far.
    """
    index = np.searchsorted(cause_times, days, side="right") - 1
    on_grid = np.where(index[None, :, None] >= 0, cause_cif[:, np.maximum(index, 0), :], 0.0)  # (n, grid, K)
    step = np.diff(on_grid, axis=1, prepend=0.0)
    step_total = step.sum(axis=2, keepdims=True)
    still_to_come = cause_cif[:, -1:, :] - on_grid if cause_cif.shape[1] else np.zeros_like(on_grid)
    to_come_total = still_to_come.sum(axis=2, keepdims=True)
    so_far_total = on_grid.sum(axis=2, keepdims=True)
    n_causes = on_grid.shape[2]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(
            step_total > 1e-15,
            step / step_total,
            np.where(
                to_come_total > 1e-15,
                still_to_come / to_come_total,
                np.where(so_far_total > 0, on_grid / so_far_total, 1.0 / n_causes),
            ),
        )
    failed = 1.0 - efs
    failed_step = np.diff(failed, axis=1, prepend=0.0)
    return np.cumsum(share * failed_step[:, :, None], axis=1)


def format_causes(table: pd.DataFrame, horizon: str = "12mo") -> str:
    """One line per patient: the incidence of each cause at ``horizon`` (with intervals when present)."""
    lines = []
    for row in table.to_dict("records"):
        parts = []
        for cause in CAUSES:
            value = row[f"cif_{cause}_{horizon}"]
            band = (
                f" ({row[f'cif_{cause}_{horizon}_lo']:.1%}-{row[f'cif_{cause}_{horizon}_hi']:.1%})"
                if f"cif_{cause}_{horizon}_lo" in row
                else ""
            )
            parts.append(f"{CAUSE_LABELS[cause]} {value:.1%}{band}")
        lines.append(f"{row[ID_COLUMN]}: by {horizon}, {'; '.join(parts)}; event-free {row[f'efs_{horizon}']:.1%}")
    return "\n".join(lines)


__all__ = [
    "CauseSpecificModel",
    "cause_design",
    "cause_model_for",
    "cause_training_data",
    "coalition_shap",
    "format_causes",
    "predict_causes",
]
