"""Cross-validation of competing-risks models: how well they predict *how* patients fail.

:func:`cross_validate_causes` uses the outer folds of :func:`carrisk.cross_validate` (the same seed gives the same
splits, stratified on the EFS event). In each fold a competing-risks model -- by default the
:class:`~carrisk.competing.prediction.CauseSpecificModel` (no bootstrap), or :data:`CAUSE_MODELS`' Fine-Gray models
or competing-risks forest -- and the Aalen-Johansen cumulative incidence (no covariates, the reference) are
fitted on the training rows only (a model's inner cross-validation of its penalties too) and scored on the test
rows, for every cause and horizon:

- ``c_<h>``: Wolbers' cause-specific concordance of the predicted incidence at ``h``, events up to ``h``
  (:func:`carrisk.competing.metrics.cause_concordance`);
- ``auc_<h>``: the IPCW cumulative/dynamic AUC of Blanche et al. 2013 (:func:`~carrisk.competing.metrics.cif_auc`);
- ``brier_<h>`` and ``brier_null_<h>``: the IPCW Brier score of the model's and of the Aalen-Johansen incidence
  (:func:`~carrisk.competing.metrics.cif_brier_score`; censoring weights from the test fold's Kaplan-Meier).

What is scored is the cause model's own incidence. ``carrisk predict --causes`` rescales it so that the causes
add up to ``1 - EFS`` of the EFS model; that combined prediction is not what these folds measure.

Any estimator with ``fit(records)``, ``predict_cif(records)`` (patients x ``unique_times_`` x :data:`CAUSES`) and
``unique_times_`` can be cross-validated; the penalties it chose in each fold (``alpha_``) are kept per fold.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone

from carrisk.competing.fine_gray_model import FineGrayModel
from carrisk.competing.forest import CompetingRiskForest
from carrisk.competing.metrics import cause_concordance, cif_auc, cif_brier_score
from carrisk.competing.nonparametric import aalen_johansen
from carrisk.competing.outcomes import CAUSE_LABELS, CAUSES, derive_first_event
from carrisk.competing.prediction import DEFAULT_HORIZONS, CauseSpecificModel
from carrisk.cv_summary import MEAN_CI_DESCRIPTION, MEAN_CI_METHOD, summarize_cv_metric
from carrisk.validation import outer_splits

METRICS = ("c", "auc", "brier", "brier_null")
#: The models ``carrisk cv --causes --cause-models`` can cross-validate, by name.
CAUSE_MODELS: dict[str, type] = {
    "cause_specific": CauseSpecificModel,
    "fine_gray": FineGrayModel,
    "forest": CompetingRiskForest,
}
#: How :meth:`CauseCVResult.to_text` names each model.
MODEL_LABELS = {
    "CauseSpecificModel": "Cause-specific model",
    "FineGrayModel": "Fine-Gray models",
    "CompetingRiskForest": "Competing-risks forest",
}


@dataclass
class CauseCVResult:
    """Per-fold scores of the cause-specific model; :meth:`to_dict` is the ``causes`` section of the cv JSON."""

    folds: list[dict[str, Any]]
    events: dict[str, int]
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Cause -> metric -> :func:`carrisk.cv_summary.summarize_cv_metric` over the folds."""
        ratio = float(np.mean([f["n_test"] / f["n_train"] for f in self.folds]))
        names = [f"{m}_{h}" for m in METRICS for h in self.settings["horizons"]]
        return {
            cause: {
                name: summarize_cv_metric([f["metrics"].get(cause, {}).get(name, np.nan) for f in self.folds], ratio)
                for name in names
            }
            for cause in CAUSES
        }

    def to_dict(self) -> dict[str, Any]:
        """``model``, ``params``, ``events`` (per cause), ``metrics`` (cause -> metric -> summary), ``folds``..."""
        return {
            "model": self.settings["model"],
            "params": self.settings["params"],
            "events": self.events,
            "metrics": self.summary(),
            "folds": [
                {k: f[k] for k in ("repeat", "fold", "n_train", "n_test", "chosen", "error", "seconds")}
                for f in self.folds
            ],
            "settings": self.settings,
        }

    def to_text(self, horizon: str = "12mo") -> str:
        """One line per cause: events, and mean [95% CI of the mean] of each metric at ``horizon``."""
        summary = self.summary()
        lines = [
            f"{MODEL_LABELS.get(self.settings['model'], self.settings['model'])}, out of fold at {horizon} "
            "(mean [95% CI of the mean]); Brier: model vs "
            "Aalen-Johansen (no covariates)",
            f"{'cause':<24}{'events':>7}  {'concordance':<22}{'AUC':<22}{'Brier':<22}{'Brier AJ':<22}",
        ]
        for cause in CAUSES:
            cells = []
            for metric in METRICS:
                s = summary[cause][f"{metric}_{horizon}"]
                low, high = s["mean_ci"]
                cells.append(f"{s['mean']:.3f} [{low:.3f}, {high:.3f}]" if np.isfinite(s["mean"]) else "n/a")
            lines.append(f"{CAUSE_LABELS[cause]:<24}{self.events[cause]:>7}  " + "".join(f"{c:<22}" for c in cells))
        return "\n".join(lines)


