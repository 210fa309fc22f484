"""Fine-Gray models of every first-event cause on carrisk records, for ``carrisk cv --causes``.

:class:`FineGrayModel` fits one ridge-penalised Fine-Gray subdistribution hazard model per cause
(:func:`carrisk.competing.regression.ridge_hazard_fit`, the ``cmprsk::crr`` estimator plus a ridge penalty on
standardised columns) and predicts ``F_k(t | x) = 1 - exp(-Lambda_k(t) exp(x beta_k))`` with the Breslow
baseline (``predict.crr``'s). Each cause's penalty is chosen by inner cross-validated partial log-likelihood on the
training records, as :class:`carrisk.competing.prediction.CauseSpecificModel` does.

The causes are modelled separately, so nothing makes their incidences add up to at most 1 (a known property of
Fine-Gray models of several causes); that is why per-patient prediction (``predict --causes``) uses the
cause-specific model, and this one is only cross-validated against it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from carrisk.competing.outcomes import CAUSES
from carrisk.competing.prediction import DEFAULT_ALPHAS, cause_training_data
from carrisk.competing.regression import cross_validated_penalty, ridge_hazard_fit
from carrisk.features import FeatureSpec


class FineGrayModel(BaseEstimator):
    """Ridge Fine-Gray model of each first-event cause; see the module docstring.

    Parameters
    ----------
    spec : FeatureSpec, optional
        Design-matrix spec (default: the clinical record schema).
    alpha : float or "cv", default "cv"
        Ridge penalty (``penalty / 2 * ||beta||^2`` against the log partial likelihood summed over patients);
        ``"cv"`` chooses it for each cause from ``alphas`` by ``inner_folds``-fold cross-validated partial
        log-likelihood of the subdistribution model on the training records (folds seeded by ``random_state``).
    alphas : tuple of float
        Candidates for ``alpha="cv"``.
    inner_folds : int, default 5
    random_state : int, default 0

    Attributes
    ----------
    coef_ : ndarray, shape (causes, columns)
    baseline_ : ndarray, shape (causes, grid)
        Cumulative baseline subdistribution hazard of each cause on ``unique_times_``.
    alpha_ : dict
        Cause -> the penalty used; ``alpha_cv_`` cause -> cross-validated log-likelihood of each candidate.
    """

    def __init__(
        self,
        spec: FeatureSpec | None = None,
        alpha: float | str = "cv",
        alphas: tuple[float, ...] = DEFAULT_ALPHAS,
        inner_folds: int = 5,
        random_state: int = 0,
    ) -> None:
        self.spec = spec
        self.alpha = alpha
        self.alphas = alphas
        self.inner_folds = inner_folds
        self.random_state = random_state

    def fit(self, records: pd.DataFrame, y: Any = None) -> FineGrayModel:
        """Fit on records with outcome columns (the first-event causes are derived from them).

        Raises
        ------
        carrisk.schema.RecordError
            If the records or their outcome columns are invalid or contradictory.
        ValueError
            If ``alpha`` is neither a number nor ``"cv"``.
        """
        if isinstance(self.alpha, str) and self.alpha != "cv":
            raise ValueError(f"alpha must be a number or 'cv', got {self.alpha!r}")
        self.preprocess_, design, time, code = cause_training_data(self.spec, records)
        self.causes_ = CAUSES
        self.unique_times_ = np.unique(time[code > 0])
        self.coef_ = np.zeros((len(CAUSES), design.shape[1]))
        self.baseline_ = np.zeros((len(CAUSES), self.unique_times_.size))
        self.alpha_: dict[str, float] = {}
        self.alpha_cv_: dict[str, list[float]] = {}
        for k, cause in enumerate(CAUSES, start=1):
            if isinstance(self.alpha, str):
                penalty, score = cross_validated_penalty(
                    time,
                    code,
                    design,
                    k,
                    self.alphas,
                    subdistribution=True,
                    folds=self.inner_folds,
                    seed=self.random_state,
                )
                self.alpha_cv_[cause] = [float(v) for v in score]
            else:
                penalty = float(self.alpha)
            self.alpha_[cause] = penalty
            fit = ridge_hazard_fit(time, code, design, k, penalty=penalty, subdistribution=True)
            self.coef_[k - 1] = fit.coef
            steps = np.concatenate([[0.0], np.cumsum(fit.baseline_hazard)])
            self.baseline_[k - 1] = steps[np.searchsorted(fit.fail_times, self.unique_times_, side="right")]
        return self

    def predict_cif(self, records: pd.DataFrame) -> np.ndarray:
        """Each patient's Fine-Gray cumulative incidence of every cause on ``unique_times_``: (n, grid, causes)."""
        design = self.preprocess_.transform(records.reset_index(drop=True))
        linear = design @ self.coef_.T  # (n, causes)
        return -np.expm1(-self.baseline_.T[None, :, :] * np.exp(linear)[:, None, :])

    def manifest(self) -> dict[str, Any]:
        """Settings and the penalties chosen."""
        return {
            "model": type(self).__name__,
            "alpha": self.alpha,
            "alpha_chosen": dict(getattr(self, "alpha_", {})),
            "alpha_candidates": list(self.alphas) if self.alpha == "cv" else None,
            "inner_folds": self.inner_folds if self.alpha == "cv" else None,
            "random_state": self.random_state,
        }


__all__ = ["FineGrayModel"]
