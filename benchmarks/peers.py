"""The models compared in the accuracy benchmark, behind one small interface.

Every model takes raw records and a survival target (``fit(records, y)``) and returns a risk score
(``risk(records)``, higher = earlier event) and survival probabilities on a time grid (``survival(records,
times)``). Whatever learns from data (encoding, imputation, scaling, tuning) is fitted inside ``fit``, i.e. on the
training fold only.

carrisk's models use carrisk's own pipelines (``tuned_model``). The peers share one preprocessing, fitted on the
training fold: one-hot encoding of the categorical columns (first level dropped, missing as its own level),
median imputation of numbers, dropping columns that are constant in the training fold, and, for the Cox models,
standardisation. On the simulated CAR-T cohort the raw records hold free-text clinical spellings that only
carrisk's parser reads, so the peers' one-hot design there comes from ``carrisk.ClinicalFeatures`` (fitted on the
training fold), followed by the same imputation / scaling.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sksurv.ensemble import RandomSurvivalForest
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import Surv

from carrisk.features import ClinicalFeatures, FeatureSpec
from carrisk.models import step_survival, target_arrays
from carrisk.tuning import chosen_params, final_pipeline, tuned_model

#: Peer settings named in the issue: scikit-survival's forest with its defaults except these two.
PEER_RSF_TREES = 200
PEER_RSF_MIN_SAMPLES_LEAF = 15
#: lifelines' ridge penalty on the standardised design: small; 1e-4 left Newton-Raphson unconverged on flchain folds.
LIFELINES_PENALIZER = 0.01
#: Newton-Raphson step (lifelines' default 0.95 oscillated on a flchain fold; its docs advise a smaller step).
LIFELINES_FIT_OPTIONS = {"step_size": 0.5}
#: XGBoost Cox settings (not tuned): shallow trees, moderate shrinkage.
XGB_PARAMS = {
    "objective": "survival:cox",
    "eta": 0.05,
    "max_depth": 3,
    "subsample": 0.8,
    "min_child_weight": 1.0,
    "nthread": 1,
}
XGB_ROUNDS = 300

MODEL_LABELS = {
    "carrisk_rsf": "carrisk RSF (tuned)",
    "carrisk_coxnet": "carrisk Coxnet (tuned)",
    "sksurv_rsf": "sksurv RSF (200 trees, leaf 15)",
    "sksurv_coxph": "sksurv CoxPH",
    "lifelines_coxph": "lifelines CoxPH",
    "xgboost_cox": "XGBoost Cox + Breslow",
}
CARRISK_MODELS = ("carrisk_rsf", "carrisk_coxnet")
PEER_MODELS = ("sksurv_rsf", "sksurv_coxph", "lifelines_coxph", "xgboost_cox")


def categories_as_text(frame: pd.DataFrame) -> np.ndarray:
    """Categorical cells as text, a missing cell as the level ``"missing"`` (stateless, so safe outside a fold)."""
    return pd.DataFrame(frame).astype(object).where(pd.DataFrame(frame).notna(), "missing").astype(str).to_numpy()


def peer_design(
    *,
    categorical: Sequence[str] | None,
    numeric: Sequence[str] | None,
    clinical_spec: FeatureSpec | None,
    scale: bool,
) -> Pipeline:
    """The peers' preprocessing pipeline (see the module docstring); unfitted."""
    steps: list[tuple[str, Any]]
    if clinical_spec is not None:
        steps = [
            ("features", ClinicalFeatures(clinical_spec)),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ]
    else:
        encoder = ColumnTransformer(
            [
                (
                    "categorical",
                    Pipeline(
                        [
                            ("as_text", FunctionTransformer(categories_as_text)),
                            ("one_hot", OneHotEncoder(drop="first", handle_unknown="ignore", sparse_output=False)),
                        ]
                    ),
                    list(categorical or ()),
                ),
                ("numeric", SimpleImputer(strategy="median", keep_empty_features=True), list(numeric or ())),
            ]
        )
        steps = [("encode", encoder)]
    steps.append(("drop_constant", VarianceThreshold()))
    if scale:
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


