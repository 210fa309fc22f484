"""Simulate a cohort: latent draws -> covariates -> outcomes -> records, with the truth table behind them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from carrisk.simulate.covariates import _covariates, _draw_latent
from carrisk.simulate.outcomes import (
    _baseline_rates,
    _linear_predictors,
    _non_evaluable,
    _relative_hazards,
    _simulate_outcomes,
    _with_early_deaths,
)
from carrisk.simulate.parameters import CAUSES, _resolve_params, centre_params
from carrisk.simulate.records import _canonical_records, _messy_records
from carrisk.simulate.truth import _survival_from, _true_cif_columns
from carrisk.units import DAY28_DAYS, DAYS_PER_YEAR, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS

__all__ = ["SimulatedCohort", "simulate_cohort"]


@dataclass(frozen=True)
class SimulatedCohort:
    """A simulated cohort: the records a study would hold and the truth behind them.

    Attributes
    ----------
    records : pandas.DataFrame
        One row per patient, exactly the columns of ``docs/records.md`` (pre-infusion then outcome) in order.
    truth : pandas.DataFrame
        Same rows and order: ``patient_id``, ``true_cr_prob``, ``true_efs_6mo``, ``true_efs_12mo``,
        ``true_risk`` (= -log S(12 months), higher = worse), ``true_lp_cr`` (logit of day-28 CR),
        ``true_lp_<cause>`` (log relative hazard of each cause in :data:`CAUSES`), the latent
        ``true_blina_group``, ``true_high_burden``, ``true_cd19_dim_partial``, ``true_kmt2a``, and
        ``true_cif_<cause>_6mo``/``_12mo``: the true cumulative incidence of each recorded first-event cause of
        :data:`TRUE_CIF_CAUSES` (see :func:`true_cause_incidence`).
    time_grid : numpy.ndarray
        Days from infusion at which ``truth_curves`` is given (includes 28, 182.625 and 365.25).
    truth_curves : numpy.ndarray
        ``(n, len(time_grid))`` true EFS survival S(t), without censoring.
    params : dict
        The parameters the cohort was drawn with.
    seed : int
        The seed.
    """

    records: pd.DataFrame
    truth: pd.DataFrame
    time_grid: np.ndarray
    truth_curves: np.ndarray
    params: dict[str, Any]
    seed: int


def _time_grid() -> np.ndarray:
    grid = np.linspace(0.0, 5 * DAYS_PER_YEAR, 61)
    return np.unique(np.concatenate([grid, [DAY28_DAYS, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS]]))


def simulate_cohort(
    n: int = 420,
    seed: int = 0,
    *,
    missing_rate: float = 0.03,
    messy: bool = True,
    params: Mapping[str, Any] | None = None,
    case_mix: Mapping[str, Any] | None = None,
    baseline_hazard_multiplier: float = 1.0,
    cr_logodds_shift: float = 0.0,
    effect_scale: float = 1.0,
    **overrides: Any,
) -> SimulatedCohort:
    """Simulate a cohort of CD19-CAR recipients in the carrisk record schema, with the true EFS behind it.

    Parameters
    ----------
    n : int, default 420
        Number of patients (the size of the Myers et al. cohort).
    seed : int, default 0
        Seed for ``np.random.default_rng``; the same seed gives the same cohort.
    missing_rate : float, default 0.03
        Probability that a cell of a non-key pre-infusion column is missing (messy mode only). ``patient_id``,
        ``blina_exposed`` and the outcome columns are never missing.
    messy : bool, default True
        Use the varied accepted spellings of ``docs/records.md`` and blank cells. With ``False`` every value is
        in its canonical encoding and nothing is missing except the structural blanks (``blina_response`` of
        blinatumomab-naive patients, ``months_since_last_hsct`` without a transplant). The patients are the same
        in both modes.
    params : mapping, optional
        Full parameter set (or the whole JSON document); defaults to the fitted
        ``carrisk/data/simulation_params.json``.
    case_mix : mapping, optional
        A different centre's case-mix (see :func:`centre_params`): ``blina_exposed`` (share with prior
        blinatumomab), ``high_burden_odds_ratio`` (multiplies the odds of marrow blasts >= 5 % in every
        blinatumomab group) and ``product`` (shares of the CAR products by name).
    baseline_hazard_multiplier : float, default 1.0
        Multiplies the baseline hazard of every post-CR cause (> 1: a worse centre).
    cr_logodds_shift : float, default 0.0
        Added to the log-odds of day-28 CR for every patient (< 0: fewer remissions).
    effect_scale : float, default 1.0
        Multiplies every log hazard ratio and CR log odds ratio (< 1: the predictors matter less there).
    **overrides
        Individual parameters to replace by name, e.g. ``cr_intercept=2.0``.

    Returns
    -------
    SimulatedCohort
        Its ``params`` are the parameters after the centre options were applied, so ``true_survival`` and
        the truth table describe the simulated centre.

    Raises
    ------
    ValueError
        If an override names no known parameter, or ``n < 1`` or ``missing_rate`` is outside [0, 1), or a
        centre option is out of range.

    Notes
    -----
    The centre options change parameters only, never the random streams: with the defaults the cohort is
    the default cohort, and with a shifted case-mix each patient keeps the latent draws of the same patient
    of the default cohort.
    """
    if int(n) < 1:
        raise ValueError(f"n must be a positive number of patients, got {n!r}.")
    if not 0.0 <= missing_rate < 1.0:
        raise ValueError(f"missing_rate must be in [0, 1), got {missing_rate!r}.")
    n = int(n)
    p = centre_params(
        _resolve_params(params, overrides),
        case_mix=case_mix,
        baseline_hazard_multiplier=baseline_hazard_multiplier,
        cr_logodds_shift=cr_logodds_shift,
        effect_scale=effect_scale,
    )
    patient_rng, messy_rng, early_rng = np.random.default_rng(seed).spawn(3)
    draws = _draw_latent(n, patient_rng)
    x = _covariates(p, draws)
    lp = _linear_predictors(p, x)
    cr_prob = special.expit(lp["cr"])
    rel_hazard = _relative_hazards(lp)
    edges, rates = _baseline_rates(p)

    outcomes = _with_early_deaths(_simulate_outcomes(p, draws, cr_prob, rel_hazard, edges, rates), p, early_rng)
    patient_id = np.array([f"SIM-{i:04d}" for i in range(1, n + 1)], dtype=object)
    records = _canonical_records(patient_id, x, outcomes)
    if messy:
        records = _messy_records(records, x, missing_rate, p, messy_rng)

    grid = _time_grid()
    q = _non_evaluable(p)
    curves = _survival_from(cr_prob, rel_hazard, edges, rates, grid, q)
    s6, s12 = _survival_from(cr_prob, rel_hazard, edges, rates, [SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS], q).T
    group = np.where(x["nonresponder"], "nonresponder", np.where(x["responder"], "responder", "naive"))
    truth = pd.DataFrame(
        {
            "patient_id": patient_id,
            "true_cr_prob": cr_prob,
            "true_efs_6mo": s6,
            "true_efs_12mo": s12,
            "true_risk": -np.log(s12),
            "true_lp_cr": lp["cr"],
            **{f"true_lp_{cause}": lp[cause] for cause in CAUSES},
            "true_blina_group": group,
            "true_high_burden": x["high_burden"],
            "true_cd19_dim_partial": x["cd19_dim_partial"],
            "true_kmt2a": x["kmt2a"],
            **_true_cif_columns(p, cr_prob, rel_hazard, edges, rates),
        }
    )
    return SimulatedCohort(records, truth, grid, curves, p, int(seed))