def _score_fold(
    repeat: int,
    fold: int,
    train: np.ndarray,
    test: np.ndarray,
    records: pd.DataFrame,
    events: pd.DataFrame,
    model: Any,
    horizons: Mapping[str, float],
) -> dict[str, Any]:
    started = time.perf_counter()
    t_train = events["time_days"].to_numpy(dtype=float)[train]
    code_train = events["cause_code"].to_numpy(dtype=int)[train]
    t_test = events["time_days"].to_numpy(dtype=float)[test]
    code_test = events["cause_code"].to_numpy(dtype=int)[test]
    scores: dict[str, dict[str, float]] = {}
    error, chosen = None, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            fitted = clone(model).fit(records.iloc[train])
            cif = fitted.predict_cif(records.iloc[test])
        chosen = getattr(fitted, "alpha_", None)
        reference = aalen_johansen(t_train, code_train, CAUSES).at(list(horizons.values()))
        for k, cause in enumerate(CAUSES):
            scores[cause] = {}
            for name, days in horizons.items():
                index = int(np.searchsorted(fitted.unique_times_, days, side="right")) - 1
                predicted = cif[:, index, k] if index >= 0 else np.zeros(len(test))
                null = reference.loc[(reference["horizon_days"] == days) & (reference["cause"] == cause), "cif"]
                scores[cause] |= {
                    f"c_{name}": cause_concordance(t_test, code_test, predicted, k + 1, tau=days),
                    f"auc_{name}": cif_auc(t_test, code_test, predicted, k + 1, days),
                    f"brier_{name}": cif_brier_score(t_test, code_test, predicted, k + 1, days),
                    f"brier_null_{name}": cif_brier_score(
                        t_test, code_test, np.full(len(test), float(null.iloc[0])), k + 1, days
                    ),
                }
    except (ValueError, ArithmeticError) as err:
        scores, error = {}, f"{type(err).__name__}: {err}"
    return {
        "repeat": repeat,
        "fold": fold,
        "n_train": len(train),
        "n_test": len(test),
        "metrics": scores,
        "chosen": chosen,
        "error": error,
        "seconds": time.perf_counter() - started,
    }


def cross_validate_causes(
    records: pd.DataFrame,
    *,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    horizons: Mapping[str, float] = DEFAULT_HORIZONS,
    model: Any = None,
    n_jobs: int | None = None,
) -> CauseCVResult:
    """Repeated K-fold cross-validation of a competing-risks model on :func:`carrisk.cross_validate`'s folds.

    Parameters
    ----------
    records : DataFrame
        Records with the outcome columns (the first-event causes are derived from them).
    folds, repeats, seed
        The outer folds, exactly as :func:`carrisk.cross_validate` draws them (stratified on the EFS event).
    horizons : mapping name -> days
        Default 6 and 12 months.
    model : estimator, optional
        Unfitted, e.g. a value of :data:`CAUSE_MODELS`; default ``CauseSpecificModel()`` (penalties chosen by
        inner cross-validation within each training fold; no bootstrap in the folds).
    n_jobs : int, optional
        joblib parallelism over the folds.

    Returns
    -------
    CauseCVResult

    Raises
    ------
    carrisk.schema.RecordError
        If the outcome columns are missing or contradictory.
    ValueError
        If there are fewer events or censored patients than folds.
    """
    records = records.reset_index(drop=True)
    events = derive_first_event(records)
    event = events["cause_code"].to_numpy(dtype=int) > 0
    if min(event.sum(), (~event).sum()) < folds:
        raise ValueError(
            f"{folds}-fold stratified CV needs at least {folds} events and {folds} censored patients; "
            f"got {int(event.sum())} events and {int((~event).sum())} censored"
        )
    model = model if model is not None else CauseSpecificModel()
    splits = outer_splits(event, folds, repeats, seed)
    results = joblib.Parallel(n_jobs=n_jobs)(
        joblib.delayed(_score_fold)(i // folds, i % folds, train, test, records, events, model, horizons)
        for i, (train, test) in enumerate(splits)
    )
    counts = events["cause"].value_counts()
    return CauseCVResult(
        folds=list(results),
        events={cause: int(counts.get(cause, 0)) for cause in CAUSES},
        settings={
            "folds": folds,
            "repeats": repeats,
            "seed": seed,
            "horizons": dict(horizons),
            "model": type(model).__name__,
            "params": {k: v for k, v in model.get_params().items() if k != "spec"},
            "splits": "carrisk.validation.outer_splits: the outer folds of the EFS cross-validation (same seed)",
            "scored": "the cause model's own cumulative incidence (not rescaled to an EFS model's 1 - EFS)",
            "concordance": "Wolbers 2009, Harrell-type; prediction F_k(h | x), events of the cause up to h",
            "auc": "Blanche 2013 cumulative/dynamic, IPCW, controls: event-free at h or failed of another cause",
            "brier": "IPCW (test-fold Kaplan-Meier of censoring); brier_null: training-fold Aalen-Johansen",
            "mean_ci": {"method": MEAN_CI_METHOD, "level": 0.95, "description": MEAN_CI_DESCRIPTION},
        },
    )


__all__ = ["CAUSE_MODELS", "CauseCVResult", "cross_validate_causes"]