class BenchModel:
    """Base: a preprocessing pipeline plus an estimator on its design matrix."""

    scale = False

    def __init__(self, design_options: dict[str, Any], seed: int) -> None:
        self.design_options = design_options
        self.seed = seed
        self.params: dict[str, Any] = {}

    def fit(self, records: pd.DataFrame, y: np.ndarray) -> BenchModel:
        self.design_ = peer_design(**self.design_options, scale=self.scale)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            design = self.design_.fit_transform(records)
        event, time = target_arrays(y)
        self._fit_design(design, event, time)
        return self

    def _transform(self, records: pd.DataFrame) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            return self.design_.transform(records)

    def _fit_design(self, design: np.ndarray, event: np.ndarray, time: np.ndarray) -> None:
        raise NotImplementedError

    def risk(self, records: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def survival(self, records: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class CarriskModel:
    """carrisk's tuned pipeline (``tuned_model`` on the training fold: forests out of bag, Coxnet by inner CV)."""

    def __init__(self, model: str, spec: FeatureSpec, seed: int) -> None:
        self.model = model
        self.spec = spec
        self.seed = seed
        self.params: dict[str, Any] = {}

    def fit(self, records: pd.DataFrame, y: np.ndarray) -> CarriskModel:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            fitted = tuned_model(self.model, self.spec, random_state=self.seed).fit(records, y)
        self.pipeline_ = final_pipeline(fitted)
        self.params = chosen_params(fitted)
        return self

    def _design(self, records: pd.DataFrame) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            return self.pipeline_[:-1].transform(records)

    def risk(self, records: pd.DataFrame) -> np.ndarray:
        return self.pipeline_[-1].predict(self._design(records))

    def survival(self, records: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        return self.pipeline_[-1].predict_survival_matrix(self._design(records), times)


class SksurvForest(BenchModel):
    """scikit-survival ``RandomSurvivalForest``: defaults except 200 trees and min_samples_leaf=15; every time."""

    def _fit_design(self, design: np.ndarray, event: np.ndarray, time: np.ndarray) -> None:
        self.model_ = RandomSurvivalForest(
            n_estimators=PEER_RSF_TREES, min_samples_leaf=PEER_RSF_MIN_SAMPLES_LEAF, random_state=self.seed, n_jobs=1
        ).fit(design, Surv.from_arrays(event, time))

    def risk(self, records: pd.DataFrame) -> np.ndarray:
        return self.model_.predict(self._transform(records))

    def survival(self, records: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        surv = self.model_.predict_survival_function(self._transform(records), return_array=True)
        return step_survival(self.model_.unique_times_, surv, times)


class SksurvCox(SksurvForest):
    """scikit-survival ``CoxPHSurvivalAnalysis`` with its defaults (no penalty, Breslow ties)."""

    scale = True

    def _fit_design(self, design: np.ndarray, event: np.ndarray, time: np.ndarray) -> None:
        self.model_ = CoxPHSurvivalAnalysis().fit(design, Surv.from_arrays(event, time))


class LifelinesCox(BenchModel):
    """lifelines ``CoxPHFitter`` (Efron ties) with a negligible ridge penalty, on the standardised design."""

    scale = True

    def _frame(self, design: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(design, columns=[f"x{j}" for j in range(design.shape[1])])

    def _fit_design(self, design: np.ndarray, event: np.ndarray, time: np.ndarray) -> None:
        from lifelines import CoxPHFitter

        frame = self._frame(design).assign(time=time, event=event.astype(int))
        self.model_ = CoxPHFitter(penalizer=LIFELINES_PENALIZER).fit(
            frame, duration_col="time", event_col="event", fit_options=LIFELINES_FIT_OPTIONS
        )

    def risk(self, records: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_log_partial_hazard(self._frame(self._transform(records))).to_numpy()

    def survival(self, records: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        curves = self.model_.predict_survival_function(self._frame(self._transform(records)), times=times)
        return curves.to_numpy().T


def breslow_cumulative_hazard(
    time: np.ndarray, event: np.ndarray, margin: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Breslow's baseline cumulative hazard of a Cox model from its training margins (log relative hazards).

    H0(t) = sum over event times t_j <= t of d_j / sum_{i: time_i >= t_j} exp(margin_i - shift); the margins are
    shifted by their maximum so that exp never overflows, and predictions use the same shift.

    Returns
    -------
    (event_times, cumulative_hazard at each event time, shift)
    """
    shift = float(np.max(margin))
    weight = np.exp(margin - shift)
    order = np.argsort(time, kind="stable")
    sorted_time = time[order]
    at_risk_weight = np.cumsum(weight[order][::-1])[::-1]  # sum of weights with time >= sorted_time[k]
    event_times, deaths = np.unique(time[event], return_counts=True)
    first_at_risk = np.searchsorted(sorted_time, event_times, side="left")
    return event_times, np.cumsum(deaths / at_risk_weight[first_at_risk]), shift


class XGBoostCox(BenchModel):
    """XGBoost ``objective="survival:cox"`` with a Breslow baseline hazard computed from the training margins.

    XGBoost only predicts relative hazards; survival curves come from :func:`breslow_cumulative_hazard`
    (written here): S(t | x) = exp(-H0(t) exp(margin(x) - shift)). XGBoost reads a negative label as a censored
    time, so a time of 0 cannot carry its censoring flag; training times of 0 (3 events in flchain) are set to
    half the smallest positive training time.
    """

    def _fit_design(self, design: np.ndarray, event: np.ndarray, time: np.ndarray) -> None:
        import xgboost

        positive = time[time > 0]
        safe_time = np.where(time > 0, time, positive.min() / 2)
        label = np.where(event, safe_time, -safe_time)
        train = xgboost.DMatrix(design, label=label)
        self.model_ = xgboost.train(XGB_PARAMS | {"seed": self.seed}, train, num_boost_round=XGB_ROUNDS)
        margin = self.model_.predict(train, output_margin=True).astype(float)
        self.event_times_, self.cumhaz_, self.shift_ = breslow_cumulative_hazard(safe_time, event, margin)

    def _margin(self, records: pd.DataFrame) -> np.ndarray:
        import xgboost

        return self.model_.predict(xgboost.DMatrix(self._transform(records)), output_margin=True).astype(float)

    def risk(self, records: pd.DataFrame) -> np.ndarray:
        return self._margin(records)

    def survival(self, records: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        index = np.searchsorted(self.event_times_, times, side="right") - 1
        baseline = np.where(index >= 0, self.cumhaz_[np.maximum(index, 0)], 0.0)
        return np.exp(-np.outer(np.exp(self._margin(records) - self.shift_), baseline))


def build_model(key: str, *, spec: FeatureSpec, design_options: dict[str, Any], seed: int) -> Any:
    """A fresh, unfitted benchmark model by its key in :data:`MODEL_LABELS`."""
    if key == "carrisk_rsf":
        return CarriskModel("rsf", spec, seed)
    if key == "carrisk_coxnet":
        return CarriskModel("coxnet", spec, seed)
    peers = {
        "sksurv_rsf": SksurvForest,
        "sksurv_coxph": SksurvCox,
        "lifelines_coxph": LifelinesCox,
        "xgboost_cox": XGBoostCox,
    }
    if key not in peers:
        raise ValueError(f"unknown benchmark model {key!r}; choose one of {', '.join(MODEL_LABELS)}")
    return peers[key](design_options, seed)
