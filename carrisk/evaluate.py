"""External validation: a saved model scored on a new cohort with outcomes.

:func:`evaluate_model` answers a centre's first questions about a model on *its* patients: does it rank them
(Harrell's and Uno's C, time-dependent AUC), are its probabilities right (calibration-in-the-large, calibration
slope, ICI/E50/E90 with the flexible calibration curve, calibration by blinatumomab group and disease burden),
is it better than knowing only the average (Brier score and the index of prediction accuracy), would using it
change decisions for the better (decision curves), and how different are these patients from the training
patients (case-mix table, membership-model C).

Everything is computed from the model's predicted EFS curves (``model.predict_survival(records, times)``), so
any model with that method can be evaluated, including an updated model (:mod:`carrisk.updating`).

Measures
--------
* **Harrell's C** and **Uno's C** (truncated at ``tau``, the 80th percentile of follow-up; censoring weights
  from this cohort) of the predicted 12-month event probability.
* **AUC(t)**, cumulative/dynamic, and the IPCW **Brier score** at each horizon.
* **IPA** = 1 - Brier(model) / Brier(null), the null model giving everybody this cohort's Kaplan-Meier EFS
  (Kattan & Gerds [1]_).
* **Calibration-in-the-large**: observed event probability by the horizon (1 - Kaplan-Meier) minus the mean
  predicted one (0 is perfect; > 0 means the model is too optimistic) and their ratio O/E.
* **Calibration slope**: coefficient of a Cox model of the outcome on ``log(-log S_pred(t))`` with a Wald 95%
  interval (1 is perfect; < 1 predictions too extreme, > 1 too moderate). **ICI/E50/E90** and the smoothed
  calibration curve (Austin, Harrell & van Klaveren [2]_) with a bootstrap band.
* **Decision curves** (:mod:`carrisk.decision_curves`).
* **Case-mix**: differences from the training case-mix recorded in the bundle (:mod:`carrisk.casemix`), and the
  C of a logistic model telling the two populations apart (cross-validated; Debray et al. [3]_): 0.5 means
  indistinguishable, 1 completely separated.

Intervals are 95% percentile intervals over ``n_bootstrap`` resamples of the evaluation patients with the model
held fixed: they cover the sampling variation of the measure in a cohort like this one, not the uncertainty of
the model's training.

:func:`evaluate_models` compares several models on the same cohort and the same resamples: each difference from
the first model is computed within each resample, with a 95% paired percentile interval, a verdict and a
two-sided paired-bootstrap p-value (:func:`paired_bootstrap_p_value`; not adjusted for multiplicity), for the
measures above and for the net benefit at a few threshold probabilities (:data:`NET_BENEFIT_THRESHOLDS`; Vickers
et al. [6]_).

References
----------
.. [1] Kattan, M. W., & Gerds, T. A. (2018). "The index of prediction accuracy: an intuitive measure useful for
       evaluating risk prediction models". Diagnostic and Prognostic Research, 2, 7.
.. [2] Austin, P. C., Harrell, F. E., & van Klaveren, D. (2020). "Graphical calibration curves and the
       integrated calibration index (ICI) for survival models". Statistics in Medicine, 39(21), 2714-2742.
.. [3] Debray, T. P. A., Vergouwe, Y., Koffijberg, H., et al. (2015). "A new framework to enhance the
       interpretation of external validation studies of clinical prediction models". Journal of Clinical
       Epidemiology, 68(3), 279-289.
.. [4] Davison, A. C., & Hinkley, D. V. (1997). Bootstrap Methods and their Application. Cambridge University
       Press, chapter 4 (Monte Carlo p-values).
.. [5] Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman & Hall, chapter 16
       (hypothesis testing with the bootstrap).
.. [6] Vickers, A. J., van Calster, B., & Steyerberg, E. W. (2019). "A simple, step-by-step guide to
       interpreting decision curve analysis". Diagnostic and Prognostic Research, 3, 18.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from carrisk._io import atomic_write, atomic_write_text, write_csv
from carrisk.calibration import calibration_at, calibration_curve_band
from carrisk.casemix import case_mix_differences, case_mix_summary
from carrisk.decision_curves import DEFAULT_THRESHOLDS, decision_curve_with_draws, net_benefit
from carrisk.metrics import (
    DEFAULT_HORIZONS_DAYS,
    brier_at,
    choose_tau,
    harrell_c,
    time_dependent_auc,
    uno_c,
)
from carrisk.nonparametric import kaplan_meier_survival_at
from carrisk.schema import (
    EVENT_COLUMN,
    ID_COLUMN,
    PREINFUSION_COLUMNS,
    TIME_COLUMN,
    survival_target,
    validate_records,
    validate_survival_table,
)
from carrisk.target import make_target, months_hint

__all__ = [
    "ExternalValidation",
    "ModelComparison",
    "ModelComparisonError",
    "calibration_slope",
    "cohort_outcome",
    "comparison_names",
    "evaluate_model",
    "evaluate_models",
    "observed_expected",
    "outcome_words",
    "paired_bootstrap_p_value",
    "verdict_words",
]

PROBABILITY_CLIP = 1e-6
MIN_SUBGROUP_SIZE = 10
#: Readable names of the measures and subgroups, for tables and the report.
MEASURE_LABELS = {
    "harrell_c": "Harrell's C",
    "uno_c": "Uno's C",
    "auc": "time-dependent AUC",
    "brier": "Brier score",
    "brier_null": "Brier score, Kaplan-Meier null model",
    "ipa": "index of prediction accuracy (IPA)",
    "observed_event_prob": "observed event probability (1 - Kaplan-Meier)",
    "predicted_event_prob": "mean predicted event probability",
    "citl": "calibration-in-the-large (observed - predicted)",
    "oe_ratio": "observed / expected events",
    "calibration_slope": "calibration slope",
    "ici": "integrated calibration index (ICI)",
    "e50": "E50 (median absolute calibration error)",
    "e90": "E90 (90th percentile absolute calibration error)",
    "membership_c": "membership-model C (new vs training patients)",
}
SUBGROUP_LABELS = {
    "blina_status": "Prior blinatumomab",
    "disease_burden": "Disease burden",
}
LEVEL_LABELS = {
    "naive": "naive",
    "responder": "responder",
    "nonresponder": "nonresponder",
    "exposed_unknown": "exposed, response unknown",
    "high": "high (>= 5 % blasts, CNS3 or extramedullary disease)",
    "low": "low",
}


#: Fewer events than this: calibration and updating are not estimable (a slope from a handful of events).
MIN_EVENTS = 10
#: Fewer events than this: the numbers come with a warning (Collins, Ogundimu & Altman 2016: >= 100 events).
RECOMMENDED_EVENTS = 100


def check_event_count(n_events: int, what: str, task: str) -> None:
    """Refuse fewer than :data:`MIN_EVENTS` events and warn below :data:`RECOMMENDED_EVENTS`.

    ``what`` says where the events were counted, with ``{n}`` for their number (e.g. "centre.csv has {n} event(s)
    in 'efs_event'"); ``task`` names what needs them ("external validation", "updating").
    """
    counted = what.replace("{n}", str(n_events))
    if n_events < MIN_EVENTS:
        raise ValueError(
            f"{counted}; {task} needs at least {MIN_EVENTS} (and about {RECOMMENDED_EVENTS} for stable estimates; "
            "Collins, Ogundimu & Altman 2016)"
        )
    if n_events < RECOMMENDED_EVENTS:
        warnings.warn(
            f"{counted}: about {RECOMMENDED_EVENTS} events are recommended for {task} (Collins, Ogundimu & Altman "
            "2016); read the confidence intervals",
            UserWarning,
            stacklevel=3,
        )


def outcome_words(info: Mapping[str, Any]) -> dict[str, str]:
    """Words for the outcome of an evaluation: EFS for a carrisk-records model, the event column for a generic one.

    Keys: ``events`` (plural, for counts), ``event`` (one event, defined), ``survival`` (the predicted curve),
    ``survival_axis`` (its axis label) and ``origin`` (time zero).
    """
    if not info.get("generic"):
        return {
            "events": "EFS events",
            "event": "EFS event (relapse, no remission by day 28, or death)",
            "survival": "EFS",
            "survival_axis": "event-free survival",
            "origin": "infusion",
        }
    column = (info.get("outcome_columns") or {}).get("event", "event")
    return {
        "events": f"events (column {column!r})",
        "event": f"event (column {column!r})",
        "survival": "survival",
        "survival_axis": "probability of no event",
        "origin": "time zero",
    }


def _horizon_label(name: str) -> str:
    return name.replace("mo", " months")


@dataclass
class ExternalValidation:
    """Result of :func:`evaluate_model`.

    Attributes
    ----------
    summary : DataFrame
        One row per measure and horizon: ``measure``, ``label``, ``horizon`` (name, or ``""``), ``horizon_days``,
        ``estimate``, ``lower``, ``upper``, ``interval`` (what the interval is).
    calibration_curves : DataFrame
        ``horizon``, ``predicted``, ``observed``, ``lower``, ``upper`` (event probabilities).
    subgroups : DataFrame
        Calibration-in-the-large per subgroup and horizon: ``variable``, ``level``, ``label``, ``n``,
        ``events``, ``observed``, ``observed_lower``, ``observed_upper`` (Kaplan-Meier, log-log 95% interval),
        ``predicted``, ``difference``, ``oe_ratio``.
    case_mix : DataFrame or None
        :func:`carrisk.casemix.case_mix_differences` of training vs this cohort (None when the bundle does not
        record the training case-mix).
    decision_curves : DataFrame
        :func:`carrisk.decision_curves.decision_curve` per horizon, with a ``horizon`` column.
    observed_vs_predicted : DataFrame
        ``days``, ``observed`` (Kaplan-Meier EFS with its 95% interval ``observed_lower``/``observed_upper``)
        and ``predicted`` (mean predicted EFS) over follow-up.
    predictions : DataFrame
        ``patient_id``, ``efs_days``, ``efs_event`` and ``efs_<horizon>`` per patient.
    info : dict
        Cohort size, events, horizons, seeds, bootstrap sizes, model description, notes.
    """

    summary: pd.DataFrame
    calibration_curves: pd.DataFrame
    subgroups: pd.DataFrame
    case_mix: pd.DataFrame | None
    decision_curves: pd.DataFrame
    observed_vs_predicted: pd.DataFrame
    predictions: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    def value(self, measure: str, horizon: str = "") -> float:
        """The estimate of one measure (e.g. ``value("citl", "12mo")``)."""
        rows = self.summary[(self.summary["measure"] == measure) & (self.summary["horizon"] == horizon)]
        if rows.empty:
            raise KeyError(f"no measure {measure!r} at horizon {horizon!r}; see the summary table")
        return float(rows["estimate"].iloc[0])

    def interval(self, measure: str, horizon: str = "") -> tuple[float, float]:
        """The 95% interval of one measure."""
        rows = self.summary[(self.summary["measure"] == measure) & (self.summary["horizon"] == horizon)]
        if rows.empty:
            raise KeyError(f"no measure {measure!r} at horizon {horizon!r}; see the summary table")
        return float(rows["lower"].iloc[0]), float(rows["upper"].iloc[0])

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types."""

        def records(frame: pd.DataFrame | None) -> list[dict[str, Any]] | None:
            if frame is None:
                return None
            return json.loads(frame.to_json(orient="records"))

        return {
            "info": self.info,
            "summary": records(self.summary),
            "calibration_curves": records(self.calibration_curves),
            "subgroups": records(self.subgroups),
            "case_mix": records(self.case_mix),
            "decision_curves": records(self.decision_curves),
            "observed_vs_predicted": records(self.observed_vs_predicted),
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The result as JSON text; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1, default=str) + "\n"
        if path is not None:
            atomic_write_text(path, text)
        return text

    def to_text(self) -> str:
        """The summary as an aligned text table with clinical labels."""
        lines = []
        for row in self.summary.to_dict("records"):
            horizon = f" at {_horizon_label(row['horizon'])}" if row["horizon"] else ""
            interval = f" (95% CI {row['lower']:.3f} to {row['upper']:.3f})" if np.isfinite(row["lower"]) else ""
            lines.append(f"{row['label']}{horizon}: {row['estimate']:.3f}{interval}")
        return "\n".join(lines)

    def plot(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write the calibration, decision-curve, observed-vs-predicted and subgroup plots as PNG files."""
        from carrisk import evaluation_plots

        return evaluation_plots.plot_all(self, Path(out_dir))

    def write(self, out_dir: str | os.PathLike[str], *, plots: bool = True) -> dict[str, Path]:
        """Write ``evaluation.json``, one CSV per table and (by default) the plots into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "evaluation.json"}
        self.to_json(paths["json"])
        tables = {
            "summary": self.summary,
            "calibration_curves": self.calibration_curves,
            "subgroups": self.subgroups,
            "decision_curves": self.decision_curves,
            "observed_vs_predicted": self.observed_vs_predicted,
            "predictions": self.predictions,
        }
        if self.case_mix is not None:
            tables["case_mix"] = self.case_mix
        for name, table in tables.items():
            paths[name] = out / f"{name}.csv"
            write_csv(paths[name], table)
        if plots:
            paths.update(self.plot(out))
        return paths


def observed_expected(
    event: np.ndarray, time: np.ndarray, surv_prob: np.ndarray, horizon: float
) -> tuple[float, float, float]:
    """Calibration-in-the-large at ``horizon``.

    Returns
    -------
    (observed, predicted, oe_ratio)
        Observed event probability ``1 - KM(horizon)``, mean predicted event probability ``mean(1 - S_i)``
        and their ratio.
    """
    observed = 1.0 - kaplan_meier_survival_at(event, time, horizon)
    predicted = float(np.mean(1.0 - np.asarray(surv_prob, dtype=float)))
    return observed, predicted, observed / predicted if predicted > 0 else float("nan")


#: Newton-Raphson run to convergence of the slope itself. lifelines' default also stops when the log-likelihood
#: improves by less than 1e-9 relative, which left the slope up to 3e-5 from its maximum (an unpenalised Cox
#: model's apparent slope on GBSG2 was 1.0000012 instead of 1; tests/test_reference_r.py).
SLOPE_FIT_OPTIONS = {"precision": 1e-12, "r_precision": 1e-14}


def calibration_slope(event: np.ndarray, time: np.ndarray, surv_prob: np.ndarray) -> tuple[float, float, float]:
    """Calibration slope with its Wald 95% interval: Cox model of the outcome on ``log(-log S_pred)``.

    Parameters
    ----------
    event, time : arrays, shape (n,)
        Observed outcome (all follow-up is used, as in Austin et al. 2020).
    surv_prob : array, shape (n,)
        Predicted EFS probability at the horizon; clipped to [1e-6, 1 - 1e-6].

    Returns
    -------
    (slope, lower, upper)
        NaN when the predictions are all equal or the fit fails.
    """
    surv = np.clip(np.asarray(surv_prob, dtype=float), PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    cll = np.log(-np.log(surv))
    if np.ptp(cll) == 0:
        return float("nan"), float("nan"), float("nan")
    frame = pd.DataFrame({"cll": cll, "time": np.asarray(time, dtype=float), "event": np.asarray(event, dtype=bool)})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = CoxPHFitter().fit(frame, duration_col="time", event_col="event", fit_options=SLOPE_FIT_OPTIONS)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return float("nan"), float("nan"), float("nan")
    low, high = fit.confidence_intervals_.loc["cll"].to_numpy(dtype=float)
    return float(fit.params_["cll"]), float(low), float(high)


def _slope_by_newton(event: np.ndarray, time: np.ndarray, surv_prob: np.ndarray) -> float:
    """:func:`calibration_slope`'s estimate (without its interval) by a direct Newton-Raphson, for resamples.

    The Cox model of the outcome on ``x = log(-log S_pred)`` with Efron's handling of tied times, as lifelines fits
    it, in a few vectorised passes (about a millisecond for 1,000 patients against 0.2 s for lifelines with
    :data:`SLOPE_FIT_OPTIONS`): the paired comparison of models refits it on every bootstrap resample. Newton runs
    until the slope's step is below 1e-10. It agrees with :func:`calibration_slope` to 1e-8 on the cohorts the
    tests use; on a resample with many tied times (a bootstrap's duplicated patients, the events at day 28)
    lifelines can stop up to about 2e-7 short, when the log-likelihood's relative change falls below its
    ``r_precision`` (1e-14) first: lifelines with tighter options then reaches this value, whose log-likelihood is
    the higher. NaN when the predictions are all equal or the fit does not converge.
    """
    surv = np.clip(np.asarray(surv_prob, dtype=float), PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    x = np.log(-np.log(surv))
    if np.ptp(x) == 0 or not np.any(event):
        return float("nan")
    order = np.argsort(-np.asarray(time, dtype=float), kind="stable")
    x, dead, t = x[order], np.asarray(event, dtype=bool)[order], np.asarray(time, dtype=float)[order]
    x = x - x.mean()
    last_of_block = np.r_[t[1:] != t[:-1], True]  # last row of each block of equal times (descending)
    block = np.cumsum(np.r_[0, last_of_block[:-1]])
    deaths = np.bincount(block, weights=dead.astype(float))
    with_deaths = deaths > 0
    rows = np.flatnonzero(last_of_block)[with_deaths]  # the risk set of an event time: every row up to here
    d = deaths[with_deaths].astype(int)
    # Efron: the l-th of the d tied events (l = 0..d-1) sees the risk set less the fraction l/d of the tied events
    fraction = (np.arange(d.sum()) - np.repeat(np.cumsum(d) - d, d)) / np.repeat(d, d)
    which = np.repeat(np.arange(d.size), d)
    dead_block = block[dead]
    x_dead_sum = float(x[dead].sum())

    def sums(beta: float) -> tuple[float, float, float]:
        eta = beta * x
        shift = float(eta.max())
        w = np.exp(eta - shift)
        risk = [np.cumsum(w * x**k)[rows] for k in range(3)]
        tied = [np.bincount(dead_block, weights=(w * x**k)[dead], minlength=deaths.size)[with_deaths] for k in range(3)]
        s0, s1, s2 = (risk[k][which] - fraction * tied[k][which] for k in range(3))
        loglik = beta * x_dead_sum - float(np.sum(np.log(s0) + shift))
        mean = s1 / s0
        return loglik, x_dead_sum - float(mean.sum()), -float(np.sum(s2 / s0 - mean**2))

    beta = 0.0
    loglik, grad, hess = sums(beta)
    for _ in range(50):
        if not hess < 0:
            return float("nan")
        step, factor = -grad / hess, 1.0
        new = sums(beta + step)
        while not (np.isfinite(new[0]) and new[0] >= loglik - 1e-12):
            factor /= 2
            if factor < 1e-8:
                return float("nan")
            new = sums(beta + factor * step)
        beta += factor * step
        loglik, grad, hess = new
        if abs(factor * step) < 1e-10:
            return beta
    return float("nan")


def _sk_target(event: np.ndarray, time: np.ndarray) -> np.ndarray:
    return make_target(event, time)


def _resampled_measures(
    event: np.ndarray, time: np.ndarray, surv: np.ndarray, names: list[str], horizons: list[float], tau: float
) -> dict[str, float]:
    """The measures that are bootstrapped, on one (re)sample. ``surv`` is (n, horizons); the last is for C."""
    y = _sk_target(event, time)
    risk = 1.0 - surv[:, -1]
    values: dict[str, float] = {"harrell_c": harrell_c(event, time, risk)}
    try:
        values["uno_c"] = uno_c(y, y, risk, tau=tau)
    except ValueError:
        values["uno_c"] = float("nan")
    for k, (name, horizon) in enumerate(zip(names, horizons)):
        km = kaplan_meier_survival_at(event, time, horizon)
        try:  # undefined in a resample with no event by the horizon (small cohorts, early horizons)
            values[f"auc_{name}"] = time_dependent_auc(y, y, 1.0 - surv[:, k], horizon)
        except ValueError:
            values[f"auc_{name}"] = float("nan")
        try:
            brier = brier_at(y, y, surv[:, k], horizon)
            brier_null = brier_at(y, y, np.full(event.size, km), horizon)
        except ValueError:
            brier = brier_null = float("nan")
        values[f"brier_{name}"] = brier
        values[f"brier_null_{name}"] = brier_null
        values[f"ipa_{name}"] = 1.0 - brier / brier_null if brier_null > 0 else float("nan")
        observed, predicted, ratio = observed_expected(event, time, surv[:, k], horizon)
        values[f"observed_event_prob_{name}"] = observed
        values[f"predicted_event_prob_{name}"] = predicted
        values[f"citl_{name}"] = observed - predicted
        values[f"oe_ratio_{name}"] = ratio
    return values


def _resamples(n: int, n_bootstrap: int, seed: int) -> Iterator[np.ndarray]:
    """Row numbers of each bootstrap resample of ``n`` patients: the same sequence for every model scored with ``seed``.

    :func:`carrisk.calibration.calibration_curve_band` and :func:`carrisk.decision_curves.decision_curve` draw
    theirs the same way from the same seed, so their first resamples are these.
    """
    rng = np.random.default_rng(seed)
    for _ in range(n_bootstrap):
        yield rng.integers(0, n, n)


def _bootstrap_draws(
    event: np.ndarray,
    time: np.ndarray,
    surv: np.ndarray,
    names: list[str],
    horizons: list[float],
    tau: float,
    keys: list[str],
    n_bootstrap: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """:func:`_resampled_measures` on each resample: key -> one value per resample (NaN where it was skipped)."""
    draws = {key: np.full(n_bootstrap, np.nan) for key in keys}
    for b, index in enumerate(_resamples(event.size, n_bootstrap, seed)):
        if not event[index].any():
            continue
        try:
            values = _resampled_measures(event[index], time[index], surv[index], names, horizons, tau)
        except ValueError:
            continue
        for key, value in values.items():
            draws[key][b] = value
    return draws


def _subgroup_levels(clinical: pd.DataFrame) -> dict[str, pd.Series]:
    """Subgroup variable -> level of each patient (burden collapsed to high / low / unknown)."""
    levels: dict[str, pd.Series] = {}
    if "blina_status" in clinical:
        levels["blina_status"] = clinical["blina_status"].astype(str)
    if "disease_burden" in clinical:
        burden = clinical["disease_burden"].astype(str)
        levels["disease_burden"] = burden.where(burden.isin(["high", "unknown"]), "low")
    return levels


def _subgroup_calibration(
    clinical: pd.DataFrame, event: np.ndarray, time: np.ndarray, surv: np.ndarray, named: Mapping[str, float]
) -> pd.DataFrame:
    rows = []
    for variable, level_of in _subgroup_levels(clinical).items():
        for level in sorted(level_of.unique()):
            mask = (level_of == level).to_numpy()
            if mask.sum() < MIN_SUBGROUP_SIZE or level == "unknown":
                continue
            km = KaplanMeierFitter().fit(time[mask], event[mask])
            for k, (name, horizon) in enumerate(named.items()):
                survival = kaplan_meier_survival_at(event[mask], time[mask], horizon)
                if not np.isfinite(survival):
                    continue
                observed = 1.0 - survival
                bounds = km.confidence_interval_survival_function_
                position = int(np.searchsorted(bounds.index.to_numpy(), horizon, side="right") - 1)
                lower_surv, upper_surv = bounds.iloc[max(position, 0)].to_numpy(dtype=float)
                predicted = float(np.mean(1.0 - surv[mask, k]))
                rows.append(
                    {
                        "variable": variable,
                        "level": level,
                        "label": f"{SUBGROUP_LABELS[variable]}: {LEVEL_LABELS.get(level, level)}",
                        "horizon": name,
                        "n": int(mask.sum()),
                        "events": int((event[mask] & (time[mask] <= horizon)).sum()),
                        "observed": observed,
                        "observed_lower": 1.0 - upper_surv,
                        "observed_upper": 1.0 - lower_surv,
                        "predicted": predicted,
                        "difference": observed - predicted,
                        "oe_ratio": observed / predicted if predicted > 0 else float("nan"),
                    }
                )
    columns = [
        "variable", "level", "label", "horizon", "n", "events", "observed", "observed_lower", "observed_upper",
        "predicted", "difference", "oe_ratio",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _membership_c(training_design: np.ndarray, new_design: np.ndarray, seed: int) -> float:
    """Cross-validated C of an L2 logistic model telling new from training patients (Debray et al. 2015)."""
    design = np.vstack([training_design, new_design]).astype(float)
    design = np.where(np.isfinite(design), design, 0.0)
    scale = design.std(axis=0)
    design = (design - design.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    member = np.r_[np.zeros(len(training_design)), np.ones(len(new_design))]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    prob = cross_val_predict(LogisticRegression(max_iter=2000), design, member, cv=folds, method="predict_proba")
    return float(roc_auc_score(member, prob[:, 1]))


def _observed_vs_predicted(event: np.ndarray, time: np.ndarray, model: Any, records: pd.DataFrame) -> pd.DataFrame:
    days = np.linspace(0.0, float(np.quantile(time, 0.9)), 60)
    km = KaplanMeierFitter().fit(time, event)
    observed = km.survival_function_at_times(days).to_numpy(dtype=float)
    bounds = km.confidence_interval_survival_function_
    position = np.maximum(np.searchsorted(bounds.index.to_numpy(), days, side="right") - 1, 0)
    predicted = model.predict_survival(records, days).mean(axis=0)
    return pd.DataFrame(
        {
            "days": days,
            "observed": observed,
            "observed_lower": bounds.iloc[position, 0].to_numpy(dtype=float),
            "observed_upper": bounds.iloc[position, 1].to_numpy(dtype=float),
            "predicted": predicted,
        }
    )


def _training_rows(model: Any) -> tuple[np.ndarray | None, str]:
    reference = getattr(model, "reference", None)
    if reference is not None:
        return np.asarray(reference), "all training patients"
    background = getattr(model, "background", None)
    if background is not None:
        return np.asarray(background), f"a random {len(background)} of the training patients (stored in the model)"
    return None, "no training rows stored in the model"


def _feature_spec(model: Any) -> Any:
    return getattr(getattr(model, "features", None), "spec", None)


def cohort_outcome(
    model: Any,
    records: pd.DataFrame,
    *,
    source: str = "records",
    time_col: str | None = None,
    event_col: str | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[str, str]]:
    """Check a cohort with outcomes against what ``model`` reads and return its event, time and outcome columns.

    A clinical model (the carrisk record schema) needs valid records with ``efs_days`` and ``efs_event``. A
    generic-mode model (trained with ``--time-col``/``--event-col``) needs its own feature columns, checked by
    the model's ``validate``, and the outcome in the columns it was trained with, or in ``time_col`` and
    ``event_col`` when given (the new centre may name them differently).

    Returns
    -------
    (event, time, (time_col, event_col))
        Boolean events, times, and the outcome columns read.

    Raises
    ------
    RecordError
        Invalid records, features or outcome values (every problem listed).
    ValueError
        An outcome column that is absent, or ``time_col``/``event_col`` given for a clinical model.
    """
    spec = _feature_spec(model)
    if spec is None or spec.clinical:
        if (time_col or TIME_COLUMN, event_col or EVENT_COLUMN) != (TIME_COLUMN, EVENT_COLUMN):
            raise ValueError(
                f"this model reads carrisk records, whose outcome columns are {TIME_COLUMN} and {EVENT_COLUMN}; "
                "--time-col/--event-col are for generic-mode models"
            )
        validate_records(records, outcomes="efs", source=source)  # other outcome columns: checked if present
        y = survival_target(records)
        return np.asarray(y["event"], dtype=bool), np.asarray(y["time"], dtype=float), (TIME_COLUMN, EVENT_COLUMN)
    time_col, event_col = time_col or spec.time_col, event_col or spec.event_col
    for column in (time_col, event_col):
        if column not in records.columns:
            raise ValueError(
                f"{source}: no outcome column {column!r} (the model was trained with {spec.time_col!r} and "
                f"{spec.event_col!r}); name this cohort's columns with --time-col/--event-col"
            )
    validate_survival_table(records, time_col, event_col, source=source)
    validate = getattr(model, "validate", None)
    if callable(validate):
        validate(records.drop(columns=[time_col, event_col]), source=source)
    y = survival_target(records, time_col, event_col)
    return np.asarray(y["event"], dtype=bool), np.asarray(y["time"], dtype=float), (time_col, event_col)


def evaluate_model(
    model: Any,
    records: pd.DataFrame,
    *,
    horizons: Mapping[str, float] = DEFAULT_HORIZONS_DAYS,
    n_bootstrap: int = 200,
    n_bootstrap_calibration: int = 50,
    seed: int = 0,
    source: str = "records",
    time_col: str | None = None,
    event_col: str | None = None,
) -> ExternalValidation:
    """Score a fitted model on a cohort with outcomes (external validation).

    Parameters
    ----------
    model : EFSModel or any object with ``predict_survival(records, times)``
        Typically :func:`carrisk.load_model`'s result. If it also has ``features`` (``ClinicalFeatures``),
        ``pipeline`` and ``metadata``, subgroup calibration, the case-mix table and the membership C are added.
    records : DataFrame
        The new cohort with outcomes: carrisk records (``efs_days``, ``efs_event``) for a clinical model; for a
        generic-mode model its feature columns and outcome columns (see :func:`cohort_outcome`).
    horizons : mapping of name to days
        Default 6 and 12 months. The last one is used for the C statistics' risk score.
    n_bootstrap : int, default 200
        Resamples for the intervals of C, AUC, Brier, IPA, calibration-in-the-large and the decision curves.
    n_bootstrap_calibration : int, default 50
        Resamples for the calibration-curve band and the ICI/E50/E90 intervals (each refits a spline Cox model).
    seed : int, default 0
        Seed of every resampling and of the membership model's folds (recorded).
    source : str
        Name of the cohort for messages and the output.
    time_col, event_col : str, optional
        A generic-mode model's outcome columns in this cohort, if not named as in training.

    Returns
    -------
    ExternalValidation

    Raises
    ------
    RecordError
        If the records are invalid or lack outcomes (every problem listed).
    ValueError
        If a horizon is not within the cohort's follow-up or no event occurs before it.
    """
    return _evaluate(
        model,
        records,
        horizons=horizons,
        n_bootstrap=n_bootstrap,
        n_bootstrap_calibration=n_bootstrap_calibration,
        seed=seed,
        source=source,
        time_col=time_col,
        event_col=event_col,
    )[0]


@dataclass
class _Scored:
    """What a paired comparison of models needs beyond one model's :class:`ExternalValidation`.

    ``draws`` maps each bootstrapped measure's key (``"harrell_c"``, ``"citl_12mo"``, ...) to its value on each of
    the ``n_bootstrap`` resamples, in the order :func:`_resamples` draws them (NaN where the resample was skipped
    or the measure undefined); ``calibration_draws`` does the same for ICI/E50/E90 over the
    ``n_bootstrap_calibration`` resamples of the calibration band (the first ones of the same sequence).
    ``net_benefit_draws`` maps each horizon's name to the model's net benefit on each of the ``n_bootstrap``
    resamples (rows) at each of :data:`carrisk.decision_curves.DEFAULT_THRESHOLDS` (columns): the draws behind the
    decision curve's band.
    """

    event: np.ndarray
    time: np.ndarray
    surv: np.ndarray
    tau: float
    draws: dict[str, np.ndarray]
    calibration_draws: dict[str, np.ndarray]
    net_benefit_draws: dict[str, np.ndarray] = field(default_factory=dict)


def _evaluate(
    model: Any,
    records: pd.DataFrame,
    *,
    horizons: Mapping[str, float],
    n_bootstrap: int,
    n_bootstrap_calibration: int,
    seed: int,
    source: str,
    time_col: str | None,
    event_col: str | None,
) -> tuple[ExternalValidation, _Scored]:
    """:func:`evaluate_model`'s result and the per-resample values behind its intervals."""
    records = records.reset_index(drop=True)
    event, time, outcome_columns = cohort_outcome(model, records, source=source, time_col=time_col, event_col=event_col)
    spec = _feature_spec(model)
    covariates = PREINFUSION_COLUMNS if spec is None or spec.clinical else spec.input_columns
    named = {str(k): float(v) for k, v in horizons.items()}
    for name, horizon in named.items():
        if not (time.max() > horizon and np.any(event & (time <= horizon))):
            raise ValueError(
                f"horizon {name} ({horizon:g} days) is not within the follow-up of {source}: the longest follow-up "
                f"is {time.max():g} days and there are {int((event & (time <= horizon)).sum())} events before it"
                + (months_hint(time) or "; evaluate on a cohort followed beyond it")
            )
    if not event.any():
        raise ValueError(f"{source} has no event in {outcome_columns[1]!r}; nothing can be evaluated")
    check_event_count(int(event.sum()), f"{source} has {{n}} event(s) in {outcome_columns[1]!r}", "external validation")
    grid = getattr(model, "time_grid", None)
    curve_end = float(np.asarray(grid)[-1]) if grid is not None and np.size(grid) else np.inf
    for name, horizon in named.items():
        if horizon > curve_end:
            warnings.warn(
                f"horizon {name} ({horizon:g} days) is past the model's follow-up (its curve ends at day "
                f"{curve_end:g}): its predictions there carry that day's value",
                UserWarning,
                stacklevel=2,
            )
    names, days = list(named), list(named.values())
    surv = np.asarray(model.predict_survival(records, days), dtype=float)
    y_sk = _sk_target(event, time)
    tau = choose_tau(y_sk, y_sk)

    point = _resampled_measures(event, time, surv, names, days, tau)
    draws = _bootstrap_draws(event, time, surv, names, days, tau, list(point), n_bootstrap, seed)
    calibration_draws: dict[str, np.ndarray] = {}
    net_benefit_draws: dict[str, np.ndarray] = {}

    def bootstrap_row(key: str, measure: str, horizon: str) -> dict[str, Any]:
        sample = np.asarray(draws[key], dtype=float)
        sample = sample[np.isfinite(sample)]
        lower, upper = np.quantile(sample, [0.025, 0.975]) if sample.size else (np.nan, np.nan)
        return {
            "measure": measure,
            "horizon": horizon,
            "estimate": point[key],
            "lower": float(lower),
            "upper": float(upper),
            "interval": f"bootstrap percentile ({sample.size} resamples)",
        }

    rows = [bootstrap_row("harrell_c", "harrell_c", ""), bootstrap_row("uno_c", "uno_c", "")]
    curves, decision = [], []
    for k, (name, horizon) in enumerate(named.items()):
        for measure in ("auc", "brier", "brier_null", "ipa", "observed_event_prob", "predicted_event_prob"):
            rows.append(bootstrap_row(f"{measure}_{name}", measure, name))
        rows.append(bootstrap_row(f"citl_{name}", "citl", name))
        rows.append(bootstrap_row(f"oe_ratio_{name}", "oe_ratio", name))
        slope, low, high = calibration_slope(event, time, surv[:, k])
        rows.append(
            {"measure": "calibration_slope", "horizon": name, "estimate": slope, "lower": low, "upper": high,
             "interval": "Wald (Cox model)"}
        )  # fmt: skip
        curve, intervals = calibration_curve_band(
            event, time, surv[:, k], horizon, n_bootstrap=n_bootstrap_calibration, seed=seed
        )
        graphical = calibration_at(event, time, surv[:, k], horizon)
        for measure in ("ici", "e50", "e90"):
            calibration_draws[f"{measure}_{name}"] = np.asarray(intervals[f"{measure}_resamples"], dtype=float)
            rows.append(
                {"measure": measure, "horizon": name, "estimate": graphical[measure],
                 "lower": intervals[measure][0], "upper": intervals[measure][1],
                 "interval": f"bootstrap percentile ({int(intervals['n_resamples'][0])} resamples)"}
            )  # fmt: skip
        curves.append(curve.assign(horizon=name))
        # decision_curve's table, and its per-resample draws for the paired net-benefit differences
        curve_table, net_benefit_draws[name] = decision_curve_with_draws(
            event, time, 1.0 - surv[:, k], horizon, DEFAULT_THRESHOLDS, n_bootstrap=n_bootstrap, seed=seed
        )
        decision.append(curve_table.assign(horizon=name))

    notes: list[str] = []
    subgroups = _subgroup_calibration(pd.DataFrame(), event, time, surv, named)
    case_mix = None
    features = getattr(model, "features", None)
    metadata = getattr(model, "metadata", {}) or {}
    if features is not None:
        clinical = features.categorize(records)
        subgroups = _subgroup_calibration(clinical, event, time, surv, named)
        training_mix = metadata.get("training_case_mix")
        if training_mix:
            case_mix = case_mix_differences(training_mix, case_mix_summary(clinical))
        else:
            notes.append("the model bundle does not record the training case-mix (saved before it was added)")
        training_rows, described = _training_rows(model)
        if training_rows is not None and hasattr(model, "pipeline"):
            new_design = np.asarray(model.pipeline[:-1].transform(records), dtype=float)
            membership = _membership_c(training_rows, new_design, seed)
            rows.append(
                {"measure": "membership_c", "horizon": "", "estimate": membership, "lower": np.nan,
                 "upper": np.nan, "interval": f"5-fold cross-validated; training side: {described}"}
            )  # fmt: skip

    summary = pd.DataFrame(rows)
    summary.insert(1, "label", summary["measure"].map(MEASURE_LABELS))
    summary.insert(3, "horizon_days", summary["horizon"].map(named).astype(float))
    predictions = pd.DataFrame(
        {
            ID_COLUMN: records[ID_COLUMN].astype(str) if ID_COLUMN in records else records.index.astype(str),
            "efs_days": time,
            "efs_event": event.astype(int),
            **{f"efs_{name}": surv[:, k] for k, name in enumerate(names)},
        }
    )
    info = {
        "cohort": source,
        "n": int(event.size),
        "events": int(event.sum()),
        "events_by_horizon": {name: int((event & (time <= h)).sum()) for name, h in named.items()},
        "max_followup_days": float(time.max()),
        "missing_share": {column: float(records[column].isna().mean()) for column in covariates if column in records},
        "outcome_columns": {"time": outcome_columns[0], "event": outcome_columns[1]},
        "generic": bool(spec is not None and not spec.clinical),
        "horizons_days": named,
        "uno_tau_days": tau,
        "c_risk_score": f"predicted event probability by {names[-1]}",
        "n_bootstrap": n_bootstrap,
        "n_bootstrap_calibration": n_bootstrap_calibration,
        "seed": seed,
        "model": _model_description(model),
        "notes": notes,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    result = ExternalValidation(
        summary=summary,
        calibration_curves=pd.concat(curves, ignore_index=True)[["horizon", "predicted", "observed", "lower", "upper"]],
        subgroups=subgroups,
        case_mix=case_mix,
        decision_curves=pd.concat(decision, ignore_index=True),
        observed_vs_predicted=_observed_vs_predicted(event, time, model, records),
        predictions=predictions,
        info=info,
    )
    return result, _Scored(event, time, surv, tau, draws, calibration_draws, net_benefit_draws)


#: Measures of the side-by-side comparison of models, in the order shown.
COMPARISON_MEASURES = (
    "harrell_c", "uno_c", "auc", "brier", "ipa", "observed_event_prob", "predicted_event_prob", "citl", "oe_ratio",
    "calibration_slope", "ici", "e50", "e90",
)  # fmt: skip
#: The measures whose paired difference is reported, in the order reported.
DIFFERENCE_MEASURES = (
    "harrell_c", "uno_c", "auc", "brier", "ipa", "predicted_event_prob", "citl", "oe_ratio", "calibration_slope",
    "ici", "e50", "e90",
)  # fmt: skip
#: What "better" means for each measure with a verdict: "higher", "lower", or closer to an ideal value (0 for
#: calibration-in-the-large, 1 for O/E and the slope). The mean predicted event probability has none.
BETTER_WHEN: dict[str, str | float] = {
    "harrell_c": "higher",
    "uno_c": "higher",
    "auc": "higher",
    "brier": "lower",
    "ipa": "higher",
    "citl": 0.0,
    "oe_ratio": 1.0,
    "calibration_slope": 1.0,
    "ici": "lower",
    "e50": "lower",
    "e90": "lower",
}
_CALIBRATION_BAND_MEASURES = ("ici", "e50", "e90")
#: Threshold probabilities of an event by the horizon at which a comparison reports the paired difference in net
#: benefit (:attr:`ModelComparison.net_benefit_differences`). The decision curves span 0.01 to 0.95; these five
#: span the risks at which a clinician might act on a predicted EFS event (closer monitoring, pre-emptive
#: consolidation), around the cohort's event probabilities (about 0.3 by 6 months and 0.5 by 12 months in the
#: simulated cohorts; the shipped model predicts 0.2 to 0.9).
NET_BENEFIT_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6)


class ModelComparisonError(ValueError):
    """Models that cannot be compared on one cohort (different outcomes, a clinical with a generic-mode model)."""


def verdict_words(verdict: str, better_when: str) -> str:
    """A verdict of :attr:`ModelComparison.differences` in the words of its measure: for a measure with an ideal
    value, what is (or is not) clearly closer to it ("not clearly closer to 1" rather than "no clear difference",
    which would misread a clear change that may overshoot the ideal)."""
    if not better_when.startswith("closer to "):
        return verdict
    target = better_when.removeprefix("closer to ")
    return {
        "better": f"better (closer to {target})",
        "worse": f"worse (further from {target})",
        "no clear difference": f"not clearly closer to {target}",
    }.get(verdict, verdict)


def _better_when_text(better: str | float | None) -> str:
    if better is None:
        return ""
    return better if isinstance(better, str) else f"closer to {better:g}"


@dataclass
class ModelComparison:
    """Result of :func:`evaluate_models`: several models scored on the same cohort and the same resamples.

    Attributes
    ----------
    results : dict of name -> ExternalValidation
        Each model's own evaluation, exactly as :func:`evaluate_model` gives it, in the order given; the first
        model is the reference of the differences.
    summary : DataFrame
        Every model's summary stacked, with a first column ``model``.
    differences : DataFrame
        One row per compared model (all but the reference), measure and horizon: ``model``, ``reference``,
        ``measure``, ``label``, ``horizon``, ``horizon_days``, ``estimate`` (the model's value minus the
        reference's), ``lower``, ``upper`` (paired bootstrap 95% percentile interval), ``p_value`` (two-sided
        paired bootstrap p-value of no difference, :func:`paired_bootstrap_p_value`; not adjusted for
        multiplicity), ``n_resamples``,
        ``interval``, ``better_when`` ("higher", "lower", "closer to 0", "closer to 1"), ``improvement`` with
        ``improvement_lower``/``improvement_upper`` (how much better the model is, in the measure's units: the
        difference, its negative for "lower", or the reference's distance from the ideal value minus the
        model's; > 0 is better) and ``verdict`` ("better" or "worse" when the improvement's interval excludes 0,
        else "no clear difference"). The mean predicted event probability's difference has no "better" (its
        ``better_when`` and ``verdict`` are empty, its improvement NaN).
    resampled : DataFrame
        The per-resample values behind the differences: ``model``, ``measure``, ``horizon``, ``resample``,
        ``value`` (not written to files).
    info : dict
        Cohort, models, which model updates which, horizons, bootstrap sizes, seed, how the p-values are computed
        (``p_values``) and the net-benefit thresholds (``net_benefit_thresholds``).
    net_benefit_differences : DataFrame
        One row per compared model, horizon and threshold of ``info["net_benefit_thresholds"]``: ``model``,
        ``reference``, ``horizon``, ``horizon_days``, ``threshold``, ``net_benefit_reference``,
        ``net_benefit_model``, ``net_benefit_all`` (treat-all, for context), ``estimate`` (the model's net benefit
        minus the reference's), ``lower``, ``upper`` (paired bootstrap 95% percentile interval), ``p_value``,
        ``n_resamples``, ``interval``, ``better_when`` ("higher"), ``verdict``, ``per_100_patients`` (with
        ``_lower``/``_upper``: 100 x the difference, net true positives per 100 patients) and
        ``interventions_avoided_per_100`` (with ``_lower``/``_upper``: the difference divided by the threshold's
        odds, x 100: unnecessary interventions avoided per 100 patients at equal true positives).
    net_benefit_difference_curves : DataFrame
        The difference over every threshold of the decision curves (0.01 to 0.95): ``model``, ``reference``,
        ``horizon``, ``horizon_days``, ``threshold``, ``estimate``, ``lower``, ``upper`` (pointwise paired 95%
        percentile band), ``n_resamples``.
    net_benefit_resampled : DataFrame
        The per-resample net benefits behind ``net_benefit_differences``: ``model``, ``horizon``, ``threshold``,
        ``resample``, ``value`` (not written to files).
    """

    results: dict[str, ExternalValidation]
    summary: pd.DataFrame
    differences: pd.DataFrame
    resampled: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    net_benefit_differences: pd.DataFrame = field(default_factory=pd.DataFrame)
    net_benefit_difference_curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    net_benefit_resampled: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def names(self) -> list[str]:
        """The models' names, the reference first."""
        return list(self.results)

    @property
    def reference(self) -> str:
        """The name of the model the others are compared with (the first)."""
        return self.names[0]

    def _difference_row(self, measure: str, horizon: str, model: str | None) -> pd.Series:
        model = model if model is not None else self.names[-1]
        table = self.differences
        rows = table[(table["measure"] == measure) & (table["horizon"] == horizon) & (table["model"] == model)]
        if rows.empty:
            raise KeyError(f"no difference of {measure!r} at horizon {horizon!r} for model {model!r}")
        return rows.iloc[0]

    def difference(self, measure: str, horizon: str = "", model: str | None = None) -> float:
        """``model``'s value minus the reference's (default: the last model), e.g. ``difference("citl", "12mo")``."""
        return float(self._difference_row(measure, horizon, model)["estimate"])

    def difference_interval(self, measure: str, horizon: str = "", model: str | None = None) -> tuple[float, float]:
        """The paired bootstrap 95% interval of :meth:`difference`."""
        row = self._difference_row(measure, horizon, model)
        return float(row["lower"]), float(row["upper"])

    def p_value(self, measure: str, horizon: str = "", model: str | None = None) -> float:
        """The two-sided paired bootstrap p-value of :meth:`difference` (H0: no difference; not adjusted)."""
        return float(self._difference_row(measure, horizon, model)["p_value"])

    def net_benefit_difference(
        self, threshold: float, horizon: str, model: str | None = None
    ) -> tuple[float, float, float, float]:
        """``model``'s net benefit minus the reference's at ``threshold`` and ``horizon`` (default: the last
        model): ``(difference, lower, upper, p_value)``."""
        model = model if model is not None else self.names[-1]
        table = self.net_benefit_differences
        rows = table[
            (table["model"] == model) & (table["horizon"] == horizon) & np.isclose(table["threshold"], threshold)
        ]
        if rows.empty:
            raise KeyError(
                f"no net-benefit difference at threshold {threshold:g}, horizon {horizon!r}, model {model!r}"
            )
        row = rows.iloc[0]
        return float(row["estimate"]), float(row["lower"]), float(row["upper"]), float(row["p_value"])

    def side_by_side(self) -> pd.DataFrame:
        """One row per measure and horizon: each model's estimate and interval, then each difference and verdict."""
        rows = []
        summary = self.summary[self.summary["measure"].isin(COMPARISON_MEASURES)]
        order = {measure: k for k, measure in enumerate(COMPARISON_MEASURES)}
        keys = summary[["measure", "horizon", "horizon_days"]].drop_duplicates()
        keys = keys.assign(order=keys["measure"].map(order)).sort_values(["order", "horizon_days"], na_position="first")
        for measure, horizon in zip(keys["measure"], keys["horizon"]):
            row: dict[str, Any] = {"measure": measure, "horizon": horizon}
            for name, result in self.results.items():
                found = result.summary[(result.summary["measure"] == measure) & (result.summary["horizon"] == horizon)]
                first = found.iloc[0]
                row.setdefault("label", first["label"])
                row.setdefault("horizon_days", first["horizon_days"])
                row[f"{name}: estimate"] = first["estimate"]
                row[f"{name}: lower"] = first["lower"]
                row[f"{name}: upper"] = first["upper"]
            for name in self.names[1:]:
                difference = self.differences[
                    (self.differences["measure"] == measure)
                    & (self.differences["horizon"] == horizon)
                    & (self.differences["model"] == name)
                ]
                found_row = difference.iloc[0] if not difference.empty else None
                parts = (("estimate", ""), ("lower", " lower"), ("upper", " upper"), ("p_value", " p-value"))
                for part, suffix in parts:
                    value = found_row[part] if found_row is not None else np.nan
                    row[f"{name} - {self.reference}: difference{suffix}"] = value
                row[f"{name} vs {self.reference}: verdict"] = found_row["verdict"] if found_row is not None else ""
            rows.append(row)
        table = pd.DataFrame(rows)
        first = ["measure", "label", "horizon", "horizon_days"]
        return table[first + [c for c in table.columns if c not in first]]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the per-resample values, as plain JSON types."""
        return {
            "info": self.info,
            "summary": json.loads(self.summary.to_json(orient="records")),
            "differences": json.loads(self.differences.to_json(orient="records")),
            "models": {name: result.info for name, result in self.results.items()},
            "net_benefit_differences": json.loads(self.net_benefit_differences.to_json(orient="records")),
            "net_benefit_difference_curves": json.loads(self.net_benefit_difference_curves.to_json(orient="records")),
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The comparison as JSON text; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1, default=str) + "\n"
        if path is not None:
            atomic_write_text(path, text)
        return text

    def to_text(self) -> str:
        """The side-by-side table as text: each model's estimate (95% CI), then each difference and verdict."""

        def estimate(value: float, lower: float, upper: float) -> str:
            interval = f" ({lower:.3f} to {upper:.3f})" if np.isfinite(lower) else ""
            return f"{value:.3f}{interval}"

        better_when = dict(zip(self.differences["measure"], self.differences["better_when"]))
        lines = []
        for row in self.side_by_side().to_dict("records"):
            horizon = f" at {_horizon_label(row['horizon'])}" if row["horizon"] else ""
            parts = [
                f"{name} {estimate(row[f'{name}: estimate'], row[f'{name}: lower'], row[f'{name}: upper'])}"
                for name in self.names
            ]
            for name in self.names[1:]:
                key = f"{name} - {self.reference}: difference"
                if np.isfinite(row[key]):
                    verdict = verdict_words(
                        row[f"{name} vs {self.reference}: verdict"], better_when.get(row["measure"], "")
                    )
                    p = p_value_text(row[f"{key} p-value"])
                    parts.append(
                        f"difference {row[key]:+.3f} ({row[f'{key} lower']:+.3f} to {row[f'{key} upper']:+.3f})"
                        + (f", {p}" if p else "")
                        + (f", {verdict}" if verdict else "")
                    )
            lines.append(f"{row['label']}{horizon}: " + "; ".join(parts))
        return "\n".join(lines + self._net_benefit_text())

    def _net_benefit_text(self) -> list[str]:
        """The net-benefit differences as text lines, per 100 patients."""
        table = self.net_benefit_differences
        if table.empty:
            return []
        lines = [
            "Net benefit per 100 patients (net true positives: events by the horizon found, less false positives "
            "weighted by the threshold's odds; higher is better):"
        ]
        for row in table.to_dict("records"):
            p = p_value_text(row["p_value"])
            lower, upper = row["per_100_patients_lower"], row["per_100_patients_upper"]
            interval = f" ({lower:+.1f} to {upper:+.1f})" if np.isfinite(lower) else ""
            lines.append(
                f"  at {_horizon_label(row['horizon'])}, threshold {100 * row['threshold']:.0f}%: "
                f"treat all {100 * row['net_benefit_all']:.1f}; {row['reference']} "
                f"{100 * row['net_benefit_reference']:.1f}; {row['model']} {100 * row['net_benefit_model']:.1f}; "
                f"difference {row['per_100_patients']:+.1f}{interval}" + (f", {p}" if p else "") + f", {row['verdict']}"
            )
        return lines

    def plot(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write the overlaid calibration curves, decision curves and observed-vs-predicted plot as PNG files."""
        from carrisk import evaluation_plots

        return evaluation_plots.plot_comparison(self, Path(out_dir))

    def write(self, out_dir: str | os.PathLike[str], *, plots: bool = True) -> dict[str, Any]:
        """Write ``comparison.json``, ``comparison.csv`` (side by side), ``differences.csv``,
        ``net_benefit_differences.csv``, ``net_benefit_difference_curves.csv``, the overlaid plots,
        and each model's own evaluation into a subdirectory (``info["directories"]``).

        Returns
        -------
        dict
            Name -> path of each file written here, and ``"models"``: model name -> what
            :meth:`ExternalValidation.write` wrote for it.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Any] = {
            "json": out / "comparison.json",
            "comparison": out / "comparison.csv",
            "differences": out / "differences.csv",
            "net_benefit_differences": out / "net_benefit_differences.csv",
            "net_benefit_difference_curves": out / "net_benefit_difference_curves.csv",
        }
        self.to_json(paths["json"])
        write_csv(paths["comparison"], self.side_by_side())
        write_csv(paths["differences"], self.differences)
        write_csv(paths["net_benefit_differences"], self.net_benefit_differences)
        write_csv(paths["net_benefit_difference_curves"], self.net_benefit_difference_curves)
        if plots:
            paths.update(self.plot(out))
        paths["models"] = {}
        for k, (name, result) in enumerate(self.results.items()):
            directory = out / self.info["directories"][name]
            paths["models"][name] = own = result.write(directory, plots=False)
            if plots:
                own.update(self.plot_model(name, directory, k))
        return paths

    def plot_model(self, name: str, out_dir: str | os.PathLike[str], position: int | None = None) -> dict[str, Path]:
        """One model's own plots (as :meth:`ExternalValidation.plot`), drawn in its colour in the comparison."""
        from carrisk import evaluation_plots

        k = self.names.index(name) if position is None else position
        colour = evaluation_plots.MODEL_COLOURS[k % len(evaluation_plots.MODEL_COLOURS)]
        return evaluation_plots.plot_all(self.results[name], Path(out_dir), colour)


def _update_of(child: Any, parent: Any) -> dict[str, Any] | None:
    """The update record of ``child`` if it is an update of ``parent`` (by object, or its manifest's parent hash)."""
    update = (getattr(child, "metadata", {}) or {}).get("update")
    if not update:
        return None
    if getattr(child, "parent", None) is parent:
        return dict(update)
    parent_hash = ((getattr(parent, "manifest_", None) or {}).get("payload") or {}).get("sha256")
    if parent_hash and update.get("parent_payload_sha256") == parent_hash:
        return dict(update)
    return None


def comparison_names(models: Sequence[Any], fallback: Sequence[str]) -> list[str]:
    """Readable names for models compared with the first one.

    When a model is an update of the first (its manifest names the first bundle's payload as its parent), the
    first is the "original model" and it is the "updated model (<level>)", e.g. "updated model (revision)";
    every other model keeps its ``fallback`` name. Repeated names get ", model <position>".
    """
    names = [str(name) for name in fallback]
    updates = [_update_of(model, models[0]) for model in models]
    if any(update is not None for update in updates[1:]):
        names[0] = "original model"
        for k, update in enumerate(updates[1:], start=1):
            if update is not None:
                names[k] = f"updated model ({str(update.get('level', 'update')).replace('_', ' ')})"
    seen: set[str] = set()
    unique = []
    for k, name in enumerate(names):
        unique.append(name if name not in seen else f"{name}, model {k + 1}")
        seen.add(unique[-1])
    return unique


def _directories(names: Sequence[str]) -> dict[str, str]:
    """A subdirectory name for each model's own evaluation: lower case, letters, digits and hyphens, unique."""
    taken: set[str] = set()
    directories = {}
    for name in names:
        base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "model"
        candidate, counter = base, 1
        while candidate in taken:
            counter += 1
            candidate = f"{base}-{counter}"
        taken.add(candidate)
        directories[name] = candidate
    return directories


def _check_comparable(
    models: Mapping[str, Any], records: pd.DataFrame, source: str, time_col: str | None, event_col: str | None
) -> None:
    """One-line errors for models that cannot be scored against the same outcome of ``records``."""
    generic = {
        name: bool((spec := _feature_spec(model)) is not None and not spec.clinical) for name, model in models.items()
    }
    if len(set(generic.values())) > 1:
        clinical = ", ".join(repr(name) for name, is_generic in generic.items() if not is_generic)
        others = []
        for name, is_generic in generic.items():
            spec = _feature_spec(models[name])
            if is_generic:
                others.append(f"{name!r} (outcome columns {spec.time_col!r}/{spec.event_col!r})")
        raise ModelComparisonError(
            f"cannot compare a clinical model ({clinical}: EFS after CAR T-cell therapy from carrisk records) with a "
            f"generic-mode model ({', '.join(others)}): they predict different outcomes from different columns"
        )
    outcomes = {
        name: cohort_outcome(model, records, source=source, time_col=time_col, event_col=event_col)[2]
        for name, model in models.items()
    }
    if len(set(outcomes.values())) > 1:
        read = "; ".join(f"{name!r} reads {time!r}/{event!r}" for name, (time, event) in outcomes.items())
        raise ModelComparisonError(
            f"the models read different outcomes from {source} ({read}); models compared on one cohort must "
            "predict the same outcome (name it with --time-col/--event-col if the columns differ only in name)"
        )


def paired_bootstrap_p_value(draws: Any) -> float:
    """Two-sided paired-bootstrap p-value of "no difference" from the per-resample differences ``draws``.

    With ``B`` the number of finite draws ``d_b`` (NaN draws, from resamples where the measure is undefined, are
    left out, as they are of the interval)::

        p = min(1, 2 min((1 + #{d_b <= 0}) / (B + 1), (1 + #{d_b >= 0}) / (B + 1)))

    twice the smaller one-sided Monte Carlo p-value, ``(1 + #)/(B + 1)`` (Davison & Hinkley [4]_, chapter 4;
    the +1 counts the observed sample among the resamples, so ``p`` is never 0). It is the test inversion of the
    percentile interval (Efron & Tibshirani [5]_, chapter 16): up to the +1, the smallest ``alpha`` at which the
    ``1 - alpha`` paired percentile interval excludes 0, so a 95% interval that excludes 0 goes with ``p`` below
    about 0.05 (with B = 200, up to 0.06 because of the +1). A draw of exactly 0 counts on both sides, so models
    that never differ get ``p = 1``. The smallest possible value is ``2 / (B + 1)`` (0.00995 with 200 resamples):
    more resamples are needed to resolve smaller p-values. NaN without a finite draw.

    It tests H0: the measure is the same for both models in the population the cohort represents (patients
    resampled, models held fixed). It is not adjusted for multiplicity: a comparison reports many measures,
    horizons and thresholds, and about 1 in 20 of them falls below 0.05 when the models do not differ.
    """
    d = np.asarray(draws, dtype=float).ravel()
    d = d[np.isfinite(d)]
    if not d.size:
        return float("nan")
    below = (1 + np.count_nonzero(d <= 0)) / (d.size + 1)
    above = (1 + np.count_nonzero(d >= 0)) / (d.size + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def p_value_text(p: float) -> str:
    """A p-value for the text output: "p = 0.034", "p < 0.001"; "" when NaN."""
    if p is None or not np.isfinite(p):
        return ""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _improvement(better: str | float | None, model: Any, reference: Any) -> Any:
    """How much better ``model``'s value is than ``reference``'s (> 0 better; NaN without a "better"): see
    :data:`BETTER_WHEN`."""
    if better is None:
        return np.full(np.shape(model), np.nan) if np.ndim(model) else float("nan")
    if better == "higher":
        return model - reference
    if better == "lower":
        return reference - model
    return np.abs(reference - float(better)) - np.abs(model - float(better))


def _paired_differences(
    results: Mapping[str, ExternalValidation], values: Mapping[str, Mapping[tuple[str, str], np.ndarray]]
) -> pd.DataFrame:
    """Each model against the first, per measure and horizon, from the per-resample values of both."""
    names = list(results)
    reference = names[0]
    rows = []
    for (measure, horizon), reference_draws in values[reference].items():
        better = BETTER_WHEN.get(measure)
        reference_point = results[reference].value(measure, horizon)
        for name in names[1:]:
            point = results[name].value(measure, horizon)
            draws = values[name][(measure, horizon)] - reference_draws
            kept = np.isfinite(draws)

            gains = _improvement(better, values[name][(measure, horizon)], reference_draws)
            lower, upper, _ = _percentile_interval(draws)
            gain_lower, gain_upper, n_gains = _percentile_interval(gains)
            verdict = "" if better is None else _verdict(gain_lower, gain_upper, n_gains)
            band = " of the calibration band" if measure in _CALIBRATION_BAND_MEASURES else ""
            rows.append(
                {
                    "model": name,
                    "reference": reference,
                    "measure": measure,
                    "label": MEASURE_LABELS[measure],
                    "horizon": horizon,
                    "horizon_days": results[name]
                    .summary.loc[
                        (results[name].summary["measure"] == measure) & (results[name].summary["horizon"] == horizon),
                        "horizon_days",
                    ]
                    .iloc[0],
                    "estimate": point - reference_point,
                    "lower": float(lower),
                    "upper": float(upper),
                    "p_value": paired_bootstrap_p_value(draws),
                    "n_resamples": int(kept.sum()),
                    "interval": f"paired bootstrap percentile ({int(kept.sum())} resamples{band})",
                    "better_when": _better_when_text(better),
                    "improvement": float(_improvement(better, point, reference_point)),
                    "improvement_lower": float(gain_lower),
                    "improvement_upper": float(gain_upper),
                    "verdict": verdict,
                }
            )
    columns = [
        "model", "reference", "measure", "label", "horizon", "horizon_days", "estimate", "lower", "upper", "p_value",
        "n_resamples", "interval", "better_when", "improvement", "improvement_lower", "improvement_upper", "verdict",
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    order = {measure: k for k, measure in enumerate(DIFFERENCE_MEASURES)}
    table = table.assign(order=table["measure"].map(order), position=table["model"].map(names.index))
    table = table.sort_values(["position", "order", "horizon_days"], na_position="first", kind="stable")
    return table.drop(columns=["order", "position"]).reset_index(drop=True)


def _percentile_interval(draws: np.ndarray) -> tuple[float, float, int]:
    """The 95% percentile interval of the finite draws and how many there are (NaN, NaN, 0 without any)."""
    kept = draws[np.isfinite(draws)]
    if not kept.size:
        return float("nan"), float("nan"), 0
    lower, upper = np.quantile(kept, [0.025, 0.975])
    return float(lower), float(upper), int(kept.size)


def _verdict(gain_lower: float, gain_upper: float, n_draws: int) -> str:
    """ "better" / "worse" when the 95% interval of the improvement excludes 0, else "no clear difference"."""
    if not n_draws:
        return "not estimable"
    return "better" if gain_lower > 0 else "worse" if gain_upper < 0 else "no clear difference"


def _net_benefit_differences(
    results: Mapping[str, ExternalValidation],
    scored: Mapping[str, _Scored],
    thresholds: Sequence[float],
    n_bootstrap: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """Each model's net benefit minus the first's, paired within the same resamples.

    Returns the table at ``thresholds`` (with p-values), the difference curve over the decision curves' thresholds
    (from the draws behind their bands: the same resamples) and the per-resample net benefits at ``thresholds``.
    """
    names = list(results)
    reference = names[0]
    horizons = {str(k): float(v) for k, v in results[reference].info["horizons_days"].items()}
    event, time = scored[reference].event, scored[reference].time
    indices = list(_resamples(event.size, n_bootstrap, seed))
    point: dict[tuple[str, str], np.ndarray] = {}
    draws: dict[tuple[str, str], np.ndarray] = {}
    resampled: list[dict[str, Any]] = []
    for name in names:
        for k, (horizon, days) in enumerate(horizons.items()):
            prob = 1.0 - scored[name].surv[:, k]
            point[name, horizon] = net_benefit(event, time, prob, days, thresholds)
            draws[name, horizon] = np.array(
                [net_benefit(event[index], time[index], prob[index], days, thresholds) for index in indices]
            ).reshape(len(indices), len(thresholds))
            resampled.extend(
                {"model": name, "horizon": horizon, "threshold": float(threshold), "resample": b,
                 "value": float(value)}
                for j, threshold in enumerate(thresholds)
                for b, value in enumerate(draws[name, horizon][:, j])
            )  # fmt: skip
    rows, curve_rows = [], []
    for horizon, days in horizons.items():
        treat_all = net_benefit(event, time, np.ones(event.size), days, thresholds)
        for name in names[1:]:
            difference = draws[name, horizon] - draws[reference, horizon]
            for j, threshold in enumerate(thresholds):
                lower, upper, kept = _percentile_interval(difference[:, j])
                estimate = float(point[name, horizon][j] - point[reference, horizon][j])
                per_intervention = 100.0 * (1.0 - threshold) / threshold
                verdict = _verdict(lower, upper, kept)
                rows.append(
                    {
                        "model": name,
                        "reference": reference,
                        "horizon": horizon,
                        "horizon_days": days,
                        "threshold": float(threshold),
                        "net_benefit_reference": float(point[reference, horizon][j]),
                        "net_benefit_model": float(point[name, horizon][j]),
                        "net_benefit_all": float(treat_all[j]),
                        "estimate": estimate,
                        "lower": lower,
                        "upper": upper,
                        "p_value": paired_bootstrap_p_value(difference[:, j]),
                        "n_resamples": kept,
                        "interval": f"paired bootstrap percentile ({kept} resamples)",
                        "better_when": "higher",
                        "verdict": verdict,
                        "per_100_patients": 100.0 * estimate,
                        "per_100_patients_lower": 100.0 * lower,
                        "per_100_patients_upper": 100.0 * upper,
                        "interventions_avoided_per_100": per_intervention * estimate,
                        "interventions_avoided_per_100_lower": per_intervention * lower,
                        "interventions_avoided_per_100_upper": per_intervention * upper,
                    }
                )
            mine, theirs = (
                results[model].decision_curves[results[model].decision_curves["horizon"] == horizon]
                for model in (name, reference)
            )
            curve_draws = scored[name].net_benefit_draws[horizon] - scored[reference].net_benefit_draws[horizon]
            estimates = mine["net_benefit_model"].to_numpy() - theirs["net_benefit_model"].to_numpy()
            for j, threshold in enumerate(mine["threshold"].to_numpy(dtype=float)):
                lower, upper, kept = _percentile_interval(curve_draws[:, j])
                curve_rows.append(
                    {"model": name, "reference": reference, "horizon": horizon, "horizon_days": days,
                     "threshold": threshold, "estimate": float(estimates[j]), "lower": lower, "upper": upper,
                     "n_resamples": kept}
                )  # fmt: skip
    columns = [
        "model", "reference", "horizon", "horizon_days", "threshold", "net_benefit_reference", "net_benefit_model",
        "net_benefit_all", "estimate", "lower", "upper", "p_value", "n_resamples", "interval", "better_when",
        "verdict", "per_100_patients", "per_100_patients_lower", "per_100_patients_upper",
        "interventions_avoided_per_100", "interventions_avoided_per_100_lower", "interventions_avoided_per_100_upper",
    ]  # fmt: skip
    curve_columns = ["model", "reference", "horizon", "horizon_days", "threshold", "estimate", "lower", "upper",
                     "n_resamples"]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    table = table.assign(position=table["model"].map(names.index))
    table = table.sort_values(["position", "horizon_days", "threshold"], kind="stable").drop(columns="position")
    return table.reset_index(drop=True), pd.DataFrame(curve_rows, columns=curve_columns), resampled


def evaluate_models(
    models: Mapping[str, Any],
    records: pd.DataFrame,
    *,
    horizons: Mapping[str, float] = DEFAULT_HORIZONS_DAYS,
    n_bootstrap: int = 200,
    n_bootstrap_calibration: int = 50,
    seed: int = 0,
    source: str = "records",
    time_col: str | None = None,
    event_col: str | None = None,
    net_benefit_thresholds: Sequence[float] = NET_BENEFIT_THRESHOLDS,
) -> ModelComparison:
    """Score several models on the same cohort and the same bootstrap resamples, and compare them with the first.

    The analogue of riskRegression's ``Score(list(original = m1, updated = m2), ...)``: every model gets its own
    :func:`evaluate_model` result (identical to scoring it alone with the same arguments), and each model after
    the first gets paired differences against it, with 95% percentile intervals over the same resamples of the
    patients (the difference is computed within each resample, so the patients' sampling variation that both
    models share cancels): Harrell's and Uno's C, AUC, Brier score, IPA, calibration-in-the-large, O/E and the
    calibration slope over the ``n_bootstrap`` resamples, ICI/E50/E90 over the ``n_bootstrap_calibration`` ones
    of the calibration band (the first of the same sequence). The calibration slope's difference is
    bootstrapped (each model's own slope keeps its Wald interval).

    Each difference also gets a two-sided paired-bootstrap p-value from the same per-resample differences
    (:func:`paired_bootstrap_p_value`): it tests H0, no difference in that measure between the two models in the
    population the cohort represents. The p-values are not adjusted for multiplicity (a comparison reports about
    twenty measures and ten net-benefit thresholds per model). For a measure with an ideal value (CITL, O/E, the
    slope) the p-value tests the difference itself, while the verdict asks whether the model came closer to the
    ideal value: a clear change (small p) can still be "not clearly closer to 1".

    The net benefit (decision curves: :mod:`carrisk.decision_curves`) is compared at ``net_benefit_thresholds``
    at each horizon: the model's net benefit minus the reference's, with its paired interval, p-value and
    verdict (higher is better), also per 100 patients (net true positives: patients with an event by the
    horizon found, less the false positives weighted by the threshold's odds) and as unnecessary interventions
    avoided per 100 patients at equal true positives (the difference divided by the odds ``p_t / (1 - p_t)``;
    Vickers et al. 2008, 2019). The difference curve over every threshold of the decision curves, with its
    pointwise 95% band, comes from the draws behind the decision curves' own bands: the same resamples.

    Parameters
    ----------
    models : mapping of name -> model
        At least one model (each as for :func:`evaluate_model`); the first is the reference. All must predict
        the same outcome: all clinical (carrisk records, EFS) or all generic-mode models reading the same outcome
        columns.
    records, horizons, n_bootstrap, n_bootstrap_calibration, seed, source, time_col, event_col
        As for :func:`evaluate_model`, shared by every model.
    net_benefit_thresholds : sequence of float, default :data:`NET_BENEFIT_THRESHOLDS` (0.2 to 0.6 by 0.1)
        Threshold probabilities of an event by the horizon, each in (0, 1), at which the net benefit is compared.

    Returns
    -------
    ModelComparison

    Raises
    ------
    RecordError
        If the records are invalid or lack outcomes (every problem listed).
    ModelComparisonError
        A ``ValueError``: no model is given, a name is blank, a clinical model is compared with a generic-mode
        one, the models read different outcome columns, or a net-benefit threshold is not in (0, 1).
    ValueError
        If a horizon is not within the cohort's follow-up.
    """
    if not models:
        raise ModelComparisonError("evaluate_models needs at least one model")
    names = [str(name) for name in models]
    if any(not name.strip() for name in names):
        raise ModelComparisonError("every model needs a non-empty name")
    thresholds = sorted({float(t) for t in net_benefit_thresholds})
    if not thresholds or any(not 0.0 < t < 1.0 for t in thresholds):
        raise ModelComparisonError(
            f"net-benefit thresholds must be probabilities strictly between 0 and 1, got {list(net_benefit_thresholds)}"
        )
    records = records.reset_index(drop=True)
    _check_comparable(models, records, source, time_col, event_col)
    results: dict[str, ExternalValidation] = {}
    values: dict[str, dict[tuple[str, str], np.ndarray]] = {}
    scored_by_name: dict[str, _Scored] = {}
    for name, model in zip(names, models.values()):
        result, scored = _evaluate(
            model,
            records,
            horizons=horizons,
            n_bootstrap=n_bootstrap,
            n_bootstrap_calibration=n_bootstrap_calibration,
            seed=seed,
            source=source,
            time_col=time_col,
            event_col=event_col,
        )
        results[name] = result
        scored_by_name[name] = scored
        per_measure: dict[tuple[str, str], np.ndarray] = {}
        for measure in DIFFERENCE_MEASURES:
            for horizon in [""] if measure in ("harrell_c", "uno_c") else list(result.info["horizons_days"]):
                key = f"{measure}_{horizon}" if horizon else measure
                if measure == "calibration_slope":
                    k = list(result.info["horizons_days"]).index(horizon)
                    per_measure[(measure, horizon)] = np.array(
                        [
                            _slope_by_newton(scored.event[index], scored.time[index], scored.surv[index, k])
                            for index in _resamples(scored.event.size, n_bootstrap, seed)
                        ]
                    )
                elif measure in _CALIBRATION_BAND_MEASURES:
                    per_measure[(measure, horizon)] = scored.calibration_draws[key]
                else:
                    per_measure[(measure, horizon)] = scored.draws[key]
        values[name] = per_measure

    differences = _paired_differences(results, values)
    net_benefit_table, net_benefit_curves, net_benefit_resampled = _net_benefit_differences(
        results, scored_by_name, thresholds, n_bootstrap, seed
    )
    resampled = pd.DataFrame(
        [
            {"model": name, "measure": measure, "horizon": horizon, "resample": b, "value": float(value)}
            for name, per_measure in values.items()
            for (measure, horizon), draws in per_measure.items()
            for b, value in enumerate(draws)
        ],
        columns=["model", "measure", "horizon", "resample", "value"],
    )
    summary = pd.concat([result.summary.assign(model=name) for name, result in results.items()], ignore_index=True)
    summary = summary[["model", *[c for c in summary.columns if c != "model"]]]
    model_list = list(models.values())
    relations = []
    for name, model in zip(names[1:], model_list[1:]):
        update = _update_of(model, model_list[0])
        if update is not None:
            cohort = update.get("update_cohort") or {}
            relations.append(
                {
                    "model": name,
                    "updates": names[0],
                    "level": update.get("level"),
                    "description": update.get("description"),
                    "chosen_by": update.get("chosen_by"),
                    "update_cohort": cohort.get("source"),
                    "update_cohort_rows": cohort.get("rows"),
                }
            )
    first = results[names[0]].info
    info = {
        "cohort": source,
        "n": first["n"],
        "events": first["events"],
        "events_by_horizon": first["events_by_horizon"],
        "generic": first["generic"],
        "outcome_columns": first["outcome_columns"],
        "models": names,
        "reference": names[0],
        "relations": relations,
        "directories": _directories(names),
        "horizons_days": first["horizons_days"],
        "n_bootstrap": n_bootstrap,
        "n_bootstrap_calibration": n_bootstrap_calibration,
        "seed": seed,
        "paired": (
            f"every model scored on the same {n_bootstrap} bootstrap resamples of the patients (seed {seed}; "
            f"ICI/E50/E90 on the first {n_bootstrap_calibration}); each difference is the model minus "
            f"{names[0]}, computed within each resample"
        ),
        "p_values": (
            "two-sided paired bootstrap: p = min(1, 2 min((1 + #{d <= 0}), (1 + #{d >= 0})) / (B + 1)) over the B "
            "finite per-resample differences d (Davison & Hinkley 1997); H0: no difference in the measure in the "
            f"population the cohort represents; not adjusted for multiplicity; the smallest possible is "
            f"2 / (B + 1) = {2 / (n_bootstrap + 1):.4f} with {n_bootstrap} resamples "
            f"({2 / (n_bootstrap_calibration + 1):.4f} for ICI/E50/E90 over {n_bootstrap_calibration})"
        ),
        "net_benefit_thresholds": thresholds,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return ModelComparison(
        results,
        summary,
        differences,
        resampled,
        info,
        net_benefit_table,
        net_benefit_curves,
        pd.DataFrame(net_benefit_resampled, columns=["model", "horizon", "threshold", "resample", "value"]),
    )


def _model_description(model: Any) -> dict[str, Any]:
    metadata = getattr(model, "metadata", {}) or {}
    manifest = getattr(model, "manifest_", None) or {}
    return {
        "model": getattr(model, "model_name", type(model).__name__),
        "hyperparameters": getattr(model, "params", None),
        "synthetic_training_data": metadata.get("synthetic_training_data"),
        "tuning": metadata.get("tuning"),
        "training_rows": (metadata.get("training_data") or {}).get("rows"),
        "training_events": (metadata.get("training_data") or {}).get("events"),
        "payload_sha256": (manifest.get("payload") or {}).get("sha256"),
        "update": metadata.get("update"),
    }


def save_figure(figure: Any, path: Path) -> Path:
    """Save a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(figure)
    return path
